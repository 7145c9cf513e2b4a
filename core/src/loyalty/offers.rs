//! Personal offers: which discount codes to create in a run.
//!
//! Rules, per offer kind, all configurable and off by default:
//! - eligible: the customer is in one of the offer's segments, and the days since the offer's
//!   trigger date (see [`OfferKind::trigger`]) are within `[min_days_since_trigger,
//!   max_days_since_trigger]`;
//! - one active code per customer per offer: none issued for that pair that is unredeemed and
//!   not yet expired;
//! - cooldown: no code of that offer issued to the customer in the last `cooldown_days`;
//! - budget: at most `budget_per_run` codes of that offer per run, highest predicted CLV first
//!   (ties by customer id), so the order is deterministic;
//! - at most one new code per customer per run, offers taken in `priority` order, because the
//!   customer metafield `lifecycle.offer_code` holds a single code for e-mail templates.
//!
//! - control group: of the customers a run selects for an offer (eligible, within budget), those
//!   whose keyed-hash draw for (customer, offer, period) falls below the offer's control share
//!   get no code but a [`ControlAssignment`] (see [`crate::loyalty::experiment`]). The budget
//!   counts both, so the two groups are drawn from the same customers and differ only by the
//!   draw. A control assignment lasts as long as the code would have and counts like a code for
//!   the cooldown and the one-live-offer rule, so the groups stay comparable over time.
//!
//! Period: the sequence number of the code for (customer, offer), i.e. one more than the
//! highest period in the confirmed history (0 for the first). It only advances when a code is
//! confirmed, so a retry after a crash derives the same code however much later it runs, meets
//! `TAKEN`, and confirms. (A time-window index would change across a window boundary and
//! duplicate.) On `TAKEN` the app should read the existing code's dates rather than assume
//! the planned ones.

use crate::loyalty::code::{CodeSeed, derive_code};
use crate::loyalty::experiment::{self, DEFAULT_CONTROL_PERCENT, MAX_CONTROL_PERCENT};
use crate::loyalty::offer_kind::{OfferKind, Trigger};
use crate::segments::facts::days_since;
use crate::segments::{CustomerFacts, Membership, SegmentCatalog, SegmentId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

impl OfferKind {
    fn trigger_date(self, f: &CustomerFacts) -> Option<DateTime<Utc>> {
        match self.trigger() {
            Trigger::FirstOrder => f.first_order_date,
            Trigger::LastOrder => f.last_order_date,
            Trigger::AbandonedCheckout => f.abandoned_checkout_date,
        }
    }
}

/// What the code takes off. Money is integer minor units with its ISO currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OfferValue {
    /// Whole percent, 1..=100.
    Percentage {
        percent: u8,
    },
    FixedAmount {
        amount_minor: i64,
        currency: String,
    },
}

impl OfferValue {
    /// The percentage as a fraction (0.0–1.0), for percentage offers.
    pub fn fraction(&self) -> Option<f64> {
        match self {
            OfferValue::Percentage { percent } => Some(f64::from(*percent) / 100.0),
            OfferValue::FixedAmount { .. } => None,
        }
    }
}

/// `discountAmount.amount` is a Decimal string: `minor_units_to_decimal(1050, 2) == "10.50"`.
/// `exponent` is the currency's number of minor-unit digits (2 for EUR, 0 for JPY).
pub fn minor_units_to_decimal(amount_minor: i64, exponent: u32) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u128.pow(exponent.min(18));
    let (whole, frac) = (u128::from(abs) / scale, u128::from(abs) % scale);
    format!(
        "{sign}{whole}.{frac:0width$}",
        width = exponent.min(18) as usize
    )
}

/// One offer's settings. In stored settings, fields left out take that offer's defaults
/// ([`OfferConfig::for_kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferConfig {
    pub enabled: bool,
    pub value: OfferValue,
    /// Days from creation until the code expires.
    pub expiry_days: u32,
    /// Days after a code of this offer before the same customer may get another.
    pub cooldown_days: u32,
    pub budget_per_run: u32,
    pub min_days_since_trigger: u32,
    pub max_days_since_trigger: Option<u32>,
    /// Segment keys (built-in or custom) whose members are eligible.
    pub segments: Vec<String>,
    /// Discount title shown in the Shopify admin; the code is appended.
    pub title: String,
    /// Share of the selected customers held out as the control group (0-50 %).
    pub control_percent: u8,
}

