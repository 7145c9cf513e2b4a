//! The backtest on CDNOW (1/10 sample, calibration to 1997-09-30, holdout to 1998-06-30,
//! weeks) against Python lifetimes 0.11.3: `calibration_and_holdout_data(freq="D",
//! freq_multiplier=7)`, `BetaGeoFitter`, `GammaGammaFitter` and
//! `conditional_expected_number_of_purchases_up_to_time`, run on the same file. The fixture
//! `tests/data/cdnow_backtest_lifetimes.{csv,json}` holds lifetimes' numbers only; its
//! decile table ranks by lifetimes' predictions, highest first, ties in customer-id order,
//! decile k holding positions [k n/10, (k+1) n/10).

use std::fs::File;

use lifecycle_core::analytics::backtest::{
    self, BacktestOptions, CalibrationHoldout, Verdict, calibration_and_holdout,
};
use lifecycle_core::analytics::bgnbd::BgNbdParams;
use lifecycle_core::analytics::cli::parse_end;
use lifecycle_core::analytics::gamma_gamma::GammaGammaParams;
use lifecycle_core::analytics::readers::{Parsed, read_cdnow};
use lifecycle_core::analytics::{AnalysisOptions, TimeUnit};

fn open(path: &str) -> File {
    let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Reference {
    rows: Vec<Vec<f64>>,
    json: serde_json::Value,
}

fn reference() -> Reference {
    let rows = csv::Reader::from_reader(open("tests/data/cdnow_backtest_lifetimes.csv"))
        .records()
        .map(|r| r.unwrap().iter().map(|v| v.parse().unwrap()).collect())
        .collect();
    let json = serde_json::from_reader(open("tests/data/cdnow_backtest_lifetimes.json")).unwrap();
    Reference { rows, json }
}

// Columns of the fixture CSV.
const ID: usize = 0;
const FREQ_CAL: usize = 1;
const REC_CAL: usize = 2;
const T_CAL: usize = 3;
const M_CAL: usize = 4;
const FREQ_HOLD: usize = 5;
const REV_HOLD: usize = 6;
const PRED: usize = 7;
const P_ALIVE: usize = 8;
const SPEND: usize = 9;

fn split() -> (Vec<String>, CalibrationHoldout) {
    let Parsed::Orders { ids, input, .. } =
        read_cdnow(open("../tests/data/CDNOW_sample.txt")).unwrap()
    else {
        panic!("orders expected")
    };
    let s = calibration_and_holdout(
        &input,
        parse_end("1997-09-30").unwrap(),
        parse_end("1998-06-30").unwrap(),
        TimeUnit::Weeks,
    );
    (ids, s)
}

fn lifetimes_params(json: &serde_json::Value) -> (BgNbdParams, GammaGammaParams) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let (b, g) = (&json["bgnbd"], &json["gamma_gamma"]);
    (
        BgNbdParams {
            r: f(&b["r"]),
            alpha: f(&b["alpha"]),
            a: f(&b["a"]),
            b: f(&b["b"]),
        },
        GammaGammaParams {
            p: f(&g["p"]),
            q: f(&g["q"]),
            gamma: f(&g["gamma"]),
        },
    )
}

fn close(u: f64, v: f64, tol: f64) -> bool {
    (u - v).abs() <= tol * v.abs().max(1.0)
}

#[test]
fn calibration_and_holdout_summaries_equal_lifetimes_exactly() {
    let r = reference();
    let (ids, s) = split();
    assert_eq!(s.duration_holdout, 39.0);
    assert_eq!(r.json["duration_holdout"].as_f64(), Some(39.0));
    assert_eq!(s.rows.len(), r.rows.len());
    assert_eq!(s.rows.len(), 2357);
    for (row, want) in s.rows.iter().zip(&r.rows) {
        let id: f64 = ids[row.customer as usize].parse().unwrap();
        assert_eq!(id, want[ID]);
        assert_eq!(f64::from(row.frequency_cal), want[FREQ_CAL], "{id}");
        assert_eq!(row.recency_cal, want[REC_CAL], "{id}");
        assert_eq!(row.t_cal, want[T_CAL], "{id}");
        assert_eq!(f64::from(row.frequency_holdout), want[FREQ_HOLD], "{id}");
        // Sums of cents in another order: equal to rounding.
        assert!(close(row.monetary_value_cal, want[M_CAL], 1e-12), "{id}");
        assert!(close(row.revenue_holdout, want[REV_HOLD], 1e-12), "{id}");
    }
    let holdout: u32 = s.rows.iter().map(|r| r.frequency_holdout).sum();
    assert_eq!(holdout, 1882);
}

