//! The frame every admin page shares: who asked ([`Ctx`], from the request's session), the
//! document head, the navigation and top bar ([`layout`]), error pages, the
//! `Content-Security-Policy` that says who may frame a page, and the small formatters the pages
//! all use. It knows nothing of any one page; the pages (`pages`, `model`, `results`, `home`)
//! build on it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::auth::{self, AdminSession};
use crate::routes::ApiError;
use crate::state::AppState;

/// What every page needs to know about the request.
pub(super) struct Ctx {
    pub(super) session: AdminSession,
    /// The platform's head markup when the page runs inside the platform's own admin.
    embedding: Option<Markup>,
    /// `shop`, `host` and `embedded` carried over to links, so navigation stays embedded.
    pub(super) keep: String,
    /// The page's `Content-Security-Policy`: who may frame it.
    csp: String,
    /// The platform's word for one of Lifecycle's labels on a customer ("tag", "customer
    /// group"): every place a page names the label says it.
    pub(super) label_word: &'static str,
    /// The platform holds one label per customer (a group), not any number of tags.
    pub(super) one_group: bool,
}

fn is_embedded(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "host" || (k == "embedded" && v == "1"))
}

fn kept_query(req: &HttpRequest) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if matches!(k.as_ref(), "shop" | "host" | "embedded") {
            out.append_pair(&k, &v);
            any = true;
        }
    }
    if any {
        format!("?{}", out.finish())
    } else {
        String::new()
    }
}

impl Ctx {
    pub(super) fn link(&self, path: &str) -> String {
        format!("{path}{}", self.keep)
    }

    /// The platform's word for labels, plural ("tags", "customer groups").
    pub(super) fn labels(&self) -> String {
        format!("{}s", self.label_word)
    }

    /// The same, capitalised for a heading or a column ("Tags", "Customer groups").
    pub(super) fn labels_title(&self) -> String {
        capitalise(&self.labels())
    }

    /// A navigation label in the platform's words (see [`NAV`]).
    pub(super) fn nav_label(&self, label: &str) -> String {
        label.replace(LABELS, &self.labels())
    }
}

/// Authenticates a page request. An embedded load without a token gets a page that asks the
/// platform's admin for one and reloads with it (a "bounce"), everything else an error page.
async fn page_ctx(req: &HttpRequest, state: &AppState) -> Result<Ctx, HttpResponse> {
    let embedded = is_embedded(req);
    match auth::authenticate(req, state).await {
        Ok(session) => Ok(Ctx {
            csp: content_security_policy(state, &session.platform, &session.domain),
            label_word: state
                .platforms
                .get(&session.platform)
                .map_or("tag", |p| p.capabilities().label_word),
            one_group: state
                .platforms
                .get(&session.platform)
                .is_some_and(|p| p.capabilities().labels == crate::platforms::Labelling::OneGroup),
            embedding: embedded
                .then(|| state.platforms.get(&session.platform))
                .flatten()
                .and_then(|p| p.embedding())
                .map(|e| e.head),
            session,
            keep: kept_query(req),
        }),
        Err(ApiError::Unauthorized(_))
            if embedded
                && !url::form_urlencoded::parse(req.query_string().as_bytes())
                    .any(|(k, _)| k == "id_token") =>
        {
            // Only an embedding platform sends an embedded load.
            match state.platforms.all().iter().find_map(|p| p.embedding()) {
                Some(embedding) => Err(html_response(
                    StatusCode::OK,
                    bounce(embedding.head),
                    &policy_before_session(req, state),
                )),
                None => Err(error_page(
                    &ApiError::Unauthorized(
                        "not signed in: open Lifecycle from the shop admin".into(),
                    ),
                    &policy_before_session(req, state),
                )),
            }
        }
        Err(e) => Err(error_page(&e, &policy_before_session(req, state))),
    }
}

/// The `Content-Security-Policy` of `shop`'s pages: framed only by that shop's admin where the
/// platform embeds the admin, otherwise only by the app itself.
pub fn content_security_policy(state: &AppState, platform: &str, shop: &str) -> String {
    let ancestors = state
        .platforms
        .get(platform)
        .and_then(|p| p.frame_ancestors(shop))
        .unwrap_or_else(|| "'self'".into());
    format!("frame-ancestors {ancestors}")
}

