//! The `Mutation` root: tags, discount codes, metafields, webhook subscriptions, bulk queries
//! and bulk mutations with their staged uploads.

use super::scalars::{DateTimeScalar, Decimal, Url};
use super::types::*;
use crate::shopify::bulk::{
    self, BulkOperation, BulkOperationNode, BulkOperationStatus, BulkOperationType,
};
use crate::store::model::{self as m, DiscountValue};
use crate::store::payloads::gid;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Union};
use chrono::Utc;

pub struct MutationRoot;

/// Shopify accepts a list of tags or one comma-separated string.
fn split_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The app, as `appUninstall` names it.
#[derive(SimpleObject)]
pub struct AppRef {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct AppUninstallPayload {
    pub app: Option<AppRef>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct TagsAddPayload {
    pub node: Option<CustomerNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct TagsRemovePayload {
    pub node: Option<CustomerNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DiscountBuyerSelection {
    All,
}

#[derive(InputObject)]
pub struct DiscountCustomersInput {
    pub add: Option<Vec<ID>>,
    pub remove: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DiscountCustomerSegmentsInput {
    pub add: Option<Vec<ID>>,
    pub remove: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DiscountContextInput {
    pub all: Option<DiscountBuyerSelection>,
    pub customers: Option<DiscountCustomersInput>,
    pub customer_segments: Option<DiscountCustomerSegmentsInput>,
}

#[derive(InputObject)]
pub struct DiscountCustomerSelectionInput {
    pub all: Option<bool>,
    pub customers: Option<DiscountCustomersInput>,
    pub customer_segments: Option<DiscountCustomerSegmentsInput>,
}

#[derive(InputObject)]
pub struct DiscountAmountInput {
    pub amount: Option<Decimal>,
    pub applies_on_each_item: Option<bool>,
}

#[derive(InputObject)]
pub struct DiscountCustomerGetsValueInput {
    pub percentage: Option<f64>,
    pub discount_amount: Option<DiscountAmountInput>,
}

#[derive(InputObject)]
pub struct DiscountItemsInput {
    pub all: Option<bool>,
}

#[derive(InputObject)]
pub struct DiscountCustomerGetsInput {
    pub value: Option<DiscountCustomerGetsValueInput>,
    pub items: Option<DiscountItemsInput>,
    pub applies_on_one_time_purchase: Option<bool>,
    pub applies_on_subscription: Option<bool>,
}

#[derive(InputObject)]
pub struct DiscountCombinesWithInput {
    pub order_discounts: Option<bool>,
    pub product_discounts: Option<bool>,
    pub shipping_discounts: Option<bool>,
}

#[derive(InputObject)]
pub struct DiscountCodeBasicInput {
    pub title: Option<String>,
    pub code: Option<String>,
    pub starts_at: Option<DateTimeScalar>,
    pub ends_at: Option<DateTimeScalar>,
    pub context: Option<DiscountContextInput>,
    pub customer_selection: Option<DiscountCustomerSelectionInput>,
    pub customer_gets: Option<DiscountCustomerGetsInput>,
    pub usage_limit: Option<i32>,
    pub applies_once_per_customer: Option<bool>,
    pub combines_with: Option<DiscountCombinesWithInput>,
    pub recurring_cycle_limit: Option<i32>,
    pub tags: Option<Vec<String>>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DiscountErrorCode {
    Blank,
    Invalid,
    Taken,
    TooLong,
    ValueOutsideRange,
    EndDateBeforeStartDate,
    ExceededMax,
}

#[derive(SimpleObject)]
pub struct DiscountUserError {
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: Option<DiscountErrorCode>,
    pub extra_info: Option<String>,
}

fn derr(field: &str, code: DiscountErrorCode, message: impl Into<String>) -> DiscountUserError {
    DiscountUserError {
        field: Some(vec!["basicCodeDiscount".into(), field.into()]),
        message: message.into(),
        code: Some(code),
        extra_info: None,
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DiscountStatus {
    Active,
    Expired,
    Scheduled,
}

#[derive(SimpleObject)]
pub struct DiscountRedeemCode {
    pub id: ID,
    pub code: String,
    pub async_usage_count: i32,
}

#[derive(SimpleObject)]
pub struct DiscountPercentage {
    pub percentage: f64,
}

#[derive(SimpleObject)]
pub struct DiscountAmount {
    pub amount: MoneyV2,
    pub applies_on_each_item: bool,
}

#[derive(Union)]
pub enum DiscountCustomerGetsValue {
    DiscountPercentage(DiscountPercentage),
    DiscountAmount(DiscountAmount),
}

#[derive(SimpleObject)]
pub struct DiscountCustomerGets {
    pub value: DiscountCustomerGetsValue,
}

pub struct DiscountCodeBasic {
    d: m::DiscountCode,
    currency: String,
}

#[Object]
impl DiscountCodeBasic {
    async fn title(&self) -> &str {
        &self.d.title
    }
    async fn status(&self) -> DiscountStatus {
        let now = Utc::now();
        if self.d.starts_at > now {
            DiscountStatus::Scheduled
        } else if self.d.ends_at.is_some_and(|e| e <= now) {
            DiscountStatus::Expired
        } else {
            DiscountStatus::Active
        }
    }
    async fn starts_at(&self) -> DateTimeScalar {
        self.d.starts_at.into()
    }
    async fn ends_at(&self) -> Option<DateTimeScalar> {
        self.d.ends_at.map(Into::into)
    }
    async fn created_at(&self) -> DateTimeScalar {
        self.d.created_at.into()
    }
    async fn usage_limit(&self) -> Option<i32> {
        self.d.usage_limit.map(|u| u as i32)
    }
    async fn applies_once_per_customer(&self) -> bool {
        self.d.applies_once_per_customer
    }
    async fn async_usage_count(&self) -> i32 {
        0
    }
    async fn customer_gets(&self) -> DiscountCustomerGets {
        let value = match &self.d.value {
            DiscountValue::Percentage(p) => {
                DiscountCustomerGetsValue::DiscountPercentage(DiscountPercentage { percentage: *p })
            }
            DiscountValue::Amount {
                amount_minor,
                applies_on_each_item,
            } => DiscountCustomerGetsValue::DiscountAmount(DiscountAmount {
                amount: MoneyV2::new(*amount_minor, &self.currency),
                applies_on_each_item: *applies_on_each_item,
            }),
        };
        DiscountCustomerGets { value }
    }
    async fn codes(&self, first: Option<i32>) -> Connection<String, DiscountRedeemCode> {
        let mut conn = Connection::new(false, false);
        if first.is_none_or(|n| n > 0) {
            conn.edges.push(Edge::new(
                super::paging::encode_cursor((0, self.d.id)),
                DiscountRedeemCode {
                    id: ID(gid("DiscountRedeemCode", self.d.id)),
                    code: self.d.code.clone(),
                    async_usage_count: 0,
                },
            ));
        }
        conn
    }
    async fn codes_count(&self) -> Count {
        Count::capped(1, None)
    }
}

#[derive(Union)]
pub enum DiscountCode {
    DiscountCodeBasic(DiscountCodeBasic),
}

#[derive(SimpleObject)]
pub struct DiscountCodeNode {
    pub id: ID,
    pub code_discount: DiscountCode,
}

#[derive(SimpleObject)]
pub struct DiscountCodeBasicCreatePayload {
    pub code_discount_node: Option<DiscountCodeNode>,
    pub user_errors: Vec<DiscountUserError>,
}

#[derive(InputObject)]
pub struct MetafieldsSetInput {
    pub owner_id: ID,
    pub namespace: Option<String>,
    pub key: String,
    pub value: String,
    #[graphql(name = "type")]
    pub kind: Option<String>,
    pub compare_digest: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MetafieldsSetUserErrorCode {
    Blank,
    Invalid,
    InvalidType,
    InvalidValue,
    LessThanOrEqualTo,
    NotFound,
}

#[derive(SimpleObject)]
pub struct MetafieldsSetUserError {
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: Option<MetafieldsSetUserErrorCode>,
    pub element_index: Option<i32>,
}

#[derive(SimpleObject)]
pub struct MetafieldsSetPayload {
    pub metafields: Option<Vec<Metafield>>,
    pub user_errors: Vec<MetafieldsSetUserError>,
}

const METAFIELD_TYPES: [&str; 10] = [
    "single_line_text_field",
    "multi_line_text_field",
    "number_integer",
    "number_decimal",
    "boolean",
    "json",
    "date",
    "date_time",
    "url",
    "money",
];

fn metafield_value_ok(kind: &str, v: &str) -> bool {
    match kind {
        "number_integer" => v.parse::<i64>().is_ok(),
        "number_decimal" => v.parse::<f64>().is_ok_and(f64::is_finite),
        "boolean" => v == "true" || v == "false",
        "json" | "money" => serde_json::from_str::<serde_json::Value>(v).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok(),
        "date_time" => chrono::DateTime::parse_from_rfc3339(v).is_ok(),
        "url" => url::Url::parse(v).is_ok(),
        "single_line_text_field" => !v.contains('\n'),
        _ => true,
    }
}

#[derive(InputObject)]
pub struct WebhookSubscriptionInput {
    pub callback_url: Option<Url>,
    pub uri: Option<String>,
    pub format: Option<WebhookSubscriptionFormat>,
    pub include_fields: Option<Vec<String>>,
    pub filter: Option<String>,
    pub metafield_namespaces: Option<Vec<String>>,
}

#[derive(SimpleObject)]
pub struct WebhookSubscriptionCreatePayload {
    pub webhook_subscription: Option<WebhookSubscriptionNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookSubscriptionDeletePayload {
    pub deleted_webhook_subscription_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BulkOperationUserErrorCode {
    InvalidQuery,
    OperationInProgress,
}

#[derive(SimpleObject)]
pub struct BulkOperationUserError {
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: Option<BulkOperationUserErrorCode>,
}

#[derive(SimpleObject)]
pub struct BulkOperationRunQueryPayload {
    pub bulk_operation: Option<BulkOperationNode>,
    pub user_errors: Vec<BulkOperationUserError>,
}

/// Since 2026-01 a shop may run up to five bulk queries at once.
const MAX_RUNNING_BULK: usize = 5;

/// Mutations a bulk mutation may run here (Shopify allows any; the sandbox's bulk callers need
/// these).
const BULK_MUTATIONS: [&str; 3] = ["tagsAdd", "tagsRemove", "metafieldsSet"];

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BulkMutationErrorCode {
    InvalidMutation,
    InvalidStagedUploadFile,
    NoSuchFile,
    OperationInProgress,
}

#[derive(SimpleObject)]
pub struct BulkMutationUserError {
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: Option<BulkMutationErrorCode>,
}

#[derive(SimpleObject)]
pub struct BulkOperationRunMutationPayload {
    pub bulk_operation: Option<BulkOperationNode>,
    pub user_errors: Vec<BulkMutationUserError>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum StagedUploadTargetGenerateUploadResource {
    BulkMutationVariables,
    File,
    Image,
    Video,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum StagedUploadHttpMethodType {
    Post,
    Put,
}

#[derive(InputObject)]
pub struct StagedUploadInput {
    pub resource: StagedUploadTargetGenerateUploadResource,
    pub filename: String,
    pub mime_type: String,
    pub http_method: Option<StagedUploadHttpMethodType>,
    pub file_size: Option<super::scalars::UnsignedInt64>,
}

#[derive(SimpleObject)]
pub struct StagedUploadParameter {
    pub name: String,
    pub value: String,
}

#[derive(SimpleObject)]
pub struct StagedMediaUploadTarget {
    pub url: Option<Url>,
    pub resource_url: Option<Url>,
    pub parameters: Vec<StagedUploadParameter>,
}

#[derive(SimpleObject)]
pub struct StagedUploadsCreatePayload {
    pub staged_targets: Option<Vec<StagedMediaUploadTarget>>,
    pub user_errors: Vec<UserError>,
}

/// Shopify's static checks on a bulk mutation: one mutation operation with one root field, of
/// a mutation this sandbox can run in bulk.
fn validate_bulk_mutation(mutation: &str) -> Result<(), String> {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let doc = async_graphql::parser::parse_query(mutation)
        .map_err(|e| format!("Invalid bulk mutation: {e}"))?;
    let ops: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(m) => m.values().collect(),
    };
    let [op] = ops.as_slice() else {
        return Err("Bulk mutations must contain exactly one operation.".into());
    };
    if op.node.ty != OperationType::Mutation {
        return Err("Bulk mutations must be a mutation operation.".into());
    }
    let fields: Vec<&str> = op
        .node
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.as_str()),
            _ => None,
        })
        .collect();
    match fields.as_slice() {
        [one] if op.node.selection_set.node.items.len() == 1 => {
            if BULK_MUTATIONS.contains(one) {
                Ok(())
            } else {
                Err(format!(
                    "The mutation `{one}` is not supported in bulk by this sandbox; supported: {}.",
                    BULK_MUTATIONS.join(", ")
                ))
            }
        }
        _ => Err("Bulk mutations must contain exactly one mutation field.".into()),
    }
}

impl MutationRoot {
    async fn change_tags(
        &self,
        c: &Context<'_>,
        id: ID,
        tags: Vec<String>,
        add: bool,
    ) -> Result<(Option<CustomerNode>, Vec<UserError>)> {
        let x = ctx(c);
        let cid = match parse_gid(&id, "Customer") {
            Ok(cid) => cid,
            Err(_) if id.starts_with("gid://shopify/") => {
                return Ok((
                    None,
                    vec![UserError::new(
                        &["id"],
                        "Resource type is not supported by this sandbox; only customers can be tagged",
                    )],
                ));
            }
            Err(e) => return Err(e),
        };
        let tags = split_tags(&tags);
        if tags.is_empty() {
            return Ok((None, vec![UserError::new(&["tags"], "Tags can't be blank")]));
        }
        let result = x
            .shop
            .data
            .write()
            .change_tags(&x.shop.info, cid, &tags, add, Utc::now());
        match result {
            Ok(changes) => {
                x.state.emit(&x.shop, changes);
                let node = x
                    .shop
                    .data
                    .read()
                    .customers
                    .get(cid)
                    .map(|c| CustomerNode(c.clone()));
                Ok((node, vec![]))
            }
            Err(_) => Ok((
                None,
                vec![UserError::new(&["id"], "Customer does not exist")],
            )),
        }
    }
}

#[Object]
impl MutationRoot {
    /// The app removes itself: every grant is revoked, its subscriptions go, and
    /// `app/uninstalled` is sent, as when the merchant uninstalls.
    async fn app_uninstall(&self, c: &Context<'_>) -> Result<AppUninstallPayload> {
        let x = ctx(c);
        x.state.uninstall(&x.shop);
        Ok(AppUninstallPayload {
            app: Some(AppRef {
                id: ID(gid("App", 1)),
            }),
            user_errors: vec![],
        })
    }

    async fn tags_add(&self, c: &Context<'_>, id: ID, tags: Vec<String>) -> Result<TagsAddPayload> {
        let (node, user_errors) = self.change_tags(c, id, tags, true).await?;
        Ok(TagsAddPayload { node, user_errors })
    }

    async fn tags_remove(
        &self,
        c: &Context<'_>,
        id: ID,
        tags: Vec<String>,
    ) -> Result<TagsRemovePayload> {
        let (node, user_errors) = self.change_tags(c, id, tags, false).await?;
        Ok(TagsRemovePayload { node, user_errors })
    }

    async fn discount_code_basic_create(
        &self,
        c: &Context<'_>,
        basic_code_discount: DiscountCodeBasicInput,
    ) -> Result<DiscountCodeBasicCreatePayload> {
        use DiscountErrorCode::*;
        let x = ctx(c);
        let input = basic_code_discount;
        let mut errors = Vec::new();
        let code = input.code.clone().unwrap_or_default().trim().to_string();
        let title = input.title.clone().unwrap_or_default();
        if code.is_empty() {
            errors.push(derr("code", Blank, "Code can't be blank"));
        } else if code.chars().count() > 255 {
            errors.push(derr(
                "code",
                TooLong,
                "Code is too long (maximum is 255 characters)",
            ));
        }
        if title.trim().is_empty() {
            errors.push(derr("title", Blank, "Title can't be blank"));
        }
        let Some(starts_at) = input.starts_at else {
            errors.push(derr("startsAt", Blank, "Starts at can't be blank"));
            return Ok(DiscountCodeBasicCreatePayload {
                code_discount_node: None,
                user_errors: errors,
            });
        };
        if let Some(end) = input.ends_at
            && end.0 < starts_at.0
        {
            errors.push(derr(
                "endsAt",
                EndDateBeforeStartDate,
                "Ends at needs to be after starts_at",
            ));
        }
        if input.usage_limit.is_some_and(|u| u < 1) {
            errors.push(derr(
                "usageLimit",
                ValueOutsideRange,
                "Usage limit must be greater than 0",
            ));
        }
        let value = match input.customer_gets.as_ref().and_then(|g| g.value.as_ref()) {
            None => {
                errors.push(derr(
                    "customerGets",
                    Blank,
                    "Customer gets value can't be blank",
                ));
                None
            }
            Some(v) => match (v.percentage, &v.discount_amount) {
                (Some(p), None) if (0.0..=1.0).contains(&p) => Some(DiscountValue::Percentage(p)),
                (Some(_), None) => {
                    errors.push(derr(
                        "customerGets",
                        ValueOutsideRange,
                        "Value must be between 0.0 and 1.0",
                    ));
                    None
                }
                (None, Some(a)) => match a
                    .amount
                    .as_ref()
                    .map(|d| m::parse_decimal(&d.0, &x.shop.info.currency))
                {
                    Some(Ok(v)) if v > 0 => Some(DiscountValue::Amount {
                        amount_minor: v,
                        applies_on_each_item: a.applies_on_each_item.unwrap_or(false),
                    }),
                    Some(Ok(_)) => {
                        errors.push(derr(
                            "customerGets",
                            ValueOutsideRange,
                            "Value must be greater than 0",
                        ));
                        None
                    }
                    Some(Err(e)) => {
                        errors.push(derr("customerGets", Invalid, e));
                        None
                    }
                    None => {
                        errors.push(derr("customerGets", Blank, "Amount can't be blank"));
                        None
                    }
                },
                _ => {
                    errors.push(derr(
                        "customerGets",
                        Invalid,
                        "Specify exactly one of percentage or discountAmount",
                    ));
                    None
                }
            },
        };
        let customers_input = match (&input.context, &input.customer_selection) {
            (Some(ctx_in), _) => ctx_in.customers.as_ref().and_then(|c| c.add.clone()),
            (None, Some(sel)) => sel.customers.as_ref().and_then(|c| c.add.clone()),
            (None, None) => {
                errors.push(derr("context", Blank, "Context can't be blank"));
                None
            }
        };
        let mut customer_ids = Vec::new();
        {
            let data = x.shop.data.read();
            for id in customers_input.unwrap_or_default() {
                match parse_gid(&id, "Customer") {
                    Ok(cid) if data.customers.get(cid).is_some() => customer_ids.push(cid),
                    _ => errors.push(derr(
                        "context",
                        Invalid,
                        format!("Customer {} does not exist", id.0),
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return Ok(DiscountCodeBasicCreatePayload {
                code_discount_node: None,
                user_errors: errors,
            });
        }
        let d = m::DiscountCode {
            id: 0,
            title,
            code,
            starts_at: starts_at.0,
            ends_at: input.ends_at.map(|e| e.0),
            customer_ids,
            value: value.expect("checked above"),
            usage_limit: input.usage_limit.map(|u| u as u32),
            applies_once_per_customer: input.applies_once_per_customer.unwrap_or(false),
            created_at: Utc::now(),
        };
        let added = x.shop.data.write().add_discount(d);
        match added {
            Ok(id) => {
                let d = x
                    .shop
                    .data
                    .read()
                    .discounts
                    .get(&id)
                    .cloned()
                    .expect("just added");
                Ok(DiscountCodeBasicCreatePayload {
                    code_discount_node: Some(DiscountCodeNode {
                        id: ID(gid("DiscountCodeNode", id)),
                        code_discount: DiscountCode::DiscountCodeBasic(DiscountCodeBasic {
                            d,
                            currency: x.shop.info.currency.clone(),
                        }),
                    }),
                    user_errors: vec![],
                })
            }
            Err(_) => Ok(DiscountCodeBasicCreatePayload {
                code_discount_node: None,
                user_errors: vec![derr(
                    "code",
                    Taken,
                    "Code must be unique. Please try a different code.",
                )],
            }),
        }
    }

    async fn metafields_set(
        &self,
        c: &Context<'_>,
        metafields: Vec<MetafieldsSetInput>,
    ) -> Result<MetafieldsSetPayload> {
        use MetafieldsSetUserErrorCode::*;
        let x = ctx(c);
        let mut errors = Vec::new();
        let mut err = |i: usize, field: &str, code, msg: String| {
            errors.push(MetafieldsSetUserError {
                field: Some(vec!["metafields".into(), i.to_string(), field.into()]),
                message: msg,
                code: Some(code),
                element_index: None,
            })
        };
        if metafields.len() > 25 {
            err(
                0,
                "metafields",
                LessThanOrEqualTo,
                "Exceeded the maximum metafields input limit of 25.".into(),
            );
        }
        let mut data = x.shop.data.write();
        let mut plan = Vec::new();
        for (i, mf) in metafields.iter().enumerate() {
            let owner = match parse_gid(&mf.owner_id, "Customer") {
                Ok(id) if data.customers.get(id).is_some() => id,
                Ok(_) => {
                    err(i, "ownerId", NotFound, "Owner does not exist.".into());
                    continue;
                }
                Err(_) => {
                    err(
                        i,
                        "ownerId",
                        Invalid,
                        "Owner type is not supported by this sandbox; only customers.".into(),
                    );
                    continue;
                }
            };
            let ns = mf.namespace.clone().unwrap_or_else(|| "$app".into());
            if mf.key.len() < 2 || mf.key.len() > 64 {
                err(i, "key", Invalid, "Key must be 2-64 characters long".into());
                continue;
            }
            let existing = data.metafield(owner, &ns, &mf.key).map(|m| m.kind.clone());
            let kind = match (mf.kind.clone(), existing) {
                (Some(k), _) | (None, Some(k)) => k,
                (None, None) => {
                    err(i, "type", Blank, "Type can't be blank.".into());
                    continue;
                }
            };
            if !METAFIELD_TYPES.contains(&kind.as_str()) {
                err(
                    i,
                    "type",
                    InvalidType,
                    format!("Type '{kind}' is not supported."),
                );
                continue;
            }
            if !metafield_value_ok(&kind, &mf.value) {
                err(
                    i,
                    "value",
                    InvalidValue,
                    format!("Value is invalid for type {kind}."),
                );
                continue;
            }
            plan.push((owner, ns, mf.key.clone(), mf.value.clone(), kind));
        }
        if !errors.is_empty() {
            // All or nothing, as Shopify.
            return Ok(MetafieldsSetPayload {
                metafields: None,
                user_errors: errors,
            });
        }
        let now = Utc::now();
        let mut out = Vec::new();
        for (owner, ns, key, value, kind) in plan {
            let mf = data
                .set_metafield(owner, &ns, &key, &value, &kind, now)
                .map_err(|e| async_graphql::Error::new(e.to_string()))?;
            out.push(Metafield::from(&mf));
        }
        Ok(MetafieldsSetPayload {
            metafields: Some(out),
            user_errors: vec![],
        })
    }

    async fn webhook_subscription_create(
        &self,
        c: &Context<'_>,
        topic: WebhookSubscriptionTopic,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<WebhookSubscriptionCreatePayload> {
        let x = ctx(c);
        let address = webhook_subscription.uri.clone().or_else(|| {
            webhook_subscription
                .callback_url
                .as_ref()
                .map(|u| u.0.clone())
        });
        let Some(address) = address else {
            return Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError::new(
                    &["webhookSubscription", "callbackUrl"],
                    "Address can't be blank",
                )],
            });
        };
        if url::Url::parse(&address)
            .map(|u| u.scheme() != "https" && u.scheme() != "http")
            .unwrap_or(true)
        {
            return Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError::new(
                    &["webhookSubscription", "callbackUrl"],
                    "Address is invalid",
                )],
            });
        }
        let mut data = x.shop.data.write();
        if data
            .webhooks
            .values()
            .any(|s| s.topic == topic.rest() && s.callback_url == address)
        {
            return Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError::new(
                    &["webhookSubscription", "callbackUrl"],
                    "Address for this topic has already been taken",
                )],
            });
        }
        let id = data.next_id();
        let sub = m::WebhookSubscription {
            id,
            topic: topic.rest().to_string(),
            callback_url: address,
            format: match webhook_subscription.format {
                Some(WebhookSubscriptionFormat::Xml) => "xml",
                _ => "json",
            }
            .into(),
            api_version: x.api_version.clone(),
            created_at: Utc::now(),
        };
        data.webhooks.insert(id, sub.clone());
        Ok(WebhookSubscriptionCreatePayload {
            webhook_subscription: Some(WebhookSubscriptionNode(sub)),
            user_errors: vec![],
        })
    }

    async fn webhook_subscription_delete(
        &self,
        c: &Context<'_>,
        id: ID,
    ) -> Result<WebhookSubscriptionDeletePayload> {
        let x = ctx(c);
        let sid = parse_gid(&id, "WebhookSubscription")?;
        let removed = x.shop.data.write().webhooks.remove(&sid);
        Ok(match removed {
            Some(_) => WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: Some(id),
                user_errors: vec![],
            },
            None => WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: None,
                user_errors: vec![UserError::new(
                    &["id"],
                    "Webhook subscription does not exist",
                )],
            },
        })
    }

    async fn bulk_operation_run_query(
        &self,
        c: &Context<'_>,
        query: String,
        group_objects: Option<bool>,
    ) -> Result<BulkOperationRunQueryPayload> {
        let _ = group_objects; // children always follow their parent here
        let x = ctx(c);
        let fail = |code, msg: String| BulkOperationRunQueryPayload {
            bulk_operation: None,
            user_errors: vec![BulkOperationUserError {
                field: Some(vec!["query".into()]),
                message: msg,
                code: Some(code),
            }],
        };
        let doc = match async_graphql::parser::parse_query(&query) {
            Ok(d) => d,
            Err(e) => {
                return Ok(fail(
                    BulkOperationUserErrorCode::InvalidQuery,
                    format!("Invalid bulk query: {e}"),
                ));
            }
        };
        if let Err(msg) = bulk::validate(&doc) {
            return Ok(fail(BulkOperationUserErrorCode::InvalidQuery, msg));
        }
        // Field errors are found now, not after the run, as Shopify does.
        let check = (x.execute)(async_graphql::Request::new(query.clone()).data(Ctx {
            shop: x.shop.clone(),
            state: x.state.clone(),
            api_version: x.api_version.clone(),
            bulk: true,
            dry_run: true,
            bulk_pager: None,
            execute: x.execute.clone(),
        }))
        .await;
        if let Some(e) = check.errors.first() {
            return Ok(fail(
                BulkOperationUserErrorCode::InvalidQuery,
                format!("Invalid bulk query: {}", e.message),
            ));
        }
        let op = {
            let mut ops = crate::shopify::shop::ShopifyShop::of(&x.shop).bulk.lock();
            let running = ops
                .iter()
                .filter(|o| {
                    o.kind == BulkOperationType::Query
                        && matches!(
                            o.status,
                            BulkOperationStatus::Created | BulkOperationStatus::Running
                        )
                })
                .count();
            if running >= MAX_RUNNING_BULK {
                return Ok(fail(
                    BulkOperationUserErrorCode::OperationInProgress,
                    "A bulk query operation for this app and shop is already in progress".into(),
                ));
            }
            let id = x.shop.data.write().next_id();
            let op = BulkOperation::created(id, BulkOperationType::Query, query.clone());
            ops.push(op.clone());
            op
        };
        bulk::spawn(
            x.state.clone(),
            x.shop.clone(),
            op.id,
            bulk::Job::Query(query),
            x.api_version.clone(),
            x.execute.clone(),
        );
        Ok(BulkOperationRunQueryPayload {
            bulk_operation: Some(BulkOperationNode(op)),
            user_errors: vec![],
        })
    }

    async fn staged_uploads_create(
        &self,
        c: &Context<'_>,
        input: Vec<StagedUploadInput>,
    ) -> Result<StagedUploadsCreatePayload> {
        let x = ctx(c);
        let mut errors = Vec::new();
        for (i, inp) in input.iter().enumerate() {
            let at = i.to_string();
            if inp.resource != StagedUploadTargetGenerateUploadResource::BulkMutationVariables {
                errors.push(UserError::new(
                    &["input", &at, "resource"],
                    "This sandbox stages only BULK_MUTATION_VARIABLES uploads",
                ));
            }
            if inp.http_method == Some(StagedUploadHttpMethodType::Put) {
                errors.push(UserError::new(
                    &["input", &at, "httpMethod"],
                    "Bulk mutation variables are uploaded with POST",
                ));
            }
            if inp.filename.trim().is_empty() {
                errors.push(UserError::new(
                    &["input", &at, "filename"],
                    "Filename can't be blank",
                ));
            }
            if inp
                .file_size
                .is_some_and(|s| s.0 > crate::shopify::staged::MAX_UPLOAD_BYTES)
            {
                errors.push(UserError::new(
                    &["input", &at, "fileSize"],
                    "File size exceeds the 100 MB limit",
                ));
            }
        }
        if !errors.is_empty() {
            return Ok(StagedUploadsCreatePayload {
                staged_targets: None,
                user_errors: errors,
            });
        }
        let targets = input
            .iter()
            .map(|inp| {
                let t =
                    crate::shopify::staged::issue(&x.state, &x.shop, &inp.filename, &inp.mime_type);
                StagedMediaUploadTarget {
                    url: Some(Url(t.url)),
                    resource_url: Some(Url(t.resource_url)),
                    parameters: t
                        .params
                        .into_iter()
                        .map(|(name, value)| StagedUploadParameter { name, value })
                        .collect(),
                }
            })
            .collect();
        Ok(StagedUploadsCreatePayload {
            staged_targets: Some(targets),
            user_errors: vec![],
        })
    }

    async fn bulk_operation_run_mutation(
        &self,
        c: &Context<'_>,
        mutation: String,
        staged_upload_path: String,
        client_identifier: Option<String>,
    ) -> Result<BulkOperationRunMutationPayload> {
        let _ = client_identifier; // echoed by Shopify only; nothing here reads it
        let x = ctx(c);
        let fail = |field: &str, code, msg: String| BulkOperationRunMutationPayload {
            bulk_operation: None,
            user_errors: vec![BulkMutationUserError {
                field: Some(vec![field.into()]),
                message: msg,
                code: Some(code),
            }],
        };
        if let Err(msg) = validate_bulk_mutation(&mutation) {
            return Ok(fail(
                "mutation",
                BulkMutationErrorCode::InvalidMutation,
                msg,
            ));
        }
        let mut ops = crate::shopify::shop::ShopifyShop::of(&x.shop).bulk.lock();
        // One bulk mutation per shop at a time, as Shopify.
        if ops.iter().any(|o| {
            o.kind == BulkOperationType::Mutation
                && matches!(
                    o.status,
                    BulkOperationStatus::Created | BulkOperationStatus::Running
                )
        }) {
            return Ok(fail(
                "mutation",
                BulkMutationErrorCode::OperationInProgress,
                "A bulk mutation operation for this app and shop is already in progress.".into(),
            ));
        }
        let Some(file) = crate::shopify::staged::take(&x.shop, &staged_upload_path) else {
            return Ok(fail(
                "stagedUploadPath",
                BulkMutationErrorCode::NoSuchFile,
                "The JSONL file could not be found. Try uploading the file again, and check that you've entered the URL correctly for the stagedUploadPath mutation argument.".into(),
            ));
        };
        let id = x.shop.data.write().next_id();
        let op = BulkOperation::created(id, BulkOperationType::Mutation, mutation.clone());
        ops.push(op.clone());
        drop(ops);
        bulk::spawn(
            x.state.clone(),
            x.shop.clone(),
            op.id,
            bulk::Job::Mutation(mutation, file),
            x.api_version.clone(),
            x.execute.clone(),
        );
        Ok(BulkOperationRunMutationPayload {
            bulk_operation: Some(BulkOperationNode(op)),
            user_errors: vec![],
        })
    }
}
