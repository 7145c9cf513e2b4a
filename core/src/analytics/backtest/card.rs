//! The report card's figures from per-customer predictions and outcomes. Each function takes
//! plain slices (one entry per customer, same order), so the figures can be checked by hand
//! and recomputed from any model's predictions.

use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

/// Customers ranked by `score`, highest first; ties keep input order (customer order), so
/// the ranking is deterministic and matches a stable sort in any other tool.
pub fn rank_descending(score: &[f64]) -> Vec<usize> {
    // (key, index) pairs are all distinct, so an unstable sort of them is the stable sort by
    // key: the same order as a stable `sort_by(total_cmp)`, without the indirection (each
    // comparison of the indirect sort read two random places of `score`).
    let mut keyed: Vec<(u64, u32)> = score
        .iter()
        .enumerate()
        .map(|(i, &v)| (!order_key(v), i as u32))
        .collect();
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, i)| i as usize).collect()
}

/// The first `k` customers of `rank_descending(score)`, in that order: a selection of the top
/// `k` and a sort of those only (the top shares need the top fifth, not a full ranking).
pub fn rank_descending_top(score: &[f64], k: usize) -> Vec<usize> {
    let mut keyed: Vec<(u64, u32)> = score
        .iter()
        .enumerate()
        .map(|(i, &v)| (!order_key(v), i as u32))
        .collect();
    if k < keyed.len() {
        // The pairs are distinct: the k smallest are exactly the first k of the full sort.
        keyed.select_nth_unstable(k);
        keyed.truncate(k);
    }
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, i)| i as usize).collect()
}

/// `average_ranks(score)` from `rank_descending(score)`, without a second sort: ties are runs
/// of equal values in that order, and position p (0-based) from the top is rank n − p from
/// the bottom.
pub fn average_ranks_from_descending(score: &[f64], order: &[usize]) -> Vec<f64> {
    let n = order.len();
    let mut ranks = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let value = score[order[start]];
        let mut end = start + 1;
        // `==` as in `average_ranks` (−0.0 and 0.0 are neighbours in this order, and equal).
        while end < n && score[order[end]] == value {
            end += 1;
        }
        // Positions start..end from the top are ranks n − end + 1..=n − start; their mean:
        let rank = (2 * n - start - end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// `average_ranks` of whole numbers (counts such as holdout purchases) by counting: the
/// values below each value give its run of positions in the sorted order.
pub fn average_ranks_of_counts(v: &[u32]) -> Vec<f64> {
    let max = v.iter().copied().max().unwrap_or(0) as usize;
    let mut count = vec![0usize; max + 1];
    for &x in v {
        count[x as usize] += 1;
    }
    let mut below = 0;
    let rank_of: Vec<f64> = count
        .iter()
        .map(|&c| {
            // Positions below..below + c (0-based) are ranks below + 1..=below + c.
            let rank = (2 * below + c + 1) as f64 / 2.0;
            below += c;
            rank
        })
        .collect();
    v.iter().map(|&x| rank_of[x as usize]).collect()
}

/// An unsigned key whose order is `f64::total_cmp`'s.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// One tenth of the customers by predicted purchases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecileRow {
    /// 1 = the highest predicted purchases.
    pub decile: u8,
    pub customers: usize,
    pub predicted_purchases: f64,
    pub actual_purchases: f64,
    pub predicted_revenue: f64,
    pub actual_revenue: f64,
}

/// Deciles of predicted purchases: in the ranking of `rank_descending`, decile k (0-based)
/// holds positions [k n / 10, (k + 1) n / 10), so sizes differ by at most one. With fewer than
/// ten customers some deciles are empty (kept, so the table always has ten rows).
pub fn decile_table(
    predicted_purchases: &[f64],
    actual_purchases: &[f64],
    predicted_revenue: &[f64],
    actual_revenue: &[f64],
) -> Vec<DecileRow> {
    decile_table_ranked(
        &rank_descending(predicted_purchases),
        predicted_purchases,
        actual_purchases,
        predicted_revenue,
        actual_revenue,
    )
}

/// `decile_table` with the ranking (`rank_descending` of the predicted purchases) given.
pub fn decile_table_ranked(
    order: &[usize],
    predicted_purchases: &[f64],
    actual_purchases: &[f64],
    predicted_revenue: &[f64],
    actual_revenue: &[f64],
) -> Vec<DecileRow> {
    let n = order.len();
    (0..10)
        .map(|k| {
            let members = &order[k * n / 10..(k + 1) * n / 10];
            let sum = |v: &[f64]| members.iter().map(|&i| v[i]).sum::<f64>();
            DecileRow {
                decile: k as u8 + 1,
                customers: members.len(),
                predicted_purchases: sum(predicted_purchases),
                actual_purchases: sum(actual_purchases),
                predicted_revenue: sum(predicted_revenue),
                actual_revenue: sum(actual_revenue),
            }
        })
        .collect()
}

/// How close per-customer forecasts of holdout purchases came.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Mean |predicted − actual| per customer.
    pub mae: f64,
    /// Mean (predicted − actual) per customer: positive = over-forecast.
    pub bias: f64,
    /// Spearman rank correlation (average ranks for ties); None when either side is constant.
    pub spearman: Option<f64>,
    pub predicted_total: f64,
    pub actual_total: f64,
}

pub fn accuracy(predicted: &[f64], actual: &[f64]) -> Accuracy {
    accuracy_ranked(predicted, actual, &average_ranks(actual))
}

