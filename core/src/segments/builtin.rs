//! Built-in segments and their thresholds.
//!
//! Definitions (a "buyer" has at least one order; days are whole days before `now`):
//!
//! | key | slug | member when |
//! |---|---|---|
//! | `rfm_<group>` | `champions`, `at-risk`, ... | `rfm_group` is that group (all 11) |
//! | `stage_prospect` | `stage-prospect` | no orders |
//! | `stage_lapsed` | `stage-lapsed` | buyer, last order more than `lapsed_after_days` ago (365) |
//! | `stage_at_risk` | `stage-at-risk` | buyer, not lapsed, last order more than `at_risk_after_days` ago (90) |
//! | `stage_loyal` | `stage-loyal` | recent buyer with at least `loyal_min_orders` orders (4) |
//! | `stage_repeat` | `stage-repeat` | recent buyer with 2 or more orders, fewer than `loyal_min_orders` |
//! | `stage_new` | `stage-new` | recent buyer with exactly one order |
//! | `first_time_buyer` | `first-time-buyer` | exactly one order |
//! | `repeat_buyer` | `repeat-buyer` | two or more orders |
//! | `big_spender` | `big-spender` | buyer in the top `big_spender_top_share` (10%) of buyers by spend |
//! | `high_aov` | `high-aov` | buyer in the top `high_aov_top_share` (25%) of buyers by average order value |
//! | `full_price` | `full-price` | buyer whose discount order share is at most `full_price_max_discount_share` (0) |
//! | `discount_shopper` | `discount-shopper` | at least `discount_shopper_min_orders` (2) orders, more than `discount_shopper_min_share` (50%) of them with a code |
//! | `cart_abandoner` | `cart-abandoner` | abandoned a checkout after the last order (or never ordered), within `cart_abandoner_within_days` (30) |
//! | `negative_experience` | `negative-experience` | a refund or cancellation within `negative_experience_within_days` (90) |
//! | `hero` | `hero` | buyer in the top `hero_top_share` (5%) of buyers by predicted CLV |
//! | `churn_risk_<level>` | `churn-risk-high`, ... | buyer with that churn risk |
//! | `tier_<tier>` | `tier-gold`, ... | buyer in that loyalty tier ([`TierConfig`]) |
//!
//! Stages are exclusive and checked in the order prospect, lapsed, at risk, loyal, repeat, new;
//! a buyer without a `last_order_date` (inconsistent data) is staged by order count alone.
//! The top-share segments need a shop-wide cut point: [`ShopContext::compute`]. A customer is
//! in when their value is at least the cut and above zero, so ties at the cut are all in.

use crate::segments::facts::{CustomerFacts, days_since};
use crate::segments::tiers::{Tier, TierConfig};
use crate::types::{ChurnRisk, RfmGroup};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    Prospect,
    New,
    Repeat,
    Loyal,
    AtRisk,
    Lapsed,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 6] = [
        LifecycleStage::Prospect,
        LifecycleStage::New,
        LifecycleStage::Repeat,
        LifecycleStage::Loyal,
        LifecycleStage::AtRisk,
        LifecycleStage::Lapsed,
    ];
}

/// One built-in segment. `key` is the stable identifier stored in settings and the audit
/// table; `slug` is what follows the shop's tag prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinSegment {
    Rfm(RfmGroup),
    Stage(LifecycleStage),
    FirstTimeBuyer,
    RepeatBuyer,
    BigSpender,
    HighAov,
    FullPrice,
    DiscountShopper,
    CartAbandoner,
    NegativeExperience,
    Hero,
    Churn(ChurnRisk),
    Tier(Tier),
}

/// Number of built-in segments; they fit one `u64` bit set.
pub const BUILTIN_COUNT: usize = 33;

use BuiltinSegment as B;
use LifecycleStage as S;

