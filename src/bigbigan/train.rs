//! BigBiGAN training: alternating hinge-loss steps for D and for (E, G), separate Adam optimisers (so E
//! can have its own, higher learning rate), an EMA copy of G, seeded data order and latents,
//! checkpoints with resume, and a CSV training log with diagnostics (see [`super::diagnostics`]).
//!
//! Each step is `d_steps` D updates then one (E, G) update, each on its own batch and latents.
//!
//! Losses (BigBiGAN §3, h(t) = max(0, 1 − t)), with y = +1 for encoder pairs (x, E(x)) and −1 for
//! generator pairs (G(z), z):
//! * D: mean h(y·s_xz) + [unary] mean h(y·s_x) + mean h(y·s_z) [+ w mean h(−s_xz(x, E(x′))) or
//!   w mean h(s_xz(G(z), z′)), mismatched pairs in one class or the other, when `mismatch_weight` w > 0]
//! * E, G: mean y·(s_xz + [unary] s_x + s_z) [+ λ mean ‖E(G(z)) − z‖², BiGAN's latent regressor, when
//!   `latent_regression` > 0, reaching G unless `latent_regression_trains_g = false` and E's body unless
//!   `latent_regression_trains_e_body = false`, from step `latent_regression_from_step`: a comparison
//!   variant only] [+ λ_x MSE(x, G(E(x))), ALICE's cycle consistency, when `image_reconstruction` > 0: a
//!   comparison variant only] [+ λ_F MSE(F(x), F(G(E(x)))), the cycle in D's features, when
//!   `feature_reconstruction` > 0: a comparison variant only; E reads x + noise in both cycles when
//!   `cycle_input_noise` > 0]
//!
//! With `flip_images`, every batch's images are mirrored left–right at random before either step sees them.

use std::io::Write;
use std::path::PathBuf;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::diagnostics::{self, Diagnostics, LOG_HEADER};
use super::encoder_average::{move_towards, EncoderAverage};
use super::losses::hinge_pair;
pub use super::losses::Terms;
pub use super::models::Models;
use super::nets::{next_in_batch, select_rows, Scores};
use super::{MismatchSide, TrainConfig};
use crate::data::{Dataset, DatasetSpec, HashOptions, Preprocess};
use crate::error::{Error, IoContext, Result};
use crate::seeded::seeded_permutation;

/// Adam with the config's β1 (BigGAN: 0; DCGAN/ALI: 0.5), β2 = 0.999.
pub(super) fn adam(vs: &nn::VarStore, lr: f64, beta1: f64) -> Result<nn::Optimizer> {
    Ok(nn::Adam { beta1, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }.build(vs, lr)?)
}

/// Why [`Trainer::train_within`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// At `cfg.steps`.
    Finished,
    /// Earlier, at the first step past the time budget (checkpointed and logged).
    TimeBudget,
}

/// Losses of one step, left on the device: reading a value waits for the GPU to drain its queue, so the
/// training loop reads them only where it logs or checkpoints ([`StepLosses::values`]), and the CPU queues
/// the next steps' kernels meanwhile.
#[derive(Debug)]
pub struct StepLosses {
    /// D's loss, the mean over its `d_steps` updates.
    pub d: Tensor,
    pub eg: Tensor,
}

impl StepLosses {
    /// (D loss, E/G loss) as numbers.
    pub fn values(&self) -> Result<(f64, f64)> {
        Ok((self.d.f_double_value(&[])?, self.eg.f_double_value(&[])?))
    }
}

/// The seeded epoch order: batch `index` of `batch_size` images, epoch k a permutation seeded by `seed` + k,
/// the last partial batch of an epoch dropped. The current epoch's permutation is kept on the images'
/// device, so that taking a batch is one gather there: no permutation per batch and no copy of indices from
/// the host, which on CUDA waits for every queued kernel.
#[derive(Debug, Default)]
struct EpochOrder {
    epoch: Option<(usize, Tensor)>,
}

