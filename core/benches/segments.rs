//! Segment evaluation and tag planning for 1,000,000 synthetic customers.
//!
//! Prints time, throughput, per-chunk latency percentiles and peak memory (VmHWM), next to a
//! baseline measured in the same run: the same custom rules written as a Rust closure.
//! Run: `cargo bench -p lifecycle-core --bench segments` (release). `SEGMENTS_N` changes n.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifecycle_core::loyalty::{CustomerTags, TagPlanner, TagPrefix};
use lifecycle_core::segments::{
    CustomSegmentDef, CustomerFacts, Membership, SegmentCatalog, SegmentSettings, ShopContext,
};
use lifecycle_core::types::{ChurnRisk, RfmGroup};
use std::hint::black_box;
use std::time::Instant;

const RULES: [(&str, &str); 3] = [
    (
        "lapsed-big",
        "number_of_orders >= 2 AND last_order_date < -90d AND amount_spent > 200",
    ),
    (
        "vip-risk",
        "customer_tags CONTAINS 'vip' AND (rfm_group = AT_RISK OR churn_risk = HIGH)",
    ),
    (
        "gmail-new",
        "customer_email_domain = 'gmail.com' AND first_order_date BETWEEN -30d AND -1d AND NOT predicted_clv < 50",
    ),
];

/// The same rules by hand, as the baseline.
fn hand_written(f: &CustomerFacts, now: DateTime<Utc>) -> [bool; 3] {
    let day = |t: DateTime<Utc>| t.timestamp().div_euclid(86_400);
    let today = day(now);
    let a = f.number_of_orders >= 2
        && f.last_order_date.is_some_and(|t| day(t) < today - 90)
        && f.amount_spent > 200.0;
    let b = f
        .customer_tags
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case("vip"))
        && (f.rfm_group == RfmGroup::AtRisk || f.churn_risk == ChurnRisk::High);
    let c = f
        .email_domain
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("gmail.com"))
        && f.first_order_date
            .is_some_and(|t| (today - 30..=today - 1).contains(&day(t)))
        && f.predicted_clv >= 50.0;
    [a, b, c]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast and deterministic; quality is ample for synthetic data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn synth(n: usize, now: DateTime<Utc>) -> Vec<CustomerFacts> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let domains = ["gmail.com", "yahoo.com", "example.org", "outlook.com"];
    (0..n)
        .map(|i| {
            let orders = if r.below(5) == 0 {
                0
            } else {
                1 + r.below(12) as u32
            };
            let spent = if orders == 0 {
                0.0
            } else {
                f64::from(orders) * (10.0 + 190.0 * r.unit())
            };
            let first = now - Duration::days(30 + r.below(1500) as i64);
            let last =
                first + Duration::days(r.below(((now - first).num_days()).max(1) as u64) as i64);
            let mut tags = vec![format!("merchant-{}", r.below(50))];
            if r.below(10) == 0 {
                tags.push("VIP".into());
            }
            if r.below(3) == 0 {
                tags.push("lifecycle:champions".into());
            }
            CustomerFacts {
                customer_id: format!("gid://shopify/Customer/{i}"),
                number_of_orders: orders,
                amount_spent: spent,
                average_order_value: if orders == 0 {
                    0.0
                } else {
                    spent / f64::from(orders)
                },
                first_order_date: (orders > 0).then_some(first),
                last_order_date: (orders > 0).then_some(last),
                abandoned_checkout_date: (r.below(8) == 0)
                    .then(|| now - Duration::days(r.below(60) as i64)),
                customer_added_date: Some(first - Duration::days(r.below(30) as i64)),
                customer_tags: tags,
                email_domain: Some(domains[r.below(4) as usize].to_string()),
                rfm_group: if orders == 0 {
                    RfmGroup::Prospects
                } else {
                    RfmGroup::ALL[r.below(10) as usize]
                },
                churn_risk: ChurnRisk::ALL[r.below(3) as usize],
                predicted_clv: spent * 0.6 * r.unit(),
                p_alive: r.unit(),
                discount_order_share: r.unit(),
                refunds_or_cancellations: (r.below(20) == 0) as u32,
                last_refund_or_cancellation_date: (r.below(20) == 0)
                    .then(|| now - Duration::days(r.below(200) as i64)),
            }
        })
        .collect()
}

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Times `f` over `n` items in chunks; returns (total seconds, p50, p99 of ns per item).
fn timed(n: usize, chunk: usize, mut f: impl FnMut(std::ops::Range<usize>)) -> (f64, f64, f64) {
    let mut per_item = Vec::with_capacity(n / chunk + 1);
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + chunk).min(n);
        let t = Instant::now();
        f(i..end);
        per_item.push(t.elapsed().as_nanos() as f64 / (end - i) as f64);
        i = end;
    }
    let total = start.elapsed().as_secs_f64();
    per_item.sort_by(f64::total_cmp);
    let pct = |p: f64| per_item[((per_item.len() - 1) as f64 * p).round() as usize];
    (total, pct(0.5), pct(0.99))
}