/// Bit order of the built-ins; [`BuiltinSegment::index`] must agree (a test checks it).
const ALL_BUILTINS: [BuiltinSegment; BUILTIN_COUNT] = [
    B::Rfm(RfmGroup::Champions),
    B::Rfm(RfmGroup::Loyal),
    B::Rfm(RfmGroup::Active),
    B::Rfm(RfmGroup::NeedsAttention),
    B::Rfm(RfmGroup::New),
    B::Rfm(RfmGroup::Promising),
    B::Rfm(RfmGroup::AtRisk),
    B::Rfm(RfmGroup::PreviouslyLoyal),
    B::Rfm(RfmGroup::AlmostLost),
    B::Rfm(RfmGroup::Dormant),
    B::Rfm(RfmGroup::Prospects),
    B::Stage(S::Prospect),
    B::Stage(S::New),
    B::Stage(S::Repeat),
    B::Stage(S::Loyal),
    B::Stage(S::AtRisk),
    B::Stage(S::Lapsed),
    B::FirstTimeBuyer,
    B::RepeatBuyer,
    B::BigSpender,
    B::HighAov,
    B::FullPrice,
    B::DiscountShopper,
    B::CartAbandoner,
    B::NegativeExperience,
    B::Hero,
    B::Churn(ChurnRisk::Low),
    B::Churn(ChurnRisk::Medium),
    B::Churn(ChurnRisk::High),
    B::Tier(Tier::Bronze),
    B::Tier(Tier::Silver),
    B::Tier(Tier::Gold),
    B::Tier(Tier::Platinum),
];

const SIMPLE: [BuiltinSegment; 9] = [
    BuiltinSegment::FirstTimeBuyer,
    BuiltinSegment::RepeatBuyer,
    BuiltinSegment::BigSpender,
    BuiltinSegment::HighAov,
    BuiltinSegment::FullPrice,
    BuiltinSegment::DiscountShopper,
    BuiltinSegment::CartAbandoner,
    BuiltinSegment::NegativeExperience,
    BuiltinSegment::Hero,
];

impl BuiltinSegment {
    /// All built-in segments, in bit order.
    pub fn all() -> [BuiltinSegment; BUILTIN_COUNT] {
        ALL_BUILTINS
    }

    /// Position in [`BuiltinSegment::all`], used as the bit index.
    pub fn index(self) -> usize {
        match self {
            BuiltinSegment::Rfm(g) => RfmGroup::ALL.iter().position(|x| *x == g).unwrap_or(0),
            BuiltinSegment::Stage(s) => 11 + s as usize,
            BuiltinSegment::Churn(c) => 26 + c as usize,
            BuiltinSegment::Tier(t) => 29 + t as usize,
            simple => 17 + SIMPLE.iter().position(|x| *x == simple).unwrap_or(0),
        }
    }

    pub fn key(self) -> &'static str {
        use BuiltinSegment::*;
        match self {
            Rfm(g) => match g {
                RfmGroup::Champions => "rfm_champions",
                RfmGroup::Loyal => "rfm_loyal",
                RfmGroup::Active => "rfm_active",
                RfmGroup::NeedsAttention => "rfm_needs_attention",
                RfmGroup::New => "rfm_new",
                RfmGroup::Promising => "rfm_promising",
                RfmGroup::AtRisk => "rfm_at_risk",
                RfmGroup::PreviouslyLoyal => "rfm_previously_loyal",
                RfmGroup::AlmostLost => "rfm_almost_lost",
                RfmGroup::Dormant => "rfm_dormant",
                RfmGroup::Prospects => "rfm_prospects",
            },
            Stage(s) => match s {
                LifecycleStage::Prospect => "stage_prospect",
                LifecycleStage::New => "stage_new",
                LifecycleStage::Repeat => "stage_repeat",
                LifecycleStage::Loyal => "stage_loyal",
                LifecycleStage::AtRisk => "stage_at_risk",
                LifecycleStage::Lapsed => "stage_lapsed",
            },
            FirstTimeBuyer => "first_time_buyer",
            RepeatBuyer => "repeat_buyer",
            BigSpender => "big_spender",
            HighAov => "high_aov",
            FullPrice => "full_price",
            DiscountShopper => "discount_shopper",
            CartAbandoner => "cart_abandoner",
            NegativeExperience => "negative_experience",
            Hero => "hero",
            Churn(c) => match c {
                ChurnRisk::Low => "churn_risk_low",
                ChurnRisk::Medium => "churn_risk_medium",
                ChurnRisk::High => "churn_risk_high",
            },
            Tier(t) => match t {
                crate::segments::tiers::Tier::Bronze => "tier_bronze",
                crate::segments::tiers::Tier::Silver => "tier_silver",
                crate::segments::tiers::Tier::Gold => "tier_gold",
                crate::segments::tiers::Tier::Platinum => "tier_platinum",
            },
        }
    }

    /// Tag slug: the key with `-` for `_`, and RFM groups without their `rfm_` prefix
    /// (`champions`, `at-risk`), matching how merchants know them.
    pub fn slug(self) -> String {
        let key = self.key();
        key.strip_prefix("rfm_").unwrap_or(key).replace('_', "-")
    }

    pub fn from_key(key: &str) -> Option<BuiltinSegment> {
        BuiltinSegment::all().into_iter().find(|s| s.key() == key)
    }
}

