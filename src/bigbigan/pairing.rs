//! Can D's architecture tell that a latent belongs to an image at all? A fresh D of the run's
//! architecture is trained on that task alone — generator pairs (G(z), z) against the same images with
//! another image's latent (G(z), z′) — with the run's generator frozen, and its accuracy on held-out latents
//! is recorded as it learns. Before that, the run's own D is asked whether it looks at the pairing at all,
//! on generator pairs and on encoder pairs (x, E(x)) against (x, E(x′)); after it, a copy of G is trained
//! alone against the run's frozen D (and, as the control, against E itself) to see whether it follows.
//!
//! In the game, E gets a signal about pairing only through D's joint score s_xz; if a D of this
//! architecture needs thousands of steps to learn pairing with G held still, a D that also has to track a
//! moving G and E (and can win by the marginals instead) gives E little to follow. A diagnostic, not part of
//! training.

use tch::nn;
use tch::{Kind, Tensor};

use super::models::Models;
use super::diagnostics::mean_column_correlation;
use super::nets::{next_in_batch, select_rows, Discriminator, Generator};
use super::train::adam;
use super::Architecture;
use crate::error::{Error, Result};
use crate::seeded::seeded_permutation;

/// Held-out latents the accuracy is measured on.
const EVAL_LATENTS: i64 = 1024;

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
    fn pair_batch(&self) -> i64 {
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
fn own_and_other(d: &Discriminator, x: &Tensor, z: &Tensor) -> (Tensor, Tensor) {
    tch::no_grad(|| (d.forward_t(x, z, false).s_xz, d.forward_t(x, &next_in_batch(z), false).s_xz))
}

/// The fraction of `true` in a boolean tensor.
fn share(hits: Tensor) -> Result<f64> {
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
    let n = images.size()[0] as usize;
    if n < 2 {
        // With one image its "other" code would be its own.
        return Err(Error::Training { name: "the pairing probe".into(), reason: format!("needs at least 2 training images, the dataset gave {n}") });
    }
    let x = select_rows(images, &seeded_permutation(n, seed ^ 0x7061_6972)[..n.min(EVAL_LATENTS as usize)])?.f_to_device(models.vs_e.device())?; // "pair"
    let z = tch::no_grad(|| models.e.forward_t(&x, false).z_mean);
    let (own, other) = own_and_other(&models.d, &x, &z);
    share(own.f_gt_tensor(&other)?)
}

/// Train a fresh D (architecture `a`, seeded) to score (G(z), z) above (G(z), z′) with the hinge loss on
/// s_xz, G = the run's live generator in eval mode, and record its held-out accuracy.
pub fn pairing_capacity(models: &Models, a: &Architecture, probe: &PairingProbe) -> Result<Vec<PairingPoint>> {
    let device = models.vs_g.device();
    let latent = models.g.latent();
    tch::manual_seed(probe.seed as i64);
    let vs = nn::VarStore::new(device);
    let d = Discriminator::new(&vs.root(), a);
    let mut opt = adam(&vs, probe.lr, probe.beta1)?;
    let z_eval = Tensor::f_randn([EVAL_LATENTS, latent], (Kind::Float, device))?;
    let x_eval = tch::no_grad(|| models.g.forward_t(&z_eval, false));
    let accuracy = || -> Result<f64> {
        let (own, other) = own_and_other(&d, &x_eval, &z_eval);
        share(own.f_gt_tensor(&other)?)
    };
    let point = |step: usize| Ok(PairingPoint { step, accuracy: accuracy()? });
    recorded(probe, point, || {
        let z = Tensor::f_randn([probe.pair_batch(), latent], (Kind::Float, device))?;
        let x = tch::no_grad(|| models.g.forward_t(&z, false));
        let own = d.forward_t(&x, &z, true).s_xz;
        let other = d.forward_t(&x, &next_in_batch(&z), true).s_xz;
        opt.backward_step(&super::losses::hinge_pair(&own, &other));
        Ok(())
    })
}

/// `probe.steps` calls of `update`, with `measure` before the first, every `probe.every` steps and after
/// the last.
fn recorded<P>(probe: &PairingProbe, measure: impl Fn(usize) -> Result<P>, mut update: impl FnMut() -> Result<()>) -> Result<Vec<P>> {
    let mut points = vec![measure(0)?];
    for step in 1..=probe.steps {
        update()?;
        if step % probe.every.max(1) == 0 || step == probe.steps {
            points.push(measure(step)?);
        }
    }
    Ok(points)
}

/// What G alone is trained towards in [`generator_follow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowTarget {
    /// The run's frozen D: raise s_xz(G(z), z), the joint score G gets in the game.
    JointScore,
    /// The run's frozen E itself: lower ‖E(G(z)) − z‖² (what a D that checked E's pairing perfectly would ask).
    Encoder,
}

