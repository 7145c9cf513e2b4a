//! Output types of the Admin GraphQL API, with Shopify's names and shapes (2026-07).

use super::context::visible;
pub use super::context::{Ctx, ctx};
use super::paging::{self, Args};
use super::scalars::{DateTimeScalar, Decimal, UnsignedInt64, Url};

use crate::store::model::{self as m, format_minor};
use crate::store::payloads::{abandoned_checkout_url, gid};
use crate::store::table::SortKey;
use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Union};

/// `gid://shopify/{kind}/{id}` -> id, checking the kind.
pub fn parse_gid(s: &str, kind: &str) -> Result<u64> {
    let rest = s
        .strip_prefix("gid://shopify/")
        .ok_or_else(|| async_graphql::Error::new(format!("Invalid global id '{s}'")))?;
    let (k, id) = rest
        .split_once('/')
        .ok_or_else(|| async_graphql::Error::new(format!("Invalid global id '{s}'")))?;
    let id: u64 = id
        .split('?')
        .next()
        .unwrap_or(id)
        .parse()
        .map_err(|_| async_graphql::Error::new(format!("Invalid global id '{s}'")))?;
    if k != kind {
        return Err(async_graphql::Error::new(format!(
            "Invalid id: {s} is not a {kind}"
        )));
    }
    Ok(id)
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "MoneyV2")]
pub struct MoneyV2 {
    pub amount: Decimal,
    pub currency_code: String,
}

