//! Can D's architecture tell that a latent belongs to an image at all? A fresh D of the run's
//! architecture is trained on that task alone — generator pairs (G(z), z) against the same images with
//! another image's latent (G(z), z′) — with the run's generator frozen, and its accuracy on held-out latents
//! is recorded as it learns. Before that, the run's own D is asked whether it looks at the pairing at all,
//! on generator pairs and on encoder pairs (x, E(x)) against (x, E(x′)); whether G and E follow such
//! checks is [`super::follow`]'s question.
//!
//! In the game, E gets a signal about pairing only through D's joint score s_xz; if a D of this
//! architecture needs thousands of steps to learn pairing with G held still, a D that also has to track a
//! moving G and E (and can win by the marginals instead) gives E little to follow. A diagnostic, not part of
//! training.

use tch::nn;
use tch::{Kind, Tensor};

use super::models::Models;
use super::nets::{next_in_batch, select_rows, Discriminator};
use super::train::adam;
use super::Architecture;
use crate::error::{Error, Result};
use crate::seeded::seeded_permutation;

/// Held-out latents the accuracy is measured on.
pub(super) const EVAL_LATENTS: i64 = 1024;

/// The pairing task's settings.
#[derive(Debug, Clone, Copy)]
pub struct PairingProbe {
    pub steps: usize,
    pub batch: i64,
    pub lr: f64,
    pub beta1: f64,
    /// Accuracy every this many steps (and at 0 and the end).
    pub every: usize,
    pub seed: u64,
}

impl PairingProbe {
    /// The batch of the training steps: with one latent per batch the mismatched latent (the next one)
    /// would be the image's own.
    pub(super) fn pair_batch(&self) -> i64 {
        self.batch.max(2)
    }
}

/// Accuracy of the fresh D after `step` updates: the fraction of held-out images whose own latent scores
/// above another image's latent (0.5 = chance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairingPoint {
    pub step: usize,
    pub accuracy: f64,
}

/// D's joint score (eval mode) of each image with its own latent and with the next image's.
pub(super) fn own_and_other(d: &Discriminator, x: &Tensor, z: &Tensor) -> (Tensor, Tensor) {
    tch::no_grad(|| (d.forward_t(x, z, false).s_xz, d.forward_t(x, &next_in_batch(z), false).s_xz))
}

/// The fraction of `true` in a boolean tensor.
pub(super) fn share(hits: Tensor) -> Result<f64> {
    Ok(hits.to_kind(Kind::Float).mean(Kind::Float).f_double_value(&[])?)
}

/// What the run's own D makes of held-out pairs drawn the same way (1,024 seeded latents): the fraction of
/// images whose own latent scores *below* another image's on s_xz (generator pairs are its −1 class, so a
/// D that checks pairing scores the true pair lower; 0.5 = it does not look at the pairing).
pub fn game_d_pairing(models: &Models, seed: u64) -> Result<f64> {
    let device = models.vs_g.device();
    tch::manual_seed(seed as i64);
    let z = Tensor::f_randn([EVAL_LATENTS, models.g.latent()], (Kind::Float, device))?;
    let x = tch::no_grad(|| models.g.forward_t(&z, false));
    let (own, other) = own_and_other(&models.d, &x, &z);
    share(own.f_lt_tensor(&other)?)
}

/// The same question on the encoder side: the fraction of 1,024 seeded training images whose own code
/// (x, E(x)) D scores *above* another image's code (x, E(x′)) on s_xz (encoder pairs are its +1 class;
/// 0.5 = it does not look at the pairing). E in eval mode gives z_mean: the code the game pairs with x when
/// E is deterministic (the recipe), its mean otherwise.
pub fn game_d_encoder_pairing(models: &Models, images: &Tensor, seed: u64) -> Result<f64> {
    let x = measured_images(images, seed)?.f_to_device(models.vs_e.device())?;
    let z = tch::no_grad(|| models.e.forward_t(&x, false).z_mean);
    let (own, other) = own_and_other(&models.d, &x, &z);
    share(own.f_gt_tensor(&other)?)
}

/// The (up to) 1,024 seeded training images the encoder-side questions are asked on.
pub(super) fn measured_images(images: &Tensor, seed: u64) -> Result<Tensor> {
    let n = images.size()[0] as usize;
    if n < 2 {
        // With one image its "other" code would be its own.
        return Err(Error::Training { name: "the pairing probe".into(), reason: format!("needs at least 2 training images, the dataset gave {n}") });
    }
    select_rows(images, &seeded_permutation(n, seed ^ 0x7061_6972)[..n.min(EVAL_LATENTS as usize)]) // "pair"
}

/// The fresh D of [`pairing_capacity`] once trained: it checks G's pairing, and [`super::follow`] asks
/// whether E follows it. Its variables are frozen (it is only read after).
pub struct PairingChecker {
    pub points: Vec<PairingPoint>,
    pub d: Discriminator,
    /// The checker's (frozen) variables.
    pub vs: nn::VarStore,
}

/// Train a fresh D (architecture `a`, seeded) to score (G(z), z) above (G(z), z′) with the hinge loss on
/// s_xz, G = the run's live generator in eval mode, and record its held-out accuracy.
pub fn pairing_capacity(models: &Models, a: &Architecture, probe: &PairingProbe) -> Result<PairingChecker> {
    let device = models.vs_g.device();
    let latent = models.g.latent();
    tch::manual_seed(probe.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let d = Discriminator::new(&vs.root(), a);
    let mut opt = adam(&vs, probe.lr, probe.beta1)?;
    let z_eval = Tensor::f_randn([EVAL_LATENTS, latent], (Kind::Float, device))?;
    let x_eval = tch::no_grad(|| models.g.forward_t(&z_eval, false));
    let accuracy = || -> Result<f64> {
        let (own, other) = own_and_other(&d, &x_eval, &z_eval);
        share(own.f_gt_tensor(&other)?)
    };
    let point = |step: usize| Ok(PairingPoint { step, accuracy: accuracy()? });
    let points = recorded(probe, point, |_| {
        let z = Tensor::f_randn([probe.pair_batch(), latent], (Kind::Float, device))?;
        let x = tch::no_grad(|| models.g.forward_t(&z, false));
        let own = d.forward_t(&x, &z, true).s_xz;
        let other = d.forward_t(&x, &next_in_batch(&z), true).s_xz;
        opt.backward_step(&super::losses::hinge_pair(&own, &other));
        Ok(())
    })?;
    vs.freeze();
    Ok(PairingChecker { points, d, vs })
}

/// `probe.steps` calls of `update` (given the number of updates before it: 0, 1, …), with `measure` before
/// the first, every `probe.every` steps and after the last.
pub(super) fn recorded<P>(probe: &PairingProbe, measure: impl Fn(usize) -> Result<P>, mut update: impl FnMut(usize) -> Result<()>) -> Result<Vec<P>> {
    let mut points = vec![measure(0)?];
    for step in 1..=probe.steps {
        update(step - 1)?;
        if step % probe.every.max(1) == 0 || step == probe.steps {
            points.push(measure(step)?);
        }
    }
    Ok(points)
}
