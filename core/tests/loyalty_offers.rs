//! Offer planning: eligibility windows, cooldown, one active code, budget order, determinism.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifecycle_core::loyalty::experiment::in_control;
use lifecycle_core::loyalty::{
    CodeSeed, ControlAssignment, IssuedCode, OfferKind, OfferPlan, OfferPlanner, OfferSettings,
    OfferValue, PlannedCode, derive_code, minor_units_to_decimal,
};
use lifecycle_core::segments::{
    CustomerFacts, Membership, SegmentCatalog, SegmentSettings, ShopContext,
};
use lifecycle_core::types::{ChurnRisk, RfmGroup};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 12, 0, 0).unwrap()
}

const SEED: CodeSeed<'static> = CodeSeed {
    shop: "demo.myshopify.com",
    secret: b"per-shop secret",
};

/// A first-time buyer whose first order was `days` ago.
fn first_timer(id: &str, days: i64, clv: f64) -> CustomerFacts {
    let at = Some(now() - Duration::days(days));
    CustomerFacts {
        number_of_orders: 1,
        amount_spent: 40.0,
        average_order_value: 40.0,
        first_order_date: at,
        last_order_date: at,
        rfm_group: RfmGroup::New,
        churn_risk: ChurnRisk::Low,
        predicted_clv: clv,
        ..CustomerFacts::prospect(id)
    }
}

fn enabled(kind: OfferKind, budget: u32) -> OfferSettings {
    let mut s = OfferSettings::default();
    let cfg = match kind {
        OfferKind::SecondPurchase => &mut s.second_purchase,
        OfferKind::WinBack => &mut s.win_back,
        OfferKind::Reward => &mut s.reward,
        OfferKind::CartRecovery => &mut s.cart_recovery,
    };
    cfg.enabled = true;
    cfg.budget_per_run = budget;
    // These tests are about which codes a run makes; control groups have their own below.
    cfg.control_percent = 0;
    s
}

fn run(
    settings: &OfferSettings,
    facts: &[CustomerFacts],
    history: &[IssuedCode],
    now: DateTime<Utc>,
) -> Vec<PlannedCode> {
    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let ctx = ShopContext::compute(facts, catalog.thresholds());
    let ev = catalog.evaluator(&ctx, now);
    let ms: Vec<Membership> = facts.iter().map(|f| ev.membership(f)).collect();
    let planner = OfferPlanner::new(settings, &catalog).unwrap();
    planner.plan(facts.iter().zip(&ms), history, &catalog, SEED, now)
}

fn confirm(p: &PlannedCode) -> IssuedCode {
    IssuedCode {
        customer_id: p.customer_id.clone(),
        offer: p.offer,
        period: p.period,
        code: p.code.clone(),
        issued_at: p.starts_at,
        ends_at: p.ends_at,
        redeemed: false,
    }
}

#[test]
fn offers_are_off_by_default() {
    let facts = vec![first_timer("a", 20, 10.0)];
    assert!(run(&OfferSettings::default(), &facts, &[], now()).is_empty());
}

#[test]
fn second_purchase_respects_the_day_window_and_carries_shopify_fields() {
    let settings = enabled(OfferKind::SecondPurchase, 100);
    let facts = vec![
        first_timer("too-soon", 13, 10.0),
        first_timer("ok-14", 14, 10.0),
        first_timer("ok-90", 90, 10.0),
        first_timer("too-late", 91, 10.0),
        CustomerFacts::prospect("prospect"),
    ];
    let plan = run(&settings, &facts, &[], now());
    let ids: Vec<&str> = plan.iter().map(|p| p.customer_id.as_str()).collect();
    assert_eq!(ids, ["ok-14", "ok-90"]);

    let p = &plan[0];
    assert_eq!(p.offer, OfferKind::SecondPurchase);
    assert_eq!(p.period, 0);
    assert_eq!(
        p.code,
        derive_code(SEED, "ok-14", OfferKind::SecondPurchase, 0)
    );
    assert!(p.title.starts_with("Second purchase LC-"));
    assert_eq!(p.starts_at, now());
    assert_eq!(p.ends_at, now() + Duration::days(30));
    assert_eq!(p.value, OfferValue::Percentage { percent: 10 });
    assert_eq!(p.value.fraction(), Some(0.1));
    assert_eq!(p.usage_limit, 1);
    assert_eq!(p.reason_segment, "first_time_buyer");
    let mf: Vec<(&str, &str, &str)> = p
        .fields
        .iter()
        .map(|m| (m.namespace.as_str(), m.key.as_str(), m.value.as_str()))
        .collect();
    assert_eq!(
        mf,
        [
            ("lifecycle", "offer_code", p.code.as_str()),
            ("lifecycle", "offer_expires_at", "2025-07-30T12:00:00Z"),
            ("lifecycle", "offer_kind", "second_purchase"),
        ]
    );
}