/// Merchant-tunable thresholds of the built-in segments. Defaults are in the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuiltinThresholds {
    pub at_risk_after_days: u32,
    pub lapsed_after_days: u32,
    pub loyal_min_orders: u32,
    pub big_spender_top_share: f64,
    pub high_aov_top_share: f64,
    pub full_price_max_discount_share: f64,
    pub discount_shopper_min_orders: u32,
    pub discount_shopper_min_share: f64,
    pub cart_abandoner_within_days: u32,
    pub negative_experience_within_days: u32,
    pub hero_top_share: f64,
    pub tiers: TierConfig,
}

impl Default for BuiltinThresholds {
    fn default() -> Self {
        BuiltinThresholds {
            at_risk_after_days: 90,
            lapsed_after_days: 365,
            loyal_min_orders: 4,
            big_spender_top_share: 0.10,
            high_aov_top_share: 0.25,
            full_price_max_discount_share: 0.0,
            discount_shopper_min_orders: 2,
            discount_shopper_min_share: 0.5,
            cart_abandoner_within_days: 30,
            negative_experience_within_days: 90,
            hero_top_share: 0.05,
            tiers: TierConfig::default(),
        }
    }
}

impl BuiltinThresholds {
    pub fn validate(&self) -> Result<(), String> {
        if self.at_risk_after_days >= self.lapsed_after_days {
            return Err(format!(
                "at_risk_after_days ({}) must be less than lapsed_after_days ({})",
                self.at_risk_after_days, self.lapsed_after_days
            ));
        }
        if self.loyal_min_orders < 3 {
            return Err("loyal_min_orders must be at least 3 (2 orders is `repeat`)".into());
        }
        for (name, v, lo_open) in [
            ("big_spender_top_share", self.big_spender_top_share, true),
            ("high_aov_top_share", self.high_aov_top_share, true),
            ("hero_top_share", self.hero_top_share, true),
            (
                "full_price_max_discount_share",
                self.full_price_max_discount_share,
                false,
            ),
            (
                "discount_shopper_min_share",
                self.discount_shopper_min_share,
                false,
            ),
        ] {
            let ok = v.is_finite() && v <= 1.0 && if lo_open { v > 0.0 } else { v >= 0.0 };
            if !ok {
                let range = if lo_open { "(0, 1]" } else { "[0, 1]" };
                return Err(format!("{name} must be in {range}, got {v}"));
            }
        }
        self.tiers.validate()
    }
}

/// Shop-wide cut points for the top-share segments, computed from all customers of a run.
/// `None` when the shop has no buyer with a positive value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ShopContext {
    pub big_spender_min_spend: Option<f64>,
    pub high_aov_min: Option<f64>,
    pub hero_min_clv: Option<f64>,
    pub buyers: usize,
}

impl ShopContext {
    /// O(n) per cut (selection, not a sort). Only buyers with finite values count.
    pub fn compute<'a>(
        facts: impl IntoIterator<Item = &'a CustomerFacts>,
        t: &BuiltinThresholds,
    ) -> ShopContext {
        let mut spend = Vec::new();
        let mut aov = Vec::new();
        let mut clv = Vec::new();
        for f in facts {
            if f.number_of_orders == 0 {
                continue;
            }
            spend.push(f.amount_spent);
            aov.push(f.average_order_value);
            clv.push(f.predicted_clv);
        }
        ShopContext {
            buyers: spend.len(),
            big_spender_min_spend: top_share_cut(spend, t.big_spender_top_share),
            high_aov_min: top_share_cut(aov, t.high_aov_top_share),
            hero_min_clv: top_share_cut(clv, t.hero_top_share),
        }
    }
}

