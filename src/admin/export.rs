//! The customers export (`/api/customers/export.csv`): every customer of the shop with their
//! last scores, the P10-P90 range of their predicted CLV and their segments, streamed page by
//! page (a large shop has a million customers: never one query result held whole). Also one
//! customer's data export (`customers/data_request`), for the merchant to send on, until it
//! expires.

use actix_web::{HttpResponse, get, web};
use sea_orm::{DbErr, QueryResult};

use super::auth::AdminSession;
use super::data::rows;
use crate::routes::ApiError;
use crate::state::AppState;
use crate::store::Db;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(customers_csv).service(data_request_export);
}

/// Customers per page of the export.
const PAGE: i64 = 5_000;

/// The export's columns; money in minor units of `currency`.
pub const HEADER: &str = "id,platform_id,email,first_name,last_name,rfm_group,churn_risk,p_alive,\
                          clv_minor,clv_p10_minor,clv_p90_minor,currency,segments";

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn line(r: &QueryResult) -> Result<(i64, String), DbErr> {
    let id: i64 = r.try_get("", "id")?;
    let text = |c: &str| -> Result<String, DbErr> {
        Ok(r.try_get::<Option<String>>("", c)?.unwrap_or_default())
    };
    let int = |c: &str| -> Result<String, DbErr> {
        Ok(r.try_get::<Option<i64>>("", c)?
            .map(|v| v.to_string())
            .unwrap_or_default())
    };
    let p_alive = r
        .try_get::<Option<f64>>("", "p_alive")?
        .map(|v| v.to_string())
        .unwrap_or_default();
    // Segments are stored as a JSON list of keys; the export joins them with spaces.
    let segments: Vec<String> = serde_json::from_str(&text("segments")?).unwrap_or_default();
    let fields = [
        id.to_string(),
        text("platform_id")?,
        text("email")?,
        text("first_name")?,
        text("last_name")?,
        text("rfm_group")?,
        text("churn_risk")?,
        p_alive,
        int("clv_minor")?,
        int("clv_p10_minor")?,
        int("clv_p90_minor")?,
        text("currency")?,
        segments.join(" "),
    ];
    let mut out = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    Ok((id, out))
}

/// The customers after `after` (our id), one page, as CSV lines; the last id read.
async fn page(db: &Db, shop_id: i64, after: i64) -> Result<(String, Option<i64>), DbErr> {
    let rs = rows(
        db,
        "SELECT c.id, c.platform_id, c.email, c.first_name, c.last_name, s.rfm_group, s.churn_risk, \
         s.p_alive, s.clv_minor, s.clv_p10_minor, s.clv_p90_minor, s.currency, s.segments \
         FROM customers c LEFT JOIN customer_scores s \
         ON s.shop_id = c.shop_id AND s.customer_platform_id = c.platform_id \
         WHERE c.shop_id = ? AND c.id > ? AND c.deleted_at IS NULL AND c.redacted_at IS NULL \
         ORDER BY c.id LIMIT ?",
        vec![shop_id.into(), after.into(), PAGE.into()],
    )
    .await?;
    let mut text = String::new();
    let mut last = None;
    for r in &rs {
        let (id, l) = line(r)?;
        text.push_str(&l);
        last = Some(id);
    }
    Ok((text, last))
}

#[utoipa::path(get, path = "/api/customers/export.csv", tag = "customers",
    responses((status = 200, content_type = "text/csv",
        description = "id,platform_id,email,first_name,last_name,rfm_group,churn_risk,p_alive,clv_minor,clv_p10_minor,clv_p90_minor,currency,segments"),
        (status = 401)))]
#[get("/api/customers/export.csv")]
async fn customers_csv(
    s: AdminSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = state.db.clone();
    let shop_id = s.shop_id;
    // The first page is read before answering, so a failing query is a clear error status
    // rather than a cut-off file.
    let (first, last) = page(&db, shop_id, 0).await?;
    let head = format!("{HEADER}\n{first}");
    let rest = futures_util::stream::unfold(last, move |after| {
        let db = db.clone();
        async move {
            let after = after?;
            match page(&db, shop_id, after).await {
                Ok((_, None)) => None,
                Ok((text, last)) => Some((Ok(web::Bytes::from(text)), last)),
                Err(e) => {
                    tracing::warn!(shop_id, error = %e, "customers export stopped");
                    Some((Err(actix_web::error::ErrorInternalServerError(e)), None))
                }
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        ),
        rest,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"customers.csv\"",
        ))
        .streaming(body))
}

#[utoipa::path(get, path = "/api/data-requests/{id}/export.json", tag = "customers",
    params(("id" = i64, Path, description = "the data request, as listed on the activity page")),
    responses((status = 200, content_type = "application/json",
        description = "everything held about the customer: record, orders, scores and segments, pushed tags, discount codes"),
        (status = 401), (status = 404, description = "no such request in this shop, or its export expired")))]
#[get("/api/data-requests/{id}/export.json")]
async fn data_request_export(
    s: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let found =
        crate::store::privacy::export_of(&state.db, s.shop_id, id.into_inner(), chrono::Utc::now())
            .await?;
    let Some((_, export)) = found else {
        return Err(ApiError::NotFound(
            "no such data request in this shop, or its export has expired".into(),
        ));
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"data-request.json\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(export))
}

/// The OpenAPI paths of this module, merged into the admin API's document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(customers_csv, data_request_export))]
pub struct ExportDoc;

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