#[test]
fn budget_takes_highest_clv_first_with_id_ties() {
    let settings = enabled(OfferKind::SecondPurchase, 3);
    let facts = vec![
        first_timer("d", 20, 5.0),
        first_timer("b", 20, 50.0),
        first_timer("a", 20, 50.0),
        first_timer("e", 20, f64::NAN),
        first_timer("c", 20, 80.0),
    ];
    let plan = run(&settings, &facts, &[], now());
    let ids: Vec<&str> = plan.iter().map(|p| p.customer_id.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    // Input order does not matter.
    let mut reversed = facts.clone();
    reversed.reverse();
    assert_eq!(run(&settings, &reversed, &[], now()), plan);
}

#[test]
fn active_code_and_cooldown_block_a_new_code() {
    let settings = enabled(OfferKind::SecondPurchase, 100);
    let facts = vec![first_timer("a", 20, 10.0)];
    let first = run(&settings, &facts, &[], now());
    assert_eq!(first.len(), 1);
    let history = vec![confirm(&first[0])];

    // Same day: the code is active.
    assert!(run(&settings, &facts, &history, now()).is_empty());
    // After expiry (30 d) but inside the cooldown (180 d): still nothing.
    let later = now() + Duration::days(40);
    let facts_later = vec![first_timer("a", 60, 10.0)];
    assert!(run(&settings, &facts_later, &history, later).is_empty());
    // Redeemed early: not active, but the cooldown still holds.
    let mut redeemed = history.clone();
    redeemed[0].redeemed = true;
    assert!(run(&settings, &facts, &redeemed, now() + Duration::days(1)).is_empty());
    // After the cooldown the next period gives a different code.
    let mut s2 = settings.clone();
    s2.second_purchase.max_days_since_trigger = None;
    let much_later = now() + Duration::days(181);
    let facts_much_later = vec![first_timer("a", 201, 10.0)];
    let next = run(&s2, &facts_much_later, &history, much_later);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].period, 1);
    assert_ne!(next[0].code, first[0].code);
}

#[test]
fn a_retry_after_a_crash_derives_the_same_code() {
    // The code was created at Shopify but the confirmation never reached the database:
    // history is unchanged, so the retry (even days later) plans the same code and meets TAKEN.
    let settings = enabled(OfferKind::SecondPurchase, 100);
    let facts = vec![first_timer("a", 20, 10.0)];
    let first = run(&settings, &facts, &[], now());
    let retry = run(
        &settings,
        &[first_timer("a", 23, 10.0)],
        &[],
        now() + Duration::days(3),
    );
    assert_eq!(first[0].code, retry[0].code);
}

#[test]
fn one_new_code_per_customer_per_run_in_priority_order() {
    let mut settings = enabled(OfferKind::SecondPurchase, 100);
    settings.cart_recovery.enabled = true;
    // An abandoner who is also a first-time buyer: cart recovery wins by default priority.
    let mut f = first_timer("a", 20, 10.0);
    f.abandoned_checkout_date = Some(now() - Duration::days(2));
    let plan = run(
        &settings,
        &[f.clone(), first_timer("b", 20, 1.0)],
        &[],
        now(),
    );
    let got: Vec<(&str, OfferKind)> = plan
        .iter()
        .map(|p| (p.customer_id.as_str(), p.offer))
        .collect();
    assert_eq!(
        got,
        [
            ("a", OfferKind::CartRecovery),
            ("b", OfferKind::SecondPurchase)
        ]
    );

    settings.priority = vec![OfferKind::SecondPurchase];
    let plan = run(&settings, &[f], &[], now());
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].offer, OfferKind::SecondPurchase);
}

#[test]
fn win_back_and_reward_target_their_segments() {
    let mut settings = enabled(OfferKind::WinBack, 10);
    settings.reward.enabled = true;
    let at_risk = CustomerFacts {
        number_of_orders: 3,
        amount_spent: 300.0,
        average_order_value: 100.0,
        first_order_date: Some(now() - Duration::days(400)),
        last_order_date: Some(now() - Duration::days(120)),
        rfm_group: RfmGroup::AtRisk,
        ..CustomerFacts::prospect("risk")
    };
    let champion = CustomerFacts {
        last_order_date: Some(now() - Duration::days(3)),
        rfm_group: RfmGroup::Champions,
        ..at_risk.clone()
    };
    let champion = CustomerFacts {
        customer_id: "champ".into(),
        ..champion
    };
    let plan = run(&settings, &[at_risk, champion], &[], now());
    let got: Vec<(&str, OfferKind, &str)> = plan
        .iter()
        .map(|p| (p.customer_id.as_str(), p.offer, p.reason_segment.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("risk", OfferKind::WinBack, "stage_at_risk"),
            ("champ", OfferKind::Reward, "rfm_champions"),
        ]
    );
}