/// Before a session is known (the bounce that fetches a session token, an error page), the
/// page may be framed by the admin of the shop the query names, when an embedding platform
/// takes it for one of its shops. The page holds no shop data.
pub(super) fn policy_before_session(req: &HttpRequest, state: &AppState) -> String {
    let asked = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "shop")
        .map(|(_, v)| v.into_owned());
    asked
        .and_then(|asked| {
            state.platforms.all().iter().find_map(|p| {
                p.embedding()?;
                let shop = p.normalize_shop(&asked)?;
                Some(content_security_policy(state, p.name(), &shop))
            })
        })
        .unwrap_or_else(|| "frame-ancestors 'self'".into())
}

pub(super) fn html_response(status: StatusCode, m: Markup, csp: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", csp))
        .body(m.into_string())
}

fn bounce(head: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Lifecycle" }
                (head)
            }
            body {
                p { "Loading Lifecycle…" }
                script {
                    (PreEscaped("window.lifecycleToken().then(function (t) { var u = new URL(location.href); u.searchParams.set('id_token', t); location.replace(u.toString()); });"))
                }
            }
        }
    }
}

fn error_page(e: &ApiError, csp: &str) -> HttpResponse {
    use actix_web::ResponseError;
    let status = e.status_code();
    let title = format!(
        "Lifecycle: {}",
        status.canonical_reason().unwrap_or("error")
    );
    let body = html! {
        main class="page narrow" {
            div class="card" {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p class="error-text" { (e.to_string()) }
                p class="muted" { "Open Lifecycle from your shop's admin, or install it again." }
            }
        }
    };
    html_response(status, document(&title, None, false, body), csp)
}

/// A styled page: the head every page shares (the platform's when embedded, the admin script
/// when the page has controls) around `body`.
pub(super) fn document(
    title: &str,
    embedding: Option<&Markup>,
    script: bool,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                @if let Some(head) = embedding { (head) }
                link rel="stylesheet" href="/admin/static/admin.css";
                @if script { script src="/admin/static/admin.js" defer {} }
            }
            body { (body) }
        }
    }
}

/// In a [`NAV`] label: the platform's word for labels, plural ("tags", "customer groups").
pub const LABELS: &str = "{labels}";

/// Every page in the navigation (the customer page, `/admin/customers/{id}`, is reached from
/// the list). A label's [`LABELS`] becomes the platform's word.
pub const NAV: [(&str, &str); 7] = [
    ("/admin", "Overview"),
    ("/admin/segments", "Segments"),
    ("/admin/offers", "Offers & {labels}"),
    ("/admin/customers", "Customers"),
    ("/admin/model", "Model"),
    ("/admin/results", "Results"),
    ("/admin/activity", "Activity"),
];

pub(super) fn layout(ctx: &Ctx, active: &str, title: &str, body: Markup) -> HttpResponse {
    let page = html! {
        @if ctx.embedding.is_some() {
            ui-nav-menu {
                @for (path, label) in &NAV[1..] { a href=(ctx.link(path)) { (ctx.nav_label(label)) } }
            }
        }
        header class="topbar" {
            div class="brand" { span class="logo" aria-hidden="true" { "◐" } " Lifecycle" }
            nav aria-label="Lifecycle sections" {
                @for (path, label) in NAV {
                    a href=(ctx.link(path)) class=(if path == active { "active" } else { "" })
                        aria-current=[(path == active).then_some("page")] { (ctx.nav_label(label)) }
                }
            }
            div class="shop muted" { (ctx.session.domain) }
        }
        main class="page" {
            h1 { (title) }
            (body)
        }
    };
    html_response(
        StatusCode::OK,
        document(
            &format!("{title} · Lifecycle"),
            ctx.embedding.as_ref(),
            true,
            page,
        ),
        &ctx.csp,
    )
}

pub(super) fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

pub(super) fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "—".into())
}

/// Authenticates the request, then renders `page` for it; a failed page becomes an error page.
pub(super) async fn render<F, Fut>(req: &HttpRequest, state: &AppState, page: F) -> HttpResponse
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ApiError>>,
{
    match page_ctx(req, state).await {
        Ok(ctx) => {
            let csp = ctx.csp.clone();
            page(ctx).await.unwrap_or_else(|e| error_page(&e, &csp))
        }
        Err(r) => r,
    }
}

pub(super) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
