//! CLV ranges from the Laplace approximation, on the CDNOW summary.

use std::fs::File;

use chrono::{DateTime, Utc};
use lifecycle_core::analytics::features::CustomerFeatures;
use lifecycle_core::analytics::uncertainty::{
    ClvRange, UncertaintySettings, analysis_clv_ranges, clv_ranges, parameter_draws,
};
use lifecycle_core::analytics::{
    AnalysisOptions, TimeUnit, analyze_features, fit_model, score_all,
};

fn features() -> Vec<CustomerFeatures> {
    let path = format!(
        "{}/../tests/data/cdnow_customers_summary_with_transactions.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    csv::Reader::from_reader(File::open(path).unwrap())
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r: Vec<f64> = r.unwrap().iter().map(|v| v.parse().unwrap()).collect();
            CustomerFeatures {
                orders: r[1] as u32 + 1,
                frequency: r[1] as u32,
                recency: r[2],
                age: r[3],
                monetary_value: r[4],
                average_order_value: r[4].max(1.0),
                ..CustomerFeatures::prospect(i as u32)
            }
        })
        .collect()
}

/// Point CLVs and ranges of the first `n` customers, fitted on them alone.
fn ranges(n: usize, seed: u64) -> (Vec<f64>, Vec<ClvRange>) {
    let f: Vec<CustomerFeatures> = features().into_iter().take(n).collect();
    let opts = AnalysisOptions {
        time_unit: TimeUnit::Weeks,
        ..AnalysisOptions::default()
    };
    let now = DateTime::<Utc>::UNIX_EPOCH;
    let (model, compressed) = fit_model(&f, &opts, now).unwrap();
    assert!(model.fallbacks.is_empty(), "{:?}", model.fallbacks);
    let settings = UncertaintySettings { draws: 200, seed };
    let draws = parameter_draws(&model, &f, &compressed, &settings).unwrap();
    let point = score_all(&f, &model, &compressed, now)
        .iter()
        .map(|s| s.prediction.unwrap().clv)
        .collect();
    let r = clv_ranges(&f, &model, &compressed, &draws)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    (point, r)
}

fn mean_relative_width(point: &[f64], r: &[ClvRange], n: usize) -> f64 {
    (0..n)
        .map(|i| (r[i].p90 - r[i].p10) / point[i])
        .sum::<f64>()
        / n as f64
}

#[test]
fn ranges_contain_the_point_estimate_and_are_reproducible() {
    let (point, r) = ranges(2357, 1);
    for (i, (p, r)) in point.iter().zip(&r).enumerate() {
        assert!(
            r.p10 <= *p && *p <= r.p90 && r.p10 < r.p90,
            "{i}: {p} {r:?}"
        );
    }
    let (_, again) = ranges(2357, 1);
    assert_eq!(r, again);
    let (_, other) = ranges(2357, 2);
    assert_ne!(r, other);
    println!(
        "mean relative width (2357): {:.4}",
        mean_relative_width(&point, &r, 500)
    );
}

#[test]
fn ranges_widen_as_data_shrinks() {
    let (p_all, r_all) = ranges(2357, 1);
    let (p_few, r_few) = ranges(500, 1);
    let (all, few) = (
        mean_relative_width(&p_all, &r_all, 500),
        mean_relative_width(&p_few, &r_few, 500),
    );
    println!(
        "mean relative P10-P90 width of the first 500: fitted on 2357 {all:.4}, on 500 {few:.4}"
    );
    // Roughly √(2357/500) ≈ 2.2 times as wide; at least 1.5.
    assert!(few > 1.5 * all, "{few} vs {all}");
}

#[test]
fn ranges_of_a_finished_analysis_are_those_of_its_fit() {
    // `analysis_clv_ranges` rebuilds the fit's compressed rows from the analysis instead of
    // refitting: the ranges must be exactly those of `fit_model`'s own rows.
    let opts = AnalysisOptions {
        time_unit: TimeUnit::Weeks,
        ..AnalysisOptions::default()
    };
    let now = DateTime::<Utc>::UNIX_EPOCH;
    let f: Vec<CustomerFeatures> = features().into_iter().take(1200).collect();
    let settings = UncertaintySettings { draws: 30, seed: 5 };
    let analysis = analyze_features(f.clone(), &opts, now).unwrap();
    let got = analysis_clv_ranges(&analysis, &settings).unwrap();
    let (model, compressed) = fit_model(&f, &opts, now).unwrap();
    let draws = parameter_draws(&model, &f, &compressed, &settings).unwrap();
    assert_eq!(got, clv_ranges(&f, &model, &compressed, &draws));
    assert!(got.iter().all(Option::is_some));
}
