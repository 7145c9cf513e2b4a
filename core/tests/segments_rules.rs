//! The rule language: a table of valid and invalid rules (with error positions), evaluation
//! against sample facts, and the canonical-text round trip.

use chrono::{DateTime, TimeZone, Utc};
use lifecycle_core::segments::{CustomerFacts, Segment};
use lifecycle_core::types::{ChurnRisk, RfmGroup};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

fn now() -> DateTime<Utc> {
    at(2025, 6, 30)
}

/// A repeat customer: 3 orders, 450 spent, last order 120 days before `now`.
fn alice() -> CustomerFacts {
    CustomerFacts {
        number_of_orders: 3,
        amount_spent: 450.0,
        average_order_value: 150.0,
        first_order_date: Some(at(2024, 1, 15)),
        last_order_date: Some(at(2025, 3, 2)),
        abandoned_checkout_date: Some(at(2025, 6, 20)),
        customer_added_date: Some(at(2024, 1, 10)),
        customer_tags: vec![
            "VIP".into(),
            " wholesale ".into(),
            "lifecycle:champions".into(),
        ],
        email_domain: Some("gmail.com".into()),
        rfm_group: RfmGroup::AtRisk,
        churn_risk: ChurnRisk::High,
        predicted_clv: 180.5,
        p_alive: 0.35,
        discount_order_share: 2.0 / 3.0,
        refunds_or_cancellations: 1,
        last_refund_or_cancellation_date: Some(at(2025, 6, 1)),
        ..CustomerFacts::prospect("gid://shopify/Customer/1")
    }
}

fn bob() -> CustomerFacts {
    CustomerFacts::prospect("gid://shopify/Customer/2")
}

/// (rule, matches alice, matches bob)
const VALID: &[(&str, bool, bool)] = &[
    (
        "number_of_orders >= 2 AND last_order_date < -90d AND amount_spent > 200",
        true,
        false,
    ),
    ("number_of_orders = 3", true, false),
    ("number_of_orders != 3", false, true),
    ("amount_spent <= 450", true, true),
    ("amount_spent < 450", false, true),
    ("amount_spent BETWEEN 400 AND 500", true, false),
    ("amount_spent between 0 and 0", false, true),
    ("average_order_value > 149.99", true, false),
    ("predicted_clv > 100", true, false),
    ("p_alive < 0.5 AND p_alive >= 0", true, true),
    ("discount_order_share > 0.5", true, false),
    ("refunds_or_cancellations >= 1", true, false),
    // Relative dates: 2025-06-30 minus 120 days is 2025-03-02, alice's last order.
    ("last_order_date = -120d", true, false),
    ("last_order_date < -119d", true, false),
    ("last_order_date < -120d", false, false),
    ("last_order_date <= -120d", true, false),
    ("last_order_date > -4w", false, false),
    ("last_order_date BETWEEN -5m AND -3m", true, false),
    ("last_order_date BETWEEN -3m AND -5m", true, false),
    ("first_order_date < -1y", true, false),
    ("first_order_date = 2024-01-15", true, false),
    ("first_order_date > 2024-01-15", false, false),
    (
        "first_order_date BETWEEN 2024-01-01 AND 2024-01-31",
        true,
        false,
    ),
    ("last_order_date IS NULL", false, true),
    ("last_order_date IS NOT NULL", true, false),
    ("customer_added_date is null", false, true),
    ("last_refund_or_cancellation_date > -30d", true, false),
    ("NOT last_order_date < -90d", false, true),
    ("customer_tags CONTAINS 'vip'", true, false),
    ("customer_tags CONTAINS 'WHOLESALE'", true, false),
    ("customer_tags CONTAINS 'whole'", false, false),
    ("customer_tags NOT CONTAINS 'vip'", false, true),
    ("customer_tags IS NULL", false, true),
    (
        "customer_tags CONTAINS \"lifecycle:champions\"",
        true,
        false,
    ),
    ("customer_email_domain = 'GMAIL.com'", true, false),
    ("customer_email_domain != 'gmail.com'", false, false),
    ("customer_email_domain IS NULL", false, true),
    ("rfm_group = AT_RISK", true, false),
    ("rfm_group = 'at_risk'", true, false),
    ("rfm_group != PROSPECTS", true, false),
    ("rfm_group = PROSPECTS", false, true),
    ("churn_risk = HIGH", true, false),
    ("churn_risk = low", false, true),
    (
        "(rfm_group = CHAMPIONS OR churn_risk = HIGH) AND number_of_orders > 1",
        true,
        false,
    ),
    (
        "rfm_group = CHAMPIONS OR churn_risk = HIGH AND number_of_orders > 1",
        true,
        false,
    ),
    ("rfm_group = CHAMPIONS OR number_of_orders = 0", false, true),
    (
        "NOT (number_of_orders > 0 OR customer_tags CONTAINS 'x')",
        false,
        true,
    ),
    ("NOT NOT number_of_orders > 0", true, false),
    ("((((number_of_orders > 0))))", true, false),
    ("amount_spent > -5", true, true),
    ("number_of_orders>=2 and amount_spent>200", true, false),
];

