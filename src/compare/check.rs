//! `bbeval check`: compare a fresh run against a committed baseline and fail on regressions.
//!
//! Every metric of [`crate::report::metrics::METRICS`] is gated in its own direction: a metric regresses
//! when it gets worse (lower top-1 or IS, higher FID) by more than its tolerance, or — with `interval` —
//! when the paired bootstrap 95% interval of an accuracy's change lies entirely below zero. A baseline row
//! or generation entry the new run lacks, a different val set, or a protocol-version mismatch is an error,
//! never a pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::deltas::{deltas, markdown, missing_rows, Delta};
use super::versions_agree;
use crate::error::{Error, Result};
use crate::report::metrics::{self, Unit};
use crate::report::Results;

/// Per-metric tolerances in display units (points for accuracies, FID/IS units for scores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tolerances(pub BTreeMap<String, f64>);

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances(metrics::METRICS.iter().map(|m| (m.name.to_string(), m.default_tolerance)).collect())
    }
}

impl Tolerances {
    /// Parse `--tolerance` values: a bare number sets every accuracy (points); `name=value` sets one
    /// metric. Values must be finite and ≥ 0.
    pub fn parse(args: &[String]) -> Result<Tolerances> {
        let mut t = Tolerances::default();
        for arg in args.iter().flat_map(|a| a.split(',')).map(str::trim).filter(|a| !a.is_empty()) {
            let bad = |why: String| Error::Check(format!("--tolerance `{arg}`: {why}"));
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (Some(n.trim()), v.trim()),
                None => (None, arg),
            };
            let value: f64 = value.parse().map_err(|_| bad("not a number".into()))?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad("must be finite and ≥ 0".into()));
            }
            match name {
                None => {
                    for m in metrics::METRICS.iter().filter(|m| m.unit == Unit::Percent) {
                        t.0.insert(m.name.to_string(), value);
                    }
                }
                Some(n) if metrics::by_name(n).is_some() => {
                    t.0.insert(n.to_string(), value);
                }
                Some(n) => return Err(bad(format!("unknown metric `{n}`{}; known: {}", crate::suggest::did_you_mean(n, &metrics::names()), metrics::names().join(", ")))),
            }
        }
        Ok(t)
    }

    pub fn of(&self, metric: &str) -> f64 {
        self.0.get(metric).copied().unwrap_or(0.0)
    }
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub tolerances: Tolerances,
    /// Also fail an accuracy whose paired 95% interval of change lies below zero.
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
    pub tolerances: Tolerances,
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
    let m = d.descriptor()?;
    let tolerance = opts.tolerances.of(m.name);
    let worse = m.worsening(d.delta);
    if worse > tolerance + 1e-9 {
        let (what, unit) = match (m.higher_is_better, m.unit) {
            (true, Unit::Percent) => ("dropped", " points"),
            (true, Unit::Score) => ("dropped", ""),
            (false, _) => ("rose", ""),
        };
        return Some(format!("{what} {worse:.2}{unit}, more than the tolerance of {tolerance:.2}{unit}"));
    }
    match d.ci95 {
        Some((_, hi)) if opts.interval && hi < 0.0 => Some(format!("paired 95% interval of the change lies below 0 (upper bound {:+.2} points)", m.display(hi))),
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
        return Err(Error::Check(format!("rows or generation entries of the baseline `{}` missing from the new run: {}", baseline.name, names.join("; "))));
    }
    let findings: Vec<Finding> = deltas(baseline, candidate)
        .into_iter()
        .map(|delta| {
            let reason = judge(&delta, opts);
            Finding { regressed: reason.is_some(), reason, delta }
        })
        .collect();
    Ok(CheckReport { passed: findings.iter().all(|f| !f.regressed), tolerances: opts.tolerances.clone(), interval: opts.interval, findings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_per_metric_and_refuse_nonsense() {
        let t = Tolerances::parse(&["0.25".into(), "fid=2".into()]).unwrap();
        assert_eq!((t.of("top1"), t.of("top5"), t.of("fid"), t.of("is")), (0.25, 0.25, 2.0, crate::protocol::CHECK_TOLERANCE_IS));
        for bad in ["-1", "nan", "inf", "fdi=1", "top1=x"] {
            assert!(Tolerances::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
