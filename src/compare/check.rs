//! `bbeval check`: compare a fresh run against a committed baseline and fail on regressions.
//!
//! A metric regresses when it falls more than `tolerance` below the baseline, or — with `interval` — when
//! the paired bootstrap 95% interval of its change lies entirely below zero. A baseline row the new run
//! lacks, a different val set, or a protocol-version mismatch is an error, never a pass.

use serde::{Deserialize, Serialize};

use super::deltas::{deltas, markdown, missing_rows, Delta};
use super::versions_agree;
use crate::error::{Error, Result};
use crate::report::Results;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Largest drop allowed, as a fraction (0.005 = half a point).
    pub tolerance: f64,
    /// Also fail a metric whose paired 95% interval of change lies below zero.
    pub interval: bool,
    pub allow_mixed_versions: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    #[serde(flatten)]
    pub delta: Delta,
    pub regressed: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub passed: bool,
    pub tolerance: f64,
    pub interval: bool,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    pub fn regressions(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.regressed)
    }

    /// The regressed metrics as a Markdown table (empty when none).
    pub fn regressions_markdown(&self) -> String {
        let regressed: Vec<Delta> = self.regressions().map(|f| f.delta.clone()).collect();
        if regressed.is_empty() { String::new() } else { markdown(&regressed) }
    }
}

fn judge(d: &Delta, opts: &CheckOptions) -> Option<String> {
    if d.delta < -opts.tolerance - 1e-12 {
        return Some(format!("dropped {:.2} points, more than the tolerance of {:.2}", -100.0 * d.delta, 100.0 * opts.tolerance));
    }
    match d.ci95 {
        Some((_, hi)) if opts.interval && hi < 0.0 => Some(format!("paired 95% interval of the change lies below 0 (upper bound {:+.2} points)", 100.0 * hi)),
        _ => None,
    }
}

/// Judge `candidate` against `baseline`.
pub fn check(baseline: &Results, candidate: &Results, opts: &CheckOptions) -> Result<CheckReport> {
    versions_agree(&[baseline, candidate], opts.allow_mixed_versions)?;
    let (bd, cd) = (&baseline.dataset, &candidate.dataset);
    if (&bd.train_hash, &bd.val_hash, bd.n_train, bd.n_val) != (&cd.train_hash, &cd.val_hash, cd.n_train, cd.n_val) {
        return Err(Error::Check(format!(
            "the new run used other data than the baseline `{}` (train/val content hash or size differ: {}/{} n={}/{} vs {}/{} n={}/{}); re-create the baseline",
            baseline.name, bd.train_hash, bd.val_hash, bd.n_train, bd.n_val, cd.train_hash, cd.val_hash, cd.n_train, cd.n_val
        )));
    }
    let missing = missing_rows(baseline, candidate);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(Error::Check(format!("rows of the baseline `{}` missing from the new run: {}", baseline.name, names.join("; "))));
    }
    let findings: Vec<Finding> = deltas(baseline, candidate)
        .into_iter()
        .map(|delta| {
            let reason = judge(&delta, opts);
            Finding { regressed: reason.is_some(), reason, delta }
        })
        .collect();
    Ok(CheckReport { passed: findings.iter().all(|f| !f.regressed), tolerance: opts.tolerance, interval: opts.interval, findings })
}
