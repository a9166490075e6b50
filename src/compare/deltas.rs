//! Every (row, metric) two runs share, with the difference and its paired bootstrap 95% interval.
//!
//! A row is identified by its Method and Feature columns: checkpoints of one model keep their Method
//! while their encoder files (and names) change. The interval resamples val images, pairing each image's
//! hit in both runs, so it is only computed when both runs scored the same val set (same content hash and
//! size) and recorded per-image hits; otherwise it is `None` and the table says so.

use serde::{Deserialize, Serialize};

use crate::config::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use crate::probe::metrics::paired_bootstrap_ci;
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

/// The metrics every probe row has; all are accuracies (higher is better).
pub const METRICS: [&str; 3] = ["top1", "top5", "train_val_top1"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    pub row: RowKey,
    pub metric: String,
    pub baseline_run: String,
    pub candidate_run: String,
    pub baseline: f64,
    pub candidate: f64,
    /// `candidate − baseline`.
    pub delta: f64,
    /// Paired bootstrap 95% interval of `delta`, when both runs scored the same val images.
    pub ci95: Option<(f64, f64)>,
}

fn metric(row: &RowResult, name: &str) -> f64 {
    match name {
        "top1" => row.probe.top1,
        "top5" => row.probe.top5,
        _ => row.probe.train_val_top1,
    }
}

fn hits<'a>(row: &'a RowResult, name: &str) -> Option<&'a [bool]> {
    let h = match name {
        "top1" => &row.probe.val_top1_hits,
        "top5" => &row.probe.val_top5_hits,
        _ => return None,
    };
    (!h.is_empty()).then_some(h.as_slice())
}

/// Rows of `baseline` that `candidate` lacks.
pub fn missing_rows(baseline: &Results, candidate: &Results) -> Vec<RowKey> {
    baseline.rows.iter().map(RowKey::of).filter(|k| !candidate.rows.iter().any(|r| &RowKey::of(r) == k)).collect()
}

/// Deltas of every metric of every row both runs have, in the baseline's row order.
pub fn deltas(baseline: &Results, candidate: &Results) -> Vec<Delta> {
    let same_val = baseline.dataset.val_hash == candidate.dataset.val_hash && baseline.dataset.n_val == candidate.dataset.n_val;
    let mut out = Vec::new();
    for b in &baseline.rows {
        let key = RowKey::of(b);
        let Some(c) = candidate.rows.iter().find(|r| RowKey::of(r) == key) else { continue };
        for name in METRICS {
            let ci95 = match (same_val, hits(b, name), hits(c, name)) {
                (true, Some(hb), Some(hc)) => paired_bootstrap_ci(hb, hc, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
                _ => None,
            };
            let (bv, cv) = (metric(b, name), metric(c, name));
            out.push(Delta {
                row: key.clone(),
                metric: name.to_string(),
                baseline_run: baseline.name.clone(),
                candidate_run: candidate.name.clone(),
                baseline: bv,
                candidate: cv,
                delta: cv - bv,
                ci95,
            });
        }
    }
    out
}

fn points(v: f64) -> String {
    format!("{:+.2}", 100.0 * v)
}

/// A Markdown table of deltas (percentage points), one line per (run pair, row, metric); "—" where no
/// paired interval exists (train-val metrics, or runs scored on different val sets).
pub fn markdown(deltas: &[Delta]) -> String {
    let mut out = String::from("| Baseline → candidate | Method | Feature | Metric | Baseline (%) | Candidate (%) | Δ (points) | Paired 95% CI of Δ |\n");
    out.push_str("|---|---|---|---|---:|---:|---:|---|\n");
    for d in deltas {
        let ci = d.ci95.map_or("—".to_string(), |(lo, hi)| format!("[{}, {}]", points(lo), points(hi)));
        out.push_str(&format!(
            "| {} → {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |\n",
            d.baseline_run,
            d.candidate_run,
            d.row.method,
            d.row.feature,
            d.metric,
            100.0 * d.baseline,
            100.0 * d.candidate,
            points(d.delta),
            ci
        ));
    }
    out
}
