//! Built-in segment membership, shop-wide cut points, and the catalog (custom segments, keys).

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifecycle_core::segments::{
    BuiltinSegment, BuiltinThresholds, CatalogError, CustomSegmentDef, CustomerFacts,
    LifecycleStage, SegmentCatalog, SegmentId, SegmentSettings, ShopContext, Tier, TierBasis,
    lifecycle_stage,
};
use lifecycle_core::types::{ChurnRisk, RfmGroup};
use std::collections::BTreeSet;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 12, 0, 0).unwrap()
}

fn days_ago(d: i64) -> Option<DateTime<Utc>> {
    Some(now() - Duration::days(d))
}

fn buyer(id: &str, orders: u32, spent: f64, last_days_ago: i64) -> CustomerFacts {
    CustomerFacts {
        number_of_orders: orders,
        amount_spent: spent,
        average_order_value: spent / f64::from(orders),
        first_order_date: days_ago(last_days_ago + 30 * i64::from(orders - 1)),
        last_order_date: days_ago(last_days_ago),
        rfm_group: RfmGroup::Active,
        churn_risk: ChurnRisk::Low,
        predicted_clv: spent / 2.0,
        p_alive: 0.8,
        ..CustomerFacts::prospect(id)
    }
}

fn keys(catalog: &SegmentCatalog, ctx: &ShopContext, f: &CustomerFacts) -> BTreeSet<String> {
    catalog
        .evaluator(ctx, now())
        .segment_keys(f)
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn builtin_keys_and_slugs_are_stable_and_unique() {
    let all = BuiltinSegment::all();
    assert_eq!(all.len(), 33);
    for (i, s) in all.iter().enumerate() {
        assert_eq!(s.index(), i, "{s:?}");
        assert_eq!(BuiltinSegment::from_key(s.key()), Some(*s));
    }
    let slugs: BTreeSet<String> = all.iter().map(|s| s.slug()).collect();
    assert_eq!(slugs.len(), 33);
    assert_eq!(BuiltinSegment::Rfm(RfmGroup::Champions).slug(), "champions");
    assert_eq!(BuiltinSegment::Rfm(RfmGroup::AtRisk).slug(), "at-risk");
    assert_eq!(BuiltinSegment::Tier(Tier::Gold).slug(), "tier-gold");
    assert_eq!(BuiltinSegment::FirstTimeBuyer.slug(), "first-time-buyer");
    assert_eq!(
        BuiltinSegment::Stage(LifecycleStage::AtRisk).slug(),
        "stage-at-risk"
    );
    assert_eq!(
        BuiltinSegment::Churn(ChurnRisk::High).key(),
        "churn_risk_high"
    );
}

#[test]
fn lifecycle_stages_follow_their_definitions() {
    let t = BuiltinThresholds::default();
    let stage = |f: &CustomerFacts| lifecycle_stage(f, &t, now());
    assert_eq!(
        stage(&CustomerFacts::prospect("p")),
        LifecycleStage::Prospect
    );
    assert_eq!(stage(&buyer("n", 1, 50.0, 10)), LifecycleStage::New);
    assert_eq!(stage(&buyer("r", 2, 50.0, 10)), LifecycleStage::Repeat);
    assert_eq!(stage(&buyer("r", 3, 50.0, 90)), LifecycleStage::Repeat);
    assert_eq!(stage(&buyer("l", 4, 50.0, 10)), LifecycleStage::Loyal);
    // More than 90 days idle is at risk whatever the order count; more than 365 is lapsed.
    assert_eq!(stage(&buyer("a", 9, 50.0, 91)), LifecycleStage::AtRisk);
    assert_eq!(stage(&buyer("a", 1, 50.0, 365)), LifecycleStage::AtRisk);
    assert_eq!(stage(&buyer("x", 9, 50.0, 366)), LifecycleStage::Lapsed);
    // Inconsistent data (orders but no date) is staged by count alone.
    let undated = CustomerFacts {
        last_order_date: None,
        ..buyer("u", 5, 50.0, 1)
    };
    assert_eq!(stage(&undated), LifecycleStage::Loyal);
    // Thresholds are the merchant's.
    let t2 = BuiltinThresholds {
        at_risk_after_days: 30,
        lapsed_after_days: 60,
        loyal_min_orders: 10,
        ..t.clone()
    };
    assert_eq!(
        lifecycle_stage(&buyer("a", 4, 1.0, 31), &t2, now()),
        LifecycleStage::AtRisk
    );
    assert_eq!(
        lifecycle_stage(&buyer("a", 4, 1.0, 61), &t2, now()),
        LifecycleStage::Lapsed
    );
    assert_eq!(
        lifecycle_stage(&buyer("a", 4, 1.0, 1), &t2, now()),
        LifecycleStage::Repeat
    );
}

#[test]
fn shop_context_cuts_take_the_top_share_of_buyers() {
    // 20 buyers spending 10, 20, ..., 200 and 5 prospects.
    let mut facts: Vec<CustomerFacts> = (1..=20)
        .map(|i| buyer(&format!("c{i}"), 2, 10.0 * f64::from(i), 5))
        .collect();
    facts.extend((0..5).map(|i| CustomerFacts::prospect(format!("p{i}"))));
    let t = BuiltinThresholds::default();
    let ctx = ShopContext::compute(&facts, &t);
    assert_eq!(ctx.buyers, 20);
    // Top 10% of 20 = 2 customers: 190 and 200.
    assert_eq!(ctx.big_spender_min_spend, Some(190.0));
    // Top 25% of 20 = 5 by AOV (spent / 2): 80..100.
    assert_eq!(ctx.high_aov_min, Some(80.0));
    // Top 5% of 20 = 1 by CLV (spent / 2): 100.
    assert_eq!(ctx.hero_min_clv, Some(100.0));

    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let ev = catalog.evaluator(&ctx, now());
    let big: Vec<&str> = facts
        .iter()
        .filter(|f| {
            ev.membership(f)
                .contains(SegmentId::Builtin(BuiltinSegment::BigSpender))
        })
        .map(|f| f.customer_id.as_str())
        .collect();
    assert_eq!(big, ["c19", "c20"]);

    // An empty shop has no cut and nobody is a big spender.
    let empty = ShopContext::compute(&[], &t);
    assert_eq!(empty.big_spender_min_spend, None);
    // A shop where nobody spent anything has no big spenders either.
    let zeros: Vec<CustomerFacts> = (0..10)
        .map(|i| buyer(&format!("z{i}"), 1, 0.0, 5))
        .collect();
    let ctx0 = ShopContext::compute(&zeros, &t);
    let ev0 = catalog.evaluator(&ctx0, now());
    assert!(
        !ev0.membership(&zeros[0])
            .contains(SegmentId::Builtin(BuiltinSegment::BigSpender))
    );
}

#[test]
fn one_customer_gets_exactly_the_expected_builtin_segments() {
    let catalog = SegmentCatalog::new(&SegmentSettings::default()).unwrap();
    let ctx = ShopContext {
        big_spender_min_spend: Some(1000.0),
        high_aov_min: Some(100.0),
        hero_min_clv: Some(500.0),
        buyers: 100,
    };
    // 5 orders, 1200 spent, last order 100 days ago, 4 of 5 orders discounted, an abandoned
    // checkout after the last order, a refund last week, high churn risk, champion by RFM.
    let f = CustomerFacts {
        number_of_orders: 5,
        amount_spent: 1200.0,
        average_order_value: 240.0,
        first_order_date: days_ago(400),
        last_order_date: days_ago(100),
        abandoned_checkout_date: days_ago(3),
        rfm_group: RfmGroup::Champions,
        churn_risk: ChurnRisk::High,
        predicted_clv: 499.0,
        discount_order_share: 0.8,
        refunds_or_cancellations: 1,
        last_refund_or_cancellation_date: days_ago(7),
        ..CustomerFacts::prospect("c")
    };
    assert_eq!(
        keys(&catalog, &ctx, &f),
        set(&[
            "rfm_champions",
            "stage_at_risk",
            "repeat_buyer",
            "big_spender",
            "high_aov",
            "discount_shopper",
            "cart_abandoner",
            "negative_experience",
            "churn_risk_high",
            "tier_platinum",
        ])
    );

    // A first-time full-price buyer, recent, with an old abandoned checkout before the order.
    let g = CustomerFacts {
        number_of_orders: 1,
        amount_spent: 300.0,
        average_order_value: 300.0,
        first_order_date: days_ago(5),
        last_order_date: days_ago(5),
        abandoned_checkout_date: days_ago(6),
        rfm_group: RfmGroup::New,
        churn_risk: ChurnRisk::Low,
        predicted_clv: 900.0,
        ..CustomerFacts::prospect("g")
    };
    assert_eq!(
        keys(&catalog, &ctx, &g),
        set(&[
            "rfm_new",
            "stage_new",
            "first_time_buyer",
            "high_aov",
            "full_price",
            "hero",
            "churn_risk_low",
            "tier_silver",
        ])
    );

    // A prospect who abandoned a checkout: no churn band, no tier.
    let p = CustomerFacts {
        abandoned_checkout_date: days_ago(2),
        ..CustomerFacts::prospect("p")
    };
    assert_eq!(
        keys(&catalog, &ctx, &p),
        set(&["rfm_prospects", "stage_prospect", "cart_abandoner"])
    );
    // ... but not once the abandonment is older than the window.
    let stale = CustomerFacts {
        abandoned_checkout_date: days_ago(31),
        ..p.clone()
    };
    assert_eq!(
        keys(&catalog, &ctx, &stale),
        set(&["rfm_prospects", "stage_prospect"])
    );
}

#[test]
fn tiers_follow_configured_basis_and_minimums() {
    let mut settings = SegmentSettings::default();
    settings.thresholds.tiers.basis = TierBasis::PredictedClv;
    settings.thresholds.tiers.silver_min = 100.0;
    settings.thresholds.tiers.gold_min = 200.0;
    settings.thresholds.tiers.platinum_min = 300.0;
    let catalog = SegmentCatalog::new(&settings).unwrap();
    let ctx = ShopContext::default();
    for (clv, tier) in [
        (0.0, "tier_bronze"),
        (100.0, "tier_silver"),
        (299.99, "tier_gold"),
        (300.0, "tier_platinum"),
    ] {
        let f = CustomerFacts {
            predicted_clv: clv,
            ..buyer("t", 1, 10_000.0, 1)
        };
        let k = keys(&catalog, &ctx, &f);
        let tiers: Vec<&String> = k.iter().filter(|k| k.starts_with("tier_")).collect();
        assert_eq!(tiers, [tier], "clv {clv}");
    }
    settings.thresholds.tiers.gold_min = 50.0;
    assert!(matches!(
        SegmentCatalog::new(&settings),
        Err(CatalogError::Threshold(_))
    ));
}

#[test]
fn custom_segments_are_validated_and_evaluated() {
    let settings = SegmentSettings {
        custom: vec![
            CustomSegmentDef {
                key: "vip-lapsed".into(),
                rule: "customer_tags CONTAINS 'vip' AND last_order_date < -60d".into(),
                publish_as_tag: true,
            },
            CustomSegmentDef {
                key: "gmail".into(),
                rule: "customer_email_domain = 'gmail.com'".into(),
                publish_as_tag: false,
            },
        ],
        ..Default::default()
    };
    let catalog = SegmentCatalog::new(&settings).unwrap();
    let f = CustomerFacts {
        customer_tags: vec!["VIP".into()],
        email_domain: Some("gmail.com".into()),
        ..buyer("v", 2, 100.0, 61)
    };
    let k = keys(&catalog, &ShopContext::default(), &f);
    assert!(k.contains("vip-lapsed") && k.contains("gmail"), "{k:?}");
    assert!(catalog.published(catalog.id_of("vip-lapsed").unwrap()));
    assert!(!catalog.published(catalog.id_of("gmail").unwrap()));

    let bad = |key: &str, rule: &str| {
        SegmentCatalog::new(&SegmentSettings {
            custom: vec![CustomSegmentDef {
                key: key.into(),
                rule: rule.into(),
                publish_as_tag: true,
            }],
            ..Default::default()
        })
        .unwrap_err()
    };
    match bad("vip", "rfm_group > 3") {
        CatalogError::Rule { key, error } => {
            assert_eq!(key, "vip");
            assert_eq!(error.column, 11);
        }
        e => panic!("{e}"),
    }
    assert!(matches!(
        bad("VIP", "number_of_orders > 1"),
        CatalogError::InvalidKey(_)
    ));
    assert!(matches!(
        bad("-x", "number_of_orders > 1"),
        CatalogError::InvalidKey(_)
    ));
    // A custom key may not shadow a built-in tag slug or key.
    assert!(matches!(
        bad("champions", "number_of_orders > 1"),
        CatalogError::DuplicateKey(_)
    ));
    assert!(matches!(
        bad("tier-gold", "number_of_orders > 1"),
        CatalogError::DuplicateKey(_)
    ));
    assert!(matches!(
        bad("hero", "number_of_orders > 1"),
        CatalogError::DuplicateKey(_)
    ));

    let unknown = SegmentCatalog::new(&SegmentSettings {
        unpublished_builtins: vec!["champs".into()],
        ..Default::default()
    });
    assert!(matches!(unknown, Err(CatalogError::UnknownBuiltin { .. })));
}

#[test]
fn more_than_64_custom_segments_are_tracked() {
    let custom: Vec<CustomSegmentDef> = (0..130)
        .map(|i| CustomSegmentDef {
            key: format!("orders-{i}"),
            rule: format!("number_of_orders >= {i}"),
            publish_as_tag: true,
        })
        .collect();
    let catalog = SegmentCatalog::new(&SegmentSettings {
        custom,
        ..Default::default()
    })
    .unwrap();
    let ctx = ShopContext::default();
    let m = catalog
        .evaluator(&ctx, now())
        .membership(&buyer("b", 100, 1.0, 1));
    let custom_in: Vec<u16> = m
        .ids()
        .filter_map(|id| match id {
            SegmentId::Custom(i) => Some(i),
            SegmentId::Builtin(_) => None,
        })
        .collect();
    assert_eq!(custom_in, (0..=100).collect::<Vec<u16>>());
    assert!(m.contains(SegmentId::Custom(100)) && !m.contains(SegmentId::Custom(101)));
}

#[test]
fn thresholds_deserialise_with_defaults() {
    let t: BuiltinThresholds =
        serde_json::from_str(r#"{"at_risk_after_days": 60, "tiers": {"gold_min": 700}}"#).unwrap();
    assert_eq!(t.at_risk_after_days, 60);
    assert_eq!(t.lapsed_after_days, 365);
    assert_eq!(t.tiers.gold_min, 700.0);
    assert_eq!(t.tiers.silver_min, 250.0);
    let bad = BuiltinThresholds {
        hero_top_share: 0.0,
        ..Default::default()
    };
    assert!(bad.validate().is_err());
}
