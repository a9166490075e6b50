//! Export E and G (the EMA copy) as TorchScript, traced by tch, with manifests that the rest of bbeval
//! reads like any encoder or generator.
//!
//! The encoder takes `[N, 1, 28, 28]` in [-1, 1], pads to the networks' side inside the traced graph (32 for
//! `resnet`; nothing for `dcgan`), runs in
//! eval mode (BN running statistics) and returns one `[N, Σ widths]` tensor holding avepool, bn_crelu,
//! z_mean and z_sample side by side, as the manifest's `output_order` says (traced methods return one value). The generator maps z `[N, latent]` to `[N, 3, 32, 32]` in [-1, 1] (the
//! gray channel repeated, as the generator contract asks for RGB).

use std::path::{Path, PathBuf};

use tch::{nn, CModule, Kind, Tensor};

use super::nets::{Encoder, Generator};
use super::train::{calibrate_encoder, Trainer};
use super::{Architecture, TrainConfig};
use crate::error::{Error, IoContext, Result};

/// The output names of an exported encoder, in its tuple's order.
pub const ENCODER_OUTPUTS: [&str; 4] = ["avepool", "bn_crelu", "z_mean", "z_sample"];

fn save_traced(module: CModule, path: &Path) -> Result<String> {
    let tmp = path.with_extension("pt.tmp");
    if let Err(e) = module.save(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    std::fs::rename(&tmp, path).at(path)?;
    crate::data::file_sha256(path)
}

/// Trace `forward` on `example` with the weights of `vs` on the CPU and frozen, save it as `path`, and put
/// the weights back where they were (device and gradients); returns the file's sha256.
///
/// The traced graph holds the weights themselves as constants, on the device they were traced on: a run
/// trained on a GPU still exports CPU modules, which load anywhere and which the probes read like the CPU
/// recipe's. They are saved while still frozen (a constant that requires grad cannot be loaded back).
fn trace_on_cpu(vs: &mut nn::VarStore, class: &str, example: Tensor, path: &Path, forward: &mut impl FnMut(&[Tensor]) -> Vec<Tensor>) -> Result<String> {
    let device = vs.device();
    vs.set_device(tch::Device::Cpu);
    vs.freeze();
    let module = CModule::create_by_tracing(class, "forward", &[example], forward);
    let sha = module.map_err(Error::from).and_then(|m| save_traced(m, path));
    vs.unfreeze();
    vs.set_device(device);
    sha
}

/// Trace `encoder` into `<dir>/<name>.pt` and write `<dir>/<name>.toml`; returns the manifest path.
/// `vs` holds the encoder's weights (see [`trace_on_cpu`]).
pub fn export_encoder(encoder: &Encoder, vs: &mut nn::VarStore, a: &Architecture, input_side: i64, dir: &Path, name: &str, source: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).at(dir)?;
    let example = Tensor::f_zeros([2, a.channels, input_side, input_side], (Kind::Float, tch::Device::Cpu))?;
    let pad = (a.image_size() - input_side) / 2;
    let weights = dir.join(format!("{name}.pt"));
    let sha = trace_on_cpu(vs, "BigBiGanEncoder", example, &weights, &mut |inputs| {
        let x = inputs[0].pad([pad, pad, pad, pad], "constant", Some(-1.0));
        let e = encoder.forward_t(&x, false);
        // TorchScript methods return one value: the outputs side by side, split by `output_order`.
        vec![Tensor::cat(&[e.avepool, e.bn_crelu, e.z_mean, e.z_sample], 1)]
    })?;
    let width = encoder.avepool_width();
    let manifest = format!(
        "# Written by `bbeval train-bigbigan` ({source}).\nname = \"{name}\"\narchitecture = \"BigBiGAN-mini E ({:?}, width {})\"\nweights = \"{name}.pt\"\nweights_sha256 = \"{sha}\"\nsource = \"{source}\"\nlatent = {}\noutput_order = {:?}\n\n[input]\nsize = {input_side}\nchannels = {}\nrange = [-1, 1]\n\n[outputs]\navepool = {width}\nbn_crelu = {}\nz_mean = {}\nz_sample = {}\n",
        a.kind, a.e_width, a.latent, ENCODER_OUTPUTS, a.channels, 2 * width, a.latent, a.latent
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, manifest).at(&path)?;
    Ok(path)
}

