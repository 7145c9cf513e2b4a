//! The treatment-effect knob of live traffic: holders of a personal code use it on their next
//! order and, with an uplift, buy more often until then; everybody else is untouched, and the
//! natural events are the same whatever the uplift.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, TimeZone, Utc};
use lifecycle_sandbox::live::LiveMirror;
use lifecycle_sandbox::seed::{ShopSpec, build_shop};
use lifecycle_sandbox::state::Shop;
use lifecycle_sandbox::store::{DiscountCode, DiscountValue, Plan};

const CUSTOMERS: usize = 3_000;
const EVENTS: usize = 6_000;

struct Run {
    shop: Shop,
    holders: BTreeSet<u64>,
    others: BTreeSet<u64>,
    added: BTreeSet<u64>,
}

/// Every other customer (by id) gets a personal 10 % code, then `EVENTS` live events.
fn run(uplift: f64) -> Run {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let spec = ShopSpec {
        name: "uplift".into(),
        customers: CUSTOMERS,
        seed: 7,
        plan: Plan::Standard,
        history_days: 365,
        end: now,
        index: 0,
    };
    let (shop, config, from) = build_shop(&spec).unwrap();
    let mut mirror = LiveMirror::new(99, &config, from);
    mirror.set_uplift(uplift);
    let ids: Vec<u64> = shop.data.read().customers.values().map(|c| c.id).collect();
    let (mut holders, mut others) = (BTreeSet::new(), BTreeSet::new());
    for (i, id) in ids.into_iter().enumerate() {
        if i % 2 == 0 {
            shop.data
                .write()
                .add_discount(DiscountCode {
                    id: 0,
                    title: format!("Win-back LC-{id}"),
                    code: format!("LC-{id}"),
                    starts_at: now - Duration::days(1),
                    ends_at: Some(now + Duration::days(30)),
                    customer_ids: vec![id],
                    value: DiscountValue::Percentage(0.1),
                    usage_limit: Some(1),
                    applies_once_per_customer: true,
                    created_at: now,
                })
                .unwrap();
            holders.insert(id);
        } else {
            others.insert(id);
        }
    }
    for i in 0..EVENTS {
        let at = now + Duration::seconds(i as i64 + 1);
        // An event the store refuses (e.g. a refund beyond what is left) is skipped, as live.
        let _ = mirror.step(&shop, at);
    }
    let added = mirror.uplift_orders().iter().copied().collect();
    Run {
        shop,
        holders,
        others,
        added,
    }
}

/// Customers of `group` with a counting order (not cancelled, not fully refunded) since the
/// codes were given, leaving out the orders in `skip`.
fn buyers(r: &Run, group: &BTreeSet<u64>, skip: &BTreeSet<u64>) -> usize {
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let data = r.shop.data.read();
    let mut bought = BTreeSet::new();
    for o in data.orders.values() {
        let Some(c) = o.customer_id.filter(|c| group.contains(c)) else {
            continue;
        };
        let counts = o.cancelled_at.is_none() && o.current_total_minor() > 0;
        if o.created_at > start && counts && !skip.contains(&o.id) {
            bought.insert(c);
        }
    }
    bought.len()
}

#[test]
fn holders_use_their_code_and_buy_more_with_an_uplift() {
    let none = BTreeSet::new();
    let base = run(0.0);
    assert!(base.added.is_empty(), "no uplift, no extra orders");
    let lifted = run(0.3);
    assert!(!lifted.added.is_empty());

    // Every order of a holder after the codes carries their code until it is used; nobody
    // else's order carries one.
    let data = lifted.shop.data.read();
    let mut used: HashMap<u64, usize> = HashMap::new();
    for o in data.orders.values().filter(|o| o.id > 0) {
        let Some(c) = o.customer_id else { continue };
        let ours = o.discount_codes.iter().any(|d| d.starts_with("LC-"));
        if ours {
            assert!(lifted.holders.contains(&c));
            assert_eq!(o.discount_codes, vec![format!("LC-{c}")]);
            *used.entry(c).or_default() += 1;
        }
        if lifted.added.contains(&o.id) {
            assert!(lifted.holders.contains(&c), "only holders get extra orders");
            assert!(ours, "an extra order uses the code");
        }
    }
    assert!(used.values().all(|n| *n == 1), "a code is used once");
    drop(data);

    let n = lifted.holders.len() as f64;
    let rate = |r: &Run, g: &BTreeSet<u64>, skip: &BTreeSet<u64>| buyers(r, g, skip) as f64 / n;
    // Natural buying is the same in both groups and with or without the uplift (a binomial
    // standard error is about 0.012 here).
    let natural_holders = rate(&lifted, &lifted.holders, &lifted.added);
    let natural_others = rate(&lifted, &lifted.others, &none);
    let base_holders = rate(&base, &base.holders, &none);
    let base_others = rate(&base, &base.others, &none);
    eprintln!(
        "holders natural {natural_holders:.4} (with uplift {:.4}), others {natural_others:.4}; without uplift: holders {base_holders:.4}, others {base_others:.4}",
        rate(&lifted, &lifted.holders, &none)
    );
    for (a, b) in [
        (natural_holders, natural_others),
        (base_holders, base_others),
        (natural_holders, base_holders),
    ] {
        assert!((a - b).abs() < 0.04, "{a} vs {b}");
    }
    // With the uplift, holders buy more: at (1 + u) times the rate until the first order.
    let with_uplift = rate(&lifted, &lifted.holders, &none);
    let m = -(1.0 - natural_others).ln();
    let expected = 1.0 - (-(1.3) * m).exp();
    assert!(
        (with_uplift - expected).abs() < 0.04,
        "holders buy {with_uplift}, expected {expected} from the others' {natural_others}"
    );
}