/// `accuracy` with the actual values' `average_ranks` given (shared by model and baseline:
/// each ranking is a sort of every customer).
pub fn accuracy_ranked(predicted: &[f64], actual: &[f64], actual_ranks: &[f64]) -> Accuracy {
    accuracy_with_ranks(predicted, &average_ranks(predicted), actual, actual_ranks)
}

/// `accuracy` with both sides' `average_ranks` given.
pub fn accuracy_with_ranks(
    predicted: &[f64],
    predicted_ranks: &[f64],
    actual: &[f64],
    actual_ranks: &[f64],
) -> Accuracy {
    let n = predicted.len().max(1) as f64;
    let (mut abs, mut diff) = (0.0, 0.0);
    for (p, a) in predicted.iter().zip(actual) {
        abs += (p - a).abs();
        diff += p - a;
    }
    Accuracy {
        mae: abs / n,
        bias: diff / n,
        spearman: pearson(predicted_ranks, actual_ranks),
        predicted_total: predicted.iter().sum(),
        actual_total: actual.iter().sum(),
    }
}

/// Ranks 1..n, tied values sharing the mean of their ranks.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    // Sorted (key, index) pairs: ties are runs of equal keys, whatever their inner order.
    let mut order: Vec<(u64, u32)> = v
        .iter()
        .enumerate()
        .map(|(i, &x)| (order_key(x + 0.0), i as u32))
        .collect();
    order.par_sort_unstable();
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // Equal keys are equal values (+0.0 made −0.0 and 0.0 one key, as `==` has them).
        while end < order.len() && order[end].0 == order[start].0 {
            end += 1;
        }
        // Positions start..end (0-based) are ranks start+1..=end; their mean:
        let rank = (start + end + 1) as f64 / 2.0;
        for &(_, i) in &order[start..end] {
            ranks[i as usize] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson correlation of the average ranks.
pub fn spearman(u: &[f64], v: &[f64]) -> Option<f64> {
    pearson(&average_ranks(u), &average_ranks(v))
}

fn pearson(ru: &[f64], rv: &[f64]) -> Option<f64> {
    let n = ru.len() as f64;
    if ru.len() < 2 {
        return None;
    }
    let (mu, mv) = (ru.iter().sum::<f64>() / n, rv.iter().sum::<f64>() / n);
    let (mut suv, mut suu, mut svv) = (0.0, 0.0, 0.0);
    for (a, b) in ru.iter().zip(rv) {
        suv += (a - mu) * (b - mv);
        suu += (a - mu) * (a - mu);
        svv += (b - mv) * (b - mv);
    }
    (suu > 0.0 && svv > 0.0).then(|| suv / (suu * svv).sqrt())
}

/// One of ten equal-width bins of predicted probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin is [from, to), the last one [0.9, 1.0].
    pub from: f64,
    pub to: f64,
    pub customers: usize,
    /// None for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Share of the bin's customers for whom the event happened.
    pub observed_share: Option<f64>,
}

/// Reliability diagram of probabilities against 0/1 outcomes, and the Brier score
/// (mean squared difference; None without customers).
pub fn reliability(predicted: &[f64], happened: &[bool]) -> (Vec<ReliabilityBin>, Option<f64>) {
    let mut sums = [(0usize, 0.0f64, 0usize); 10];
    let mut brier = 0.0;
    for (&p, &y) in predicted.iter().zip(happened) {
        let bin = ((p * 10.0).floor().max(0.0) as usize).min(9);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += usize::from(y);
        brier += (p - f64::from(u8::from(y))).powi(2);
    }
    let bins = sums
        .iter()
        .enumerate()
        .map(|(k, &(n, sp, hits))| ReliabilityBin {
            from: k as f64 / 10.0,
            to: (k + 1) as f64 / 10.0,
            customers: n,
            mean_predicted: (n > 0).then(|| sp / n as f64),
            observed_share: (n > 0).then(|| hits as f64 / n as f64),
        })
        .collect();
    let n = predicted.len();
    (bins, (n > 0).then(|| brier / n as f64))
}

/// Share of the total `actual` that the top `percent` % of customers by `score` brought, the
/// top being ceil(percent · n / 100) customers in the ranking of `rank_descending` (integer
/// arithmetic: 0.1 · 30 in floating point is 3.0000000000000004). None when the total is 0.
pub fn top_share(score: &[f64], actual: &[f64], percent: usize) -> Option<f64> {
    top_share_ranked(&rank_descending(score), actual, percent)
}

/// `top_share` with the ranking (`rank_descending` of the scores) given.
pub fn top_share_ranked(order: &[usize], actual: &[f64], percent: usize) -> Option<f64> {
    top_share_of_top(order, actual, percent)
}

/// Customers in the top `percent` % of `n`, as `top_share` counts them.
pub fn top_count(n: usize, percent: usize) -> usize {
    (n * percent).div_ceil(100).min(n)
}

/// `top_share` with the top of the ranking given (`rank_descending_top` of at least
/// `top_count(actual.len(), percent)` customers); `actual` has every customer.
pub fn top_share_of_top(top: &[usize], actual: &[f64], percent: usize) -> Option<f64> {
    let total: f64 = actual.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let k = top_count(actual.len(), percent);
    let top: f64 = top[..k].iter().map(|&i| actual[i]).sum();
    Some(top / total)
}
