//! BigBiGAN (Donahue & Simonyan 2019) at a scale 2 CPU cores can train: generator G, encoder E and joint
//! discriminator D in tch ([`nets`]), hinge-loss training with unary terms and a separate encoder learning
//! rate ([`train`]), and export of E and G as TorchScript with manifests ([`export`]), so every other
//! command uses them like any encoder or generator.
//!
//! Config (`bbeval train-bigbigan --config eval/bigbigan-fmnist.toml`):
//! ```toml
//! name = "bigbigan-fmnist"
//! dataset = "idx:assets/fashion-mnist"   # 28×28 gray
//! steps = 12000
//! unary = true                            # false: BiGAN (joint score s_xz only)
//! lr_e = 2e-4                             # raise for the paper's "↑ E LR" variant
//! [architecture]
//! kind = "dcgan"                          # or "resnet" (32×32, the GPU recipe), "mlp" (BiGAN's MNIST nets)
//! latent = 120
//! z_stdev_max = 0.5
//! ```

pub mod calibrate;
pub mod diagnostics;
pub mod encoder_average;
pub mod export;
pub mod follow;
pub mod layers;
pub mod losses;
pub mod models;
pub mod nets;
pub mod pairing;
pub mod train;
pub mod whitening;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which mismatched pairs `mismatch_weight` adds to D's joint hinge (see `TrainConfig::mismatch_side`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MismatchSide {
    #[default]
    Encoder,
    Generator,
}

/// The networks. Defaults are the CPU recipe's (`eval/bigbigan-fmnist.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Architecture {
    /// `dcgan` (strided convolutions at 28×28: the CPU recipe), `resnet` (BigGAN blocks at 32×32) or `mlp`
    /// (BiGAN's permutation-invariant MNIST networks: the widths are the hidden layers' units).
    pub kind: nets::NetKind,
    /// Width of z (the paper's 120).
    pub latent: i64,
    pub g_width: i64,
    pub e_width: i64,
    pub d_width: i64,
    /// Hidden width of E's head and of D's residual H.
    pub head_width: i64,
    /// Hidden width of D's joint network J (two layers, as ALI's 512).
    pub j_width: i64,
    /// Dropout in D's F and J (ALI: 0.2).
    pub dropout: f64,
    /// Bound on E's σ: `z_stdev = z_stdev_max · sigmoid(·)`; none = softplus (unbounded).
    pub z_stdev_max: Option<f64>,
    /// σ = 0: `z_sample = z_mean`.
    pub deterministic_e: bool,
    /// Add a projection term F(x)ᵀ·W·H(z) to the joint score (Miyato & Koyama's projection discriminator
    /// with z in place of the class): J's MLP must learn x–z pairing from ReLU interactions, the inner
    /// product has it by construction, and its gradient moves E(x) toward what D expects z to be for x.
    pub projection: bool,
    /// How D's F turns its last feature map into a vector: `mean` (BigGAN's pooling) or `dense` (a
    /// spectral-norm linear layer over the whole flattened map to `head_width` features, as ALI's D(x) ends
    /// in a convolution covering the map). Pooling keeps 4·d_width numbers and no positions; the option
    /// tests whether that is too little for J to check that z is the latent of x (measured: it is not the
    /// reason E fails to invert G; docs/bigbigan-mini.md).
    pub f_readout: nets::Readout,
    /// Batch-normalise E's `z_mean` (no affine): its marginal then has the prior's mean 0 and variance 1
    /// by construction, so E cannot win the unary s_z by moving or scaling its outputs (the recipe's logs
    /// show E doing so: D's s_z hinge above chance).
    pub z_batch_norm: bool,
    /// The joint score as a contrast: s_xz(x, z) = J(x, z) − J(x, z′), z′ the next pair's latent in the
    /// batch. What x or z alone says cancels, so s_xz can only reward or punish *which* latent goes with the
    /// image — the pairing that the recipe's D ignores (`--pairing-probe`) because the marginals are an easier
    /// win; the unary scores keep the marginals.
    pub contrastive_joint: bool,
    /// Convolutions in E's body and in D's F (`dcgan` only): 3 ends on a 7×7 map whose positions each see
    /// 18×18 pixels, so the pooled feature is a bag of local patches; 4 adds a stride-2 convolution to a
    /// 3×3 map whose positions see the whole 28×28 image (receptive field 30), as ALI's and BiGAN's
    /// encoders end in a layer that covers the image.
    pub e_layers: i64,
    pub d_layers: i64,
    /// E's head reads the BN+CReLU feature (the AvePool feature batch-normalised, both signs) instead of
    /// the raw AvePool feature. Raw, a randomly initialised E's AvePool varies along about two directions
    /// (participation ratio 1.9 of 128 on test images), which its linear head hands on to the codes; the
    /// batch norm gives each feature unit variance first (4.5 of 256). Measured: the codes collapse onto
    /// two directions all the same, so it is not the default (docs/bigbigan-mini.md, "where E's codes go").
    pub head_reads_bn_crelu: bool,
    /// Whiten E's codes in groups of this many latents (0: off; a divisor of `latent`, below the batch size):
    /// each group centred and decorrelated to unit variance (see [`whitening`]), so the codes cannot all move
    /// along the same few directions, which batch normalisation does not prevent.
    pub z_whitening_group: i64,
    /// Image channels (1 for Fashion-MNIST).
    pub channels: i64,
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture {
            kind: nets::NetKind::Dcgan,
            latent: 120,
            g_width: 32,
            e_width: 32,
            d_width: 32,
            head_width: 256,
            j_width: 512,
            dropout: 0.2,
            z_stdev_max: Some(0.5),
            deterministic_e: false,
            projection: false,
            f_readout: nets::Readout::Mean,
            z_batch_norm: false,
            contrastive_joint: false,
            e_layers: 3,
            d_layers: 3,
            head_reads_bn_crelu: false,
            z_whitening_group: 0,
            channels: 1,
        }
    }
}

