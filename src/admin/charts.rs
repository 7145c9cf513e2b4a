//! Inline SVG charts rendered on the server: readable without JavaScript, each with a
//! `<title>` and an `aria-label` that says what it shows, and a `<title>` per mark so a
//! pointer or a screen reader gets the exact figure. Hand-rolled: six small chart kinds do
//! not justify a plotting crate and its font stack.

use maud::{Markup, html};

const W: f64 = 560.0;
const H: f64 = 220.0;
const PAD_L: f64 = 52.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 14.0;
const PAD_B: f64 = 34.0;

fn empty(title: &str, note: &str) -> Markup {
    html! {
        svg class="chart empty" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(format!("{title}: {note}")) {
            title { (title) }
            rect x="0" y="0" width=(W) height=(H) rx="8" class="chart-bg" {}
            text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" class="chart-note" { (note) }
        }
    }
}

pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn y_ticks(max: f64) -> Vec<f64> {
    let top = crate::admin::data::nice_ceiling(max.max(1e-9));
    (0..=4).map(|i| top * f64::from(i) / 4.0).collect()
}

fn axes(ticks: &[f64], unit: &str) -> Markup {
    let top = ticks.last().copied().unwrap_or(1.0).max(1e-9);
    html! {
        g class="axis" {
            @for t in ticks {
                @let y = PAD_T + (H - PAD_T - PAD_B) * (1.0 - t / top);
                line x1=(PAD_L) x2=(W - PAD_R) y1=(y) y2=(y) class="grid" {}
                text x=(PAD_L - 6.0) y=(y + 4.0) text-anchor="end" { (fmt_num(*t)) (unit) }
            }
        }
    }
}

/// A line over labelled points; missing values break the line.
/// The axis shows a label up to its note (` (partial, ...)`); the mark's title shows it whole.
fn axis_label(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

/// `partial_last`: the last point covers part of its period only (the current month), so it
/// is drawn apart (hollow, not joined to the line) rather than as a drop.
pub fn line_chart(
    title: &str,
    unit: &str,
    points: &[(String, Option<f64>)],
    partial_last: bool,
) -> Markup {
    let values: Vec<f64> = points.iter().filter_map(|(_, v)| *v).collect();
    if values.is_empty() {
        return empty(title, "No data yet: appears after the first analysis");
    }
    let max = values.iter().cloned().fold(0.0, f64::max);
    let ticks = y_ticks(max);
    let top = ticks.last().copied().unwrap_or(1.0).max(1e-9);
    let n = points.len().max(2) - 1;
    let x = |i: usize| PAD_L + (W - PAD_L - PAD_R) * i as f64 / n as f64;
    let y = |v: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - v / top);
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    let joined = points.len() - usize::from(partial_last && !points.is_empty());
    for (i, (_, v)) in points.iter().enumerate().take(joined) {
        match v {
            Some(v) => current.push_str(&format!("{:.1},{:.1} ", x(i), y(*v))),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    let label_every = points.len().div_ceil(8).max(1);
    let summary = format!(
        "{title}: {} months, latest {}",
        points.len(),
        values
            .last()
            .map(|v| format!("{}{unit}", fmt_num(*v)))
            .unwrap_or_default()
    );
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
            title { (title) }
            (axes(&ticks, unit))
            @for s in &segments {
                polyline points=(s) class="line" {}
            }
            @for (i, (label, v)) in points.iter().enumerate() {
                @if let Some(v) = v {
                    circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*v))) r="3" class=(if i >= joined { "dot partial" } else { "dot" }) {
                        title { (label) ": " (fmt_num(*v)) (unit) }
                    }
                }
                @if i % label_every == 0 {
                    text x=(format!("{:.1}", x(i))) y=(H - 12.0) text-anchor="middle" class="xlabel" { (axis_label(label)) }
                }
            }
        }
    }
}

