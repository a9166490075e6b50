//! Every (row, metric) two runs share — probe rows and generation entries, with the metrics of
//! [`crate::report::metrics::METRICS`] — with the difference and, for val accuracies, its paired bootstrap
//! 95% interval.
//!
//! A row is identified by its Method and Feature columns: checkpoints of one model keep their Method
//! while their encoder files (and names) change. The interval resamples val images, pairing each image's
//! hit in both runs, so it is only computed when both runs scored the same val set (same content hash and
//! size) and recorded per-image hits; otherwise it is `None` and the table says so.

use serde::{Deserialize, Serialize};

use crate::genmetrics::GenerationResult;
use crate::probe::metrics::paired_bootstrap_ci;
use crate::protocol::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use crate::report::metrics::{self, Metric, Source, Unit, METRICS};
use crate::report::{Results, RowResult};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowKey {
    pub method: String,
    pub feature: String,
}

impl RowKey {
    pub fn of(row: &RowResult) -> RowKey {
        RowKey { method: row.method.clone(), feature: row.feature.clone() }
    }
}

impl std::fmt::Display for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.method, self.feature)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub row: RowKey,
    pub metric: String,
    pub higher_is_better: bool,
    pub unit: Unit,
    pub baseline_run: String,
    pub candidate_run: String,
    pub baseline: f64,
    pub candidate: f64,
    /// `candidate − baseline`.
    pub delta: f64,
    /// Paired bootstrap 95% interval of `delta`, when both runs scored the same val images.
    pub ci95: Option<(f64, f64)>,
}

impl Delta {
    pub fn descriptor(&self) -> Option<&'static Metric> {
        metrics::by_name(&self.metric)
    }
}

/// The key of a generation entry: its variant, feature "generation".
fn generation_key(g: &GenerationResult) -> RowKey {
    RowKey { method: g.variant.clone(), feature: "generation".into() }
}

/// Probe rows and generation entries of `baseline` that `candidate` lacks.
pub fn missing_rows(baseline: &Results, candidate: &Results) -> Vec<RowKey> {
    let rows = baseline.rows.iter().map(RowKey::of).filter(|k| !candidate.rows.iter().any(|r| &RowKey::of(r) == k));
    let generation = baseline.generation.iter().map(generation_key).filter(|k| !candidate.generation.iter().any(|g| &generation_key(g) == k));
    rows.chain(generation).collect()
}

/// Deltas of every metric of every row (and generation entry) both runs have, in the baseline's order.
pub fn deltas(baseline: &Results, candidate: &Results) -> Vec<Delta> {
    let same_val = baseline.dataset.val_hash == candidate.dataset.val_hash && baseline.dataset.n_val == candidate.dataset.n_val;
    let mut out = Vec::new();
    let mut push = |row: RowKey, m: &Metric, bv: f64, cv: f64, ci95| {
        out.push(Delta {
            row,
            metric: m.name.to_string(),
            higher_is_better: m.higher_is_better,
            unit: m.unit,
            baseline_run: baseline.name.clone(),
            candidate_run: candidate.name.clone(),
            baseline: bv,
            candidate: cv,
            delta: cv - bv,
            ci95,
        })
    };
    for b in &baseline.rows {
        let key = RowKey::of(b);
        let Some(c) = candidate.rows.iter().find(|r| RowKey::of(r) == key) else { continue };
        for m in METRICS {
            let Source::Probe { value, hits } = m.source else { continue };
            let paired = hits.map(|h| (h(b), h(c))).filter(|(hb, hc)| same_val && !hb.is_empty() && !hc.is_empty());
            let ci95 = paired.and_then(|(hb, hc)| paired_bootstrap_ci(hb, hc, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED));
            push(key.clone(), m, value(b), value(c), ci95);
        }
    }
    for b in &baseline.generation {
        let key = generation_key(b);
        let Some(c) = candidate.generation.iter().find(|g| generation_key(g) == key) else { continue };
        for m in METRICS {
            let Source::Generation { value } = m.source else { continue };
            if let (Some(bv), Some(cv)) = (value(b), value(c)) {
                push(key.clone(), m, bv, cv, None);
            }
        }
    }
    out
}

/// A Markdown table of deltas, one line per (run pair, row, metric): percentages in % and differences in
/// points, scores (FID, IS) in their units; "—" where no paired interval exists (train-val and generation
/// metrics, or runs scored on different val sets).
pub fn markdown(deltas: &[Delta]) -> String {
    let mut out = String::from("| Baseline → candidate | Method | Feature | Metric | Baseline | Candidate | Δ | Paired 95% CI of Δ |\n");
    out.push_str("|---|---|---|---|---:|---:|---:|---|\n");
    for d in deltas {
        let scale = if d.unit == Unit::Percent { 100.0 } else { 1.0 };
        let (unit, dunit) = if d.unit == Unit::Percent { ("%", " pts") } else { ("", "") };
        let ci = d.ci95.map_or("—".to_string(), |(lo, hi)| format!("[{:+.2}, {:+.2}]{dunit}", scale * lo, scale * hi));
        let arrow = if d.higher_is_better { "↑" } else { "↓" };
        out.push_str(&format!(
            "| {} → {} | {} | {} | {} {arrow} | {:.2}{unit} | {:.2}{unit} | {:+.2}{dunit} | {} |\n",
            d.baseline_run,
            d.candidate_run,
            d.row.method,
            d.row.feature,
            d.metric,
            scale * d.baseline,
            scale * d.candidate,
            scale * d.delta,
            ci
        ));
    }
    out
}