impl EpochOrder {
    fn batch(&mut self, images: &Tensor, batch_size: usize, seed: u64, index: usize) -> Result<Tensor> {
        let n = images.size()[0] as usize;
        let b = batch_size.min(n);
        let per_epoch = (n / b).max(1);
        let epoch = index / per_epoch;
        let perm = match &self.epoch {
            Some((kept, perm)) if *kept == epoch => perm.shallow_clone(),
            _ => {
                let order: Vec<i64> = seeded_permutation(n, seed.wrapping_add(epoch as u64)).into_iter().map(|i| i as i64).collect();
                let perm = Tensor::f_from_slice(&order)?.f_to_device(images.device())?;
                self.epoch = Some((epoch, perm.shallow_clone()));
                perm
            }
        };
        Ok(images.f_index_select(0, &perm.f_narrow(0, ((index % per_epoch) * b) as i64, b as i64)?)?)
    }
}

/// Fashion-MNIST-style gray images as `[N, 1, S, S]` in [-1, 1] for networks working at side `S` (28, or
/// 32 with the 28×28 images padded with −1), and the images' own side (the exported encoder's input).
pub fn load_images(spec: &str, limit: Option<usize>, seed: u64, side_for: i64) -> Result<(Tensor, i64)> {
    let spec = DatasetSpec::parse(spec)?;
    let data = Dataset::open(&spec, "train", &HashOptions::default())?.subset(limit, seed);
    let pre = Preprocess::native(1);
    let mut values = Vec::with_capacity(data.len() * 28 * 28);
    let mut side = 0;
    for s in &data.samples {
        let (v, [_, h, w]) = pre.load(s)?;
        if h != w || h as i64 > side_for {
            return Err(Error::Dataset { path: spec.path.clone(), reason: format!("image {} is {w}×{h}; BigBiGAN-mini trains on square gray images of at most {side_for}×{side_for}", s.id) });
        }
        side = h as i64;
        values.extend(v);
    }
    let x = Tensor::f_from_slice(&values)?.f_view([data.len() as i64, 1, side, side])?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
    let pad = (side_for - side) / 2;
    Ok((x.f_pad([pad, pad, pad, pad], "constant", Some(-1.0))?, side))
}

/// Batch `index` of the seeded epoch order (see [`EpochOrder`]), for a caller that takes one batch at a time.
pub(super) fn epoch_batch(images: &Tensor, batch_size: usize, seed: u64, index: usize) -> Result<Tensor> {
    EpochOrder::default().batch(images, batch_size, seed, index)
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub models: Models,
    opt_g: nn::Optimizer,
    opt_e: nn::Optimizer,
    opt_d: nn::Optimizer,
    order: EpochOrder,
    /// The average of E's weights that is exported, when `encoder_ema_decay` > 0.
    pub e_average: Option<EncoderAverage>,
    pub step: usize,
}

impl Trainer {
    pub fn new(cfg: TrainConfig, device: Device) -> Result<Trainer> {
        let models = Models::new(&cfg, device);
        let opt_g = adam(&models.vs_g, cfg.lr_g, cfg.beta1)?;
        let opt_e = adam(&models.vs_e, cfg.lr_e, cfg.beta1)?;
        let opt_d = adam(&models.vs_d, cfg.lr_d, cfg.beta1)?;
        let e_average = (cfg.encoder_ema_decay > 0.0).then(|| EncoderAverage::new(&models.vs_e, cfg.encoder_ema_decay));
        Ok(Trainer { cfg, models, opt_g, opt_e, opt_d, order: EpochOrder::default(), e_average, step: 0 })
    }

    fn total(&self, s: &Scores) -> Tensor {
        if self.cfg.unary { &s.s_xz + &s.s_x + &s.s_z } else { s.s_xz.shallow_clone() }
    }

    fn d_loss(&self, enc: &Scores, gen: &Scores) -> Tensor {
        let mut loss = hinge_pair(&enc.s_xz, &gen.s_xz);
        if self.cfg.unary {
            loss = loss + hinge_pair(&enc.s_x, &gen.s_x) + hinge_pair(&enc.s_z, &gen.s_z);
        }
        loss
    }

