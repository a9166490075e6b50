//! An exponential moving average of E's weights (`encoder_ema_decay`), exported as the trained encoder in
//! place of the live E — as the exported G is G's average (BigGAN's EMA). A higher learning rate for E (the
//! paper's "↑ E LR") makes E's weights noisier from step to step; the average reads the features at the
//! centre of that noise, as MoCo's and BYOL's evaluations read their slowly moving encoders.
//!
//! The average is kept as plain tensors beside E's variable store, not as a second network: building one
//! would draw its initial weights from libtorch's global RNG and so change every later latent of the run.
//! With the average on, the live networks train exactly as without it; only the export differs.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// E's variables averaged over training steps, by name.
#[derive(Debug)]
pub struct EncoderAverage {
    decay: f64,
    average: Vec<(String, Tensor)>,
}

impl EncoderAverage {
    /// Starts at E's current weights.
    pub fn new(vs: &VarStore, decay: f64) -> EncoderAverage {
        let mut average: Vec<(String, Tensor)> = tch::no_grad(|| vs.variables().into_iter().map(|(name, t)| (name, t.copy())).collect());
        average.sort_by(|a, b| a.0.cmp(&b.0));
        EncoderAverage { decay, average }
    }

    /// average ← average + (1 − decay)·(E's weights − average), for every floating-point variable (BN's
    /// running statistics too: the export calibrates them afresh).
    pub fn update(&mut self, vs: &VarStore) -> Result<()> {
        move_towards(self.average.iter().map(|(name, t)| (name.as_str(), t.shallow_clone())), &vs.variables(), self.decay)
    }

    /// The averaged variables, by name.
    pub fn variables(&self) -> &[(String, Tensor)] {
        &self.average
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(Tensor::write_safetensors(&self.average, path)?)
    }

    /// Loads an average saved by [`Self::save`]; every one of E's variables must be in it.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let saved: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
        tch::no_grad(|| -> Result<()> {
            for (name, average) in &mut self.average {
                let Some(t) = saved.get(name) else {
                    return Err(Error::TrainConfig { path: path.into(), reason: format!("the saved average of E lacks {name}; resume with the config it was trained with") });
                };
                average.f_copy_(t)?;
            }
            Ok(())
        })
    }

    /// Runs `f` with E's variables set to the average, then puts E's own weights back.
    pub fn with_average_in<T>(&self, vs: &mut VarStore, f: impl FnOnce(&mut VarStore) -> Result<T>) -> Result<T> {
        let live = vs.variables();
        let kept: Vec<(String, Tensor)> = tch::no_grad(|| live.iter().map(|(name, t)| (name.clone(), t.copy())).collect());
        let set = |values: &[(String, Tensor)]| {
            tch::no_grad(|| -> Result<()> {
                for (name, value) in values {
                    if let Some(t) = live.get(name) {
                        t.shallow_clone().f_copy_(value)?;
                    }
                }
                Ok(())
            })
        };
        set(&self.average)?;
        let out = f(vs);
        set(&kept)?;
        out
    }
}

/// One step of an exponential moving average: every floating-point `average` ← average + (1 − decay)·(its
/// namesake in `live` − average), in place, one kernel per tensor. E's average and the EMA generator both
/// move this way.
pub(super) fn move_towards<'a>(averages: impl IntoIterator<Item = (&'a str, Tensor)>, live: &HashMap<String, Tensor>, decay: f64) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for (name, mut average) in averages {
            let Some(v) = live.get(name) else { continue };
            if average.kind() == Kind::Float {
                let _ = average.f_lerp_(v, 1.0 - decay)?;
            }
        }
        Ok(())
    })
}