impl MoneyV2 {
    pub fn new(minor: i64, currency: &str) -> Self {
        MoneyV2 {
            amount: Decimal(format_minor(minor, currency)),
            currency_code: currency.to_string(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct MoneyBag {
    pub shop_money: MoneyV2,
    pub presentment_money: MoneyV2,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CustomerState")]
pub enum GqlCustomerState {
    Disabled,
    Invited,
    Enabled,
    Declined,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CountPrecision {
    Exact,
    AtLeast,
}

#[derive(SimpleObject)]
pub struct Count {
    pub count: i32,
    pub precision: CountPrecision,
}

impl Count {
    /// Shopify's counts stop at `limit` (default 10,000) and then say AT_LEAST.
    pub fn capped(n: usize, limit: Option<i32>) -> Count {
        match limit {
            Some(l) if n > l.max(0) as usize => Count {
                count: l,
                precision: CountPrecision::AtLeast,
            },
            _ => Count {
                count: n.min(i32::MAX as usize) as i32,
                precision: CountPrecision::Exact,
            },
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CustomerSortKeys {
    Id,
    CreatedAt,
    UpdatedAt,
    Relevance,
}

impl CustomerSortKeys {
    pub fn key(self) -> SortKey {
        match self {
            CustomerSortKeys::Id | CustomerSortKeys::Relevance => SortKey::Id,
            CustomerSortKeys::CreatedAt => SortKey::CreatedAt,
            CustomerSortKeys::UpdatedAt => SortKey::UpdatedAt,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderSortKeys {
    Id,
    CreatedAt,
    UpdatedAt,
    ProcessedAt,
    Relevance,
}

impl OrderSortKeys {
    pub fn key(self) -> SortKey {
        match self {
            OrderSortKeys::Id | OrderSortKeys::Relevance => SortKey::Id,
            // Orders are created when processed here, so the two orders agree.
            OrderSortKeys::CreatedAt | OrderSortKeys::ProcessedAt => SortKey::CreatedAt,
            OrderSortKeys::UpdatedAt => SortKey::UpdatedAt,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AbandonedCheckoutSortKeys {
    Id,
    CreatedAt,
    Relevance,
}

#[derive(SimpleObject)]
pub struct Metafield {
    pub id: ID,
    pub namespace: String,
    pub key: String,
    pub value: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub created_at: DateTimeScalar,
    pub updated_at: DateTimeScalar,
}

impl From<&m::Metafield> for Metafield {
    fn from(x: &m::Metafield) -> Self {
        Metafield {
            id: ID(gid("Metafield", x.id)),
            namespace: x.namespace.clone(),
            key: x.key.clone(),
            value: x.value.clone(),
            kind: x.kind.clone(),
            created_at: x.created_at.into(),
            updated_at: x.updated_at.into(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "MailingAddress")]
pub struct MailingAddress {
    pub address1: Option<String>,
    pub city: Option<String>,
    pub province: Option<String>,
    pub country_code_v2: Option<String>,
    pub zip: Option<String>,
}

/// `Customer`; holds a snapshot taken when it was resolved.
pub struct CustomerNode(pub m::Customer);

#[Object(name = "Customer")]
impl CustomerNode {
    async fn id(&self) -> ID {
        ID(gid("Customer", self.0.id))
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn display_name(&self) -> String {
        self.0.display_name()
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn locale(&self) -> &str {
        self.0.locale.as_deref().unwrap_or("en")
    }
    async fn verified_email(&self) -> bool {
        self.0.verified_email
    }
    async fn tags(&self) -> Vec<String> {
        self.0.tags.iter().cloned().collect()
    }
    async fn state(&self) -> GqlCustomerState {
        match self.0.state {
            m::CustomerState::Disabled => GqlCustomerState::Disabled,
            m::CustomerState::Invited => GqlCustomerState::Invited,
            m::CustomerState::Enabled => GqlCustomerState::Enabled,
            m::CustomerState::Declined => GqlCustomerState::Declined,
        }
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTimeScalar {
        self.0.updated_at.into()
    }
    async fn number_of_orders(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.orders_count)
    }
    async fn amount_spent(&self, c: &Context<'_>) -> MoneyV2 {
        MoneyV2::new(self.0.spent_minor, &ctx(c).shop.info.currency)
    }
    async fn default_address(&self) -> Option<MailingAddress> {
        self.0.address.as_ref().map(|a| MailingAddress {
            address1: Some(a.address1.clone()),
            city: Some(a.city.clone()),
            province: a.province.clone(),
            country_code_v2: Some(a.country_code.clone()),
            zip: Some(a.zip.clone()),
        })
    }
    async fn metafield(
        &self,
        c: &Context<'_>,
        namespace: Option<String>,
        key: String,
    ) -> Option<Metafield> {
        let ns = namespace.unwrap_or_else(|| "$app".to_string());
        let data = ctx(c).shop.data.read();
        data.metafield(self.0.id, &ns, &key).map(Metafield::from)
    }
    async fn last_order(&self, c: &Context<'_>) -> Option<OrderNode> {
        let data = ctx(c).shop.data.read();
        data.customer_orders(self.0.id)
            .max_by_key(|o| (o.created_at, o.id))
            .map(|o| OrderNode(o.clone()))
    }
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] reverse: bool,
        #[graphql(default_with = "OrderSortKeys::Id")] sort_key: OrderSortKeys,
        query: Option<String>,
    ) -> Result<Connection<String, OrderNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after,
            last,
            before,
            reverse,
            query,
            bulk_page: None,
        };
        let from = x.orders_from();
        let data = x.shop.data.read();
        let cust = self.0.id;
        paging::connection(
            "orders",
            &data.orders,
            &a,
            sort_key.key(),
            x,
            &|o: &m::Order, _s| o.customer_id == Some(cust) && visible(from, o),
            |o| OrderNode(o.clone()),
        )
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDisplayFinancialStatus {
    Pending,
    Authorized,
    PartiallyPaid,
    PartiallyRefunded,
    Voided,
    Paid,
    Refunded,
    Expired,
}

#[derive(SimpleObject)]
#[graphql(name = "LineItem")]
pub struct LineItemNode {
    pub id: ID,
    pub title: String,
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub original_unit_price_set: MoneyBag,
}

#[derive(SimpleObject)]
#[graphql(name = "Refund")]
pub struct RefundNode {
    pub id: ID,
    pub created_at: DateTimeScalar,
    pub note: Option<String>,
    pub total_refunded_set: MoneyBag,
}

/// `Order`; a snapshot.
pub struct OrderNode(pub m::Order);

impl OrderNode {
    fn bag(&self, shop_currency: &str, minor: i64) -> MoneyBag {
        MoneyBag {
            shop_money: MoneyV2::new(minor, shop_currency),
            presentment_money: MoneyV2::new(
                self.0.presentment(minor, shop_currency),
                &self.0.presentment_currency,
            ),
        }
    }
}

#[Object(name = "Order")]
impl OrderNode {
    async fn id(&self) -> ID {
        ID(gid("Order", self.0.id))
    }
    async fn legacy_resource_id(&self) -> UnsignedInt64 {
        UnsignedInt64(self.0.id)
    }
    async fn name(&self) -> String {
        self.0.name()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTimeScalar {
        self.0.updated_at.into()
    }
    async fn processed_at(&self) -> DateTimeScalar {
        self.0.processed_at.into()
    }
    async fn cancelled_at(&self) -> Option<DateTimeScalar> {
        self.0.cancelled_at.map(Into::into)
    }
    async fn cancel_reason(&self) -> Option<String> {
        self.0.cancel_reason.as_ref().map(|r| r.to_uppercase())
    }
    async fn closed_at(&self) -> Option<DateTimeScalar> {
        self.0.closed_at.map(Into::into)
    }
    async fn closed(&self) -> bool {
        self.0.closed_at.is_some()
    }
    async fn test(&self) -> bool {
        self.0.test
    }
    async fn display_financial_status(&self) -> OrderDisplayFinancialStatus {
        match self.0.financial_status() {
            "voided" => OrderDisplayFinancialStatus::Voided,
            "refunded" => OrderDisplayFinancialStatus::Refunded,
            "partially_refunded" => OrderDisplayFinancialStatus::PartiallyRefunded,
            _ => OrderDisplayFinancialStatus::Paid,
        }
    }
    async fn currency_code(&self, c: &Context<'_>) -> String {
        ctx(c).shop.info.currency.clone()
    }
    async fn presentment_currency_code(&self) -> &str {
        &self.0.presentment_currency
    }
    async fn total_price_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.total_minor())
    }
    async fn current_total_price_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.current_total_minor())
    }
    async fn subtotal_price_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.subtotal_minor())
    }
    async fn current_subtotal_price_set(&self, c: &Context<'_>) -> MoneyBag {
        let cur = (self.0.subtotal_minor() - self.0.refunded_minor()).max(0);
        self.bag(&ctx(c).shop.info.currency, cur)
    }
    async fn total_discounts_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.total_discounts_minor)
    }
    async fn total_tax_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.total_tax_minor)
    }
    async fn total_refunded_set(&self, c: &Context<'_>) -> MoneyBag {
        self.bag(&ctx(c).shop.info.currency, self.0.refunded_minor())
    }
    async fn discount_codes(&self) -> Vec<String> {
        self.0.discount_codes.clone()
    }
    async fn discount_code(&self) -> Option<String> {
        self.0.discount_codes.first().cloned()
    }
    async fn customer(&self, c: &Context<'_>) -> Option<CustomerNode> {
        let id = self.0.customer_id?;
        let data = ctx(c).shop.data.read();
        data.customers.get(id).map(|c| CustomerNode(c.clone()))
    }
    async fn refunds(&self, c: &Context<'_>, first: Option<i32>) -> Vec<RefundNode> {
        let cur = ctx(c).shop.info.currency.clone();
        let n = first.map_or(usize::MAX, |n| n.max(0) as usize);
        self.0
            .refunds
            .iter()
            .take(n)
            .map(|r| RefundNode {
                id: ID(gid("Refund", r.id)),
                created_at: r.created_at.into(),
                note: r.note.clone(),
                total_refunded_set: self.bag(&cur, r.amount_minor),
            })
            .collect()
    }
    async fn line_items(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, LineItemNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after: after.clone(),
            last: None,
            before: None,
            reverse: false,
            query: None,
            bulk_page: None,
        };
        let (first, _) = paging::limits("lineItems", &a, x.bulk)?;
        let start = after
            .as_deref()
            .map(paging::decode_cursor)
            .transpose()?
            .map_or(0, |k| k.1 as usize + 1);
        let items: Vec<_> = self.0.line_items.iter().enumerate().skip(start).collect();
        let n = first.unwrap_or(usize::MAX);
        let mut conn = Connection::new(start > 0, items.len() > n);
        let cur = &x.shop.info.currency;
        conn.edges.extend(items.into_iter().take(n).map(|(i, l)| {
            async_graphql::connection::Edge::new(
                paging::encode_cursor((0, i as u64)),
                LineItemNode {
                    id: ID(gid("LineItem", l.id)),
                    title: l.title.to_string(),
                    name: l.title.to_string(),
                    sku: (!l.sku.is_empty()).then(|| l.sku.to_string()),
                    quantity: l.quantity as i32,
                    original_unit_price_set: self.bag(cur, l.price_minor),
                },
            )
        }));
        Ok(conn)
    }
}

/// `AbandonedCheckout`; a snapshot.
pub struct CheckoutNode(pub m::Checkout);

#[Object(name = "AbandonedCheckout")]
impl CheckoutNode {
    async fn id(&self) -> ID {
        ID(gid("AbandonedCheckout", self.0.id))
    }
    async fn name(&self) -> String {
        format!("#{}", self.0.id)
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTimeScalar {
        self.0.updated_at.into()
    }
    async fn completed_at(&self) -> Option<DateTimeScalar> {
        self.0.completed_at.map(Into::into)
    }
    async fn abandoned_checkout_url(&self, c: &Context<'_>) -> Url {
        Url(abandoned_checkout_url(&ctx(c).shop.info, &self.0))
    }
    async fn total_price_set(&self, c: &Context<'_>) -> MoneyBag {
        let cur = &ctx(c).shop.info.currency;
        let v = MoneyV2::new(self.0.total_minor(), cur);
        MoneyBag {
            shop_money: v.clone(),
            presentment_money: v,
        }
    }
    async fn customer(&self, c: &Context<'_>) -> Option<CustomerNode> {
        let id = self.0.customer_id?;
        let data = ctx(c).shop.data.read();
        data.customers.get(id).map(|c| CustomerNode(c.clone()))
    }
}

#[derive(SimpleObject)]
pub struct ShopPlan {
    pub display_name: String,
    pub partner_development: bool,
    pub shopify_plus: bool,
}

pub struct ShopNode;

#[Object(name = "Shop")]
impl ShopNode {
    async fn id(&self, c: &Context<'_>) -> ID {
        ID(gid("Shop", ctx(c).shop.info.id))
    }
    async fn name(&self, c: &Context<'_>) -> String {
        ctx(c).shop.info.name.clone()
    }
    async fn email(&self, c: &Context<'_>) -> String {
        ctx(c).shop.info.email.clone()
    }
    async fn myshopify_domain(&self, c: &Context<'_>) -> String {
        ctx(c).shop.info.domain.clone()
    }
    async fn currency_code(&self, c: &Context<'_>) -> String {
        ctx(c).shop.info.currency.clone()
    }
    async fn iana_timezone(&self) -> &str {
        "Etc/UTC"
    }
    async fn created_at(&self, c: &Context<'_>) -> DateTimeScalar {
        ctx(c).shop.info.created_at.into()
    }
    async fn plan(&self, c: &Context<'_>) -> ShopPlan {
        let p = ctx(c).shop.info.plan;
        ShopPlan {
            display_name: p.display_name().to_string(),
            partner_development: false,
            shopify_plus: matches!(p, crate::store::Plan::Plus | crate::store::Plan::Enterprise),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookSubscriptionTopic {
    AppUninstalled,
    BulkOperationsFinish,
    CheckoutsCreate,
    CheckoutsUpdate,
    CustomersCreate,
    CustomersDelete,
    CustomersUpdate,
    OrdersCancelled,
    OrdersCreate,
    OrdersDelete,
    OrdersPaid,
    OrdersUpdated,
    RefundsCreate,
}

impl WebhookSubscriptionTopic {
    pub fn rest(self) -> &'static str {
        use WebhookSubscriptionTopic::*;
        match self {
            AppUninstalled => "app/uninstalled",
            BulkOperationsFinish => "bulk_operations/finish",
            CheckoutsCreate => "checkouts/create",
            CheckoutsUpdate => "checkouts/update",
            CustomersCreate => "customers/create",
            CustomersDelete => "customers/delete",
            CustomersUpdate => "customers/update",
            OrdersCancelled => "orders/cancelled",
            OrdersCreate => "orders/create",
            OrdersDelete => "orders/delete",
            OrdersPaid => "orders/paid",
            OrdersUpdated => "orders/updated",
            RefundsCreate => "refunds/create",
        }
    }
    pub fn from_rest(s: &str) -> Option<Self> {
        use WebhookSubscriptionTopic::*;
        [
            AppUninstalled,
            BulkOperationsFinish,
            CheckoutsCreate,
            CheckoutsUpdate,
            CustomersCreate,
            CustomersDelete,
            CustomersUpdate,
            OrdersCancelled,
            OrdersCreate,
            OrdersDelete,
            OrdersPaid,
            OrdersUpdated,
            RefundsCreate,
        ]
        .into_iter()
        .find(|t| t.rest() == s)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookSubscriptionFormat {
    Json,
    Xml,
}

#[derive(SimpleObject)]
pub struct WebhookHttpEndpoint {
    pub callback_url: Url,
}

#[derive(Union)]
pub enum WebhookSubscriptionEndpoint {
    WebhookHttpEndpoint(WebhookHttpEndpoint),
}

#[derive(SimpleObject)]
#[graphql(name = "ApiVersion")]
pub struct ApiVersion {
    pub handle: String,
    pub display_name: String,
    pub supported: bool,
}

pub struct WebhookSubscriptionNode(pub m::WebhookSubscription);

#[Object(name = "WebhookSubscription")]
impl WebhookSubscriptionNode {
    async fn id(&self) -> ID {
        ID(gid("WebhookSubscription", self.0.id))
    }
    async fn topic(&self) -> Option<WebhookSubscriptionTopic> {
        WebhookSubscriptionTopic::from_rest(&self.0.topic)
    }
    async fn callback_url(&self) -> Url {
        Url(self.0.callback_url.clone())
    }
    async fn uri(&self) -> &str {
        &self.0.callback_url
    }
    async fn endpoint(&self) -> WebhookSubscriptionEndpoint {
        WebhookSubscriptionEndpoint::WebhookHttpEndpoint(WebhookHttpEndpoint {
            callback_url: Url(self.0.callback_url.clone()),
        })
    }
    async fn format(&self) -> WebhookSubscriptionFormat {
        if self.0.format == "xml" {
            WebhookSubscriptionFormat::Xml
        } else {
            WebhookSubscriptionFormat::Json
        }
    }
    async fn api_version(&self) -> ApiVersion {
        ApiVersion {
            handle: self.0.api_version.clone(),
            display_name: self.0.api_version.clone(),
            supported: true,
        }
    }
    async fn include_fields(&self) -> Vec<String> {
        vec![]
    }
    async fn filter(&self) -> Option<String> {
        None
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTimeScalar {
        self.0.created_at.into()
    }
}

#[derive(SimpleObject, Clone)]
pub struct UserError {
    pub field: Option<Vec<String>>,
    pub message: String,
}

impl UserError {
    pub fn new(field: &[&str], message: impl Into<String>) -> Self {
        UserError {
            field: Some(field.iter().map(|s| s.to_string()).collect()),
            message: message.into(),
        }
    }
}