    /// `cfg.d_steps` D steps, each on the next image batch with fresh latents, then one (E, G) step on a
    /// batch and latents of its own. The reported D loss is the mean over its steps.
    pub fn train_step(&mut self, images: &Tensor) -> Result<StepLosses> {
        let per_step = self.cfg.d_steps + 1;
        let latent = self.models.g.latent();
        let mut d = Vec::with_capacity(self.cfg.d_steps);
        for k in 0..self.cfg.d_steps {
            let x = self.training_batch(images, self.step * per_step + k)?;
            let z = Tensor::f_randn([x.size()[0], latent], (Kind::Float, x.device()))?;
            d.push(self.d_update(&x, &z)?);
        }
        let x = self.training_batch(images, self.step * per_step + self.cfg.d_steps)?;
        let z = Tensor::f_randn([x.size()[0], latent], (Kind::Float, x.device()))?;
        let eg = self.eg_update(&x, &z)?.0;
        self.update_ema()?;
        self.step += 1;
        Ok(StepLosses { d: Tensor::f_stack(&d, 0)?.f_mean(Kind::Float)?, eg })
    }

    /// Batch `index` of the epochs' order as the players see it: with `flip_images`, each image mirrored
    /// left–right with probability ½.
    pub fn training_batch(&mut self, images: &Tensor, index: usize) -> Result<Tensor> {
        let x = self.batch(images, index)?;
        if !self.cfg.flip_images {
            return Ok(x);
        }
        let flip = Tensor::f_rand([x.size()[0], 1, 1, 1], (Kind::Float, x.device()))?.f_lt(0.5)?;
        Ok(x.f_flip([3])?.f_where_self(&flip, &x)?)
    }

    /// Update D on encoder pairs (x, E(x)) and generator pairs (G(z), z); returns D's loss before it.
    pub fn d_step(&mut self, x: &Tensor, z: &Tensor) -> Result<f64> {
        Ok(self.d_update(x, z)?.f_double_value(&[])?)
    }

    /// [`Self::d_step`] with the loss left on the device (detached).
    fn d_update(&mut self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let m = &self.models;
        // E(x) and G(z) are constants for D's update.
        let (ex, gz) = tch::no_grad(|| (m.e.forward_t(x, true).z_sample, m.g.forward_t(z, true)));
        let (enc, gen) = self.judged_pairs(x, &ex, &gz, z)?;
        let mut loss = self.d_loss(&enc, &gen);
        if self.cfg.mismatch_weight > 0.0 {
            // Each image with the next image's latent.
            let term = match self.cfg.mismatch_side {
                MismatchSide::Encoder => (self.judged(x, &next_in_batch(&ex))?.s_xz + 1.0).relu(),
                MismatchSide::Generator => (self.judged(&gz, &next_in_batch(z))?.s_xz.neg() + 1.0).relu(),
            };
            loss += term.mean(Kind::Float) * self.cfg.mismatch_weight;
        }
        self.opt_d.backward_step(&loss);
        Ok(loss.detach())
    }

    /// Update E and G against D (D's gradients are cleared before its next step); returns the E/G loss
    /// before the update and the mean total scores of encoder and generator pairs.
    pub fn eg_step(&mut self, x: &Tensor, z: &Tensor) -> Result<(f64, f64, f64)> {
        let (loss, se, sg) = self.eg_update(x, z)?;
        Ok((loss.f_double_value(&[])?, se.f_double_value(&[])?, sg.f_double_value(&[])?))
    }

