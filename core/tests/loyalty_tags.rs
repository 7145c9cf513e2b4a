//! The tag plan: diff semantics, idempotence, and that merchant tags are never touched.

use chrono::{DateTime, TimeZone, Utc};
use lifecycle_core::loyalty::{CustomerTags, TagAction, TagChange, TagPlanner, TagPrefix};
use lifecycle_core::segments::{
    CustomSegmentDef, CustomerFacts, Membership, SegmentCatalog, SegmentSettings, ShopContext,
};
use lifecycle_core::types::{ChurnRisk, RfmGroup};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 12, 0, 0).unwrap()
}

/// Only a few segments published, so the expected tag sets stay readable.
fn catalog() -> SegmentCatalog {
    let keep = [
        "rfm_champions",
        "rfm_at_risk",
        "first_time_buyer",
        "tier_gold",
        "tier_silver",
    ];
    let unpublished = lifecycle_core::segments::BuiltinSegment::all()
        .iter()
        .map(|s| s.key().to_string())
        .filter(|k| !keep.contains(&k.as_str()))
        .collect();
    SegmentCatalog::new(&SegmentSettings {
        unpublished_builtins: unpublished,
        custom: vec![CustomSegmentDef {
            key: "vip".into(),
            rule: "customer_tags CONTAINS 'vip'".into(),
            publish_as_tag: true,
        }],
        ..Default::default()
    })
    .unwrap()
}

fn champion_gold(id: &str, tags: &[&str]) -> CustomerFacts {
    CustomerFacts {
        number_of_orders: 1,
        amount_spent: 600.0,
        average_order_value: 600.0,
        first_order_date: Some(now()),
        last_order_date: Some(now()),
        rfm_group: RfmGroup::Champions,
        churn_risk: ChurnRisk::Low,
        customer_tags: tags.iter().map(|s| s.to_string()).collect(),
        ..CustomerFacts::prospect(id)
    }
}