#[test]
fn codes_are_deterministic_unambiguous_and_distinct() {
    let c = derive_code(SEED, "gid://shopify/Customer/1", OfferKind::WinBack, 0);
    assert_eq!(
        c,
        derive_code(SEED, "gid://shopify/Customer/1", OfferKind::WinBack, 0)
    );
    assert_eq!(c.len(), 15);
    assert!(c.starts_with("LC-"));
    assert!(
        c[3..]
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase())
    );
    assert!(!c[3..].contains(['I', 'L', 'O', 'U']));
    let variants = [
        derive_code(SEED, "gid://shopify/Customer/2", OfferKind::WinBack, 0),
        derive_code(SEED, "gid://shopify/Customer/1", OfferKind::Reward, 0),
        derive_code(SEED, "gid://shopify/Customer/1", OfferKind::WinBack, 1),
        derive_code(
            CodeSeed {
                shop: "other.myshopify.com",
                ..SEED
            },
            "gid://shopify/Customer/1",
            OfferKind::WinBack,
            0,
        ),
        derive_code(
            CodeSeed {
                secret: b"another secret",
                ..SEED
            },
            "gid://shopify/Customer/1",
            OfferKind::WinBack,
            0,
        ),
    ];
    for v in &variants {
        assert_ne!(*v, c);
    }
    // Long secrets (hashed to a block, as HMAC does) still work and differ.
    let long = derive_code(
        CodeSeed {
            secret: &[7u8; 200],
            ..SEED
        },
        "x",
        OfferKind::WinBack,
        0,
    );
    assert_ne!(long, derive_code(SEED, "x", OfferKind::WinBack, 0));
    // No collisions across many customers.
    let mut all: Vec<String> = (0..20_000)
        .map(|i| derive_code(SEED, &format!("c{i}"), OfferKind::Reward, 0))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20_000);
}