/// Vertical bars with a label under each.
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> Markup {
    if bars.is_empty() || bars.iter().all(|(_, v)| *v == 0.0) {
        return empty(title, "No data yet: appears after the first analysis");
    }
    let max = bars.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let ticks = y_ticks(max);
    let top = ticks.last().copied().unwrap_or(1.0).max(1e-9);
    let slot = (W - PAD_L - PAD_R) / bars.len() as f64;
    let bw = (slot * 0.75).max(1.0);
    let plot_h = H - PAD_T - PAD_B;
    let label_every = bars.len().div_ceil(10).max(1);
    let summary = format!(
        "{title}: {}",
        bars.iter()
            .map(|(l, v)| format!("{l} {}{unit}", fmt_num(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
            title { (title) }
            (axes(&ticks, unit))
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let h = plot_h * v / top;
                @let x = PAD_L + slot * i as f64 + (slot - bw) / 2.0;
                rect x=(format!("{x:.1}")) y=(format!("{:.1}", PAD_T + plot_h - h)) width=(format!("{bw:.1}")) height=(format!("{h:.1}")) class="bar" {
                    title { (label) ": " (fmt_num(*v)) (unit) }
                }
                @if i % label_every == 0 {
                    text x=(format!("{:.1}", x + bw / 2.0)) y=(H - 12.0) text-anchor="middle" class="xlabel" { (axis_label(label)) }
                }
            }
        }
    }
}

/// The RFM grid: rows R 5 (recent) to 1, columns FM 1 to 5; colour by customers, each cell
/// labelled with its count and revenue.
pub fn rfm_heatmap(cells: &[(u8, u8, i64, String)]) -> Markup {
    let title = "RFM grid: recency × frequency/monetary";
    if cells.iter().all(|c| c.2 == 0) {
        return empty(title, "No customers scored yet");
    }
    let max = cells.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    let (gw, gh) = (W - PAD_L - PAD_R, H + 80.0 - PAD_T - PAD_B);
    let (cw, ch) = (gw / 5.0, gh / 5.0);
    let total_h = H + 80.0;
    html! {
        svg class="chart heatmap" viewBox=(format!("0 0 {W} {total_h}")) role="img"
            aria-label=(format!("{title}: {} customers in {} cells", cells.iter().map(|c| c.2).sum::<i64>(), cells.iter().filter(|c| c.2 > 0).count())) {
            title { (title) }
            @for r in 1..=5u8 {
                @let y = PAD_T + ch * f64::from(5 - r);
                text x=(PAD_L - 8.0) y=(format!("{:.1}", y + ch / 2.0 + 4.0)) text-anchor="end" class="xlabel" { "R" (r) }
                @for fm in 1..=5u8 {
                    @let x = PAD_L + cw * f64::from(fm - 1);
                    @let cell = cells.iter().find(|c| c.0 == r && c.1 == fm);
                    @let n = cell.map_or(0, |c| c.2);
                    @let rev = cell.map(|c| c.3.clone()).unwrap_or_default();
                    @let share = n as f64 / max;
                    g {
                        title { "R" (r) " FM" (fm) ": " (n) " customers, " (rev) }
                        rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{:.1}", cw - 3.0)) height=(format!("{:.1}", ch - 3.0)) rx="4"
                            style=(format!("fill: rgba(0, 128, 96, {:.2})", 0.06 + 0.84 * share)) {}
                        text x=(format!("{:.1}", x + cw / 2.0)) y=(format!("{:.1}", y + ch / 2.0 - 2.0)) text-anchor="middle"
                            class=(if share > 0.55 { "cell dark" } else { "cell" }) { (n) }
                        text x=(format!("{:.1}", x + cw / 2.0)) y=(format!("{:.1}", y + ch / 2.0 + 12.0)) text-anchor="middle"
                            class=(if share > 0.55 { "cell small dark" } else { "cell small" }) { (rev) }
                    }
                }
            }
            @for fm in 1..=5u8 {
                text x=(format!("{:.1}", PAD_L + cw * (f64::from(fm) - 0.5))) y=(total_h - 14.0) text-anchor="middle" class="xlabel" { "FM" (fm) }
            }
        }
    }
}

/// A tiny trend line for a table cell.
pub fn sparkline(label: &str, values: &[u64]) -> Markup {
    let (w, h) = (90.0, 22.0);
    if values.len() < 2 {
        return html! { span class="muted" { "—" } };
    }
    let max = values.iter().copied().max().unwrap_or(1).max(1) as f64;
    let n = (values.len() - 1) as f64;
    let pts: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1} ",
                2.0 + (w - 4.0) * i as f64 / n,
                h - 2.0 - (h - 4.0) * *v as f64 / max
            )
        })
        .collect();
    let text = format!(
        "{label}: {}",
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg class="spark" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(text) {
            title { (text) }
            polyline points=(pts) {}
        }
    }
}