#[test]
fn predictions_at_lifetimes_parameters_equal_lifetimes_to_1e_6() {
    let r = reference();
    let (_, s) = split();
    let (bg, gg) = lifetimes_params(&r.json);
    let card = backtest::report_card(&s, &bg, &gg);
    for ((row, p), want) in card.rows.iter().zip(&r.rows) {
        let id = want[ID];
        assert_eq!(f64::from(row.frequency_cal), want[FREQ_CAL]);
        assert!(
            (p.predicted_purchases - want[PRED]).abs() < 1e-6,
            "{id}: {} vs {}",
            p.predicted_purchases,
            want[PRED]
        );
        assert!((p.p_alive - want[P_ALIVE]).abs() < 1e-9, "{id}");
        assert!((p.expected_spend - want[SPEND]).abs() < 1e-6, "{id}");
    }
    // The decile table lifetimes' predictions give, reproduced.
    let c = card.card.unwrap();
    let deciles = r.json["deciles"].as_array().unwrap();
    assert_eq!(c.deciles.len(), 10);
    for (ours, theirs) in c.deciles.iter().zip(deciles) {
        let f = |k: &str| theirs[k].as_f64().unwrap();
        assert_eq!(ours.customers as f64, f("customers"), "{ours:?}");
        assert_eq!(ours.actual_purchases, f("actual_purchases"), "{ours:?}");
        assert!(
            close(ours.actual_revenue, f("actual_revenue"), 1e-12),
            "{ours:?}"
        );
        assert!(
            close(ours.predicted_purchases, f("predicted_purchases"), 1e-9),
            "{ours:?}"
        );
        assert!(
            close(ours.predicted_revenue, f("predicted_revenue"), 1e-9),
            "{ours:?}"
        );
    }
}

#[test]
fn own_fit_matches_lifetimes_and_gives_the_same_deciles() {
    let r = reference();
    let (_, s) = split();
    let out = backtest::backtest_split(&s, &opts(), &BacktestOptions::default()).unwrap();
    let (bg, gg) = lifetimes_params(&r.json);
    let (ours_bg, ours_gg) = (out.bgnbd.unwrap(), out.gamma_gamma.unwrap());
    for (name, u, v) in [
        ("r", ours_bg.r, bg.r),
        ("alpha", ours_bg.alpha, bg.alpha),
        ("a", ours_bg.a, bg.a),
        ("b", ours_bg.b, bg.b),
        ("p", ours_gg.p, gg.p),
        ("q", ours_gg.q, gg.q),
        ("gamma", ours_gg.gamma, gg.gamma),
    ] {
        assert!((u - v).abs() <= 1e-4 * v, "{name}: {u} vs lifetimes {v}");
    }
    let c = out.card.as_ref().unwrap();
    let at_theirs = backtest::report_card(&s, &bg, &gg).card.unwrap();
    for (o, t) in c.deciles.iter().zip(&at_theirs.deciles) {
        assert_eq!(
            (o.customers, o.actual_purchases),
            (t.customers, t.actual_purchases)
        );
        assert!(
            close(o.predicted_purchases, t.predicted_purchases, 1e-4),
            "{o:?} {t:?}"
        );
    }
    // The model beats the naive rate on CDNOW.
    assert!(c.model.mae < c.baseline.mae, "{c:?}");
    assert_eq!(out.verdict, Verdict::GoodEnoughToTarget);
}

fn opts() -> AnalysisOptions {
    AnalysisOptions {
        time_unit: TimeUnit::Weeks,
        ..AnalysisOptions::default()
    }
}

#[test]
fn the_card_serialises_with_the_calibration_fit() {
    let (_, s) = split();
    let out = backtest::backtest_split(&s, &opts(), &BacktestOptions::default()).unwrap();
    let v = serde_json::to_value(&out).unwrap();
    for k in ["r", "alpha", "a", "b"] {
        assert!(v["bgnbd"][k].is_f64(), "bgnbd.{k}");
    }
    for k in ["p", "q", "gamma"] {
        assert!(v["gamma_gamma"][k].is_f64(), "gamma_gamma.{k}");
    }
    assert_eq!(v["verdict"], "good_enough_to_target");
    assert_eq!(v["deciles"].as_array().unwrap().len(), 10);
    assert!(v.get("rows").is_none());
}