fn report(name: &str, n: usize, (secs, p50, p99): (f64, f64, f64)) {
    println!(
        "{name:<34} {:>8.1} ms  {:>6.2} M customers/s  per customer p50 {:>6.0} ns  p99 {:>6.0} ns  VmHWM {:>7.1} MiB",
        secs * 1e3,
        n as f64 / secs / 1e6,
        p50,
        p99,
        vm_hwm_mib()
    );
}

fn main() {
    let n: usize = std::env::var("SEGMENTS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let now = Utc.with_ymd_and_hms(2025, 6, 30, 12, 0, 0).unwrap();
    let base = vm_hwm_mib();
    let facts = synth(n, now);
    println!(
        "customers: {n}; VmHWM before data {base:.1} MiB, after data {:.1} MiB",
        vm_hwm_mib()
    );

    let settings = SegmentSettings {
        custom: RULES
            .iter()
            .map(|(k, r)| CustomSegmentDef {
                key: k.to_string(),
                rule: r.to_string(),
                publish_as_tag: true,
            })
            .collect(),
        ..Default::default()
    };
    let catalog = SegmentCatalog::new(&settings).expect("valid settings");
    const CHUNK: usize = 1_000;

    let mut ctx = ShopContext::default();
    let t = Instant::now();
    for _ in 0..3 {
        ctx = ShopContext::compute(&facts, catalog.thresholds());
    }
    println!(
        "{:<34} {:>8.1} ms  (cut points over all customers, mean of 3)",
        "shop context",
        t.elapsed().as_secs_f64() * 1e3 / 3.0
    );

    // Baseline and compiled rules, same three rules, same customers.
    let segs: Vec<_> = (0..RULES.len() as u16)
        .map(|i| catalog.custom_segment(i).expect("custom segment").at(now))
        .collect();
    let mut hits_hand = [0usize; 3];
    let hand = timed(n, CHUNK, |r| {
        for f in &facts[r] {
            for (h, m) in hits_hand.iter_mut().zip(hand_written(black_box(f), now)) {
                *h += m as usize;
            }
        }
    });
    report("3 rules, hand-written closure", n, hand);
    let mut hits_rule = [0usize; 3];
    let rules = timed(n, CHUNK, |r| {
        for f in &facts[r] {
            for (h, s) in hits_rule.iter_mut().zip(&segs) {
                *h += s.matches(black_box(f)) as usize;
            }
        }
    });
    report("3 rules, compiled rule language", n, rules);
    assert_eq!(hits_hand, hits_rule, "rule language and baseline disagree");
    println!(
        "{:<34} {:>8.2}x  (rule language / hand-written); matches per rule {hits_rule:?}",
        "ratio",
        rules.0 / hand.0
    );

    // Full membership: 33 built-ins + 3 custom, stored for the plan.
    let ev = catalog.evaluator(&ctx, now);
    let mut memberships: Vec<Membership> = Vec::with_capacity(n);
    let full = timed(n, CHUNK, |r| {
        memberships.extend(facts[r].iter().map(|f| ev.membership(f)));
    });
    report("membership (33 built-in + 3 custom)", n, full);

    // Tag plan: 90% of customers already carry exactly their tags (no change), 10% are new.
    let planner = TagPlanner::new(&catalog, TagPrefix::default());
    let pushed: Vec<Vec<String>> = memberships
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i % 10 == 0 {
                Vec::new()
            } else {
                planner.desired_tags(m)
            }
        })
        .collect();
    let current: Vec<Vec<String>> = facts
        .iter()
        .zip(&pushed)
        .map(|(f, p)| {
            let mut tags: Vec<String> = f
                .customer_tags
                .iter()
                .filter(|t| !t.starts_with("lifecycle:"))
                .cloned()
                .collect();
            tags.extend(p.iter().cloned());
            tags
        })
        .collect();
    println!(
        "{:<34} VmHWM {:>7.1} MiB",
        "tag state prepared",
        vm_hwm_mib()
    );
    let mut changes = Vec::new();
    let plan = timed(n, CHUNK, |r| {
        for i in r {
            let c = CustomerTags {
                customer_id: &facts[i].customer_id,
                current: &current[i],
                last_pushed: &pushed[i],
            };
            if let Some(ch) = planner.plan_customer(c, &memberships[i]) {
                changes.push(ch);
            }
        }
    });
    report("tag plan (10% changed)", n, plan);
    let adds: usize = changes.iter().map(|c| c.add.len()).sum();
    println!(
        "{:<34} {} customers changed, {adds} tags to add",
        "plan size",
        changes.len()
    );
    println!(
        "{:<34} {:>8.1} ms for {n} customers (membership + plan)",
        "segment run total",
        (full.0 + plan.0) * 1e3
    );
    println!("peak VmHWM {:.1} MiB", vm_hwm_mib());
}
