//! Probe back-ends as one extension point: a [`ProbeBackend`] trait, each back-end's own parameters
//! (checked once, linfa's ParamGuard pattern), and the `[probe]` table ([`ProbeConfig`]) that run files and
//! flags fill in.
//!
//! | back-end | optimiser | grid | data |
//! |---|---|---|---|
//! | `lbfgs` | full-batch L-BFGS, all λ heads in one matmul (libtorch, f32 with f64 reductions) | λ | resident in RAM or GPU memory (streams each full pass when not) |
//! | `sgd` | mini-batch SGD, momentum 0.9, cosine decay, every (λ, lr) head at once | λ × lr | streams chunks from the cache |
//! | `linfa` | linfa-logistic L-BFGS in f64 | λ | in memory; the exact small-scale reference |
//!
//! `auto` (the default) is `lbfgs` when the prepared training set fits in `resident_bytes`, else `sgd`.
//! Adding a back-end is one enum entry, its parameters and its `ProbeBackend` impl.

use serde::{Deserialize, Serialize};

use super::source::RowSource;
use super::{lbfgs, linfa_backend, sgd, LinearModel};
use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::protocol::*;

/// One head of a grid: an L2 weight and, for SGD, a learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub l2: f64,
    pub lr: Option<f64>,
}

/// A way to fit many logistic-regression heads on the same rows.
pub trait ProbeBackend: Send + Sync {
    /// Which back-end this is (recorded in results).
    fn kind(&self) -> Backend;
    /// The hyper-parameter grid, in the order ties are broken (first wins).
    fn heads(&self) -> Vec<Head>;
    /// Fit every head of `heads` on `rows`; `init` (one model per head) warm-starts where supported.
    fn fit(&self, rows: &dyn RowSource, num_classes: usize, heads: &[Head], init: Option<&[LinearModel]>, ctx: &ExecutionContext) -> Result<Vec<LinearModel>>;
}

/// The back-end a run asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `lbfgs` when the prepared training set fits in memory (RAM, or GPU memory on CUDA), else `sgd`.
    #[default]
    Auto,
    /// Full-batch L-BFGS over all λ heads at once.
    Lbfgs,
    /// Mini-batch SGD over every (λ, lr) head at once, streaming from the cache (`torch` is its old name).
    #[serde(alias = "torch")]
    #[value(alias = "torch")]
    Sgd,
    /// linfa-logistic, L-BFGS in f64 on CPU: the exact small-scale reference.
    Linfa,
}

/// The `[probe]` table of a run file (and the flags of `bbeval probe`): every back-end's settings side by
/// side, as users write them. [`ProbeConfig::check`] turns it into checked back-ends, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Defaults to `auto`.
    pub backend: Backend,
    /// L2 weights λ of `mean CE + λ/2 ‖W‖²`; defaults to `PROBE_L2_GRID`.
    pub l2: Vec<f64>,
    /// SGD learning rates; defaults to `PROBE_LR_GRID`.
    pub lr: Vec<f64>,
    /// SGD epochs; defaults to `PROBE_EPOCHS`.
    pub epochs: usize,
    /// SGD mini-batch; defaults to `PROBE_BATCH`.
    pub batch_size: usize,
    /// Seed of SGD's batch order; defaults to `PROBE_SEED`.
    pub seed: u64,
    /// Iteration limit of L-BFGS (`lbfgs`: `LBFGS_MAX_ITER`; `linfa`: `LINFA_MAX_ITER`).
    pub max_iter: Option<u64>,
    /// L-BFGS stops a head when the largest gradient entry is below this (sklearn's `tol`); defaults to
    /// `LBFGS_TOL`.
    pub tol: f64,
    /// Rows read from the cache at a time; defaults to `PROBE_CHUNK_ROWS`.
    pub chunk_rows: usize,
    /// Prepared training sets up to this many bytes are fit resident (and `auto` picks L-BFGS); defaults
    /// to `PROBE_RESIDENT_BYTES` on the CPU and to `PROBE_RESIDENT_CUDA_FRACTION` of the free GPU memory on
    /// CUDA.
    pub resident_bytes: Option<usize>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            backend: Backend::Auto,
            l2: PROBE_L2_GRID.to_vec(),
            lr: PROBE_LR_GRID.to_vec(),
            epochs: PROBE_EPOCHS,
            batch_size: PROBE_BATCH,
            seed: PROBE_SEED,
            max_iter: None,
            tol: LBFGS_TOL,
            chunk_rows: PROBE_CHUNK_ROWS,
            resident_bytes: None,
        }
    }
}

/// Checked settings: the back-end to use for sets that fit in memory and for those that must stream.
pub struct ValidProbe {
    pub requested: Backend,
    pub resident: Box<dyn ProbeBackend>,
    pub streaming: Box<dyn ProbeBackend>,
    pub chunk_rows: usize,
    pub resident_bytes: Option<usize>,
}