    /// [`Self::eg_step`] with its three numbers left on the device (detached).
    fn eg_update(&mut self, x: &Tensor, z: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let m = &self.models;
        let code = m.e.forward_t(x, true).z_sample;
        let gz = m.g.forward_t(z, true);
        let (enc, gen) = self.judged_pairs(x, &code, &gz, z)?;
        let (se, sg) = (self.total(&enc).mean(Kind::Float), self.total(&gen).mean(Kind::Float));
        let mut loss = &se - &sg;
        if self.cfg.latent_regression > 0.0 && self.step >= self.cfg.latent_regression_from_step {
            loss += self.latent_regression_loss(&gz, z)?;
        }
        if self.cfg.image_reconstruction > 0.0 || self.cfg.feature_reconstruction > 0.0 {
            let sd = self.cfg.cycle_input_noise;
            let cycle_code = if sd > 0.0 { m.e.forward_t(&(x + x.f_randn_like()? * sd), true).z_sample } else { code.shallow_clone() };
            let reconstructed = m.g.forward_t(&cycle_code, true);
            if self.cfg.feature_reconstruction > 0.0 {
                let target = tch::no_grad(|| m.d.feature_map(x, false));
                loss += (m.d.feature_map(&reconstructed, false) - target).square().mean(Kind::Float) * self.cfg.feature_reconstruction;
            }
            if self.cfg.image_reconstruction > 0.0 {
                loss += (reconstructed - x).square().mean(Kind::Float) * self.cfg.image_reconstruction;
            }
        }
        self.opt_e.zero_grad();
        self.opt_g.zero_grad();
        loss.f_backward()?;
        self.opt_e.step();
        self.opt_g.step();
        Ok((loss.detach(), se.detach(), sg.detach()))
    }

    /// BiGAN's latent regressor λ_z · mean ‖E(G(z)) − z‖², reaching the players the config names: E's head
    /// always; E's body unless `latent_regression_trains_e_body = false`; G unless
    /// `latent_regression_trains_g = false`.
    fn latent_regression_loss(&self, gz: &Tensor, z: &Tensor) -> Result<Tensor> {
        let (e, cfg) = (&self.models.e, &self.cfg);
        let error = |features: Tensor| (e.from_avepool(features, true).z_mean - z).square().sum_dim_intlist([1i64].as_slice(), false, Kind::Float).mean(Kind::Float) * cfg.latent_regression;
        let regressed = if cfg.latent_regression_trains_g { gz.shallow_clone() } else { gz.detach() };
        let features = e.avepool(&regressed, true);
        if cfg.latent_regression_trains_e_body {
            return Ok(error(features));
        }
        let head_error = error(features.detach());
        if !cfg.latent_regression_trains_g {
            return Ok(head_error);
        }
        // G's share passes through E's body, which must not learn from it: the error's gradient at G(z),
        // taken apart from the weights' gradients, enters as a term of value 0 whose gradient at G(z) it is.
        let at_gz = Tensor::f_run_backward(&[error(features)], &[gz], false, false)?.remove(0);
        let through_body = (gz * at_gz).sum(Kind::Float);
        Ok(head_error + &through_body - through_body.detach())
    }

    /// The sd of the instance noise at the current step: `instance_noise` annealed linearly to 0 at `steps`.
    pub fn instance_noise_sd(&self) -> f64 {
        self.cfg.instance_noise * (1.0 - self.step as f64 / self.cfg.steps as f64).max(0.0)
    }

    /// D's scores of a pair in training (both players' steps): the image as D sees it, with the instance
    /// noise of this step (E and G always see clean images).
    fn judged(&self, x: &Tensor, z: &Tensor) -> Result<Scores> {
        let sd = self.instance_noise_sd();
        let seen = if sd == 0.0 { x.shallow_clone() } else { x + x.f_randn_like()? * sd };
        Ok(self.models.d.forward_t(&seen, z, true))
    }

    /// D's scores of encoder pairs (x, E(x)) and generator pairs (G(z), z): one pass over both batches
    /// stacked with `one_d_pass`, else a pass each.
    fn judged_pairs(&self, x: &Tensor, code: &Tensor, gz: &Tensor, z: &Tensor) -> Result<(Scores, Scores)> {
        if !self.cfg.one_d_pass {
            return Ok((self.judged(x, code)?, self.judged(gz, z)?));
        }
        let both = self.judged(&Tensor::f_cat(&[x, gz], 0)?, &Tensor::f_cat(&[code, z], 0)?)?;
        Ok(both.split_at(x.size()[0]))
    }

