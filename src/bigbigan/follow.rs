//! Does a player follow a pairing check when trained alone? A copy of G is trained against the run's
//! frozen D (which, in some runs, checks E's pairing of real images) and, as the control, against E
//! itself; a copy of E is trained against a D that checks G's pairing (the fresh D of
//! [`super::pairing::pairing_capacity`]) and, as the control, against G itself (BiGAN's latent regressor).
//! In the game each player gets its pairing signal only through D's joint score, so if a player passes
//! D's check without inverting the other one, the game cannot make E invert G. A diagnostic, not part of
//! training.

use tch::nn;
use tch::{Kind, Tensor};

use super::diagnostics::mean_column_correlation;
use super::models::Models;
use super::nets::{Discriminator, Encoder, Generator};
use super::pairing::{measured_images, own_and_other, recorded, share, PairingProbe, EVAL_LATENTS};
use super::train::{adam, epoch_batch};
use super::Architecture;
use crate::error::Result;

/// What G alone is trained towards in [`generator_follow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorTarget {
    /// The run's frozen D: raise s_xz(G(z), z), the joint score G gets in the game.
    JointScore,
    /// The run's frozen E itself: lower ‖E(G(z)) − z‖² (what a D that checked E's pairing perfectly would ask).
    Encoder,
}

/// The trained copy after `step` updates of [`generator_follow`] or [`encoder_follow`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FollowPoint {
    pub step: usize,
    /// Mean s_xz of the copy's pairs under the check: (G(z), z) on held-out latents for G, (x, E(x)) on the
    /// measured training images for E.
    pub s_xz: f64,
    /// Share of the copy's pairs that the check scores above the same image with another image's latent or
    /// code — as D scores a pair that passes its check (0.5 = the pairs carry nothing it checks).
    pub own_above_other: f64,
    /// corr(z, E(G(z))) on held-out latents, mean over latent dimensions.
    pub corr: f64,
}

impl FollowPoint {
    /// The point of `step` from the check's scores of the copy's pairs with their own and with another
    /// image's latent or code, and the latents `z` with what E recovers from G(z).
    fn measured(step: usize, own: &Tensor, other: &Tensor, z: &Tensor, recovered: &Tensor) -> Result<FollowPoint> {
        Ok(FollowPoint {
            step,
            s_xz: own.f_mean(Kind::Float)?.f_double_value(&[])?,
            own_above_other: share(own.f_gt_tensor(other)?)?,
            corr: mean_column_correlation(z, recovered),
        })
    }
}

/// A trainable copy of one of the run's networks (weights and BN statistics) and its Adam (the probe's
/// learning rate and β1).
fn trainable_copy<N>(source: &nn::VarStore, probe: &PairingProbe, build: impl FnOnce(&nn::Path) -> N) -> Result<(nn::VarStore, N, nn::Optimizer)> {
    let mut vs = nn::VarStore::new(source.device());
    let net = build(&vs.root());
    vs.copy(source)?;
    let opt = adam(&vs, probe.lr, probe.beta1)?;
    Ok((vs, net, opt))
}

/// Does G follow a pairing check? A copy of the run's live G (BN statistics included) is trained alone
/// (Adam with the probe's learning rate and β1; D and E frozen, in eval mode) towards `target`, and on
/// held-out latents its mean joint score, the share of its pairs that pass D's pairing check (own latent
/// scored above another image's) and corr(z, E(G(z))) are recorded. The mean s_xz also rewards images D
/// likes whatever their latent, so the pairing share is what says whether G satisfies D's check; if it
/// rises while corr stays at 0, G passes D's check without inverting E. The `Encoder` target is the
/// control: can G invert E when given E's own gradient? D and E are frozen meanwhile (no gradients
/// accumulate in them) and unfrozen after, also when the run fails.
pub fn generator_follow(models: &mut Models, a: &Architecture, probe: &PairingProbe, target: GeneratorTarget) -> Result<Vec<FollowPoint>> {
    models.vs_d.freeze();
    models.vs_e.freeze();
    let points = follow_frozen(models, a, probe, target);
    models.vs_d.unfreeze();
    models.vs_e.unfreeze();
    points
}

