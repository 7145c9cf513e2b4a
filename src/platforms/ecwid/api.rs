//! Ecwid behind the seam: paged REST reads, one record by id for webhooks, a customer
//! group per customer, and single-use coupons.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Ecwid;
use super::client::{PAGE_LIMIT, StoreClient};
use super::paging::Cursor;
use super::resources::{path, to_event};
use crate::core::loyalty::{CustomerField, OfferValue};
use crate::model::{Currency, DataEvent};
use crate::platforms::{
    CallError, CreateOutcome, LabelOp, NewCode, Page, Removal, Resource, ShopApi,
};

pub struct EcwidApi<'a> {
    pub ecwid: &'a Ecwid,
    pub store: String,
    pub client: StoreClient<'a>,
}

/// A date as Ecwid's coupon fields take it.
fn ecwid_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S +0000").to_string()
}

impl EcwidApi<'_> {
    /// The store's currency, from its profile (read once per process).
    async fn currency(&self) -> Result<Currency, CallError> {
        if let Some(c) = self.ecwid.currencies.lock().expect("lock").get(&self.store) {
            return Ok(*c);
        }
        let profile = self.client.get("/profile", &[]).await?;
        let currency = profile
            .pointer("/formatsAndUnits/currency")
            .and_then(Value::as_str)
            .and_then(Currency::parse)
            .ok_or_else(|| CallError::Protocol("the store profile names no currency".into()))?;
        self.ecwid
            .currencies
            .lock()
            .expect("lock")
            .insert(self.store.clone(), currency);
        Ok(currency)
    }

    /// The id of the customer group named `name`, created when missing.
    async fn group_id(&self, name: &str) -> Result<u64, CallError> {
        let known = |ecwid: &Ecwid| {
            ecwid
                .groups
                .lock()
                .expect("lock")
                .get(&self.store)
                .and_then(|g| g.get(name).copied())
        };
        if let Some(id) = known(self.ecwid) {
            return Ok(id);
        }
        self.load_groups().await?;
        if let Some(id) = known(self.ecwid) {
            return Ok(id);
        }
        let created = self
            .client
            .post("/customer_groups", &json!({ "name": name }))
            .await?
            .unwrap_or(Value::Null);
        let id = created
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| CallError::Protocol("a created group without `id`".into()))?;
        self.ecwid
            .groups
            .lock()
            .expect("lock")
            .entry(self.store.clone())
            .or_default()
            .insert(name.to_string(), id);
        Ok(id)
    }

    async fn load_groups(&self) -> Result<(), CallError> {
        let mut all = HashMap::new();
        let mut offset = 0u64;
        loop {
            let page = self
                .client
                .get(
                    "/customer_groups",
                    &[
                        ("offset", offset.to_string()),
                        ("limit", PAGE_LIMIT.to_string()),
                    ],
                )
                .await?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for g in &items {
                if let (Some(id), Some(name)) = (
                    g.get("id").and_then(Value::as_u64),
                    g.get("name").and_then(Value::as_str),
                ) {
                    all.insert(name.to_string(), id);
                }
            }
            offset += items.len() as u64;
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            if items.is_empty() || offset >= total {
                break;
            }
        }
        self.ecwid
            .groups
            .lock()
            .expect("lock")
            .insert(self.store.clone(), all);
        Ok(())
    }

    /// Puts one customer into the group of `add` (or back into "General" when only removals
    /// are asked and the customer is in one of them). A customer in a group that is not
    /// Lifecycle's is left alone. `Some(reason)` when the write was refused. The group is
    /// resolved before the customer is read, so a plan without customer groups (402) costs one
    /// request and ends the whole call with [`CallError::PlanLimit`]: no customer can have a
    /// group, and asking per customer would spend the token's rate on refusals.
    async fn set_group(
        &self,
        customer: &str,
        add: Option<&str>,
        remove: &[&str],
        prefix: &str,
    ) -> Result<Option<String>, CallError> {
        let wanted = match add {
            Some(name) => Some(self.group_id(name).await?),
            None => None,
        };
        let path = format!("/customers/{customer}");
        let Some(current) = self.client.get_opt(&path).await? else {
            return Ok(Some("the customer no longer exists".into()));
        };
        let current_id = current
            .get("customerGroupId")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let current_name = current
            .get("customerGroupName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if current_id != 0 && !current_name.starts_with(prefix) {
            return Ok(Some(format!(
                "the customer is in the merchant's own group `{current_name}`: left as it is"
            )));
        }
        let target = match wanted {
            Some(id) => id,
            None if remove.contains(&current_name) => 0,
            None => return Ok(None),
        };
        if target != current_id {
            self.client
                .put(&path, &json!({ "customerGroupId": target }))
                .await?;
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl ShopApi for EcwidApi<'_> {
    fn token(&self) -> String {
        self.client.token.clone()
    }

    async fn count(&self, resource: Resource) -> Result<Option<u64>, CallError> {
        let page = self
            .client
            .get(path(resource), &[("limit", "1".to_string())])
            .await?;
        Ok(page.get("total").and_then(Value::as_u64))
    }

    async fn page(
        &self,
        resource: Resource,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
    ) -> Result<Page, CallError> {
        let currency = self.currency().await?;
        let start = match cursor {
            Some(text) => Cursor::parse(text, since)
                .ok_or_else(|| CallError::Protocol(format!("`{text}` is not a page cursor")))?,
            None => Cursor::start(since),
        };
        // Customers are read by updated time, by key; the others by id, whose order an update
        // does not change.
        let keyed = resource == Resource::Customers;
        let mut query = vec![
            ("offset", start.skip.to_string()),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        // A cursor keeps `since` (bare offsets) or moves it on (keyed reads).
        if let Some(from) = start.from {
            query.push(("updatedFrom", from.to_string()));
        }
        if keyed {
            query.push(("sortBy", "UPDATED_DATE_ASC".to_string()));
        }
        let page = self.client.get(path(resource), &query).await?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| CallError::Protocol(format!("no `items` in {}", path(resource))))?;
        let events = items
            .iter()
            .map(|v| to_event(resource, v, currency))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CallError::Protocol)?;
        let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
        let more = !items.is_empty() && start.skip + (items.len() as u64) < total;
        let next = more.then(|| {
            if keyed {
                let updated: Vec<_> = events
                    .iter()
                    .filter_map(|e| match e {
                        DataEvent::CustomerUpserted(c) => Some(c.updated_at),
                        _ => None,
                    })
                    .collect();
                start.after(&updated).render()
            } else {
                (start.skip + items.len() as u64).to_string()
            }
        });
        Ok(Page { events, next })
    }

    async fn fetch(
        &self,
        resource: Resource,
        platform_id: &str,
    ) -> Result<Option<DataEvent>, CallError> {
        if platform_id.is_empty() || !platform_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CallError::Protocol(format!("`{platform_id}` is not an id")));
        }
        let currency = self.currency().await?;
        let record = self
            .client
            .get_opt(&format!("{}/{platform_id}", path(resource)))
            .await?;
        record
            .map(|v| to_event(resource, &v, currency))
            .transpose()
            .map_err(CallError::Protocol)
    }

    fn labels_per_call(&self) -> usize {
        // One customer's change is one read and one write; a batch only bounds a push step.
        20
    }

    async fn labels(
        &self,
        ops: &[LabelOp],
        prefix: &str,
    ) -> Result<Vec<Option<String>>, CallError> {
        let mut verdicts = vec![None; ops.len()];
        let mut customers: Vec<&str> = ops.iter().map(|o| o.customer.as_str()).collect();
        customers.dedup();
        for customer in customers {
            let mine: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].customer == customer)
                .collect();
            let add = mine
                .iter()
                .find(|&&i| ops[i].add)
                .and_then(|&i| ops[i].labels.first())
                .map(String::as_str);
            let remove: Vec<&str> = mine
                .iter()
                .filter(|&&i| !ops[i].add)
                .flat_map(|&i| ops[i].labels.iter().map(String::as_str))
                .collect();
            let verdict = self.set_group(customer, add, &remove, prefix).await?;
            for i in mine {
                verdicts[i] = verdict.clone();
            }
        }
        Ok(verdicts)
    }

    async fn create_code(&self, code: &NewCode<'_>) -> Result<CreateOutcome, CallError> {
        let (kind, amount) = match code.value {
            OfferValue::Percentage { percent } => ("PERCENT", f64::from(*percent)),
            OfferValue::FixedAmount {
                amount_minor,
                currency,
            } => (
                "ABS",
                crate::core::money::to_major(*amount_minor, crate::core::money::exponent(currency)),
            ),
        };
        let body = json!({
            "name": code.title,
            "code": code.code,
            "discountType": kind,
            "status": "ACTIVE",
            "discount": amount,
            "launchDate": ecwid_date(code.starts_at),
            "expirationDate": ecwid_date(code.ends_at),
            "usesLimit": "SINGLE",
        });
        match self.client.post("/discount_coupons", &body).await {
            Ok(Some(v)) => Ok(CreateOutcome::Created {
                platform_id: v
                    .get("id")
                    .map(|id| id.to_string())
                    .ok_or_else(|| CallError::Protocol("a created coupon without `id`".into()))?,
            }),
            Ok(None) => Err(CallError::Protocol("coupon creation answered 404".into())),
            Err(CallError::Status { status: 409, .. }) => Ok(CreateOutcome::Taken),
            Err(e @ CallError::Status { status: 400, .. }) => {
                // A code in use already is ours from an earlier attempt (codes are unguessable).
                if self.coupon_exists(code.code).await? {
                    Ok(CreateOutcome::Taken)
                } else {
                    Ok(CreateOutcome::Rejected(e.to_string()))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Ecwid keeps no fields on a customer for the shop's emails to read; the coupon itself
    /// carries the offer.
    async fn set_customer_fields(
        &self,
        _customer: &str,
        _fields: &[CustomerField],
    ) -> Result<Option<String>, CallError> {
        Ok(None)
    }

    /// Ecwid has no call for an app to remove itself; its token stays valid until the
    /// merchant removes the app, so the caller erases it here regardless.
    async fn uninstall(&self) -> Result<Removal, CallError> {
        Ok(Removal::ByMerchant(
            "Ecwid lets only the merchant remove an app: Apps > My Apps in the Ecwid control panel",
        ))
    }
}

impl EcwidApi<'_> {
    async fn coupon_exists(&self, code: &str) -> Result<bool, CallError> {
        let found = self
            .client
            .get("/discount_coupons", &[("code", code.to_string())])
            .await?;
        Ok(found
            .get("items")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|c| c.get("code").and_then(Value::as_str) == Some(code))
            }))
    }
}