impl OfferConfig {
    /// Defaults (all disabled):
    /// - second purchase: 10 %, first-time buyers 14–90 days after their first order,
    ///   expires in 30 days, cooldown 180, budget 500;
    /// - win-back: 15 %, lifecycle stage or RFM at risk, expires in 21 days, cooldown 120,
    ///   budget 500;
    /// - reward: 15 %, RFM champions or the platinum tier, expires in 60 days, cooldown 90,
    ///   budget 200;
    /// - cart recovery: 10 %, cart abandoners 1–14 days after abandoning (a day's grace lets
    ///   the shop's own reminder go first), expires in 7 days, cooldown 30, budget 500.
    pub fn for_kind(kind: OfferKind) -> OfferConfig {
        let (percent, expiry, cooldown, budget, min, max, segments, title): (
            u8,
            u32,
            u32,
            u32,
            u32,
            Option<u32>,
            &[&str],
            &str,
        ) = match kind {
            OfferKind::SecondPurchase => (
                10,
                30,
                180,
                500,
                14,
                Some(90),
                &["first_time_buyer"],
                "Second purchase",
            ),
            OfferKind::WinBack => (
                15,
                21,
                120,
                500,
                0,
                None,
                &["stage_at_risk", "rfm_at_risk"],
                "Win-back",
            ),
            OfferKind::Reward => (
                15,
                60,
                90,
                200,
                0,
                None,
                &["rfm_champions", "tier_platinum"],
                "Reward",
            ),
            OfferKind::CartRecovery => (
                10,
                7,
                30,
                500,
                1,
                Some(14),
                &["cart_abandoner"],
                "Cart recovery",
            ),
        };
        OfferConfig {
            enabled: false,
            value: OfferValue::Percentage { percent },
            expiry_days: expiry,
            cooldown_days: cooldown,
            budget_per_run: budget,
            min_days_since_trigger: min,
            max_days_since_trigger: max,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            title: title.to_string(),
            control_percent: DEFAULT_CONTROL_PERCENT,
        }
    }
}

/// All offers of a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OfferSettingsPatch")]
pub struct OfferSettings {
    /// Which offer wins when a customer qualifies for several in one run; kinds left out
    /// follow in their default order.
    pub priority: Vec<OfferKind>,
    pub second_purchase: OfferConfig,
    pub win_back: OfferConfig,
    pub reward: OfferConfig,
    pub cart_recovery: OfferConfig,
}

impl Default for OfferSettings {
    fn default() -> Self {
        OfferSettings {
            priority: vec![
                OfferKind::CartRecovery,
                OfferKind::WinBack,
                OfferKind::SecondPurchase,
                OfferKind::Reward,
            ],
            second_purchase: OfferConfig::for_kind(OfferKind::SecondPurchase),
            win_back: OfferConfig::for_kind(OfferKind::WinBack),
            reward: OfferConfig::for_kind(OfferKind::Reward),
            cart_recovery: OfferConfig::for_kind(OfferKind::CartRecovery),
        }
    }
}

impl OfferSettings {
    pub fn config(&self, kind: OfferKind) -> &OfferConfig {
        match kind {
            OfferKind::SecondPurchase => &self.second_purchase,
            OfferKind::WinBack => &self.win_back,
            OfferKind::Reward => &self.reward,
            OfferKind::CartRecovery => &self.cart_recovery,
        }
    }
}

/// Stored settings as written: every field optional, so each offer falls back to its own
/// defaults rather than to one shared default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferSettingsPatch {
    priority: Option<Vec<OfferKind>>,
    second_purchase: Option<OfferConfigPatch>,
    win_back: Option<OfferConfigPatch>,
    reward: Option<OfferConfigPatch>,
    cart_recovery: Option<OfferConfigPatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferConfigPatch {
    enabled: Option<bool>,
    value: Option<OfferValue>,
    expiry_days: Option<u32>,
    cooldown_days: Option<u32>,
    budget_per_run: Option<u32>,
    min_days_since_trigger: Option<u32>,
    /// Absent: the default; `null`: no upper bound.
    #[serde(default, deserialize_with = "present")]
    max_days_since_trigger: Option<Option<u32>>,
    segments: Option<Vec<String>>,
    title: Option<String>,
    control_percent: Option<u8>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

impl OfferConfigPatch {
    fn apply(self, kind: OfferKind) -> OfferConfig {
        let d = OfferConfig::for_kind(kind);
        OfferConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            value: self.value.unwrap_or(d.value),
            expiry_days: self.expiry_days.unwrap_or(d.expiry_days),
            cooldown_days: self.cooldown_days.unwrap_or(d.cooldown_days),
            budget_per_run: self.budget_per_run.unwrap_or(d.budget_per_run),
            min_days_since_trigger: self
                .min_days_since_trigger
                .unwrap_or(d.min_days_since_trigger),
            max_days_since_trigger: self
                .max_days_since_trigger
                .unwrap_or(d.max_days_since_trigger),
            segments: self.segments.unwrap_or(d.segments),
            title: self.title.unwrap_or(d.title),
            control_percent: self.control_percent.unwrap_or(d.control_percent),
        }
    }
}