fn default_steps() -> usize {
    3000
}
fn default_batch() -> usize {
    64
}
fn default_lr() -> f64 {
    2e-4
}
fn default_true() -> bool {
    true
}
fn default_ema() -> f64 {
    0.999
}
fn default_checkpoint_every() -> usize {
    500
}
fn default_beta1() -> f64 {
    0.5
}
fn default_log_every() -> usize {
    100
}
fn default_d_steps() -> usize {
    // BigGAN's (and so BigBiGAN's) two D updates per generator update: with spectral norm and equal
    // learning rates, one D step per E/G step leaves D near chance (hinge losses ≈ 1 per score).
    2
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub name: String,
    /// Training images: `kind:path` (train split), 28×28 or 32×32 gray.
    pub dataset: String,
    /// Seeded subset of the training images.
    pub train_limit: Option<usize>,
    /// Checkpoints, training log and exports; defaults to `results/<name>`.
    pub out_dir: Option<PathBuf>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Unary scores s_x and s_z in the loss (BigBiGAN); false leaves only s_xz (BiGAN).
    #[serde(default = "default_true")]
    pub unary: bool,
    #[serde(default = "default_lr")]
    pub lr_g: f64,
    #[serde(default = "default_lr")]
    pub lr_e: f64,
    #[serde(default = "default_lr")]
    pub lr_d: f64,
    /// D updates per E/G update, each on its own batch of images and latents.
    #[serde(default = "default_d_steps")]
    pub d_steps: usize,
    /// Adam's β1 for all three players (BigGAN: 0; DCGAN/ALI: 0.5).
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Weight of BiGAN's latent regressor λ‖E(G(z)) − z‖² in the E/G loss: a named comparison variant,
    /// never BigBiGAN's default (0).
    #[serde(default)]
    pub latent_regression: f64,
    /// Whether the latent regressor's error also trains G (true: BiGAN's joint latent regressor, G is asked
    /// for images from which E can read z back) or E alone (false: G(z) is a constant for it, so E learns
    /// to invert G without G being bent towards an invertible, and so fully legible, latent).
    #[serde(default = "default_true")]
    pub latent_regression_trains_g: bool,
    /// Whether the latent regressor's error also trains E's body (true: BiGAN's regressor, the whole of E)
    /// or not (false: E's head learns to read z from the features the rest of the game gives, the features
    /// the probes read are not asked to recover G's latent, and G, unless `latent_regression_trains_g` is
    /// false too, is still taught through E's body to make z legible in them).
    #[serde(default = "default_true")]
    pub latent_regression_trains_e_body: bool,
    /// The first step at which the latent regressor acts (0: from the start). A later start lets the rest of
    /// the game shape E's features first, and G's images bend towards legibility for fewer steps.
    #[serde(default)]
    pub latent_regression_from_step: usize,
    /// Weight of ALICE's explicit cycle consistency λ·MSE(x, G(E(x))) (Li et al. 2017, "ALICE: Towards
    /// Understanding Adversarial Learning for Joint Distribution Matching": the joint game alone has optima
    /// whose reconstructions are poor — it does not identify E = G⁻¹ — and a conditional-entropy term fixes
    /// that) in the E/G loss, per pixel with images in [−1, 1]: a named comparison variant, never BigBiGAN's
    /// default (0).
    #[serde(default)]
    pub image_reconstruction: f64,
    /// Weight of the same cycle measured in D's features (Larsen et al. 2016, "Autoencoding beyond pixels
    /// using a learned similarity metric"): λ_F·MSE(F(x), F(G(E(x)))) on D's last feature map before its
    /// read-out, D in eval mode (no dropout, its spectral norms' power iterations left alone) and F(x) a
    /// constant. Pixel MSE rewards blurred reconstructions, so E need not keep the details a per-pixel error
    /// barely sees (a collar, a fastening) and that tell some classes apart; D's features are trained to
    /// see them. E/G loss only, D is not trained by it; a comparison variant, never BigBiGAN's default (0).
    #[serde(default)]
    pub feature_reconstruction: f64,
    /// Denoising the cycle (Vincent et al. 2008, "Extracting and composing robust features with denoising
    /// autoencoders"): Gaussian noise of this sd (images in [−1, 1]) on the images E reads in the cycle terms
    /// alone, so G must reconstruct the clean x from E(x + noise) and E has to keep what survives the noise
    /// (shapes, not pixel texture). The adversarial pairs keep the clean x; E takes a second pass for the
    /// cycle. Needs `image_reconstruction` or `feature_reconstruction`; a comparison variant (0 = off).
    #[serde(default)]
    pub cycle_input_noise: f64,
    /// Each training image flipped left–right with probability ½ in every batch D and E/G see (the mask from
    /// libtorch's seeded RNG), as supervised training on these images does; the probes' images are never
    /// flipped. A comparison variant (false = off).
    #[serde(default)]
    pub flip_images: bool,
    /// Weight of mismatched pairs as an extra class in D's joint hinge (a "matching-aware" D, as GAN-CLS's
    /// real image with the wrong text): D can then no longer ignore the pairing, which `--pairing-probe`
    /// shows the recipe's D does. Which pairs and which class: `mismatch_side`. D's loss only; 0 = off
    /// (BigBiGAN).
    #[serde(default)]
    pub mismatch_weight: f64,
    /// `encoder`: (x, E(x′)) — each image with another image's code — count as generator pairs (−1); E,
    /// which wants its pairs to look like generator pairs, is then rewarded for codes that do not depend on
    /// x. `generator`: (G(z), z′) count as encoder pairs (+1); E is then rewarded for codes that match G
    /// (inversion), G for images that do not.
    #[serde(default)]
    pub mismatch_side: MismatchSide,
    /// Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): Gaussian noise of this sd (images in
    /// [−1, 1]) added to every image D sees, real and generated, in D's and in E/G's step, annealed linearly
    /// to 0 at `steps`. Blurs the fine-texture differences by which the recipe's D wins on x alone, so the
    /// joint score has to use coarse content — what z can predict. 0 = off (BigBiGAN).
    #[serde(default)]
    pub instance_noise: f64,
    /// D scores encoder pairs and generator pairs in one pass over both batches stacked (BigGAN's way)
    /// instead of one pass each: half of D's kernel launches per step, which set the pace on a GPU, where
    /// the recipe's small nets leave the device idle between launches. The scores are the same function of
    /// the pairs; spectral norm's power iteration then runs once per pass instead of twice. Not with
    /// `contrastive_joint`, whose shuffled latents must stay within each batch. false = a pass each.
    #[serde(default)]
    pub one_d_pass: bool,
    /// Diagnostics (the loss terms, σ, corr(z, E(G(z))), D's use of z) every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Decay of the generator's exponential moving average (the exported G).
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    /// Decay of an exponential moving average of E's weights, exported as the trained encoder in place of
    /// the live E (see [`encoder_average`]); the live networks train as without it. 0 = off: the live E.
    #[serde(default)]
    pub encoder_ema_decay: f64,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    #[serde(default)]
    pub architecture: Architecture,
}

