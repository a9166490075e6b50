//! `bbeval train-bigbigan`: load the config and images, train (or resume), export E and G.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::bigbigan::export::{export_encoder, export_run};
use bbeval::bigbigan::train::{export_dir, has_checkpoint, load_images, Trainer};
use bbeval::bigbigan::TrainConfig;
use tch::Device;

pub fn train_bigbigan(config: &Path, resume: bool, steps: Option<usize>, cpu: bool, progress: bool) -> Result<ExitCode> {
    let mut cfg = TrainConfig::load(config)?;
    if let Some(steps) = steps {
        cfg.steps = steps;
    }
    let device = if cpu { Device::Cpu } else { Device::cuda_if_available() };
    let (images, side) = load_images(&cfg.dataset, cfg.train_limit, cfg.seed)?;
    let images = images.to_device(device);
    let mut trainer = Trainer::new(cfg.clone(), device)?;
    if resume {
        if !has_checkpoint(&cfg) {
            anyhow::bail!("{}: no checkpoint to resume from (run without --resume first)", cfg.out_dir().display());
        }
        let step = trainer.resume()?;
        eprintln!("resumed {} at step {step}", cfg.name);
    } else {
        // The randomly initialised encoder: Table 1's baseline row.
        let m = &mut trainer.models;
        let random = export_encoder(&m.e, &mut m.vs_e, &cfg.architecture, side, &export_dir(&cfg), &format!("{}-e-random", cfg.name), &format!("{} step 0 (random init)", cfg.name))?;
        eprintln!("exported random-init encoder: {}", random.display());
    }
    eprintln!("training {} on {} images ({} steps, batch {}, unary {}, lr E/G/D {}/{}/{}) on {:?}", cfg.name, images.size()[0], cfg.steps, cfg.batch_size, cfg.unary, cfg.lr_e, cfg.lr_g, cfg.lr_d, device);
    let start = std::time::Instant::now();
    trainer.train(&images, progress).with_context(|| format!("training {}", cfg.name))?;
    let (e, g) = export_run(&mut trainer, side)?;
    println!("trained {} to step {} in {:.0} s", cfg.name, trainer.step, start.elapsed().as_secs_f64());
    println!("encoder: {}\ngenerator: {}\nlog: {}", e.display(), g.display(), cfg.out_dir().join("train_log.csv").display());
    Ok(ExitCode::SUCCESS)
}