impl From<OfferSettingsPatch> for OfferSettings {
    fn from(p: OfferSettingsPatch) -> Self {
        let d = OfferSettings::default();
        let cfg = |patch: Option<OfferConfigPatch>, kind: OfferKind| {
            patch.map_or_else(|| OfferConfig::for_kind(kind), |p| p.apply(kind))
        };
        OfferSettings {
            priority: p.priority.unwrap_or(d.priority),
            second_purchase: cfg(p.second_purchase, OfferKind::SecondPurchase),
            win_back: cfg(p.win_back, OfferKind::WinBack),
            reward: cfg(p.reward, OfferKind::Reward),
            cart_recovery: cfg(p.cart_recovery, OfferKind::CartRecovery),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offer `{offer}`: {message}")]
pub struct OfferConfigError {
    pub offer: &'static str,
    pub message: String,
}

/// A code that exists (confirmed created), as the app stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub customer_id: String,
    pub offer: OfferKind,
    pub period: u32,
    pub code: String,
    pub issued_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub redeemed: bool,
}

/// A field set on the customer beside a code (the code, its expiry, the offer), for the shop's
/// own emails to use; each platform stores it as it can (metafields, notes, attributes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerField {
    pub namespace: String,
    pub key: String,
    pub kind: FieldKind,
    pub value: String,
}

/// What a [`CustomerField`] holds. The serialised names are those stored since the first
/// release, so planned codes already in databases still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldKind {
    #[serde(rename = "single_line_text_field")]
    Text,
    /// RFC 3339, UTC.
    #[serde(rename = "date_time")]
    DateTime,
}

/// One code to create, with everything the platform needs to create it and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCode {
    pub customer_id: String,
    pub offer: OfferKind,
    pub period: u32,
    pub code: String,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub value: OfferValue,
    /// Always 1: a personal code is used once.
    pub usage_limit: u32,
    pub applies_once_per_customer: bool,
    /// The segment that made the customer eligible, for the audit table.
    pub reason_segment: String,
    pub fields: Vec<CustomerField>,
}

/// A customer held out of an offer for a period: no code, the same window a code would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAssignment {
    pub customer_id: String,
    pub offer: OfferKind,
    pub period: u32,
    /// The offer's control share when the customer was drawn.
    pub control_percent: u8,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The segment that made the customer eligible, for the audit table.
    pub reason_segment: String,
}

/// What a run plans: codes to create and customers held out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfferPlan {
    pub codes: Vec<PlannedCode>,
    pub control: Vec<ControlAssignment>,
}

#[derive(Debug, Clone, Copy)]
struct History {
    next_period: u32,
    last_issued: DateTime<Utc>,
    active: bool,
}

/// Validated offers for one shop.
#[derive(Debug)]
pub struct OfferPlanner<'c> {
    settings: &'c OfferSettings,
    order: Vec<OfferKind>,
    eligible: HashMap<OfferKind, Vec<SegmentId>>,
}

