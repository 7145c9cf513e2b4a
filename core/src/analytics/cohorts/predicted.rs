//! The not-yet-observed part of the LTV curves, from the fitted model.
//!
//! Each customer's expected purchases in a window (a, b] after `now` are
//! P(alive) · (E[Y(b) | alive] − E[Y(a) | alive]) by the purchase model their prediction used
//! (the BG/NBD's conditional expectation, or the heuristic: see
//! `FittedModel::expected_purchases_if_alive`), times their expected value per purchase (the
//! Gamma-Gamma's conditional expectation, or the heuristic: `Prediction::expected_avg_value`),
//! summed over the cohort. The windows are calendar periods, the same for every cohort: the rest of the
//! period holding `now` (when it is partial) and the `horizon` whole periods after it. The
//! model counts purchase days (same-day orders once), so its "orders" are purchase days.
//!
//! The curve depends on a customer's (x, T) and method only, so each distinct one is
//! computed once, as in `model::score_all`.

use super::{Cohorts, PredictedCell, is_partial};
use crate::analytics::model::Method;
use crate::analytics::parallel::{KeyMap, map_blocks};
use crate::analytics::{AnalysisError, ShopAnalysis};

/// Fills each cohort's `predicted` cells from `analysis` (fitted at the cohorts' `now`, on the
/// same shop): the rest of the current period when it is partial, then `horizon` periods.
pub fn predict(
    cohorts: &mut Cohorts,
    analysis: &ShopAnalysis,
    horizon: u32,
) -> Result<(), AnalysisError> {
    let bad = |reason: String| AnalysisError::InvalidOption {
        name: "analysis",
        reason,
    };
    if analysis.now != cohorts.now {
        return Err(bad(format!(
            "fitted at {}, but the cohorts are at {}",
            analysis.now, cohorts.now
        )));
    }
    let (period, now) = (cohorts.period, cohorts.now);
    let Some(first_start) = cohorts.cohorts.first().map(|c| c.start) else {
        return Ok(());
    };
    let first = period.index_of_date(first_start);
    let current = period.index(now);
    let model = &analysis.model;
    let unit_seconds = model.time_unit.days() * 86_400.0;
    // Horizons from `now` to the end of the current period and of each period after it.
    let ends: Vec<f64> = (0..=horizon as i32)
        .map_while(|j| period.start_at(current + j + 1))
        .map(|end| (end - now).num_seconds() as f64 / unit_seconds)
        .collect();
    let windows = ends.len();

    // Row of each cohort index (cohorts are sorted, some periods have none).
    let mut row_of = vec![usize::MAX; (current - first + 1) as usize];
    for (row, c) in cohorts.cohorts.iter().enumerate() {
        row_of[(period.index_of_date(c.start) - first) as usize] = row;
    }

    // The distinct curves, and each buyer's.
    let buyers: Vec<usize> = analysis
        .customers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.score.prediction.is_some() && c.features.first_order_at.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut ids: KeyMap<(u64, u64, bool), u32> = KeyMap::default();
    let mut keys: Vec<(f64, f64, Method)> = Vec::new();
    let curve_of: Vec<u32> = buyers
        .iter()
        .map(|&i| {
            let c = &analysis.customers[i];
            let (x, t) = (f64::from(c.features.frequency), c.features.age);
            let method = c
                .score
                .prediction
                .map_or(Method::Heuristic, |p| p.purchase_method);
            *ids.entry((x.to_bits(), t.to_bits(), method == Method::Model))
                .or_insert_with(|| {
                    keys.push((x, t, method));
                    (keys.len() - 1) as u32
                })
        })
        .collect();
    drop(ids);
    let curves: Vec<f64> = map_blocks(keys.len(), |r| {
        keys[r]
            .iter()
            .flat_map(|&(x, t, method)| {
                ends.iter()
                    .map(move |&h| model.expected_purchases_if_alive(h, x, t, method))
            })
            .collect::<Vec<f64>>()
    })
    .concat();

    // Σ expected purchases and revenue per (cohort row, window), block by block.
    let rows = cohorts.cohorts.len();
    let sums = map_blocks(buyers.len(), |r| {
        let mut s = vec![[0.0f64; 2]; rows * windows];
        for (&i, &curve) in buyers[r.clone()].iter().zip(&curve_of[r]) {
            let c = &analysis.customers[i];
            let (Some(p), Some(first_at)) = (c.score.prediction, c.features.first_order_at) else {
                continue;
            };
            let Some(&row) = row_of.get((period.index(first_at) - first) as usize) else {
                continue;
            };
            if row == usize::MAX {
                continue;
            }
            let e = &curves[curve as usize * windows..(curve as usize + 1) * windows];
            let mut before = 0.0;
            for (j, &upto) in e.iter().enumerate() {
                let purchases = (p.p_alive * (upto - before)).max(0.0);
                before = upto;
                let cell = &mut s[row * windows + j];
                cell[0] += purchases;
                cell[1] += purchases * p.expected_avg_value;
            }
        }
        s
    })
    .into_iter()
    .fold(vec![[0.0f64; 2]; rows * windows], |mut acc, part| {
        for (a, p) in acc.iter_mut().zip(part) {
            a[0] += p[0];
            a[1] += p[1];
        }
        acc
    });

    let partial = is_partial(period, current, now);
    for (row, cohort) in cohorts.cohorts.iter_mut().enumerate() {
        let index = period.index_of_date(cohort.start);
        let n = cohort.customers.max(1) as f64;
        let mut cumulative = cohort
            .actual
            .last()
            .map_or(0.0, |a| a.cumulative_revenue_per_customer);
        // Without a partial current period, window 0 is the current period's last second,
        // already observed: it only moves the start of window 1 to the period's end.
        cohort.predicted = (usize::from(!partial)..windows)
            .map(|j| {
                let [orders, revenue] = sums[row * windows + j];
                cumulative += revenue / n;
                PredictedCell {
                    period: (current + j as i32 - index) as u32,
                    predicted: true,
                    partial: j == 0,
                    expected_orders: orders,
                    expected_net_revenue: revenue,
                    cumulative_revenue_per_customer: cumulative,
                }
            })
            .collect();
    }
    Ok(())
}
