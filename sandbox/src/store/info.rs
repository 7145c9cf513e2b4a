//! What a shop is beside its records: its identity, currency and API plan.

use chrono::{DateTime, Utc};

/// Shopify plans differ in API restore rate (reference §3.1); the bucket holds 20 s of restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    #[default]
    Standard,
    Advanced,
    Plus,
    Enterprise,
}

impl Plan {
    pub fn restore_rate(self) -> f64 {
        match self {
            Plan::Standard => 100.0,
            Plan::Advanced => 200.0,
            Plan::Plus => 1000.0,
            Plan::Enterprise => 2000.0,
        }
    }
    pub fn bucket_size(self) -> f64 {
        self.restore_rate() * 20.0
    }
    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Standard => "Basic",
            Plan::Advanced => "Advanced",
            Plan::Plus => "Shopify Plus",
            Plan::Enterprise => "Enterprise",
        }
    }
    pub fn rest_name(self) -> &'static str {
        match self {
            Plan::Standard => "basic",
            Plan::Advanced => "advanced",
            Plan::Plus => "shopify_plus",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl std::str::FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "standard" | "basic" => Ok(Plan::Standard),
            "advanced" => Ok(Plan::Advanced),
            "plus" | "shopify_plus" => Ok(Plan::Plus),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(format!(
                "unknown plan '{other}' (standard, advanced, plus, enterprise)"
            )),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ShopInfo {
    pub id: u64,
    pub name: String,
    pub domain: String,
    pub email: String,
    pub currency: String,
    pub plan: Plan,
    pub created_at: DateTime<Utc>,
}
