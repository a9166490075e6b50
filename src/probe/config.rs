//! The `[probe]` table of run files and the flags of `bbeval probe`: every back-end's settings side by side
//! as users write them, checked once (linfa's ParamGuard pattern) into the back-ends to use.

use serde::{Deserialize, Serialize};

use super::backend::{resident_limit, Backend, ProbeBackend};
use super::{lbfgs, linfa_backend, sgd};
use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::protocol::*;

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
    use crate::probe::backend::resident_limit;

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