    /// The losses on a fixed batch without updating anything (for tests and the log).
    pub fn losses(&self, x: &Tensor, z: &Tensor) -> (f64, f64) {
        let m = &self.models;
        tch::no_grad(|| {
            let enc = m.d.forward_t(x, &m.e.forward_t(x, false).z_mean, false);
            let gen = m.d.forward_t(&m.g.forward_t(z, false), z, false);
            let eg = self.total(&enc).mean(Kind::Float) - self.total(&gen).mean(Kind::Float);
            (self.d_loss(&enc, &gen).double_value(&[]), eg.double_value(&[]))
        })
    }

    fn update_ema(&mut self) -> Result<()> {
        let g_ema = self.models.vs_g_ema.variables();
        move_towards(g_ema.iter().map(|(name, t)| (name.as_str(), t.shallow_clone())), &self.models.vs_g.variables(), self.cfg.ema_decay)?;
        match &mut self.e_average {
            Some(average) => average.update(&self.models.vs_e),
            None => Ok(()),
        }
    }

    /// Batch `index` of the seeded epoch order (see [`EpochOrder`]).
    pub fn batch(&mut self, images: &Tensor, index: usize) -> Result<Tensor> {
        self.order.batch(images, self.cfg.batch_size, self.cfg.seed, index)
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.cfg.checkpoint_dir()
    }