impl ValidProbe {
    /// The back-end for a prepared training set of `bytes` on `ctx`'s device.
    pub fn for_size(&self, bytes: usize, ctx: &ExecutionContext) -> &dyn ProbeBackend {
        if bytes <= resident_limit(self.resident_bytes, ctx) { self.resident.as_ref() } else { self.streaming.as_ref() }
    }
}

/// How large a prepared set may be to be fit resident on `ctx`'s device: the configured size, else the
/// device's default (RAM: `PROBE_RESIDENT_BYTES`; a GPU: a fraction of its free memory).
pub fn resident_limit(configured: Option<usize>, ctx: &ExecutionContext) -> usize {
    match (configured, ctx.is_cuda()) {
        (Some(bytes), _) => bytes,
        (None, false) => PROBE_RESIDENT_BYTES,
        (None, true) => ctx.cuda_free_memory().map_or(PROBE_RESIDENT_BYTES_CUDA, |free| (free as f64 * PROBE_RESIDENT_CUDA_FRACTION) as usize),
    }
}

impl ProbeConfig {
    /// Check every setting once; `origin` names where they came from ("run file eval/x.toml, [probe]",
    /// "flags of `bbeval probe`") so that an error points at the right place.
    pub fn check(&self, origin: &str) -> Result<ValidProbe> {
        let bad = |field: &'static str, reason: &str| Err(Error::ProbeParam { origin: origin.to_string(), field, reason: reason.to_string() });
        if self.l2.is_empty() || self.l2.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return bad("l2", "must be a non-empty list of finite values ≥ 0");
        }
        if self.chunk_rows == 0 {
            return bad("chunk_rows", "must be ≥ 1");
        }
        let uses_sgd = matches!(self.backend, Backend::Auto | Backend::Sgd);
        if uses_sgd {
            if self.lr.is_empty() || self.lr.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return bad("lr", "must be a non-empty list of finite values > 0");
            }
            if self.epochs == 0 {
                return bad("epochs", "must be ≥ 1");
            }
            if self.batch_size == 0 {
                return bad("batch_size", "must be ≥ 1");
            }
        }
        if self.max_iter == Some(0) {
            return bad("max_iter", "must be ≥ 1");
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad("tol", "must be finite and > 0");
        }
        let lbfgs = || -> Box<dyn ProbeBackend> {
            Box::new(lbfgs::Lbfgs { l2: self.l2.clone(), tol: self.tol, max_iter: self.max_iter.unwrap_or(LBFGS_MAX_ITER) as usize, history: LBFGS_HISTORY, resident_bytes: self.resident_bytes })
        };
        let sgd = || -> Box<dyn ProbeBackend> {
            Box::new(sgd::Sgd { l2: self.l2.clone(), lr: self.lr.clone(), epochs: self.epochs, batch_size: self.batch_size, seed: self.seed, resident_bytes: self.resident_bytes })
        };
        let linfa = || -> Box<dyn ProbeBackend> { Box::new(linfa_backend::Linfa { l2: self.l2.clone(), max_iter: self.max_iter.unwrap_or(LINFA_MAX_ITER) }) };
        let (resident, streaming) = match self.backend {
            Backend::Auto => (lbfgs(), sgd()),
            Backend::Lbfgs => (lbfgs(), lbfgs()),
            Backend::Sgd => (sgd(), sgd()),
            Backend::Linfa => (linfa(), linfa()),
        };
        Ok(ValidProbe { requested: self.backend, resident, streaming, chunk_rows: self.chunk_rows, resident_bytes: self.resident_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_where_it_came_from() {
        let cfg = ProbeConfig { l2: vec![f64::NAN], ..Default::default() };
        let err = cfg.check("flags of `bbeval probe`").err().expect("NaN λ refused");
        assert!(matches!(err, Error::ProbeParam { field: "l2", .. }));
        assert!(err.to_string().contains("flags of `bbeval probe`"), "{err}");
        // The learning rates matter only to SGD: linfa and lbfgs accept any.
        assert!(ProbeConfig { lr: vec![], backend: Backend::Lbfgs, ..Default::default() }.check("x").is_ok());
        assert!(matches!(ProbeConfig { lr: vec![], ..Default::default() }.check("x").err(), Some(Error::ProbeParam { field: "lr", .. })));
    }

    #[test]
    fn auto_picks_lbfgs_for_resident_sets_and_sgd_beyond() {
        let cpu = ExecutionContext::cpu();
        let p = ProbeConfig { resident_bytes: Some(1000), ..Default::default() }.check("x").unwrap();
        assert_eq!(p.for_size(1000, &cpu).kind(), Backend::Lbfgs);
        assert_eq!(p.for_size(1001, &cpu).kind(), Backend::Sgd);
        assert_eq!(p.for_size(1, &cpu).heads().len(), PROBE_L2_GRID.len());
        assert_eq!(p.for_size(1 << 20, &cpu).heads().len(), PROBE_L2_GRID.len() * PROBE_LR_GRID.len());
        assert_eq!(resident_limit(None, &cpu), PROBE_RESIDENT_BYTES);
    }
}