/// The value of the `ceil(n * share)`-th largest element: the smallest value still in the top
/// share. Non-finite values are ignored.
fn top_share_cut(mut values: Vec<f64>, share: f64) -> Option<f64> {
    values.retain(|v| v.is_finite());
    let n = values.len();
    if n == 0 || share.is_nan() || share <= 0.0 {
        return None;
    }
    let k = ((n as f64 * share.min(1.0)).ceil() as usize).clamp(1, n);
    let (_, cut, _) = values.select_nth_unstable_by(n - k, f64::total_cmp);
    Some(*cut)
}

fn in_top(v: f64, cut: Option<f64>) -> bool {
    cut.is_some_and(|c| v >= c && v > 0.0)
}

/// The lifecycle stage of one customer (see the module docs for the exact rules).
pub fn lifecycle_stage(
    f: &CustomerFacts,
    t: &BuiltinThresholds,
    now: DateTime<Utc>,
) -> LifecycleStage {
    if f.number_of_orders == 0 {
        return LifecycleStage::Prospect;
    }
    if let Some(last) = f.last_order_date {
        let idle = days_since(last, now);
        if idle > i64::from(t.lapsed_after_days) {
            return LifecycleStage::Lapsed;
        }
        if idle > i64::from(t.at_risk_after_days) {
            return LifecycleStage::AtRisk;
        }
    }
    match f.number_of_orders {
        n if n >= t.loyal_min_orders => LifecycleStage::Loyal,
        n if n >= 2 => LifecycleStage::Repeat,
        _ => LifecycleStage::New,
    }
}

/// The built-in segments of one customer as a bit set over [`BuiltinSegment::index`].
pub fn builtin_bits(
    f: &CustomerFacts,
    t: &BuiltinThresholds,
    ctx: &ShopContext,
    now: DateTime<Utc>,
) -> u64 {
    let mut bits = 0u64;
    let mut set = |s: BuiltinSegment| bits |= 1 << s.index();
    set(BuiltinSegment::Rfm(f.rfm_group));
    set(BuiltinSegment::Stage(lifecycle_stage(f, t, now)));

    let within = |d: Option<DateTime<Utc>>, days: u32| {
        d.is_some_and(|d| days_since(d, now) <= i64::from(days))
    };
    let abandoned_after_order = match (f.abandoned_checkout_date, f.last_order_date) {
        (Some(a), Some(o)) => a > o,
        (Some(_), None) => true,
        _ => false,
    };
    if abandoned_after_order && within(f.abandoned_checkout_date, t.cart_abandoner_within_days) {
        set(BuiltinSegment::CartAbandoner);
    }
    if within(
        f.last_refund_or_cancellation_date,
        t.negative_experience_within_days,
    ) {
        set(BuiltinSegment::NegativeExperience);
    }
    if f.number_of_orders == 0 {
        return bits;
    }

    if f.number_of_orders == 1 {
        set(BuiltinSegment::FirstTimeBuyer);
    } else {
        set(BuiltinSegment::RepeatBuyer);
    }
    if in_top(f.amount_spent, ctx.big_spender_min_spend) {
        set(BuiltinSegment::BigSpender);
    }
    if in_top(f.average_order_value, ctx.high_aov_min) {
        set(BuiltinSegment::HighAov);
    }
    if in_top(f.predicted_clv, ctx.hero_min_clv) {
        set(BuiltinSegment::Hero);
    }
    // A tiny tolerance so a share of 0.0 computed as 1e-17 still counts as full price.
    if f.discount_order_share <= t.full_price_max_discount_share + 1e-9 {
        set(BuiltinSegment::FullPrice);
    }
    if f.number_of_orders >= t.discount_shopper_min_orders
        && f.discount_order_share > t.discount_shopper_min_share + 1e-9
    {
        set(BuiltinSegment::DiscountShopper);
    }
    set(BuiltinSegment::Churn(f.churn_risk));
    if let Some(tier) = t.tiers.tier_of(f) {
        set(BuiltinSegment::Tier(tier));
    }
    bits
}