#[test]
fn valid_rules_evaluate_as_expected() {
    for (rule, alice_in, bob_in) in VALID {
        let seg = Segment::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(seg.matches(&alice(), now()), *alice_in, "alice: {rule}");
        assert_eq!(seg.matches(&bob(), now()), *bob_in, "bob: {rule}");
    }
}

#[test]
fn canonical_text_round_trips() {
    for (rule, _, _) in VALID {
        let Ok(seg) = Segment::compile(rule) else {
            continue;
        };
        let text = seg.to_string();
        let again = Segment::compile(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(again, seg, "{rule} -> {text}");
        assert_eq!(again.to_string(), text);
    }
    let seg = Segment::compile("(a_b_c_is_bad = 1)");
    assert!(seg.is_err());
    let seg =
        Segment::compile("number_of_orders>=2 and (rfm_group=at_risk or churn_risk = 'high')")
            .unwrap();
    assert_eq!(
        seg.to_string(),
        "number_of_orders >= 2 AND (rfm_group = AT_RISK OR churn_risk = HIGH)"
    );
    let seg = Segment::compile("customer_tags CONTAINS 'it\\'s'").unwrap();
    assert_eq!(seg.to_string(), "customer_tags CONTAINS 'it\\'s'");
    assert!(seg.matches(
        &CustomerFacts {
            customer_tags: vec!["It's".into()],
            ..bob()
        },
        now()
    ));
}

/// (rule, 1-based column, part of the message)
const INVALID: &[(&str, usize, &str)] = &[
    (
        "number_of_orders >= abc",
        21,
        "expected a number after `>=`, found `abc`",
    ),
    (
        "number_of_orders >=",
        20,
        "expected a number after `>=`, found end of rule",
    ),
    (
        "number_orders > 2",
        1,
        "unknown attribute `number_orders`; valid attributes: number_of_orders, amount_spent",
    ),
    (
        "rfm_group > 3",
        11,
        "operator `>` does not apply to `rfm_group` (an RFM group); use =, !=",
    ),
    (
        "churn_risk BETWEEN LOW AND HIGH",
        12,
        "operator `BETWEEN` does not apply to `churn_risk`",
    ),
    (
        "rfm_group = AT_RSK",
        13,
        "expected an RFM group (CHAMPIONS, LOYAL",
    ),
    (
        "churn_risk = 3",
        14,
        "expected a churn risk level (LOW, MEDIUM, HIGH) after `=`, found `3`",
    ),
    (
        "abandoned_checkout_date > last_order_date",
        27,
        "after `>`, found `last_order_date`",
    ),
    (
        "last_order_date < 200",
        19,
        "expected a date (YYYY-MM-DD) or a relative date",
    ),
    (
        "last_order_date < 90d",
        19,
        "relative dates count back from today: write `-90d`",
    ),
    (
        "last_order_date < 2024-02-30",
        19,
        "`2024-02-30` is not a valid calendar date",
    ),
    ("last_order_date < -90x", 19, "`-90x` is not a number"),
    ("last_order_date < -9999999d", 19, "too far back"),
    (
        "amount_spent > $200",
        16,
        "unexpected character `$`; amounts are written without a currency symbol",
    ),
    (
        "amount_spent BETWEEN 500 AND 100",
        22,
        "BETWEEN bounds are reversed",
    ),
    (
        "amount_spent BETWEEN 100 OR 500",
        26,
        "expected AND between the two BETWEEN bounds, found `OR`",
    ),
    (
        "amount_spent IS NULL",
        14,
        "operator `IS NULL` does not apply to `amount_spent` (a number)",
    ),
    (
        "customer_tags = 'vip'",
        15,
        "operator `=` does not apply to `customer_tags`",
    ),
    (
        "customer_tags CONTAINS vip",
        24,
        "expected a tag in quotes, e.g. 'vip', after `CONTAINS`, found `vip`",
    ),
    ("customer_tags CONTAINS ''", 24, "a tag must not be empty"),
    ("customer_tags CONTAINS 'vip", 24, "unterminated text"),
    (
        "customer_email_domain < 'a'",
        23,
        "operator `<` does not apply",
    ),
    (
        "number_of_orders > 2 AND",
        25,
        "expected a condition such as `number_of_orders >= 2`, found end of rule",
    ),
    (
        "number_of_orders > 2 amount_spent > 3",
        22,
        "expected AND, OR or end of rule, found `amount_spent`",
    ),
    (
        "(number_of_orders > 2",
        22,
        "expected AND, OR or `)` to close the `(` at 1, found end of rule",
    ),
    ("number_of_orders > 2)", 21, "unmatched `)`"),
    ("AND number_of_orders > 2", 1, "expected a condition"),
    (
        "",
        1,
        "expected a condition such as `number_of_orders >= 2`, found end of rule",
    ),
    (
        "number_of_orders",
        17,
        "expected an operator (=, !=, <, <=, >, >=, BETWEEN) after `number_of_orders`, found end of rule",
    ),
    (
        "last_order_date IS EMPTY",
        20,
        "expected NULL or NOT NULL after `IS`, found `EMPTY`",
    ),
    ("number_of_orders ~ 2", 18, "unexpected character `~`"),
    // Columns count characters, not bytes: `é` is two bytes.
    (
        "customer_tags CONTAINS 'café' AND x > 1",
        35,
        "unknown attribute `x`",
    ),
];

#[test]
fn invalid_rules_report_position_and_expectation() {
    for (rule, column, message) in INVALID {
        let err = Segment::compile(rule).expect_err(rule);
        assert!(
            err.message.contains(message),
            "{rule}: message `{}` lacks `{message}`",
            err.message
        );
        assert_eq!(err.column, *column, "{rule}: {err}");
        // The span points at the same place as the column, in bytes.
        assert_eq!(
            rule[..err.span.start].chars().count() + 1,
            err.column,
            "{rule}"
        );
        assert!(err.span.end <= rule.len(), "{rule}");
        assert!(err.to_string().starts_with(&format!("at {column}: ")));
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}number_of_orders > 1{}", "(".repeat(200), ")".repeat(200));
    let err = Segment::compile(&deep).unwrap_err();
    assert!(err.message.contains("nested more than"), "{err}");
    let not_chain = format!("{}number_of_orders > 1", "NOT ".repeat(500));
    assert!(Segment::compile(&not_chain).is_err());
    let ok = format!("{}number_of_orders > 1{}", "(".repeat(30), ")".repeat(30));
    assert!(Segment::compile(&ok).is_ok());
}

#[test]
fn month_arithmetic_follows_the_calendar() {
    // One month before 31 March is the last day of February.
    let now = at(2024, 3, 31);
    let f = CustomerFacts {
        number_of_orders: 1,
        last_order_date: Some(at(2024, 2, 29)),
        ..bob()
    };
    assert!(
        Segment::compile("last_order_date = -1m")
            .unwrap()
            .matches(&f, now)
    );
    assert!(Segment::compile("last_order_date = -1y").unwrap().matches(
        &CustomerFacts {
            last_order_date: Some(at(2023, 3, 31)),
            ..f.clone()
        },
        now
    ));
}

#[test]
fn evaluation_is_total_on_odd_data() {
    let odd = CustomerFacts {
        amount_spent: f64::NAN,
        predicted_clv: f64::INFINITY,
        last_order_date: Some(DateTime::<Utc>::MIN_UTC),
        customer_tags: vec!["".into(), "   ".into()],
        ..bob()
    };
    // A NaN amount satisfies no comparison; blank tags count as no tags.
    let seg = Segment::compile(
        "amount_spent >= 0 OR amount_spent < 0 OR amount_spent = 0 OR customer_tags IS NOT NULL",
    )
    .unwrap();
    assert!(!seg.matches(&odd, now()));
    // Extreme dates resolve without overflow, at either end of chrono's range.
    let far = Segment::compile("last_order_date < -100000y").unwrap();
    assert!(far.matches(&odd, now()));
    assert!(far.matches(&odd, DateTime::<Utc>::MAX_UTC));
    assert!(!far.matches(&odd, DateTime::<Utc>::MIN_UTC));
    assert!(
        Segment::compile("predicted_clv > 1000000")
            .unwrap()
            .matches(&odd, now())
    );
    assert!(
        Segment::compile("customer_tags IS NULL")
            .unwrap()
            .matches(&odd, DateTime::<Utc>::MAX_UTC)
    );
}
