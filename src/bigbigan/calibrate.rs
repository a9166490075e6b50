//! BatchNorm statistics for export: the mean of per-batch statistics over many batches ("precise BN",
//! PyTorch's `momentum=None`), instead of whatever exponential average training left behind.
//!
//! The encoder is calibrated on training images before every export — the randomly initialised one
//! included, whose default statistics (mean 0, variance 1) would make BN the identity and half of its
//! BN+CReLU feature constant — and the EMA generator on fresh latents (BigGAN's "standing statistics").
//! tch's BatchNorm keeps its momentum private, so each batch's statistics are recovered from the running
//! update `r' = (1 − m)·r + m·s` with tch's default m = 0.1.

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::Result;

/// tch's default BatchNorm momentum (every BN of the mini nets uses the default config).
const MOMENTUM: f64 = 0.1;

/// Set every `running_mean` / `running_var` (BatchNorm's) and `running_cov` ([`super::whitening`]'s, with the
/// same momentum) in `vs` to the mean of the batch statistics that `forward` produces on `batches` (train-mode
/// forwards, no gradients).
pub fn calibrate(vs: &VarStore, batches: &[Tensor], mut forward: impl FnMut(&Tensor)) -> Result<usize> {
    let stats: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(name, _)| ["running_mean", "running_var", "running_cov"].iter().any(|s| name.ends_with(s))).collect();
    if stats.is_empty() || batches.is_empty() {
        return Ok(0);
    }
    let mut sums: Vec<Tensor> = stats.iter().map(|(_, t)| t.zeros_like()).collect();
    tch::no_grad(|| -> Result<()> {
        for batch in batches {
            let before: Vec<Tensor> = stats.iter().map(|(_, t)| t.copy()).collect();
            forward(batch);
            for ((sum, (_, now)), prev) in sums.iter_mut().zip(&stats).zip(&before) {
                // The batch's own statistic: (r' − (1 − m)·r) / m.
                *sum += (now - prev * (1.0 - MOMENTUM)) / MOMENTUM;
            }
        }
        for ((_, t), sum) in stats.iter().zip(&sums) {
            let mut t = t.shallow_clone();
            t.f_copy_(&(sum / batches.len() as f64))?;
        }
        Ok(())
    })?;
    Ok(stats.len())
}
