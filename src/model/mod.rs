//! Canonical types. Every platform's webhooks and API responses become these events: data
//! events, which `ingest::apply` alone writes to the store, and shop events (uninstalls,
//! privacy requests, notices to fetch a record).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::core::money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub platform_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// None when the payload does not carry tags (recent webhook versions): keep what we have.
    pub tags: Option<Vec<String>>,
    pub state: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub platform_id: String,
    pub customer_platform_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Amounts in the shop's currency (the parsers give all of an order's amounts one currency).
    pub subtotal: Money,
    pub total: Money,
    pub discounts: Money,
    pub refunded: Money,
    pub discount_codes: Vec<String>,
    pub financial_status: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub platform_id: String,
    pub order_platform_id: String,
    pub amount: Money,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkout {
    pub platform_id: String,
    pub customer_platform_id: Option<String>,
    pub email: Option<String>,
    pub total: Money,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A privacy request from the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyRequest {
    pub customer_platform_id: Option<String>,
    pub email: Option<String>,
    pub order_platform_ids: Vec<String>,
    pub request_id: Option<String>,
}

/// The kinds of records Lifecycle mirrors; the names key the sync checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Customers,
    Orders,
    Checkouts,
}

impl Resource {
    pub const ALL: [Resource; 3] = [Resource::Customers, Resource::Orders, Resource::Checkouts];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Customers => "customers",
            Resource::Orders => "orders",
            Resource::Checkouts => "checkouts",
        }
    }
}

/// A change to a shop's data, whatever the platform: what `ingest::apply`, the one write path,
/// takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataEvent {
    CustomerUpserted(Customer),
    CustomerDeleted {
        platform_id: String,
    },
    OrderUpserted(Order),
    OrderDeleted {
        platform_id: String,
    },
    RefundCreated(Refund),
    CheckoutUpserted(Checkout),
    /// The platform no longer lists the checkout as abandoned (it became an order, or was
    /// deleted): it is no longer ours to count.
    CheckoutRemoved {
        platform_id: String,
    },
}

/// Something that happened to the shop itself, or a notice that data changed elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShopEvent {
    AppUninstalled,
    CustomerDataRequested(PrivacyRequest),
    CustomerRedactRequested(PrivacyRequest),
    ShopRedactRequested,
    /// A record changed, and the webhook names it without carrying it (Ecwid): a queued step
    /// reads it through the platform's API.
    FetchRequested {
        resource: Resource,
        platform_id: String,
    },
    /// A bulk operation finished; the sync that started it picks up the result.
    BulkOperationFinished {
        operation_id: String,
        status: String,
    },
}

/// What a platform's webhook says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Data(DataEvent),
    Shop(ShopEvent),
}

impl From<DataEvent> for Event {
    fn from(e: DataEvent) -> Event {
        Event::Data(e)
    }
}

impl From<ShopEvent> for Event {
    fn from(e: ShopEvent) -> Event {
        Event::Shop(e)
    }
}