    /// Save all four variable stores, the average of E's weights (if kept) and the step (optimiser moments
    /// are not saved: a resumed run restarts Adam's averages).
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let dir = self.checkpoint_dir();
        std::fs::create_dir_all(&dir).at(&dir)?;
        // Each file is written beside its place and renamed into it, so a killed save leaves the last one whole.
        let save = |name: &str, write: &dyn Fn(&std::path::Path) -> Result<()>| -> Result<()> {
            let path = dir.join(format!("{name}.safetensors"));
            let tmp = dir.join(format!("{name}.tmp.safetensors")); // the extension picks the format
            write(&tmp)?;
            std::fs::rename(&tmp, &path).at(&path)
        };
        for (name, vs) in self.models.stores() {
            save(name, &|tmp| Ok(vs.save(tmp)?))?;
        }
        if let Some(average) = &self.e_average {
            save(E_AVERAGE_NAME, &|tmp| average.save(tmp))?;
        }
        let state = serde_json::json!({ "step": self.step, "config": self.cfg });
        crate::atomic::write(&dir.join("state.json"), serde_json::to_string_pretty(&state).unwrap_or_default().as_bytes())?;
        Ok(dir)
    }

    /// Load the checkpoint in `checkpoint_dir()`; its architecture must match the config's. With
    /// `encoder_ema_decay` > 0 the average of E's weights is loaded too, or, for a checkpoint saved without
    /// one, started at the loaded E.
    pub fn resume(&mut self) -> Result<usize> {
        let dir = self.checkpoint_dir();
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).at(&state_path)?;
        let state: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::TrainConfig { path: state_path.clone(), reason: e.to_string() })?;
        let saved: super::Architecture = serde_json::from_value(state["config"]["architecture"].clone()).map_err(|e| Error::TrainConfig { path: state_path.clone(), reason: e.to_string() })?;
        if saved != self.cfg.architecture {
            return Err(Error::TrainConfig { path: state_path, reason: "the checkpoint's [architecture] differs from the config's; resume with the config it was trained with".into() });
        }
        for (name, vs) in self.models.stores() {
            vs.load(dir.join(format!("{name}.safetensors")))?;
        }
        if self.e_average.is_some() {
            let path = dir.join(format!("{E_AVERAGE_NAME}.safetensors"));
            let mut average = EncoderAverage::new(&self.models.vs_e, self.cfg.encoder_ema_decay);
            if path.exists() {
                average.load(&path)?;
            }
            self.e_average = Some(average);
        }
        self.step = state["step"].as_u64().unwrap_or(0) as usize;
        Ok(self.step)
    }

    /// Train to `cfg.steps`, checkpointing every `checkpoint_every` steps and at the end; one CSV log line
    /// with diagnostics every `log_every` steps in `<out_dir>/train_log.csv`, plotted into
    /// `train_log.png` at the end.
    pub fn train(&mut self, images: &Tensor, reporter: &crate::reporter::Reporter) -> Result<()> {
        self.train_within(images, reporter, None).map(|_| ())
    }

    /// [`Self::train`], but stop after the first step that ends past `budget` (a lent GPU's minutes are
    /// counted): that step gets its log line and a checkpoint, as the last step does, so the run exports
    /// and resumes from there (`--resume` continues to `cfg.steps`).
    pub fn train_within(&mut self, images: &Tensor, reporter: &crate::reporter::Reporter, budget: Option<std::time::Duration>) -> Result<Stopped> {
        let out = self.cfg.out_dir();
        std::fs::create_dir_all(&out).at(&out)?;
        let log_path = self.cfg.log_path();
        // A fresh run starts a new log; a resumed one keeps its rows up to the checkpoint and appends.
        let fresh = self.step == 0 || !log_path.exists();
        let seconds_before = if fresh { 0.0 } else { diagnostics::truncate_log(&log_path, self.step, LOG_HEADER)? };
        let mut log = if fresh { std::fs::File::create(&log_path) } else { std::fs::OpenOptions::new().append(true).open(&log_path) }.at(&log_path)?;
        if fresh {
            writeln!(log, "{LOG_HEADER}").at(&log_path)?;
        }
        let probe = Diagnostics::new(&self.models, self.cfg.seed, images)?;
        // Latents continue from a stream seeded by (seed, step), so a resumed run is itself deterministic.
        tch::manual_seed(self.cfg.seed.wrapping_add(self.step as u64) as i64);
        let bar = reporter.bar(self.cfg.steps as u64, format!("train {}", self.cfg.name));
        bar.set_position(self.step as u64);
        let start = std::time::Instant::now();
        let mut stopped = Stopped::Finished;
        while self.step < self.cfg.steps {
            let losses = self.train_step(images)?;
            if budget.is_some_and(|b| start.elapsed() >= b) && self.step < self.cfg.steps {
                stopped = Stopped::TimeBudget;
            }
            let last = self.step == self.cfg.steps || stopped == Stopped::TimeBudget;
            let log_row = self.step.is_multiple_of(self.cfg.log_every) || last;
            let checkpoint = self.step.is_multiple_of(self.cfg.checkpoint_every) || last;
            if log_row || checkpoint {
                // Only here does the loop wait for the device. A diverged run is caught before its weights
                // overwrite the last checkpoint (a NaN in the weights makes every later loss NaN).
                let (d, eg) = losses.values()?;
                if !(d.is_finite() && eg.is_finite()) {
                    return Err(Error::Training { name: self.cfg.name.clone(), reason: format!("diverged by step {} (D loss {d}, E/G loss {eg}); lower the learning rates (the last checkpoint is kept)", self.step) });
                }
                if log_row {
                    let row = probe.measure(&self.models)?;
                    writeln!(log, "{},{d:.5},{eg:.5},{},{:.1}", self.step, row.csv(), seconds_before + start.elapsed().as_secs_f64()).at(&log_path)?;
                    bar.set_message(format!("D {d:.3} EG {eg:.3} corr {:.2}", row.corr_z));
                }
            }
            bar.inc(1);
            if checkpoint {
                self.save_checkpoint()?;
            }
            if stopped == Stopped::TimeBudget {
                break;
            }
        }
        bar.finish_and_clear();
        drop(log);
        // The plot is a view of the log: a machine that cannot draw it (no fonts, as on a bare GPU image)
        // must not lose the run, whose export and checkpoint come next.
        let png = self.cfg.plot_path();
        if let Err(e) = diagnostics::plot(&log_path, &png) {
            reporter.warn(format!("{}: not drawn ({e}); {} holds its figures", png.display(), log_path.display()));
        }
        Ok(stopped)
    }
}