impl<'c> OfferPlanner<'c> {
    /// Checks every offer (enabled or not, so saving bad settings fails early).
    pub fn new(
        settings: &'c OfferSettings,
        catalog: &SegmentCatalog,
    ) -> Result<OfferPlanner<'c>, OfferConfigError> {
        let mut order: Vec<OfferKind> = Vec::new();
        for k in settings.priority.iter().chain(OfferKind::ALL.iter()) {
            if !order.contains(k) {
                order.push(*k);
            }
        }
        let mut eligible = HashMap::new();
        for kind in OfferKind::ALL {
            let cfg = settings.config(kind);
            let err = |message: String| OfferConfigError {
                offer: kind.key(),
                message,
            };
            match &cfg.value {
                OfferValue::Percentage { percent } if !(1..=100).contains(percent) => {
                    return Err(err(format!("percent must be 1 to 100, got {percent}")));
                }
                OfferValue::FixedAmount {
                    amount_minor,
                    currency,
                } => {
                    if *amount_minor <= 0 {
                        return Err(err("the fixed amount must be positive".into()));
                    }
                    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                        return Err(err(format!(
                            "currency must be an ISO 4217 code like EUR, got `{currency}`"
                        )));
                    }
                }
                _ => {}
            }
            if !(1..=365).contains(&cfg.expiry_days) {
                return Err(err(format!(
                    "expiry_days must be 1 to 365, got {}",
                    cfg.expiry_days
                )));
            }
            if cfg
                .max_days_since_trigger
                .is_some_and(|m| m < cfg.min_days_since_trigger)
            {
                return Err(err(
                    "max_days_since_trigger is below min_days_since_trigger".into(),
                ));
            }
            let title = cfg.title.trim();
            if title.is_empty() || title.chars().count() > 200 {
                return Err(err("title must be 1 to 200 characters".into()));
            }
            if cfg.control_percent > MAX_CONTROL_PERCENT {
                return Err(err(format!(
                    "control_percent must be 0 to {MAX_CONTROL_PERCENT}, got {}",
                    cfg.control_percent
                )));
            }
            if cfg.segments.is_empty() {
                return Err(err("needs at least one eligible segment".into()));
            }
            let ids = cfg
                .segments
                .iter()
                .map(|key| {
                    catalog
                        .id_of(key)
                        .ok_or_else(|| err(format!("unknown segment `{key}`")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            eligible.insert(kind, ids);
        }
        Ok(OfferPlanner {
            settings,
            order,
            eligible,
        })
    }

    /// The codes to create this run, grouped by offer in priority order, best customers
    /// first. `history` is every confirmed code of the shop (any age). Customers drawn into a
    /// control group are left out; [`OfferPlanner::plan_with_control`] returns them too.
    pub fn plan<'a>(
        &self,
        customers: impl IntoIterator<Item = (&'a CustomerFacts, &'a Membership)>,
        history: &[IssuedCode],
        catalog: &SegmentCatalog,
        seed: CodeSeed<'_>,
        now: DateTime<Utc>,
    ) -> Vec<PlannedCode> {
        self.plan_with_control(customers, history, &[], catalog, seed, now)
            .codes
    }

    /// The run's codes and control assignments. `held_out` is every stored control assignment
    /// of the shop: it counts like a code for periods, cooldowns and the one-live-offer rule.
    /// The draw is keyed by `seed.secret`.
    pub fn plan_with_control<'a>(
        &self,
        customers: impl IntoIterator<Item = (&'a CustomerFacts, &'a Membership)>,
        history: &[IssuedCode],
        held_out: &[ControlAssignment],
        catalog: &SegmentCatalog,
        seed: CodeSeed<'_>,
        now: DateTime<Utc>,
    ) -> OfferPlan {
        let past = summarise(history, held_out, now);
        let mut out = OfferPlan::default();
        let enabled: Vec<OfferKind> = self
            .order
            .iter()
            .copied()
            .filter(|k| {
                self.settings.config(*k).enabled && self.settings.config(*k).budget_per_run > 0
            })
            .collect();
        if enabled.is_empty() {
            return out;
        }

        // Candidates per offer: (customer, reason).
        let mut candidates: HashMap<OfferKind, Vec<(&'a CustomerFacts, SegmentId)>> =
            HashMap::new();
        for (f, m) in customers {
            for &kind in &enabled {
                if let Some(reason) = self.eligible_for(kind, f, m, &past, now) {
                    candidates.entry(kind).or_default().push((f, reason));
                }
            }
        }

        let mut served: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for kind in enabled {
            let cfg = self.settings.config(kind);
            let Some(mut list) = candidates.remove(&kind) else {
                continue;
            };
            list.sort_by(|(a, _), (b, _)| {
                clv_rank(b.predicted_clv)
                    .total_cmp(&clv_rank(a.predicted_clv))
                    .then_with(|| a.customer_id.cmp(&b.customer_id))
            });
            let mut selected = 0u32;
            for (f, reason) in list {
                if selected >= cfg.budget_per_run {
                    break;
                }
                if !served.insert(f.customer_id.as_str()) {
                    continue;
                }
                let period = past
                    .get(&(f.customer_id.as_str(), kind))
                    .map_or(0, |h| h.next_period);
                // The share was validated in `new`, so the draw cannot fail.
                let held = experiment::in_control(
                    seed.secret,
                    &f.customer_id,
                    kind.key(),
                    &period.to_string(),
                    cfg.control_percent,
                ) == Ok(true);
                if held {
                    out.control.push(ControlAssignment {
                        customer_id: f.customer_id.clone(),
                        offer: kind,
                        period,
                        control_percent: cfg.control_percent,
                        starts_at: now,
                        ends_at: now + Duration::days(i64::from(cfg.expiry_days)),
                        reason_segment: catalog.key(reason).to_string(),
                    });
                } else {
                    out.codes.push(planned(
                        cfg,
                        kind,
                        f,
                        period,
                        catalog.key(reason),
                        seed,
                        now,
                    ));
                }
                selected += 1;
            }
        }
        out
    }

    fn eligible_for(
        &self,
        kind: OfferKind,
        f: &CustomerFacts,
        m: &Membership,
        past: &HashMap<(&str, OfferKind), History>,
        now: DateTime<Utc>,
    ) -> Option<SegmentId> {
        let cfg = self.settings.config(kind);
        let reason = self
            .eligible
            .get(&kind)?
            .iter()
            .copied()
            .find(|id| m.contains(*id))?;
        match kind.trigger_date(f) {
            Some(t) => {
                let days = days_since(t, now);
                if days < i64::from(cfg.min_days_since_trigger)
                    || cfg
                        .max_days_since_trigger
                        .is_some_and(|max| days > i64::from(max))
                {
                    return None;
                }
            }
            // Without a trigger date only an unrestricted window can be satisfied.
            None if cfg.min_days_since_trigger > 0 || cfg.max_days_since_trigger.is_some() => {
                return None;
            }
            None => {}
        }
        if let Some(h) = past.get(&(f.customer_id.as_str(), kind)) {
            let cooling = now - h.last_issued < Duration::days(i64::from(cfg.cooldown_days));
            if h.active || cooling {
                return None;
            }
        }
        Some(reason)
    }
}

/// NaN (bad upstream data) sorts last rather than first.
fn clv_rank(v: f64) -> f64 {
    if v.is_nan() { f64::NEG_INFINITY } else { v }
}

fn summarise<'h>(
    history: &'h [IssuedCode],
    held_out: &'h [ControlAssignment],
    now: DateTime<Utc>,
) -> HashMap<(&'h str, OfferKind), History> {
    let mut out: HashMap<(&str, OfferKind), History> = HashMap::new();
    let codes = history.iter().map(|c| {
        let active = !c.redeemed && c.ends_at > now;
        (
            c.customer_id.as_str(),
            c.offer,
            c.period,
            c.issued_at,
            active,
        )
    });
    // A control customer never redeems: held out until the code would have expired.
    let controls = held_out.iter().map(|c| {
        let active = c.ends_at > now;
        (
            c.customer_id.as_str(),
            c.offer,
            c.period,
            c.starts_at,
            active,
        )
    });
    for (customer, offer, period, issued_at, active) in codes.chain(controls) {
        let h = out.entry((customer, offer)).or_insert(History {
            next_period: 0,
            last_issued: issued_at,
            active: false,
        });
        h.next_period = h.next_period.max(period.saturating_add(1));
        h.last_issued = h.last_issued.max(issued_at);
        h.active |= active;
    }
    out
}

fn planned(
    cfg: &OfferConfig,
    kind: OfferKind,
    f: &CustomerFacts,
    period: u32,
    reason: &str,
    seed: CodeSeed<'_>,
    now: DateTime<Utc>,
) -> PlannedCode {
    let code = derive_code(seed, &f.customer_id, kind, period);
    let ends_at = now + Duration::days(i64::from(cfg.expiry_days));
    let field = |key: &str, kind: FieldKind, value: String| CustomerField {
        namespace: "lifecycle".to_string(),
        key: key.to_string(),
        kind,
        value,
    };
    let fields = vec![
        field("offer_code", FieldKind::Text, code.clone()),
        field(
            "offer_expires_at",
            FieldKind::DateTime,
            ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        field("offer_kind", FieldKind::Text, kind.key().to_string()),
    ];
    PlannedCode {
        customer_id: f.customer_id.clone(),
        offer: kind,
        period,
        title: format!("{} {code}", cfg.title.trim()),
        code,
        starts_at: now,
        ends_at,
        value: cfg.value.clone(),
        usage_limit: 1,
        applies_once_per_customer: true,
        reason_segment: reason.to_string(),
        fields,
    }
}