fn follow_frozen(models: &Models, a: &Architecture, probe: &PairingProbe, target: GeneratorTarget) -> Result<Vec<FollowPoint>> {
    let device = models.vs_g.device();
    let latent = models.g.latent();
    tch::manual_seed(probe.seed as i64);
    let (_vs, g, mut opt) = trainable_copy(&models.vs_g, probe, |p| Generator::new(p, a))?;
    let z_eval = Tensor::f_randn([EVAL_LATENTS, latent], (Kind::Float, device))?;
    let measure = |step: usize| -> Result<FollowPoint> {
        let x = tch::no_grad(|| g.forward_t(&z_eval, false));
        let (own, other) = own_and_other(&models.d, &x, &z_eval);
        let recovered = tch::no_grad(|| models.e.forward_t(&x, false).z_mean);
        FollowPoint::measured(step, &own, &other, &z_eval, &recovered)
    };
    recorded(probe, measure, |_| {
        let z = Tensor::f_randn([probe.pair_batch(), latent], (Kind::Float, device))?;
        let x = g.forward_t(&z, true);
        let loss = match target {
            GeneratorTarget::JointScore => -models.d.forward_t(&x, &z, false).s_xz.mean(Kind::Float),
            GeneratorTarget::Encoder => (models.e.forward_t(&x, false).z_mean - &z).square().mean(Kind::Float),
        };
        opt.backward_step(&loss);
        Ok(())
    })
}

/// What E alone is trained towards in [`encoder_follow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderTarget {
    /// A frozen D that checks G's pairing (it scores (G(z), z) above (G(z), z′)): raise its s_xz(x, E(x))
    /// on real images, i.e. give each image the code that D takes for G's latent of it.
    PairingChecker,
    /// The run's frozen G itself: lower ‖E(G(z)) − z‖² on G's images (BiGAN's latent regressor).
    Generator,
}

/// Does E follow a check of G's pairing? A copy of the run's E (BN statistics included) is trained alone
/// (Adam with the probe's learning rate and β1; `checker` and G frozen, in eval mode) on seeded batches of
/// `images` towards `target`, and its mean checker score and pairing share on the measured training images
/// and corr(z, E(G(z))) on held-out latents are recorded. The mirror of [`generator_follow`]: the checker
/// learnt G's pairing on G's images, and E is asked to satisfy it on real ones. `Generator` is the control:
/// can E invert G when given G's own latents?
pub fn encoder_follow(models: &Models, checker: &Discriminator, a: &Architecture, images: &Tensor, probe: &PairingProbe, target: EncoderTarget) -> Result<Vec<FollowPoint>> {
    let device = models.vs_e.device();
    let latent = models.g.latent();
    tch::manual_seed(probe.seed as i64);
    let (_vs, e, mut opt) = trainable_copy(&models.vs_e, probe, |p| Encoder::new(p, a))?;
    let z_eval = Tensor::f_randn([EVAL_LATENTS, latent], (Kind::Float, device))?;
    let g_eval = tch::no_grad(|| models.g.forward_t(&z_eval, false));
    let x_eval = measured_images(images, probe.seed)?.f_to_device(device)?;
    let measure = |step: usize| -> Result<FollowPoint> {
        let (codes, recovered) = tch::no_grad(|| (e.forward_t(&x_eval, false).z_mean, e.forward_t(&g_eval, false).z_mean));
        let (own, other) = own_and_other(checker, &x_eval, &codes);
        FollowPoint::measured(step, &own, &other, &z_eval, &recovered)
    };
    recorded(probe, measure, |done| {
        let loss = match target {
            EncoderTarget::PairingChecker => {
                // Seeded epochs of the training images, as the game draws them.
                let x = epoch_batch(images, probe.pair_batch() as usize, probe.seed, done)?.f_to_device(device)?;
                -checker.forward_t(&x, &e.forward_t(&x, true).z_mean, false).s_xz.mean(Kind::Float)
            }
            EncoderTarget::Generator => {
                let z = Tensor::f_randn([probe.pair_batch(), latent], (Kind::Float, device))?;
                let x = tch::no_grad(|| models.g.forward_t(&z, false));
                (e.forward_t(&x, true).z_mean - &z).square().mean(Kind::Float)
            }
        };
        opt.backward_step(&loss);
        Ok(())
    })
}