fn membership(catalog: &SegmentCatalog, f: &CustomerFacts) -> Membership {
    catalog
        .evaluator(&ShopContext::default(), now())
        .membership(f)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What the shop holds after applying a change (tagsAdd / tagsRemove semantics).
fn apply(current: &[String], change: &TagChange) -> Vec<String> {
    let mut out: Vec<String> = current
        .iter()
        .filter(|t| !change.remove.contains(&t.trim().to_string()))
        .cloned()
        .collect();
    for a in &change.add {
        if !out.iter().any(|t| t.eq_ignore_ascii_case(a)) {
            out.push(a.clone());
        }
    }
    out
}

#[test]
fn first_run_adds_the_desired_tags_with_reasons() {
    let catalog = catalog();
    let planner = TagPlanner::new(&catalog, TagPrefix::default());
    let f = champion_gold("c1", &["VIP", "newsletter"]);
    let m = membership(&catalog, &f);
    let change = planner
        .plan_customer(
            CustomerTags {
                customer_id: "c1",
                current: &f.customer_tags,
                last_pushed: &[],
            },
            &m,
        )
        .unwrap();
    assert_eq!(
        change.add,
        strings(&[
            "lifecycle:champions",
            "lifecycle:first-time-buyer",
            "lifecycle:tier-gold",
            "lifecycle:vip"
        ])
    );
    assert!(change.remove.is_empty());
    let reasons: Vec<(&str, Option<&str>)> = change
        .reasons
        .iter()
        .map(|r| (r.tag.as_str(), r.segment_key.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("lifecycle:champions", Some("rfm_champions")),
            ("lifecycle:first-time-buyer", Some("first_time_buyer")),
            ("lifecycle:tier-gold", Some("tier_gold")),
            ("lifecycle:vip", Some("vip")),
        ]
    );
    assert!(change.reasons.iter().all(|r| r.action == TagAction::Add));
}

#[test]
fn plan_is_the_difference_and_a_second_run_is_empty() {
    let catalog = catalog();
    let planner = TagPlanner::new(&catalog, TagPrefix::default());
    let merchant = [
        "VIP",
        "Lifecycle:champions",   // case variation of the prefix: the merchant's
        "LIFECYCLE:tier-silver", // ditto, even though it names one of our slugs
        "my-lifecycle:at-risk",  // contains the prefix text in the middle
        "x lifecycle:stale",     // ditto
        "lifecycle",             // the prefix word without its colon
        "wholesale",
    ];
    let mut current: Vec<String> = strings(&merchant);
    current.push("lifecycle:at-risk".into()); // ours, pushed earlier
    current.push(" lifecycle:old-segment ".into()); // ours, from a deleted segment
    let last_pushed = strings(&["lifecycle:at-risk", "lifecycle:tier-gold"]);

    let f = champion_gold("c1", &[]);
    let f = CustomerFacts {
        customer_tags: current.clone(),
        ..f
    };
    let m = membership(&catalog, &f);
    let change = planner
        .plan_customer(
            CustomerTags {
                customer_id: "c1",
                current: &current,
                last_pushed: &last_pushed,
            },
            &m,
        )
        .unwrap();
    // tier-gold was pushed and is still desired: not re-added.
    assert_eq!(
        change.add,
        strings(&[
            "lifecycle:champions",
            "lifecycle:first-time-buyer",
            "lifecycle:vip"
        ])
    );
    assert_eq!(
        change.remove,
        strings(&["lifecycle:at-risk", "lifecycle:old-segment"])
    );
    let removal_reasons: Vec<Option<&str>> = change
        .reasons
        .iter()
        .filter(|r| r.action == TagAction::Remove)
        .map(|r| r.segment_key.as_deref())
        .collect();
    assert_eq!(removal_reasons, [Some("rfm_at_risk"), None]);
    for tag in change.add.iter().chain(&change.remove) {
        assert!(tag.starts_with("lifecycle:"), "{tag}");
    }

    // Apply, record what was pushed, plan again: nothing to do, merchant tags intact.
    let after = apply(&current, &change);
    for t in merchant {
        assert!(after.iter().any(|a| a == t), "merchant tag {t} lost");
    }
    let pushed = planner.desired_tags(&m);
    let again = planner.plan_customer(
        CustomerTags {
            customer_id: "c1",
            current: &after,
            last_pushed: &pushed,
        },
        &m,
    );
    assert_eq!(again, None);
}

#[test]
fn merchant_tags_are_never_in_a_plan_even_when_segments_empty() {
    let catalog = catalog();
    let planner = TagPlanner::new(&catalog, TagPrefix::new("LC:").unwrap());
    let prospect = CustomerFacts::prospect("p");
    let m = membership(&catalog, &prospect);
    let current = strings(&["lc:vip", "Lc:gold", "xLC:y", "LC", "LC :z", "LC:champions"]);
    let change = planner
        .plan_customer(
            CustomerTags {
                customer_id: "p",
                current: &current,
                // A pushed tag of a different prefix (the shop changed its prefix) stays.
                last_pushed: &strings(&["lifecycle:champions"]),
            },
            &m,
        )
        .unwrap();
    assert!(change.add.is_empty());
    assert_eq!(change.remove, strings(&["LC:champions"]));
}

#[test]
fn a_run_with_no_change_plans_nothing_for_many_customers() {
    let catalog = catalog();
    let planner = TagPlanner::new(&catalog, TagPrefix::default());
    let facts: Vec<CustomerFacts> = (0..50)
        .map(|i| {
            let mut f = champion_gold(&format!("c{i}"), &["merchant-tag"]);
            f.amount_spent = f64::from(i) * 20.0;
            f.rfm_group = if i % 2 == 0 {
                RfmGroup::Champions
            } else {
                RfmGroup::AtRisk
            };
            f
        })
        .collect();
    let memberships: Vec<Membership> = facts.iter().map(|f| membership(&catalog, f)).collect();
    let empty: Vec<String> = Vec::new();
    let first = planner.plan(facts.iter().zip(&memberships).map(|(f, m)| {
        (
            CustomerTags {
                customer_id: &f.customer_id,
                current: &f.customer_tags,
                last_pushed: &empty,
            },
            m,
        )
    }));
    assert_eq!(first.len(), 50);

    let shop: Vec<Vec<String>> = facts
        .iter()
        .zip(&first)
        .map(|(f, c)| apply(&f.customer_tags, c))
        .collect();
    let pushed: Vec<Vec<String>> = memberships
        .iter()
        .map(|m| planner.desired_tags(m))
        .collect();
    let second = planner.plan(
        facts
            .iter()
            .zip(&memberships)
            .enumerate()
            .map(|(i, (f, m))| {
                (
                    CustomerTags {
                        customer_id: &f.customer_id,
                        current: &shop[i],
                        last_pushed: &pushed[i],
                    },
                    m,
                )
            }),
    );
    assert!(second.is_empty(), "{second:?}");
}

#[test]
fn prefix_is_validated() {
    assert!(TagPrefix::new("").is_err());
    assert!(TagPrefix::new("a,b:").is_err());
    assert!(TagPrefix::new(" lc:").is_err());
    assert!(TagPrefix::new(&"x".repeat(41)).is_err());
    assert_eq!(TagPrefix::default().as_str(), "lifecycle:");
    let p: Result<TagPrefix, _> = serde_json::from_str("\"a,b\"");
    assert!(p.is_err());
}
