//! One simulated shop's data and the changes that can happen to it. Every change returns the
//! webhook payloads it causes; the caller hands them to delivery after releasing the lock.

use super::info::ShopInfo;
use super::model::*;
use super::payloads;
use super::table::{Row, Table};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

impl Row for Customer {
    fn id(&self) -> u64 {
        self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}
impl Row for Order {
    fn id(&self) -> u64 {
        self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}
impl Row for Checkout {
    fn id(&self) -> u64 {
        self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

/// A webhook-worthy change: the topic and its REST-shaped payload.
#[derive(Debug, Clone)]
pub struct Change {
    pub topic: &'static str,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("customer {0} does not exist")]
    NoCustomer(u64),
    #[error("order {0} does not exist")]
    NoOrder(u64),
    #[error("checkout {0} does not exist")]
    NoCheckout(u64),
    #[error("{0}")]
    Invalid(String),
}

/// Fields a customer change may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CustomerPatch {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    pub state: Option<String>,
    pub tags: Option<Vec<String>>,
    pub city: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub presentment_currency: String,
    pub presentment_rate: f64,
    pub line_items: Vec<LineItem>,
    pub discount_codes: Vec<String>,
    pub total_discounts_minor: i64,
    pub total_tax_minor: i64,
    pub processed_at: DateTime<Utc>,
    pub test: bool,
}

#[derive(Debug, Default)]
pub struct ShopData {
    pub customers: Table<Customer>,
    pub orders: Table<Order>,
    pub checkouts: Table<Checkout>,
    pub orders_by_customer: HashMap<u64, Vec<u64>>,
    pub discounts: BTreeMap<u64, DiscountCode>,
    discount_codes: HashMap<String, u64>,
    pub metafields: BTreeMap<(u64, String, String), Metafield>,
    pub webhooks: BTreeMap<u64, WebhookSubscription>,
    next_id: u64,
    next_order_number: u64,
}

fn normalise_tag(t: &str) -> Option<String> {
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl ShopData {
    /// `id_base` must lie above every id the generator hands out, so ids minted here (metafields,
    /// discounts, subscriptions, orders made through the control API) never collide with them.
    pub fn new(id_base: u64) -> Self {
        ShopData {
            next_id: id_base,
            next_order_number: 1001,
            ..Default::default()
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn next_order_number(&mut self) -> u64 {
        let n = self.next_order_number;
        self.next_order_number += 1;
        n
    }

    /// Bulk load (seeding) into an empty shop: rows keep their ids; aggregates are computed
    /// once at the end. Rows are taken one at a time, so a caller converting its own records
    /// never holds two whole copies.
    pub fn load(
        &mut self,
        customers: impl IntoIterator<Item = Customer>,
        orders: impl IntoIterator<Item = Order>,
        checkouts: impl IntoIterator<Item = Checkout>,
    ) {
        self.customers.load(customers);
        let (by_customer, next_number) =
            (&mut self.orders_by_customer, &mut self.next_order_number);
        self.orders.load(orders.into_iter().inspect(|o| {
            *next_number = (*next_number).max(o.number + 1);
            if let Some(c) = o.customer_id {
                by_customer.entry(c).or_default().push(o.id);
            }
        }));
        self.checkouts.load(checkouts);
        let ids: Vec<u64> = self.orders_by_customer.keys().copied().collect();
        for id in ids {
            self.refresh_aggregates(id, None);
        }
    }

    /// Recomputes a customer's cached order count and net spend; moves `updated_at` when given.
    fn refresh_aggregates(&mut self, customer_id: u64, now: Option<DateTime<Utc>>) {
        let (count, spent) = self
            .orders_by_customer
            .get(&customer_id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.orders.get(*id))
                    .fold((0u64, 0i64), |(n, s), o| (n + 1, s + o.net_spent_minor()))
            })
            .unwrap_or((0, 0));
        self.customers.modify(customer_id, |c| {
            c.orders_count = count;
            c.spent_minor = spent;
            if let Some(now) = now {
                c.updated_at = c.updated_at.max(now);
            }
        });
    }

    pub fn customer_orders(&self, customer_id: u64) -> impl Iterator<Item = &Order> {
        self.orders_by_customer
            .get(&customer_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.orders.get(*id))
    }

    fn customer_changed(&self, info: &ShopInfo, id: u64, topic: &'static str) -> Vec<Change> {
        self.customers
            .get(id)
            .map(|c| {
                vec![Change {
                    topic,
                    payload: payloads::customer(info, c),
                }]
            })
            .unwrap_or_default()
    }

    fn order_changed(&self, info: &ShopInfo, id: u64, topics: &[&'static str]) -> Vec<Change> {
        let Some(o) = self.orders.get(id) else {
            return vec![];
        };
        let cust = o.customer_id.and_then(|c| self.customers.get(c));
        let payload = payloads::order(info, o, cust);
        topics
            .iter()
            .map(|t| Change {
                topic: t,
                payload: payload.clone(),
            })
            .collect()
    }

    pub fn create_customer(
        &mut self,
        info: &ShopInfo,
        patch: CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Change>), StoreError> {
        let id = self.next_id();
        let mut c = Customer {
            id,
            email: None,
            phone: None,
            first_name: None,
            last_name: None,
            tags: BTreeSet::new(),
            state: CustomerState::Disabled,
            note: None,
            verified_email: true,
            locale: Some("en".into()),
            address: None,
            created_at: now,
            updated_at: now,
            orders_count: 0,
            spent_minor: 0,
        };
        apply_patch(&mut c, patch)?;
        self.customers.upsert(c);
        Ok((id, self.customer_changed(info, id, "customers/create")))
    }

    pub fn update_customer(
        &mut self,
        info: &ShopInfo,
        id: u64,
        patch: CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        self.customers
            .modify(id, |c| {
                apply_patch(c, patch)?;
                c.updated_at = now.max(c.updated_at);
                Ok(())
            })
            .ok_or(StoreError::NoCustomer(id))??;
        Ok(self.customer_changed(info, id, "customers/update"))
    }

    pub fn delete_customer(&mut self, id: u64) -> Result<Vec<Change>, StoreError> {
        if self
            .orders_by_customer
            .get(&id)
            .is_some_and(|o| !o.is_empty())
        {
            return Err(StoreError::Invalid(
                "Error deleting customer: a customer with orders cannot be deleted".into(),
            ));
        }
        self.customers
            .remove(id)
            .ok_or(StoreError::NoCustomer(id))?;
        self.metafields.retain(|(owner, _, _), _| *owner != id);
        Ok(vec![Change {
            topic: "customers/delete",
            payload: payloads::customer_deleted(id),
        }])
    }

    /// `tagsAdd` / `tagsRemove`: touches only the named tags; `updated_at` moves only on change.
    pub fn change_tags(
        &mut self,
        info: &ShopInfo,
        id: u64,
        tags: &[String],
        add: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let changed = self
            .customers
            .modify(id, |c| {
                let before = c.tags.clone();
                for t in tags.iter().filter_map(|t| normalise_tag(t)) {
                    if add {
                        // Shopify treats tags case-insensitively: keep the existing spelling.
                        if !c.tags.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
                            c.tags.insert(t);
                        }
                    } else {
                        c.tags.retain(|x| !x.eq_ignore_ascii_case(&t));
                    }
                }
                let changed = before != c.tags;
                if changed {
                    c.updated_at = now.max(c.updated_at);
                }
                changed
            })
            .ok_or(StoreError::NoCustomer(id))?;
        Ok(if changed {
            self.customer_changed(info, id, "customers/update")
        } else {
            vec![]
        })
    }

    /// Builds an order from its parts (control API) and inserts it.
    pub fn create_order(
        &mut self,
        info: &ShopInfo,
        new: NewOrder,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Change>), StoreError> {
        if new.line_items.is_empty() {
            return Err(StoreError::Invalid(
                "an order needs at least one line item".into(),
            ));
        }
        let id = self.next_id();
        let number = self.next_order_number();
        let mut line_items = new.line_items;
        for l in &mut line_items {
            l.id = self.next_id();
        }
        let email = new.email.or_else(|| {
            new.customer_id
                .and_then(|c| self.customers.get(c))
                .and_then(|c| c.email.clone())
        });
        let order = Order {
            id,
            number,
            customer_id: new.customer_id,
            email,
            created_at: now,
            updated_at: now,
            processed_at: new.processed_at,
            cancelled_at: None,
            cancel_reason: None,
            closed_at: None,
            test: new.test,
            presentment_currency: new.presentment_currency,
            presentment_rate: new.presentment_rate,
            line_items,
            discount_codes: new.discount_codes,
            total_discounts_minor: new.total_discounts_minor,
            total_tax_minor: new.total_tax_minor,
            refunds: vec![],
            token: uuid::Uuid::new_v4().simple().to_string(),
            checkout_token: None,
        };
        let changes = self.insert_order(info, order, now)?;
        Ok((id, changes))
    }

    /// Inserts a complete new order (ids already assigned), e.g. from live traffic.
    pub fn insert_order(
        &mut self,
        info: &ShopInfo,
        order: Order,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        if let Some(c) = order.customer_id
            && self.customers.get(c).is_none()
        {
            return Err(StoreError::NoCustomer(c));
        }
        if self.orders.get(order.id).is_some() {
            return Err(StoreError::Invalid(format!(
                "order {} already exists",
                order.id
            )));
        }
        if order.total_minor() < 0 {
            return Err(StoreError::Invalid(
                "discounts exceed the order subtotal".into(),
            ));
        }
        let (id, customer) = (order.id, order.customer_id);
        self.next_order_number = self.next_order_number.max(order.number + 1);
        self.orders.upsert(order);
        if let Some(c) = customer {
            self.orders_by_customer.entry(c).or_default().push(id);
            self.refresh_aggregates(c, Some(now));
        }
        Ok(self.order_changed(info, id, &["orders/create", "orders/paid"]))
    }

    /// Deletes an order (Ecwid allows it; the control API offers it for both flavours).
    pub fn delete_order(&mut self, id: u64) -> Result<Vec<Change>, StoreError> {
        let o = self.orders.remove(id).ok_or(StoreError::NoOrder(id))?;
        if let Some(c) = o.customer_id {
            if let Some(list) = self.orders_by_customer.get_mut(&c) {
                list.retain(|x| *x != id);
            }
            self.refresh_aggregates(c, None);
        }
        Ok(vec![Change {
            topic: "orders/delete",
            payload: serde_json::json!({"id": id}),
        }])
    }

    /// Inserts a complete new customer (id already assigned), e.g. from live traffic.
    pub fn insert_customer(
        &mut self,
        info: &ShopInfo,
        c: Customer,
    ) -> Result<Vec<Change>, StoreError> {
        if self.customers.get(c.id).is_some() {
            return Err(StoreError::Invalid(format!(
                "customer {} already exists",
                c.id
            )));
        }
        let id = c.id;
        self.customers.upsert(c);
        Ok(self.customer_changed(info, id, "customers/create"))
    }

    /// Refunds `amount_minor` (default: all that is left); `refund_id` keeps a caller's id.
    pub fn refund_order(
        &mut self,
        info: &ShopInfo,
        order_id: u64,
        amount_minor: Option<i64>,
        note: Option<String>,
        refund_id: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let refund_id = refund_id.unwrap_or_else(|| self.next_id());
        let tx_id = self.next_id();
        let order = self
            .orders
            .get(order_id)
            .ok_or(StoreError::NoOrder(order_id))?;
        let refundable = order.total_minor() - order.refunded_minor();
        let amount = amount_minor.unwrap_or(refundable);
        if amount <= 0 || amount > refundable {
            return Err(StoreError::Invalid(format!(
                "refund amount must be between 0.01 and the refundable {}",
                format_minor(refundable, &info.currency)
            )));
        }
        let refund = Refund {
            id: refund_id,
            created_at: now,
            amount_minor: amount,
            note,
            transaction_id: tx_id,
        };
        self.orders.modify(order_id, |o| {
            o.refunds.push(refund.clone());
            o.updated_at = now.max(o.updated_at);
        });
        let order = self.orders.get(order_id).expect("just modified");
        let mut out = vec![Change {
            topic: "refunds/create",
            payload: payloads::refund(info, order, &refund),
        }];
        out.extend(self.order_changed(info, order_id, &["orders/updated"]));
        if let Some(c) = self.orders.get(order_id).and_then(|o| o.customer_id) {
            self.refresh_aggregates(c, Some(now));
        }
        Ok(out)
    }

    /// Cancels an order as Shopify does: what is left is refunded, unless the payment was
    /// declined (then the order is voided).
    pub fn cancel_order(
        &mut self,
        info: &ShopInfo,
        order_id: u64,
        reason: Option<String>,
        refund_id: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let order = self
            .orders
            .get(order_id)
            .ok_or(StoreError::NoOrder(order_id))?;
        if order.cancelled_at.is_some() {
            return Err(StoreError::Invalid(format!(
                "order {order_id} is already cancelled"
            )));
        }
        let left = order.total_minor() - order.refunded_minor();
        let reason = reason.unwrap_or_else(|| "customer".into());
        let mut out = Vec::new();
        if reason != "declined" && left > 0 {
            out.extend(
                self.refund_order(
                    info,
                    order_id,
                    Some(left),
                    Some("Order cancelled".into()),
                    refund_id,
                    now,
                )?
                .into_iter()
                .filter(|c| c.topic == "refunds/create"),
            );
        }
        self.orders.modify(order_id, |o| {
            o.cancelled_at = Some(now);
            o.closed_at = Some(now);
            o.cancel_reason = Some(reason);
            o.updated_at = now.max(o.updated_at);
        });
        if let Some(c) = self.orders.get(order_id).and_then(|o| o.customer_id) {
            self.refresh_aggregates(c, Some(now));
        }
        out.extend(self.order_changed(info, order_id, &["orders/cancelled", "orders/updated"]));
        Ok(out)
    }

    pub fn upsert_checkout(&mut self, info: &ShopInfo, mut k: Checkout) -> Vec<Change> {
        let topic = if self.checkouts.get(k.id).is_some() {
            "checkouts/update"
        } else {
            "checkouts/create"
        };
        if k.id == 0 {
            k.id = self.next_id();
        }
        let cust = k.customer_id.and_then(|c| self.customers.get(c));
        let payload = payloads::checkout(info, &k, cust);
        self.checkouts.upsert(k);
        vec![Change { topic, payload }]
    }

    /// The customer comes back and buys what the abandoned checkout holds: an order of its
    /// items, and the checkout completed. Returns the order's id.
    pub fn complete_checkout(
        &mut self,
        info: &ShopInfo,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Change>), StoreError> {
        let mut k = self
            .checkouts
            .get(id)
            .cloned()
            .ok_or(StoreError::NoCheckout(id))?;
        if k.completed_at.is_some() {
            return Err(StoreError::Invalid(format!(
                "checkout {id} is already completed"
            )));
        }
        let new = NewOrder {
            customer_id: k.customer_id,
            email: k.email.clone(),
            presentment_currency: k.currency.clone(),
            presentment_rate: 1.0,
            line_items: k.line_items.clone(),
            discount_codes: vec![],
            total_discounts_minor: 0,
            total_tax_minor: 0,
            processed_at: now,
            test: false,
        };
        let (order, mut changes) = self.create_order(info, new, now)?;
        k.completed_at = Some(now);
        k.updated_at = now;
        let mut done = self.upsert_checkout(info, k);
        done.append(&mut changes);
        Ok((order, done))
    }

    /// The discount with this code (case-insensitive), if any.
    pub fn discount_by_code(&self, code: &str) -> Option<&DiscountCode> {
        self.discount_codes
            .get(&code.to_lowercase())
            .and_then(|id| self.discounts.get(id))
    }

    /// A code issued to this customer alone (a personal discount, as an app creates them) that
    /// is valid at `now` and not used up by the customer's orders.
    pub fn personal_code(&self, customer: u64, now: DateTime<Utc>) -> Option<&DiscountCode> {
        let orders = self.orders_by_customer.get(&customer);
        self.discounts.values().find(|d| {
            d.customer_ids.contains(&customer)
                && d.starts_at <= now
                && d.ends_at.is_none_or(|e| e > now)
                && d.usage_limit.is_none_or(|limit| {
                    let used = orders.into_iter().flatten().filter(|id| {
                        self.orders.get(**id).is_some_and(|o| {
                            o.discount_codes
                                .iter()
                                .any(|c| c.eq_ignore_ascii_case(&d.code))
                        })
                    });
                    used.count() < limit as usize
                })
        })
    }

    /// Adds a discount code; a duplicate (case-insensitive) is refused with `TAKEN` upstream.
    pub fn add_discount(&mut self, mut d: DiscountCode) -> Result<u64, StoreError> {
        let key = d.code.to_lowercase();
        if self.discount_codes.contains_key(&key) {
            return Err(StoreError::Invalid("TAKEN".into()));
        }
        d.id = self.next_id();
        let id = d.id;
        self.discount_codes.insert(key, id);
        self.discounts.insert(id, d);
        Ok(id)
    }

    pub fn set_metafield(
        &mut self,
        owner_id: u64,
        namespace: &str,
        key: &str,
        value: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Metafield, StoreError> {
        if self.customers.get(owner_id).is_none() {
            return Err(StoreError::NoCustomer(owner_id));
        }
        let k = (owner_id, namespace.to_string(), key.to_string());
        let new_id = self.next_id();
        let m = self.metafields.entry(k).or_insert_with(|| Metafield {
            id: new_id,
            owner_id,
            namespace: namespace.to_string(),
            key: key.to_string(),
            value: String::new(),
            kind: kind.to_string(),
            created_at: now,
            updated_at: now,
        });
        m.value = value.to_string();
        m.kind = kind.to_string();
        m.updated_at = now;
        Ok(m.clone())
    }

    pub fn metafield(&self, owner_id: u64, namespace: &str, key: &str) -> Option<&Metafield> {
        self.metafields
            .get(&(owner_id, namespace.to_string(), key.to_string()))
    }
}

fn apply_patch(c: &mut Customer, p: CustomerPatch) -> Result<(), StoreError> {
    if let Some(e) = p.email {
        if !e.is_empty() && !e.contains('@') {
            return Err(StoreError::Invalid(format!("email '{e}' is invalid")));
        }
        c.email = (!e.is_empty()).then_some(e);
    }
    if let Some(v) = p.first_name {
        c.first_name = Some(v);
    }
    if let Some(v) = p.last_name {
        c.last_name = Some(v);
    }
    if let Some(v) = p.phone {
        c.phone = Some(v);
    }
    if let Some(v) = p.note {
        c.note = Some(v);
    }
    if let Some(s) = p.state {
        c.state = match s.to_ascii_lowercase().as_str() {
            "disabled" => CustomerState::Disabled,
            "invited" => CustomerState::Invited,
            "enabled" => CustomerState::Enabled,
            "declined" => CustomerState::Declined,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown customer state '{other}'"
                )));
            }
        };
    }
    if let Some(city) = p.city {
        c.address
            .get_or_insert_with(|| Address {
                address1: String::new(),
                city: String::new(),
                province: None,
                country_code: "US".into(),
                zip: String::new(),
            })
            .city = city;
    }
    if let Some(tags) = p.tags {
        c.tags = tags.iter().filter_map(|t| normalise_tag(t)).collect();
    }
    Ok(())
}