impl TrainConfig {
    pub fn load(path: &Path) -> Result<TrainConfig> {
        let fail = |reason: String| Error::TrainConfig { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let cfg: TrainConfig = toml::from_str(&text).map_err(|e| fail(crate::suggest::explain_toml_error(&e)))?;
        if cfg.steps == 0 || cfg.d_steps == 0 || cfg.batch_size < 2 || cfg.log_every == 0 || !(0.0..1.0).contains(&cfg.ema_decay) || !(0.0..1.0).contains(&cfg.encoder_ema_decay) {
            return Err(fail("steps ≥ 1, d_steps ≥ 1, log_every ≥ 1, batch_size ≥ 2, 0 ≤ ema_decay < 1 and 0 ≤ encoder_ema_decay < 1 are required".into()));
        }
        let a = &cfg.architecture;
        let finite_non_negative = |v: f64| v >= 0.0 && v.is_finite();
        if !(0.0..1.0).contains(&a.dropout) || !(0.0..1.0).contains(&cfg.beta1) || cfg.latent_regression.is_nan() || cfg.latent_regression < 0.0 || !finite_non_negative(cfg.mismatch_weight) || !finite_non_negative(cfg.instance_noise) || !finite_non_negative(cfg.image_reconstruction) || !finite_non_negative(cfg.feature_reconstruction) || !finite_non_negative(cfg.cycle_input_noise) || a.z_stdev_max.is_some_and(|m| m.is_nan() || m <= 0.0) {
            return Err(fail("0 ≤ dropout < 1, 0 ≤ beta1 < 1, latent_regression ≥ 0, mismatch_weight ≥ 0, instance_noise ≥ 0, image_reconstruction ≥ 0, feature_reconstruction ≥ 0, cycle_input_noise ≥ 0 and z_stdev_max > 0 are required".into()));
        }
        if cfg.cycle_input_noise > 0.0 && cfg.image_reconstruction == 0.0 && cfg.feature_reconstruction == 0.0 {
            return Err(fail("cycle_input_noise is the noise on E's input in the cycle terms; set image_reconstruction or feature_reconstruction above 0, or remove it".into()));
        }
        if ![a.e_layers, a.d_layers].iter().all(|n| (3..=4).contains(n)) {
            return Err(fail(format!("e_layers and d_layers must be 3 or 4 (got {} and {})", a.e_layers, a.d_layers)));
        }
        if a.kind != nets::NetKind::Dcgan && (a.e_layers, a.d_layers) != (3, 3) {
            return Err(fail(format!("e_layers and d_layers apply to kind = \"dcgan\" only; remove them for kind = \"{}\"", a.kind.name())));
        }
        if a.kind == nets::NetKind::Mlp && a.f_readout != nets::Readout::Mean {
            return Err(fail("f_readout applies to the convolutional kinds only: an mlp's F(x) is already its last hidden layer; remove it".into()));
        }
        let g = a.z_whitening_group;
        if g < 0 || (g > 0 && (a.latent % g != 0 || g as usize >= cfg.batch_size || a.z_batch_norm)) {
            return Err(fail(format!("z_whitening_group = {g} must be 0 (off) or a divisor of latent = {} below batch_size = {}, without z_batch_norm (whitening normalises already)", a.latent, cfg.batch_size)));
        }
        if cfg.one_d_pass && a.contrastive_joint {
            return Err(fail("one_d_pass cannot be combined with contrastive_joint (its shuffled latents would cross from encoder to generator pairs); remove one".into()));
        }
        if [cfg.lr_g, cfg.lr_e, cfg.lr_d].iter().any(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return Err(fail("learning rates must be finite and > 0".into()));
        }
        Ok(cfg)
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out_dir.clone().unwrap_or_else(|| PathBuf::from("results").join(&self.name))
    }

    /// Where a run's exports go.
    pub fn export_dir(&self) -> PathBuf {
        self.out_dir().join("export")
    }

    /// Where a run's checkpoint lives.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.out_dir().join("checkpoint")
    }

    /// The run's training log (CSV, one row every `log_every` steps).
    pub fn log_path(&self) -> PathBuf {
        self.out_dir().join("train_log.csv")
    }

    /// The plot of the run's training log.
    pub fn plot_path(&self) -> PathBuf {
        self.out_dir().join("train_log.png")
    }

    /// Is there a checkpoint to resume from?
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint_dir().join("state.json").is_file()
    }

    /// The same recipe with another seed, under its own name (`<name>-seed<N>`) and folder.
    pub fn with_seed(mut self, seed: u64) -> TrainConfig {
        let dir = self.out_dir();
        self.name = format!("{}-seed{seed}", self.name);
        self.out_dir = Some(dir.with_file_name(format!("{}-seed{seed}", dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())));
        self.seed = seed;
        self
    }
}
