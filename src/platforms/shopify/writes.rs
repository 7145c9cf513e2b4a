//! The Shopify writes: `tagsAdd`/`tagsRemove` (many per request, as aliased fields),
//! `discountCodeBasicCreate` and `metafieldsSet`. Each mutation field costs 10 points; the
//! throttle-aware client waits for the bucket. A user error is reported per field so one bad
//! customer does not fail the others.

use serde_json::{Map, Value, json};

use super::client::ShopClient;
use crate::core::loyalty::{CustomerField, FieldKind, OfferValue, minor_units_to_decimal};
use crate::core::money as currency;
use crate::platforms::CallError;
use crate::platforms::{CreateOutcome, LabelOp, NewCode, Removal};

/// Shopify's price of one mutation field.
pub const MUTATION_COST: f64 = 10.0;
/// Mutation fields per request: 25 × 10 = 250 points, well under the 1,000-point query cap,
/// and small enough that a retried request repeats little.
pub const FIELDS_PER_REQUEST: usize = 25;

/// Sends up to [`FIELDS_PER_REQUEST`] tag writes in one request. Per op: `None` when applied,
/// `Some(message)` when the shop refused it.
pub async fn tag_batch(
    client: &ShopClient<'_>,
    ops: &[LabelOp],
) -> Result<Vec<Option<String>>, CallError> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = Vec::with_capacity(ops.len());
    let mut fields = String::new();
    let mut vars = Map::new();
    for (i, op) in ops.iter().enumerate() {
        params.push(format!("$id{i}: ID!, $t{i}: [String!]!"));
        let root = if op.add { "tagsAdd" } else { "tagsRemove" };
        fields.push_str(&format!(
            " m{i}: {root}(id: $id{i}, tags: $t{i}) {{ userErrors {{ field message }} }}"
        ));
        vars.insert(format!("id{i}"), json!(op.customer));
        vars.insert(format!("t{i}"), json!(op.labels));
    }
    let query = format!("mutation Tags({}) {{{fields} }}", params.join(", "));
    let resp = client
        .run(
            &query,
            Value::Object(vars),
            MUTATION_COST * ops.len() as f64,
        )
        .await?;
    Ok((0..ops.len())
        .map(|i| match resp.data.get(format!("m{i}")) {
            Some(payload) if !payload.is_null() => user_errors(payload),
            _ => Some("no result for this write".to_string()),
        })
        .collect())
}

pub(super) fn user_errors(payload: &Value) -> Option<String> {
    let errors = payload.get("userErrors").and_then(Value::as_array)?;
    if errors.is_empty() {
        return None;
    }
    Some(
        errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn value_input(value: &OfferValue) -> Value {
    match value {
        OfferValue::Percentage { percent } => json!({ "percentage": f64::from(*percent) / 100.0 }),
        OfferValue::FixedAmount {
            amount_minor,
            currency,
        } => json!({
            "discountAmount": {
                "amount": minor_units_to_decimal(*amount_minor, currency::exponent(currency)),
                "appliesOnEachItem": false,
            }
        }),
    }
}

/// `discountCodeBasicCreate` for one personal code: only that customer, one use, an expiry.
pub async fn create_code(
    client: &ShopClient<'_>,
    code: &NewCode<'_>,
) -> Result<CreateOutcome, CallError> {
    const QUERY: &str = "mutation Create($input: DiscountCodeBasicInput!) { \
        discountCodeBasicCreate(basicCodeDiscount: $input) { \
          codeDiscountNode { id } userErrors { field message code } } }";
    let input = json!({
        "title": code.title,
        "code": code.code,
        "startsAt": code.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "endsAt": code.ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "context": { "customers": { "add": [code.customer] } },
        "customerGets": { "value": value_input(code.value), "items": { "all": true } },
        "usageLimit": 1,
        "appliesOncePerCustomer": true,
    });
    let resp = client
        .run(QUERY, json!({ "input": input }), MUTATION_COST)
        .await?;
    let payload = resp
        .data
        .get("discountCodeBasicCreate")
        .cloned()
        .unwrap_or(Value::Null);
    let errors = payload
        .get("userErrors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if errors
        .iter()
        .any(|e| e.get("code").and_then(Value::as_str) == Some("TAKEN"))
    {
        return Ok(CreateOutcome::Taken);
    }
    if let Some(msg) = user_errors(&payload) {
        return Ok(CreateOutcome::Rejected(msg));
    }
    match payload
        .pointer("/codeDiscountNode/id")
        .and_then(Value::as_str)
    {
        Some(id) => Ok(CreateOutcome::Created {
            platform_id: id.to_string(),
        }),
        None => Err(CallError::Protocol(
            "discountCodeBasicCreate returned neither a discount nor an error".into(),
        )),
    }
}

/// `appUninstall`: the app removes itself; Shopify then revokes the token, deletes the app's
/// webhook subscriptions and sends `app/uninstalled`.
pub async fn uninstall(client: &ShopClient<'_>) -> Result<Removal, CallError> {
    const QUERY: &str = "mutation { appUninstall { app { id } userErrors { field message } } }";
    let resp = client.run(QUERY, json!({}), MUTATION_COST).await?;
    let payload = resp
        .data
        .get("appUninstall")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(msg) = user_errors(&payload) {
        return Err(CallError::Remote(msg));
    }
    match payload.pointer("/app/id") {
        Some(Value::String(_)) => Ok(Removal::Removed),
        _ => Err(CallError::Protocol(
            "appUninstall returned neither the app nor an error".into(),
        )),
    }
}

/// `metafieldsSet` on the customer (all or nothing, as Shopify applies it).
pub async fn set_metafields(
    client: &ShopClient<'_>,
    customer: &str,
    fields: &[CustomerField],
) -> Result<Option<String>, CallError> {
    const QUERY: &str = "mutation Set($metafields: [MetafieldsSetInput!]!) { \
        metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } } }";
    let input: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "ownerId": customer,
                "namespace": f.namespace,
                "key": f.key,
                "type": metafield_type(f.kind),
                "value": f.value,
            })
        })
        .collect();
    let resp = client
        .run(QUERY, json!({ "metafields": input }), MUTATION_COST)
        .await?;
    let payload = resp
        .data
        .get("metafieldsSet")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(user_errors(&payload))
}

/// The metafield type that holds a field of this kind.
fn metafield_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "single_line_text_field",
        FieldKind::DateTime => "date_time",
    }
}