#[test]
fn invalid_offer_settings_are_refused() {
    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let check = |f: &dyn Fn(&mut OfferSettings)| {
        let mut s = OfferSettings::default();
        f(&mut s);
        OfferPlanner::new(&s, &catalog)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(
        check(&|s| s.win_back.value = OfferValue::Percentage { percent: 0 }).contains("win_back")
    );
    assert!(
        check(&|s| s.reward.value = OfferValue::FixedAmount {
            amount_minor: 500,
            currency: "eur".into()
        })
        .contains("ISO 4217")
    );
    assert!(
        check(&|s| s.reward.value = OfferValue::FixedAmount {
            amount_minor: -1,
            currency: "EUR".into()
        })
        .contains("positive")
    );
    assert!(check(&|s| s.cart_recovery.expiry_days = 0).contains("expiry_days"));
    assert!(
        check(&|s| s.second_purchase.segments = vec!["nope".into()])
            .contains("unknown segment `nope`")
    );
    assert!(check(&|s| s.second_purchase.max_days_since_trigger = Some(1)).contains("max_days"));
    assert!(check(&|s| s.reward.control_percent = 51).contains("control_percent must be 0 to 50"));
    assert!(OfferPlanner::new(&OfferSettings::default(), &catalog).is_ok());

    let parsed: OfferSettings = serde_json::from_str(
        r#"{"win_back": {"enabled": true, "value": {"type": "fixed_amount", "amount_minor": 500, "currency": "EUR"}}}"#,
    )
    .unwrap();
    assert!(parsed.win_back.enabled);
    // Unset fields take the win-back defaults, not another offer's.
    assert_eq!(parsed.win_back.expiry_days, 21);
    assert_eq!(parsed.win_back.segments, ["stage_at_risk", "rfm_at_risk"]);
    assert!(!parsed.reward.enabled);
    assert_eq!(
        parsed.win_back.control_percent, 10,
        "the default control share"
    );
    let open_ended: OfferSettings =
        serde_json::from_str(r#"{"cart_recovery": {"max_days_since_trigger": null}}"#).unwrap();
    assert_eq!(open_ended.cart_recovery.max_days_since_trigger, None);
    assert_eq!(open_ended.second_purchase.max_days_since_trigger, Some(90));
    // Settings round-trip through JSON.
    let json = serde_json::to_string(&OfferSettings::default()).unwrap();
    assert_eq!(
        serde_json::from_str::<OfferSettings>(&json).unwrap(),
        OfferSettings::default()
    );
    assert!(serde_json::from_str::<OfferSettings>(r#"{"win_bak": {}}"#).is_err());
}

#[test]
fn decimal_amounts_from_minor_units() {
    assert_eq!(minor_units_to_decimal(1050, 2), "10.50");
    assert_eq!(minor_units_to_decimal(5, 2), "0.05");
    assert_eq!(minor_units_to_decimal(500, 0), "500");
    assert_eq!(minor_units_to_decimal(1234, 3), "1.234");
    assert_eq!(minor_units_to_decimal(-150, 2), "-1.50");
}

fn run_with_control(
    settings: &OfferSettings,
    facts: &[CustomerFacts],
    history: &[IssuedCode],
    held_out: &[ControlAssignment],
    now: DateTime<Utc>,
) -> OfferPlan {
    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let ctx = ShopContext::compute(facts, catalog.thresholds());
    let ev = catalog.evaluator(&ctx, now);
    let ms: Vec<Membership> = facts.iter().map(|f| ev.membership(f)).collect();
    let planner = OfferPlanner::new(settings, &catalog).unwrap();
    planner.plan_with_control(
        facts.iter().zip(&ms),
        history,
        held_out,
        &catalog,
        SEED,
        now,
    )
}

#[test]
fn the_control_group_gets_no_code_and_is_drawn_by_the_keyed_hash() {
    let facts: Vec<CustomerFacts> = (0..400)
        .map(|i| first_timer(&format!("c{i:03}"), 20, f64::from(i)))
        .collect();
    let mut s = enabled(OfferKind::SecondPurchase, 300);
    s.second_purchase.control_percent = 30;
    let plan = run_with_control(&s, &facts, &[], &[], now());
    // The budget counts both groups: the 300 best customers, split by the draw.
    assert_eq!(plan.codes.len() + plan.control.len(), 300);
    let coded: std::collections::BTreeSet<&str> =
        plan.codes.iter().map(|c| c.customer_id.as_str()).collect();
    for c in &plan.control {
        assert!(
            !coded.contains(c.customer_id.as_str()),
            "{} got a code",
            c.customer_id
        );
        assert!(in_control(SEED.secret, &c.customer_id, "second_purchase", "0", 30).unwrap());
        assert_eq!((c.period, c.control_percent), (0, 30));
        assert_eq!(
            c.ends_at - c.starts_at,
            Duration::days(30),
            "the code's expiry"
        );
        assert_eq!(c.reason_segment, "first_time_buyer");
    }
    for c in &plan.codes {
        assert!(!in_control(SEED.secret, &c.customer_id, "second_purchase", "0", 30).unwrap());
    }
    // About 30 % (binomial sd 2.6 %; the draw is fixed by the secret, so this is exact).
    let share = plan.control.len() as f64 / 300.0;
    assert!((0.22..0.38).contains(&share), "control share {share}");
    // The same inputs give the same split: a retry or another instance agrees.
    assert_eq!(run_with_control(&s, &facts, &[], &[], now()), plan);
    // Another secret splits differently.
    let other = CodeSeed {
        shop: SEED.shop,
        secret: b"another shop's secret",
    };
    let moved = plan
        .control
        .iter()
        .filter(|c| !in_control(other.secret, &c.customer_id, "second_purchase", "0", 30).unwrap())
        .count();
    assert!(moved > 0);
    // A share of 0 holds nobody out.
    s.second_purchase.control_percent = 0;
    assert!(
        run_with_control(&s, &facts, &[], &[], now())
            .control
            .is_empty()
    );
}

#[test]
fn a_held_out_customer_counts_like_a_code_until_the_window_and_cooldown_pass() {
    let facts: Vec<CustomerFacts> = (0..200)
        .map(|i| first_timer(&format!("c{i:03}"), 20, 1.0))
        .collect();
    let mut s = enabled(OfferKind::SecondPurchase, 1000);
    s.second_purchase.control_percent = 50;
    s.second_purchase.max_days_since_trigger = None;
    let first = run_with_control(&s, &facts, &[], &[], now());
    assert!(!first.control.is_empty() && !first.codes.is_empty());
    let history: Vec<IssuedCode> = first.codes.iter().map(confirm).collect();
    // The next run plans nobody: every customer holds a code or is held out.
    let again = run_with_control(&s, &facts, &history, &first.control, now());
    assert_eq!(again, OfferPlan::default());
    // After the cooldown (180 days) each customer's next period gets a fresh draw.
    let later = now() + Duration::days(181);
    let next = run_with_control(&s, &facts, &history, &first.control, later);
    assert_eq!(next.codes.len() + next.control.len(), 200);
    assert!(next.codes.iter().all(|c| c.period == 1));
    assert!(next.control.iter().all(|c| c.period == 1));
    let was_held: std::collections::BTreeSet<&str> = first
        .control
        .iter()
        .map(|c| c.customer_id.as_str())
        .collect();
    let still_held = next
        .control
        .iter()
        .filter(|c| was_held.contains(c.customer_id.as_str()))
        .count();
    // Periods split independently: about half of the first control group is held out again.
    assert!(
        still_held > 0 && still_held < was_held.len(),
        "{still_held}"
    );
}