/// The checkpoint's name (`<name>.safetensors`) for the average of E's weights.
const E_AVERAGE_NAME: &str = "e_average";

/// Images and latents the BatchNorm statistics of exports are calibrated on (batches × size).
const CALIBRATION_BATCHES: usize = 16;
const CALIBRATION_BATCH: usize = 128;

impl Trainer {
    /// Seeded batches of training images for BN calibration (the same for every export of a run).
    pub fn calibration_images(&self, images: &Tensor) -> Result<Vec<Tensor>> {
        let n = images.size()[0] as usize;
        let perm = seeded_permutation(n, self.cfg.seed ^ 0x63616c69); // "cali"
        perm.chunks(CALIBRATION_BATCH)
            .take(CALIBRATION_BATCHES)
            .map(|idx| select_rows(images, idx))
            .collect()
    }

    /// Calibrate E's BatchNorm statistics on training images, and the EMA generator's on fresh latents.
    pub fn calibrate(&mut self, images: &Tensor) -> Result<()> {
        let batches = self.calibration_images(images)?;
        calibrate_encoder(&self.models.e, &self.models.vs_e, &batches)?;
        self.calibrate_generator(images.device())
    }

    /// Calibrate the EMA generator's BatchNorm statistics on seeded latents (independent of E's, so the
    /// generator alone can be re-exported from a checkpoint with the same statistics).
    pub fn calibrate_generator(&mut self, device: Device) -> Result<()> {
        let m = &self.models;
        let latent = m.g_ema.latent();
        // Seeded: every export of a run calibrates on the same latents.
        tch::manual_seed((self.cfg.seed ^ 0x63616c69) as i64);
        let zs: Vec<Tensor> = (0..CALIBRATION_BATCHES).map(|_| Tensor::randn([CALIBRATION_BATCH as i64, latent], (Kind::Float, device))).collect();
        super::calibrate::calibrate(&m.vs_g_ema, &zs, |z| {
            let _ = m.g_ema.forward_t(z, true);
        })?;
        Ok(())
    }
}

/// Set the BatchNorm statistics in `vs`, the variables `encoder` runs with, to their means over `batches`
/// (see [`super::calibrate`]).
pub(super) fn calibrate_encoder(encoder: &super::nets::Encoder, vs: &nn::VarStore, batches: &[Tensor]) -> Result<()> {
    super::calibrate::calibrate(vs, batches, |x| {
        let _ = encoder.forward_t(x, true);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept permutation hands out the batches of the seeded epoch order, written out here from the
    /// permutations themselves, across epochs (20 images in batches of 6: three per epoch, the last two
    /// images dropped).
    #[test]
    fn the_kept_epoch_order_gives_the_seeded_batches() {
        let images = Tensor::arange(20, (Kind::Float, Device::Cpu)).view([20, 1]);
        let mut order = EpochOrder::default();
        let mut seen = Vec::new();
        for index in 0..7 {
            let kept = order.batch(&images, 6, 11, index).unwrap();
            let perm = seeded_permutation(20, 11 + (index / 3) as u64);
            let want: Vec<f32> = perm[(index % 3) * 6..(index % 3 + 1) * 6].iter().map(|&i| i as f32).collect();
            assert_eq!(kept.size(), [6, 1]);
            let got = Vec::<f32>::try_from(kept.flatten(0, -1)).unwrap();
            assert_eq!(got, want, "batch {index}");
            assert!(kept.equal(&epoch_batch(&images, 6, 11, index).unwrap()), "batch {index}: one batch at a time");
            seen.push(got);
        }
        // An epoch's three batches are 18 distinct images, and the next epoch is another order.
        let mut epoch0: Vec<f32> = seen[..3].concat();
        epoch0.sort_by(f32::total_cmp);
        epoch0.dedup();
        assert_eq!(epoch0.len(), 18);
        assert_ne!(seen[0], seen[3]);
    }
}
