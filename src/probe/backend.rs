//! Probe back-ends as one extension point: the [`ProbeBackend`] trait every back-end implements, the
//! [`Backend`] a run asks for, and how large a set may be to be fit resident. The `[probe]` table that
//! chooses and checks them is [`super::config`].
//!
//! | back-end | optimiser | grid | data |
//! |---|---|---|---|
//! | `lbfgs` | full-batch L-BFGS, all λ heads in one matmul (libtorch, f32 with f64 reductions) | λ | resident in RAM or GPU memory (streams each full pass when not) |
//! | `sgd` | mini-batch SGD, momentum 0.9, cosine decay, every (λ, lr) head at once | λ × lr | streams chunks from the cache |
//! | `linfa` | linfa-logistic L-BFGS in f64 | λ | in memory; the exact small-scale reference |
//!
//! `auto` (the default) is `lbfgs` when the prepared training set fits in `resident_bytes`, else `sgd`.
//! Adding a back-end is one enum entry, its parameters and its `ProbeBackend` impl, and one line of
//! `ProbeConfig::check`.

use serde::{Deserialize, Serialize};

use super::source::RowSource;
use super::LinearModel;
use crate::context::ExecutionContext;
use crate::error::Result;
use crate::protocol::{PROBE_RESIDENT_BYTES, PROBE_RESIDENT_BYTES_CUDA, PROBE_RESIDENT_CUDA_FRACTION};

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

/// How large a prepared set may be to be fit resident on `ctx`'s device: the configured size, else the
/// device's default (RAM: `PROBE_RESIDENT_BYTES`; a GPU: a fraction of its free memory).
pub fn resident_limit(configured: Option<usize>, ctx: &ExecutionContext) -> usize {
    match (configured, ctx.is_cuda()) {
        (Some(bytes), _) => bytes,
        (None, false) => PROBE_RESIDENT_BYTES,
        (None, true) => ctx.cuda_free_memory().map_or(PROBE_RESIDENT_BYTES_CUDA, |free| (free as f64 * PROBE_RESIDENT_CUDA_FRACTION) as usize),
    }
}