/// Trace `generator` into `<dir>/<name>.pt` and write `<dir>/<name>.toml`; returns the manifest path.
pub fn export_generator(generator: &Generator, vs: &mut nn::VarStore, dir: &Path, name: &str, source: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).at(dir)?;
    let example = Tensor::f_zeros([2, generator.latent()], (Kind::Float, tch::Device::Cpu))?;
    let weights = dir.join(format!("{name}.pt"));
    let sha = trace_on_cpu(vs, "BigBiGanGenerator", example, &weights, &mut |inputs| {
        let x = generator.forward_t(&inputs[0], false);
        let channels = x.size()[1];
        vec![if channels == 1 { x.repeat([1, 3, 1, 1]) } else { x }]
    })?;
    let manifest = format!(
        "# Written by `bbeval train-bigbigan` ({source}).\nname = \"{name}\"\nweights = \"{name}.pt\"\nweights_sha256 = \"{sha}\"\nsource = \"{source}\"\nlatent = {}\nrange = [-1, 1]\n",
        generator.latent()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, manifest).at(&path)?;
    Ok(path)
}

/// Export the encoder as it is now (before training: Table 1's random-init baseline), with BN statistics
/// calibrated on training images.
pub fn export_random_encoder(trainer: &mut Trainer, images: &Tensor, side: i64) -> Result<PathBuf> {
    trainer.calibrate(images)?;
    let cfg = trainer.cfg.clone();
    let m = &mut trainer.models;
    export_encoder(&m.e, &mut m.vs_e, &cfg.architecture, side, &cfg.export_dir(), &format!("{}-e-random", cfg.name), &format!("{} step 0 (random init, BN calibrated)", cfg.name))
}

/// Re-create only the EMA generator's export of a run from its checkpoint (already loaded into `trainer`):
/// the shipped run's generator (1.7 MB) is not committed, and re-exporting the encoder as well would rewrite
/// the committed one with bits that depend on the machine's BLAS and thread count.
pub fn export_generator_of_run(trainer: &mut Trainer) -> Result<PathBuf> {
    let device = trainer.models.vs_g_ema.device();
    trainer.calibrate_generator(device)?;
    let cfg: TrainConfig = trainer.cfg.clone();
    let source = format!("{} step {}", cfg.name, trainer.step);
    let m = &mut trainer.models;
    export_generator(&m.g_ema, &mut m.vs_g_ema, &cfg.export_dir(), &format!("{}-g", cfg.name), &source)
}

/// Export the trained encoder and EMA generator of a run as `<out_dir>/export/{encoder,generator}.*`, their
/// BatchNorm statistics calibrated first (encoder on training images, generator on latents).
pub fn export_run(trainer: &mut Trainer, images: &Tensor, input_side: i64) -> Result<(PathBuf, PathBuf)> {
    trainer.calibrate_generator(images.device())?;
    let cfg: TrainConfig = trainer.cfg.clone();
    let dir = cfg.export_dir();
    let source = format!("{} step {}", cfg.name, trainer.step);
    let name = format!("{}-e", cfg.name);
    let batches = trainer.calibration_images(images)?;
    let m = &mut trainer.models;
    // The exported weights — the live E's, or their average put in place — are calibrated as they are exported.
    let export_e = |vs: &mut nn::VarStore, source: &str| {
        calibrate_encoder(&m.e, vs, &batches)?;
        export_encoder(&m.e, vs, &cfg.architecture, input_side, &dir, &name, source)
    };
    let e = match &trainer.e_average {
        Some(average) => average.with_average_in(&mut m.vs_e, |vs| export_e(vs, &format!("{source}, E's weights averaged (decay {})", cfg.encoder_ema_decay)))?,
        None => export_e(&mut m.vs_e, &source)?,
    };
    let g = export_generator(&m.g_ema, &mut m.vs_g_ema, &dir, &format!("{}-g", cfg.name), &source)?;
    if !e.exists() || !g.exists() {
        return Err(Error::Training { name: cfg.name.clone(), reason: format!("export wrote no files into {}", dir.display()) });
    }
    Ok((e, g))
}