/// G after `step` updates of [`generator_follow`], on held-out latents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FollowPoint {
    pub step: usize,
    /// Mean s_xz(G(z), z).
    pub s_xz: f64,
    /// Share of latents whose pair (G(z), z) D scores above (G(z), z′) — as it scores an encoder pair that
    /// passes its check (0.5 = G's pairs carry nothing D checks).
    pub own_above_other: f64,
    /// corr(z, E(G(z))), mean over latent dimensions.
    pub corr: f64,
}

/// Does G follow a pairing check? A copy of the run's live G (BN statistics included) is trained alone
/// (Adam with the probe's learning rate and β1; D and E frozen, in eval mode) towards `target`, and on
/// held-out latents its mean joint score, the share of its pairs that pass D's pairing check (own latent
/// scored above another image's) and corr(z, E(G(z))) are recorded. The mean s_xz also rewards images D
/// likes whatever their latent, so the pairing share is what says whether G satisfies D's check; if it
/// rises while corr stays at 0, G passes D's check without inverting E. The `Encoder` target is the
/// control: can G invert E when given E's own gradient? D and E are frozen meanwhile (no gradients
/// accumulate in them) and unfrozen after, also when the run fails.
pub fn generator_follow(models: &mut Models, a: &Architecture, probe: &PairingProbe, target: FollowTarget) -> Result<Vec<FollowPoint>> {
    models.vs_d.freeze();
    models.vs_e.freeze();
    let points = follow_frozen(models, a, probe, target);
    models.vs_d.unfreeze();
    models.vs_e.unfreeze();
    points
}

fn follow_frozen(models: &Models, a: &Architecture, probe: &PairingProbe, target: FollowTarget) -> Result<Vec<FollowPoint>> {
    let device = models.vs_g.device();
    let latent = models.g.latent();
    tch::manual_seed(probe.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let g = Generator::new(&vs.root(), a);
    vs.copy(&models.vs_g)?;
    let mut opt = adam(&vs, probe.lr, probe.beta1)?;
    let z_eval = Tensor::f_randn([EVAL_LATENTS, latent], (Kind::Float, device))?;
    let measure = |step: usize| -> Result<FollowPoint> {
        let x = tch::no_grad(|| g.forward_t(&z_eval, false));
        let (own, other) = own_and_other(&models.d, &x, &z_eval);
        let recovered = tch::no_grad(|| models.e.forward_t(&x, false).z_mean);
        Ok(FollowPoint {
            step,
            s_xz: own.f_mean(Kind::Float)?.f_double_value(&[])?,
            own_above_other: share(own.f_gt_tensor(&other)?)?,
            corr: mean_column_correlation(&z_eval, &recovered),
        })
    };
    recorded(probe, measure, || {
        let z = Tensor::f_randn([probe.pair_batch(), latent], (Kind::Float, device))?;
        let x = g.forward_t(&z, true);
        let loss = match target {
            FollowTarget::JointScore => -models.d.forward_t(&x, &z, false).s_xz.mean(Kind::Float),
            FollowTarget::Encoder => (models.e.forward_t(&x, false).z_mean - &z).square().mean(Kind::Float),
        };
        opt.backward_step(&loss);
        Ok(())
    })
}
