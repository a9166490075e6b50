//! BigBiGAN training: alternating hinge-loss steps for D and for (E, G), separate Adam optimisers (so E
//! can have its own, higher learning rate), an EMA copy of G, seeded data order and latents,
//! checkpoints with resume, and a CSV training log.
//!
//! Each step is `d_steps` D updates (2, as BigGAN) then one (E, G) update.
//!
//! Losses (BigBiGAN §3, h(t) = max(0, 1 − t)), with y = +1 for encoder pairs (x, E(x)) and −1 for
//! generator pairs (G(z), z):
//! * D: mean h(y·s_xz) + [unary] mean h(y·s_x) + mean h(y·s_z)
//! * E, G: mean y·(s_xz + [unary] s_x + s_z)

use std::io::Write;
use std::path::PathBuf;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::nets::{Discriminator, Encoder, Generator, Scores};
use super::TrainConfig;
use crate::data::split::seeded_permutation;
use crate::data::{Dataset, DatasetSpec, Preprocess};
use crate::error::{Error, IoContext, Result};

/// Adam as BigGAN sets it (β1 = 0, β2 = 0.999).
fn adam(vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer> {
    Ok(nn::Adam { beta1: 0.0, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }.build(vs, lr)?)
}

/// The networks and their variable stores (`g_ema` is the exported generator).
pub struct Models {
    pub vs_g: nn::VarStore,
    pub vs_e: nn::VarStore,
    pub vs_d: nn::VarStore,
    pub vs_g_ema: nn::VarStore,
    pub g: Generator,
    pub e: Encoder,
    pub d: Discriminator,
    pub g_ema: Generator,
}

impl Models {
    /// Fresh networks; weights depend only on `seed`.
    pub fn new(cfg: &TrainConfig, device: Device) -> Models {
        tch::manual_seed(cfg.seed as i64);
        let (vs_g, vs_e, vs_d, mut vs_g_ema) = (nn::VarStore::new(device), nn::VarStore::new(device), nn::VarStore::new(device), nn::VarStore::new(device));
        let a = &cfg.architecture;
        let g = Generator::new(&vs_g.root(), a);
        let e = Encoder::new(&vs_e.root(), a);
        let d = Discriminator::new(&vs_d.root(), a);
        let g_ema = Generator::new(&vs_g_ema.root(), a);
        let _ = vs_g_ema.copy(&vs_g);
        Models { vs_g, vs_e, vs_d, vs_g_ema, g, e, d, g_ema }
    }

    fn stores(&mut self) -> [(&'static str, &mut nn::VarStore); 4] {
        [("g", &mut self.vs_g), ("e", &mut self.vs_e), ("d", &mut self.vs_d), ("g_ema", &mut self.vs_g_ema)]
    }
}

/// Losses and mean scores of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    pub d: f64,
    pub eg: f64,
    /// Mean total score of encoder pairs and of generator pairs.
    pub score_encoder: f64,
    pub score_generator: f64,
}

/// Fashion-MNIST-style gray images as `[N, 1, 32, 32]` in [-1, 1] (28×28 padded with −1), and their
/// original side (the exported encoder's input size).
pub fn load_images(spec: &str, limit: Option<usize>, seed: u64) -> Result<(Tensor, i64)> {
    let spec = DatasetSpec::parse(spec)?;
    let data = Dataset::open(&spec, "train")?.subset(limit, seed);
    let pre = Preprocess::native(1);
    let mut values = Vec::with_capacity(data.len() * 28 * 28);
    let mut side = 0;
    for s in &data.samples {
        let (v, [_, h, w]) = pre.load(s)?;
        if h != w || (h != 28 && h != 32) {
            return Err(Error::Dataset { path: spec.path.clone(), reason: format!("image {} is {w}×{h}; BigBiGAN-mini trains on 28×28 or 32×32 gray images", s.id) });
        }
        side = h as i64;
        values.extend(v);
    }
    let x = Tensor::f_from_slice(&values)?.f_view([data.len() as i64, 1, side, side])?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
    let pad = (32 - side) / 2;
    Ok((x.f_pad([pad, pad, pad, pad], "constant", Some(-1.0))?, side))
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub models: Models,
    opt_g: nn::Optimizer,
    opt_e: nn::Optimizer,
    opt_d: nn::Optimizer,
    pub step: usize,
}

impl Trainer {
    pub fn new(cfg: TrainConfig, device: Device) -> Result<Trainer> {
        let models = Models::new(&cfg, device);
        let opt_g = adam(&models.vs_g, cfg.lr_g)?;
        let opt_e = adam(&models.vs_e, cfg.lr_e)?;
        let opt_d = adam(&models.vs_d, cfg.lr_d)?;
        Ok(Trainer { cfg, models, opt_g, opt_e, opt_d, step: 0 })
    }

    fn total(&self, s: &Scores) -> Tensor {
        if self.cfg.unary { &s.s_xz + &s.s_x + &s.s_z } else { s.s_xz.shallow_clone() }
    }

    fn d_loss(&self, enc: &Scores, gen: &Scores) -> Tensor {
        // h(y·s) with h(t) = max(0, 1 − t); y = +1 for encoder pairs, −1 for generator pairs.
        let h = |s: &Tensor, y: f64| (s * (-y) + 1.0).relu().mean(Kind::Float);
        let pair = |e: &Tensor, g: &Tensor| h(e, 1.0) + h(g, -1.0);
        let mut loss = pair(&enc.s_xz, &gen.s_xz);
        if self.cfg.unary {
            loss = loss + pair(&enc.s_x, &gen.s_x) + pair(&enc.s_z, &gen.s_z);
        }
        loss
    }

    /// `cfg.d_steps` D steps, each on the next image batch with fresh latents, then one (E, G) step on
    /// the last of them. The reported D loss is the mean over its steps.
    pub fn train_step(&mut self, images: &Tensor) -> Result<StepLosses> {
        let mut d = 0.0;
        let (mut x, mut z) = (Tensor::new(), Tensor::new());
        for k in 0..self.cfg.d_steps {
            x = self.batch(images, self.step * self.cfg.d_steps + k)?;
            z = Tensor::f_randn([x.size()[0], self.models.g.latent()], (Kind::Float, x.device()))?;
            d += self.d_step(&x, &z)? / self.cfg.d_steps as f64;
        }
        let (eg, score_encoder, score_generator) = self.eg_step(&x, &z)?;
        self.update_ema()?;
        self.step += 1;
        Ok(StepLosses { d, eg, score_encoder, score_generator })
    }

    /// Update D on encoder pairs (x, E(x)) and generator pairs (G(z), z); returns D's loss before it.
    pub fn d_step(&mut self, x: &Tensor, z: &Tensor) -> Result<f64> {
        let m = &self.models;
        // E(x) and G(z) are constants for D's update.
        let (ex, gz) = tch::no_grad(|| (m.e.forward_t(x, true).z_sample, m.g.forward_t(z, true)));
        let loss = self.d_loss(&m.d.forward_t(x, &ex, true), &m.d.forward_t(&gz, z, true));
        self.opt_d.backward_step(&loss);
        Ok(loss.f_double_value(&[])?)
    }

    /// Update E and G against D (D's gradients are cleared before its next step); returns the E/G loss
    /// before the update and the mean total scores of encoder and generator pairs.
    pub fn eg_step(&mut self, x: &Tensor, z: &Tensor) -> Result<(f64, f64, f64)> {
        let m = &self.models;
        let enc = m.d.forward_t(x, &m.e.forward_t(x, true).z_sample, true);
        let gen = m.d.forward_t(&m.g.forward_t(z, true), z, true);
        let (se, sg) = (self.total(&enc).mean(Kind::Float), self.total(&gen).mean(Kind::Float));
        let loss = &se - &sg;
        self.opt_e.zero_grad();
        self.opt_g.zero_grad();
        loss.f_backward()?;
        self.opt_e.step();
        self.opt_g.step();
        Ok((loss.f_double_value(&[])?, se.f_double_value(&[])?, sg.f_double_value(&[])?))
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
        let decay = self.cfg.ema_decay;
        let live = self.models.vs_g.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, mut ema) in self.models.vs_g_ema.variables() {
                let Some(v) = live.get(&name) else { continue };
                if ema.kind() == Kind::Float {
                    let _ = ema.f_mul_scalar_(decay)?.f_add_(&v.f_mul_scalar(1.0 - decay)?)?;
                }
            }
            Ok(())
        })
    }

    /// Batch `index` of the seeded epoch order (the last partial batch of an epoch is dropped).
    pub fn batch(&self, images: &Tensor, index: usize) -> Result<Tensor> {
        let n = images.size()[0] as usize;
        let b = self.cfg.batch_size.min(n);
        let per_epoch = (n / b).max(1);
        let perm = seeded_permutation(n, self.cfg.seed.wrapping_add((index / per_epoch) as u64));
        let idx: Vec<i64> = perm[(index % per_epoch) * b..(index % per_epoch + 1) * b].iter().map(|&i| i as i64).collect();
        Ok(images.f_index_select(0, &Tensor::f_from_slice(&idx)?.f_to_device(images.device())?)?)
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        checkpoint_dir(&self.cfg)
    }

    /// Save all four variable stores and the step (optimiser moments are not saved: a resumed run
    /// restarts Adam's averages).
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let dir = self.checkpoint_dir();
        std::fs::create_dir_all(&dir).at(&dir)?;
        for (name, vs) in self.models.stores() {
            let path = dir.join(format!("{name}.safetensors"));
            let tmp = dir.join(format!("{name}.tmp.safetensors")); // the extension picks the format
            vs.save(&tmp)?;
            std::fs::rename(&tmp, &path).at(&path)?;
        }
        let state = serde_json::json!({ "step": self.step, "config": self.cfg });
        std::fs::write(dir.join("state.json"), serde_json::to_string_pretty(&state).unwrap_or_default()).at(dir.join("state.json"))?;
        Ok(dir)
    }

    /// Load the checkpoint in `checkpoint_dir()`; its architecture must match the config's.
    pub fn resume(&mut self) -> Result<usize> {
        let dir = self.checkpoint_dir();
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).at(&state_path)?;
        let state: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::RunFile { path: state_path.clone(), reason: e.to_string() })?;
        let saved: super::Architecture = serde_json::from_value(state["config"]["architecture"].clone()).map_err(|e| Error::RunFile { path: state_path.clone(), reason: e.to_string() })?;
        if saved != self.cfg.architecture {
            return Err(Error::RunFile { path: state_path, reason: "the checkpoint's [architecture] differs from the config's; resume with the config it was trained with".into() });
        }
        for (name, vs) in self.models.stores() {
            vs.load(dir.join(format!("{name}.safetensors")))?;
        }
        self.step = state["step"].as_u64().unwrap_or(0) as usize;
        Ok(self.step)
    }

    /// Train to `cfg.steps`, checkpointing every `checkpoint_every` steps and at the end; one CSV log line
    /// per 10 steps in `<out_dir>/train_log.csv`.
    pub fn train(&mut self, images: &Tensor, progress: bool) -> Result<()> {
        let out = self.cfg.out_dir();
        std::fs::create_dir_all(&out).at(&out)?;
        let log_path = out.join("train_log.csv");
        // A fresh run starts a new log; a resumed one appends to its own.
        let fresh = self.step == 0 || !log_path.exists();
        let mut log = if fresh { std::fs::File::create(&log_path) } else { std::fs::OpenOptions::new().append(true).open(&log_path) }.at(&log_path)?;
        if fresh {
            writeln!(log, "step,d_loss,eg_loss,score_encoder_pairs,score_generator_pairs,seconds").at(&log_path)?;
        }
        // Latents continue from a stream seeded by (seed, step), so a resumed run is itself deterministic.
        tch::manual_seed(self.cfg.seed.wrapping_add(self.step as u64) as i64);
        let bar = if progress { indicatif::ProgressBar::new(self.cfg.steps as u64) } else { indicatif::ProgressBar::hidden() };
        bar.set_position(self.step as u64);
        let start = std::time::Instant::now();
        while self.step < self.cfg.steps {
            let l = self.train_step(images)?;
            if !(l.d.is_finite() && l.eg.is_finite()) {
                self.save_checkpoint()?;
                return Err(Error::Probe(format!("training diverged at step {} (D loss {}, E/G loss {}); lower the learning rates", self.step, l.d, l.eg)));
            }
            if self.step % 10 == 0 {
                writeln!(log, "{},{:.5},{:.5},{:.5},{:.5},{:.1}", self.step, l.d, l.eg, l.score_encoder, l.score_generator, start.elapsed().as_secs_f64()).at(&log_path)?;
                bar.set_message(format!("D {:.3} EG {:.3}", l.d, l.eg));
            }
            bar.inc(1);
            if self.step % self.cfg.checkpoint_every == 0 || self.step == self.cfg.steps {
                self.save_checkpoint()?;
            }
        }
        bar.finish_and_clear();
        Ok(())
    }
}

/// Path helper for the CLI: where exports go.
pub fn export_dir(cfg: &TrainConfig) -> PathBuf {
    cfg.out_dir().join("export")
}

/// Where a run's checkpoint lives.
pub fn checkpoint_dir(cfg: &TrainConfig) -> PathBuf {
    cfg.out_dir().join("checkpoint")
}

/// Is there a checkpoint to resume from?
pub fn has_checkpoint(cfg: &TrainConfig) -> bool {
    checkpoint_dir(cfg).join("state.json").is_file()
}