/// Two bars per label (say predicted and actual), with a legend naming the two series.
pub fn paired_bars(title: &str, names: (&str, &str), bars: &[(String, f64, f64)]) -> Markup {
    if bars.is_empty() || bars.iter().all(|b| b.1 == 0.0 && b.2 == 0.0) {
        return empty(title, "No data yet: appears after the first analysis");
    }
    let max = bars.iter().map(|b| b.1.max(b.2)).fold(0.0, f64::max);
    let ticks = y_ticks(max);
    let top = ticks.last().copied().unwrap_or(1.0).max(1e-9);
    let slot = (W - PAD_L - PAD_R) / bars.len() as f64;
    let bw = (slot * 0.38).max(1.0);
    let plot_h = H - PAD_T - PAD_B;
    let summary = format!(
        "{title}: {}",
        bars.iter()
            .map(|(l, a, b)| format!(
                "{l} {} {} {} {}",
                names.0,
                fmt_num(*a),
                names.1,
                fmt_num(*b)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {}", H + 16.0)) role="img" aria-label=(summary) {
            title { (title) }
            (axes(&ticks, ""))
            @for (i, (label, a, b)) in bars.iter().enumerate() {
                @let x = PAD_L + slot * i as f64 + (slot - 2.0 * bw) / 2.0;
                @for (k, (v, name, class)) in [(*a, names.0, "bar"), (*b, names.1, "bar alt")].into_iter().enumerate() {
                    @let h = plot_h * v / top;
                    rect x=(format!("{:.1}", x + bw * k as f64)) y=(format!("{:.1}", PAD_T + plot_h - h)) width=(format!("{bw:.1}")) height=(format!("{h:.1}")) class=(class) {
                        title { (label) " " (name) ": " (fmt_num(v)) }
                    }
                }
                text x=(format!("{:.1}", x + bw)) y=(H - 12.0) text-anchor="middle" class="xlabel" { (label) }
            }
            rect x=(PAD_L) y=(H + 2.0) width="10" height="10" class="bar" {}
            text x=(PAD_L + 14.0) y=(H + 11.0) { (names.0) }
            rect x=(PAD_L + 120.0) y=(H + 2.0) width="10" height="10" class="bar alt" {}
            text x=(PAD_L + 134.0) y=(H + 11.0) { (names.1) }
        }
    }
}

/// A reliability diagram: each bin's mean predicted probability (x) against the share of its
/// customers for whom the event happened (y), both 0-100 %, with the diagonal of a perfectly
/// calibrated forecast. `points` are (mean predicted, observed share, customers) of the
/// non-empty bins, as fractions.
pub fn reliability(title: &str, points: &[(f64, f64, usize)]) -> Markup {
    if points.is_empty() {
        return empty(title, "No data yet: appears with the first model card");
    }
    let (plot_w, plot_h) = (W - PAD_L - PAD_R, H - PAD_T - PAD_B);
    let x = |p: f64| PAD_L + plot_w * p.clamp(0.0, 1.0);
    let y = |p: f64| PAD_T + plot_h * (1.0 - p.clamp(0.0, 1.0));
    let line: String = points
        .iter()
        .map(|(p, o, _)| format!("{:.1},{:.1} ", x(*p), y(*o)))
        .collect();
    let ticks = [0.0, 25.0, 50.0, 75.0, 100.0];
    let summary = format!(
        "{title}: {}",
        points
            .iter()
            .map(|(p, o, n)| format!(
                "predicted {:.0}% observed {:.0}% ({n} customers)",
                p * 100.0,
                o * 100.0
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
            title { (title) }
            (axes(&ticks, "%"))
            @for t in &ticks[1..] {
                text x=(format!("{:.1}", x(t / 100.0))) y=(H - 12.0) text-anchor="middle" class="xlabel" { (fmt_num(*t)) "%" }
            }
            line x1=(x(0.0)) y1=(y(0.0)) x2=(x(1.0)) y2=(y(1.0)) class="diagonal" {}
            polyline points=(line) class="line" {}
            @for (p, o, n) in points {
                circle cx=(format!("{:.1}", x(*p))) cy=(format!("{:.1}", y(*o))) r="4" class="dot" {
                    title { "predicted " (format!("{:.1}", p * 100.0)) "%, observed " (format!("{:.1}", o * 100.0)) "% of " (n) " customers" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_label_their_marks_and_say_when_empty() {
        let c = line_chart(
            "Retention",
            "%",
            &[
                ("2026-01".into(), Some(40.0)),
                ("2026-02".into(), Some(55.5)),
            ],
            false,
        )
        .into_string();
        assert!(
            c.contains("<polyline") && c.contains("2026-02: 55.5%"),
            "{c}"
        );
        assert!(c.contains("aria-label=\"Retention: 2 months, latest 55.5%\""));
        let e = bar_chart("CLV", "", &[]).into_string();
        assert!(e.contains("No data yet") && !e.contains("<rect class=\"bar\""));
        let h = rfm_heatmap(&[(5, 5, 3, "10.00 EUR".into())]).into_string();
        assert!(h.contains("R5 FM5: 3 customers, 10.00 EUR"), "{h}");
        let p = paired_bars(
            "Deciles",
            ("predicted", "actual"),
            &[("1".into(), 2.5, 3.0)],
        )
        .into_string();
        assert!(
            p.contains("1 predicted: 2.5") && p.contains("1 actual: 3"),
            "{p}"
        );
        let r = reliability("P(alive)", &[(0.25, 0.3, 40)]).into_string();
        assert!(
            r.contains("predicted 25.0%, observed 30.0% of 40 customers"),
            "{r}"
        );
        assert!(
            reliability("P(alive)", &[])
                .into_string()
                .contains("No data yet")
        );
    }
}
