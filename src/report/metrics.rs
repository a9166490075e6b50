//! Metric descriptors: every number that `compare` lines up and `check` gates, with its direction, unit and
//! default tolerance. Adding a metric is one entry of [`METRICS`]; deltas, the gate and their tables are
//! driven by the list, so a new metric can never be misread as another.

use serde::{Deserialize, Serialize};

use super::{Results, RowResult};
use crate::genmetrics::GenerationResult;

/// How a metric is shown and how its tolerance is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A fraction shown in percent; differences and tolerances in percentage points.
    Percent,
    /// A plain score (FID, IS); differences and tolerances in its own units.
    Score,
}

/// What the metric is measured on.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A probe row (Method, Feature).
    Probe { value: fn(&RowResult) -> f64, hits: Option<fn(&RowResult) -> &[bool]> },
    /// A `[[generation]]` entry (Variant).
    Generation { value: fn(&GenerationResult) -> Option<f64> },
}

#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub higher_is_better: bool,
    pub unit: Unit,
    /// The largest worsening `check` tolerates by default (points for percentages).
    pub default_tolerance: f64,
    pub source: Source,
}

impl Metric {
    /// `candidate − baseline` as a worsening (positive = worse), in display units.
    pub fn worsening(&self, delta: f64) -> f64 {
        let d = self.display(delta);
        if self.higher_is_better { -d } else { d }
    }

    /// A value in display units (percentages ×100).
    pub fn display(&self, v: f64) -> f64 {
        match self.unit {
            Unit::Percent => 100.0 * v,
            Unit::Score => v,
        }
    }

    pub fn arrow(&self) -> &'static str {
        if self.higher_is_better { "↑" } else { "↓" }
    }
}

pub static METRICS: &[Metric] = &[
    Metric {
        name: "top1",
        higher_is_better: true,
        unit: Unit::Percent,
        default_tolerance: crate::protocol::CHECK_TOLERANCE_POINTS,
        source: Source::Probe { value: |r| r.probe.top1, hits: Some(|r| &r.probe.val_top1_hits) },
    },
    Metric {
        name: "top5",
        higher_is_better: true,
        unit: Unit::Percent,
        default_tolerance: crate::protocol::CHECK_TOLERANCE_POINTS,
        source: Source::Probe { value: |r| r.probe.top5, hits: Some(|r| &r.probe.val_top5_hits) },
    },
    Metric {
        name: "train_val_top1",
        higher_is_better: true,
        unit: Unit::Percent,
        default_tolerance: crate::protocol::CHECK_TOLERANCE_POINTS,
        source: Source::Probe { value: |r| r.probe.train_val_top1, hits: None },
    },
    Metric { name: "fid", higher_is_better: false, unit: Unit::Score, default_tolerance: crate::protocol::CHECK_TOLERANCE_FID, source: Source::Generation { value: |g| Some(g.fid) } },
    Metric {
        name: "is",
        higher_is_better: true,
        unit: Unit::Score,
        default_tolerance: crate::protocol::CHECK_TOLERANCE_IS,
        source: Source::Generation { value: |g| g.is.as_ref().map(|i| i.mean) },
    },
];

/// The descriptor of a metric name.
pub fn by_name(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// The names, for error messages.
pub fn names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}

/// Whether a run has anything this metric measures.
pub fn measured_in(metric: &Metric, r: &Results) -> bool {
    match metric.source {
        Source::Probe { .. } => !r.rows.is_empty(),
        Source::Generation { value } => r.generation.iter().any(|g| value(g).is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_make_worse_positive() {
        let top1 = by_name("top1").unwrap();
        assert!((top1.worsening(-0.01) - 1.0).abs() < 1e-12, "a one-point drop of top-1 is 1 point worse");
        let fid = by_name("fid").unwrap();
        assert_eq!(fid.worsening(2.5), 2.5, "a higher FID is worse");
        assert_eq!(by_name("is").unwrap().worsening(-0.2), 0.2);
        assert!(by_name("nope").is_none());
    }
}
