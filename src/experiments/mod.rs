//! Results of offers: the customers who got a code (treatment, `discount_codes`) against those
//! held out (control, `offer_controls`), per offer, over each assignment's window.
//!
//! Redemptions are attributed here, at results time, by one set-based read of the assigned
//! customers' orders, rather than written by the ingest path: the outcome of every assigned
//! customer needs all their orders in the window anyway (buyers, revenue, refunds), so the same
//! rows also say which used the customer's code. Nothing is stored twice, an edited, refunded
//! or late order is counted as it stands, and codes issued before this feature are attributed
//! too. The pure part (windows, order rules, the estimate) is the core's
//! `loyalty::experiment`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::loyalty::OfferKind;
use crate::core::loyalty::experiment::effect::EffectSettings;
use crate::core::loyalty::experiment::{
    Arm, ArmSummary, Assignment, CustomerOrder, EffectEstimate, estimate_effect, observe,
};
use crate::store::stmt;

/// Which assignments a result covers: those made in `[from, to)`; open ends are unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Period {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }
}

/// One group of an offer. Money is minor units of the shop's currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArmView {
    pub customers: usize,
    pub buyers: usize,
    /// Buyers / customers; null for an empty group.
    pub conversion_rate: Option<f64>,
    /// Counting orders (not cancelled, not fully refunded) in the windows.
    pub orders: usize,
    /// After refunds.
    pub net_revenue_minor: i64,
    /// Discounts given through the offer's codes (always 0 for the control group).
    pub discounts_minor: i64,
    pub net_revenue_minus_discounts_minor: i64,
}

impl ArmView {
    fn new(s: &ArmSummary, orders: usize) -> ArmView {
        let (revenue, discounts) = (s.net_revenue.round() as i64, s.discounts.round() as i64);
        ArmView {
            customers: s.customers,
            buyers: s.buyers,
            conversion_rate: s.conversion_rate,
            orders,
            net_revenue_minor: revenue,
            discounts_minor: discounts,
            net_revenue_minus_discounts_minor: revenue - discounts,
        }
    }
}

/// One offer's experiment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferResult {
    /// `second_purchase`, `win_back`, `reward` or `cart_recovery`.
    pub offer: String,
    pub first_assigned: DateTime<Utc>,
    pub last_assigned: DateTime<Utc>,
    /// Assignments whose window is still open (their outcome is so far).
    pub open_windows: usize,
    pub treatment: ArmView,
    pub control: ArmView,
    /// Orders that used the customer's code.
    pub redemptions: usize,
    /// Treatment minus control, per customer, with 95 % intervals; money per customer in minor
    /// units. `verdict` is `keep`, `not_yet_conclusive` or `costs_more_than_it_brings`, on net
    /// revenue minus discounts; `more_customers_needed` is how many more assignments (both
    /// groups, same split) the minimum detectable effect needs to reach the observed one.
    #[schema(value_type = Object)]
    pub effect: EffectEstimate,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Results {
    pub currency: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// When the figures were computed (open windows count up to here).
    pub now: DateTime<Utc>,
    pub offers: Vec<OfferResult>,
}

fn offer_of(key: &str) -> Option<OfferKind> {
    OfferKind::ALL.into_iter().find(|k| k.key() == key)
}

async fn assignments(
    db: &impl ConnectionTrait,
    shop_id: i64,
    period: Period,
) -> Result<BTreeMap<OfferKind, Vec<Assignment>>, DbErr> {
    // Codes that exist in the shop are the treatment group; a code the shop refused reached
    // nobody and is left out, as is a control row of an offer this version does not know.
    let sql = "SELECT customer_platform_id, offer, code, starts_at, ends_at FROM discount_codes \
               WHERE shop_id = ? AND state IN ('created', 'confirmed') \
               UNION ALL \
               SELECT customer_platform_id, offer, NULL, starts_at, ends_at FROM offer_controls \
               WHERE shop_id = ?";
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            sql,
            vec![shop_id.into(), shop_id.into()],
        ))
        .await?;
    let mut out: BTreeMap<OfferKind, Vec<Assignment>> = BTreeMap::new();
    for r in rows {
        let starts_at: DateTime<Utc> = r.try_get_by_index(3)?;
        let offer: String = r.try_get_by_index(1)?;
        let Some(offer) = offer_of(&offer).filter(|_| period.contains(starts_at)) else {
            continue;
        };
        let code: Option<String> = r.try_get_by_index(2)?;
        out.entry(offer).or_default().push(Assignment {
            customer_id: r.try_get_by_index(0)?,
            arm: if code.is_some() {
                Arm::Treatment
            } else {
                Arm::Control
            },
            code,
            starts_at,
            ends_at: r.try_get_by_index(4)?,
        });
    }
    Ok(out)
}

/// The orders of every assigned customer since the earliest assignment, in one read.
async fn orders(
    db: &impl ConnectionTrait,
    shop_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<CustomerOrder>, DbErr> {
    let sql = "SELECT customer_platform_id, total_minor, refunded_minor, discounts_minor, \
               discount_codes, cancelled_at, platform_created_at FROM orders \
               WHERE shop_id = ? AND deleted_at IS NULL AND platform_created_at >= ? \
               AND customer_platform_id IN ( \
                 SELECT customer_platform_id FROM discount_codes WHERE shop_id = ? \
                 UNION SELECT customer_platform_id FROM offer_controls WHERE shop_id = ?)";
    let values: Vec<Value> = vec![shop_id.into(), since.into(), shop_id.into(), shop_id.into()];
    let rows = db
        .query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await?;
    rows.into_iter()
        .map(|r| {
            let codes: String = r.try_get_by_index(4)?;
            let cancelled_at: Option<DateTime<Utc>> = r.try_get_by_index(5)?;
            Ok(CustomerOrder {
                customer_id: r.try_get_by_index(0)?,
                amount: r.try_get_by_index::<i64>(1)?.max(0) as f64,
                refunded: r.try_get_by_index::<i64>(2)?.max(0) as f64,
                discount: r.try_get_by_index::<i64>(3)?.max(0) as f64,
                codes: serde_json::from_str(&codes).unwrap_or_default(),
                cancelled: cancelled_at.is_some(),
                at: r.try_get_by_index(6)?,
            })
        })
        .collect()
}

/// The results of every offer with assignments in `period`.
pub async fn results(
    db: &impl ConnectionTrait,
    shop_id: i64,
    currency: &str,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Results, DbErr> {
    let by_offer = assignments(db, shop_id, period).await?;
    let since = by_offer.values().flatten().map(|a| a.starts_at).min();
    let orders = match since {
        Some(since) => orders(db, shop_id, since).await?,
        None => Vec::new(),
    };
    let settings = EffectSettings::default();
    let offers = by_offer
        .into_iter()
        .map(|(offer, list)| {
            let observed = observe(&list, &orders, now);
            let effect = estimate_effect(&observed.treatment, &observed.control, &settings);
            OfferResult {
                offer: offer.key().to_string(),
                first_assigned: list.iter().map(|a| a.starts_at).min().unwrap_or(now),
                last_assigned: list.iter().map(|a| a.starts_at).max().unwrap_or(now),
                open_windows: list.iter().filter(|a| a.ends_at > now).count(),
                treatment: ArmView::new(&effect.treatment, observed.treatment_orders),
                control: ArmView::new(&effect.control, observed.control_orders),
                redemptions: observed.redemptions,
                effect,
            }
        })
        .collect();
    Ok(Results {
        currency: currency.to_string(),
        from: period.from,
        to: period.to,
        now,
        offers,
    })
}
