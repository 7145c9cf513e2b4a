//! The segment facts of a customer, from the analytics output and the stored customer.

use crate::core::analytics::{CustomerFeatures, CustomerScore};
use crate::core::segments::CustomerFacts;
use crate::core::types::ChurnRisk;

use super::load::{CustomerExtras, CustomerRow};

/// Fills [`CustomerFacts`]. Customers without orders have no prediction: P(alive) and CLV 0,
/// churn risk LOW (nothing to lose yet), as `CustomerFacts::prospect`.
pub fn customer_facts(
    row: &CustomerRow,
    extras: &CustomerExtras,
    f: &CustomerFeatures,
    s: &CustomerScore,
) -> CustomerFacts {
    let p = s.prediction;
    CustomerFacts {
        customer_id: row.platform_id.clone(),
        number_of_orders: f.orders,
        amount_spent: f.total_value,
        average_order_value: f.average_order_value,
        first_order_date: f.first_order_at,
        last_order_date: f.last_order_at,
        abandoned_checkout_date: extras.last_abandoned_checkout,
        customer_added_date: row.created_at,
        customer_tags: row.tags.clone(),
        email_domain: row.email.as_deref().and_then(email_domain),
        rfm_group: s.rfm.group,
        churn_risk: p.map_or(ChurnRisk::Low, |p| p.churn_risk),
        predicted_clv: p.map_or(0.0, |p| p.clv),
        p_alive: p.map_or(0.0, |p| p.p_alive),
        discount_order_share: f.discount_share,
        refunds_or_cancellations: extras.refunds_or_cancellations,
        last_refund_or_cancellation_date: extras.last_refund_or_cancellation,
    }
}

fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::email_domain;

    #[test]
    fn email_domains_are_lower_case() {
        assert_eq!(
            email_domain("Ann@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(email_domain("no-at-sign"), None);
        assert_eq!(email_domain("trailing@"), None);
    }
}
