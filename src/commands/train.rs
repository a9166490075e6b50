//! `bbeval train-bigbigan`: load the config and images, train (or resume), export E and G; or re-export G
//! alone from a checkpoint, or redraw the training log's plot.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use bbeval::bigbigan::export::{export_generator_of_run, export_random_encoder, export_run};
use bbeval::bigbigan::follow::{encoder_follow, generator_follow, EncoderTarget, FollowPoint, GeneratorTarget};
use bbeval::bigbigan::pairing::{game_d_encoder_pairing, game_d_pairing, pairing_capacity, PairingProbe};
use bbeval::bigbigan::train::{load_images, Stopped, Trainer};
use bbeval::bigbigan::TrainConfig;
use bbeval::context::ExecutionContext;
use serde_json::json;

use super::Output;

/// The config, with `--seed` applied (another seed trains into its own folder).
fn load_config(config: &Path, seed: Option<u64>) -> Result<TrainConfig> {
    let cfg = TrainConfig::load(config)?;
    Ok(match seed {
        Some(seed) => cfg.with_seed(seed),
        None => cfg,
    })
}

/// `train-bigbigan`'s flags for a training run.
pub struct TrainFlags {
    pub resume: bool,
    pub steps: Option<usize>,
    pub seed: Option<u64>,
    pub max_seconds: Option<f64>,
}

pub fn train_bigbigan(out: &Output, config: &Path, flags: TrainFlags, ctx: &ExecutionContext) -> Result<ExitCode> {
    let TrainFlags { resume, steps, seed, max_seconds } = flags;
    let budget = match max_seconds {
        None => None,
        Some(s) => Some(Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("--max-seconds {s}: give a number of seconds ≥ 0"))?),
    };
    let mut cfg = load_config(config, seed)?;
    if let Some(steps) = steps {
        cfg.steps = steps;
    }
    let device = ctx.device;
    let (images, side) = load_images(&cfg.dataset, cfg.train_limit, cfg.seed, cfg.architecture.image_size())?;
    let images = images.to_device(device);
    let mut trainer = Trainer::new(cfg.clone(), device)?;
    if resume {
        if !cfg.has_checkpoint() {
            anyhow::bail!("{}: no checkpoint to resume from (run without --resume first)", cfg.out_dir().display());
        }
        let step = trainer.resume()?;
        out.reporter.info(format!("resumed {} at step {step}", cfg.name));
    } else {
        // The randomly initialised encoder: Table 1's baseline row.
        let random = export_random_encoder(&mut trainer, &images, side)?;
        out.reporter.info(format!("exported random-init encoder: {}", random.display()));
    }
    out.reporter.info(format!(
        "training {} on {} images ({} steps, batch {}, unary {}, lr E/G/D {}/{}/{}) on {}",
        cfg.name,
        images.size()[0],
        cfg.steps,
        cfg.batch_size,
        cfg.unary,
        cfg.lr_e,
        cfg.lr_g,
        cfg.lr_d,
        ctx.describe()
    ));
    let start = std::time::Instant::now();
    let stopped = trainer.train_within(&images, &out.reporter, budget).with_context(|| format!("training {}", cfg.name))?;
    let (e, g) = export_run(&mut trainer, &images, side)?;
    let log = cfg.log_path();
    let seconds = start.elapsed().as_secs_f64();
    let by_budget = stopped == Stopped::TimeBudget;
    let record = json!({ "name": cfg.name, "step": trainer.step, "steps": cfg.steps, "stopped_by_time_budget": by_budget, "seconds": seconds, "encoder": e, "generator": g, "log": log, "device": ctx.device_name() });
    out.emit(&record, || {
        println!("trained {} to step {} in {seconds:.0} s", cfg.name, trainer.step);
        if by_budget {
            println!("stopped by --max-seconds at step {} of {}; --resume continues from the checkpoint", trainer.step, cfg.steps);
        }
        println!("encoder: {}\ngenerator: {}\nlog: {}", e.display(), g.display(), log.display());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The trainer of a finished (or interrupted) run, loaded from its checkpoint; `what` says what for.
fn from_checkpoint(config: &Path, seed: Option<u64>, what: &str, ctx: &ExecutionContext) -> Result<(TrainConfig, Trainer, usize)> {
    let cfg = load_config(config, seed)?;
    if !cfg.has_checkpoint() {
        anyhow::bail!("{}: no checkpoint to {what} (train it first: bbeval train-bigbigan --config {})", cfg.checkpoint_dir().display(), config.display());
    }
    let mut trainer = Trainer::new(cfg.clone(), ctx.device)?;
    let step = trainer.resume()?;
    Ok((cfg, trainer, step))
}

/// `--export-generator`: load the run's checkpoint and re-create its EMA generator's export only.
pub fn export_generator(out: &Output, config: &Path, seed: Option<u64>, ctx: &ExecutionContext) -> Result<ExitCode> {
    let (cfg, mut trainer, step) = from_checkpoint(config, seed, "export the generator from", ctx)?;
    let g = export_generator_of_run(&mut trainer)?;
    out.emit(&json!({ "name": cfg.name, "step": step, "generator": g, "device": ctx.device_name() }), || {
        println!("exported the EMA generator of {} at step {step}: {}", cfg.name, g.display());
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--plot-log`: draw `<out_dir>/train_log.png` from the run's `train_log.csv` (a run trained on a machine
/// without fonts has the log but no plot).
pub fn plot_log(out: &Output, config: &Path, seed: Option<u64>) -> Result<ExitCode> {
    let cfg = load_config(config, seed)?;
    let log = cfg.log_path();
    if !log.exists() {
        anyhow::bail!("{}: no training log to plot (train it first: bbeval train-bigbigan --config {})", log.display(), config.display());
    }
    let png = cfg.plot_path();
    bbeval::bigbigan::diagnostics::plot(&log, &png)?;
    out.emit(&json!({ "name": cfg.name, "log": log, "plot": png }), || println!("plotted {}: {}", log.display(), png.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// One follow table: a copy trained towards the check (its mean s_xz, pairing share and corr) beside the
/// same copy trained towards the other network itself (pairing share and corr), step by step.
fn print_follow(step_label: &str, towards_check: &[FollowPoint], towards_network: &[FollowPoint]) {
    println!("{step_label:>7}  {:>8}  {:>14}  {:>6}  |  {:>14}  {:>6}", "s_xz", "own > other", "corr", "own > other", "corr");
    for (c, n) in towards_check.iter().zip(towards_network) {
        println!("{:>7}  {:>8.3}  {:>14.3}  {:>6.3}  |  {:>14.3}  {:>6.3}", c.step, c.s_xz, c.own_above_other, c.corr, n.own_above_other, n.corr);
    }
}

/// `--pairing-probe STEPS`: does the run's own D look at the pairing, can a fresh D of its architecture
/// learn that z belongs to G(z), does G follow the run's D (or E itself) when trained alone, and does E
/// follow the fresh D (or G itself)?
pub fn pairing_probe(out: &Output, config: &Path, seed: Option<u64>, steps: usize, ctx: &ExecutionContext) -> Result<ExitCode> {
    let (cfg, mut trainer, step) = from_checkpoint(config, seed, "probe the pairing with", ctx)?;
    let probe = PairingProbe { steps, batch: cfg.batch_size as i64, lr: cfg.lr_d, beta1: cfg.beta1, every: cfg.log_every, seed: cfg.seed };
    let start = std::time::Instant::now();
    let game = game_d_pairing(&trainer.models, probe.seed)?;
    let (images, _) = load_images(&cfg.dataset, cfg.train_limit, cfg.seed, cfg.architecture.image_size())?;
    // The images stay on the CPU; the 1,024 measured ones go to the device.
    let game_encoder = game_d_encoder_pairing(&trainer.models, &images, probe.seed)?;
    let checker = pairing_capacity(&trainer.models, &cfg.architecture, &probe)?;
    let points = &checker.points;
    // G follows at the run's own G learning rate.
    let g_probe = PairingProbe { lr: cfg.lr_g, ..probe };
    let follow_d = generator_follow(&mut trainer.models, &cfg.architecture, &g_probe, GeneratorTarget::JointScore)?;
    let follow_e = generator_follow(&mut trainer.models, &cfg.architecture, &g_probe, GeneratorTarget::Encoder)?;
    // E follows at the run's own E learning rate.
    let e_probe = PairingProbe { lr: cfg.lr_e, ..probe };
    let e_follow_d = encoder_follow(&trainer.models, &checker.d, &cfg.architecture, &images, &e_probe, EncoderTarget::PairingChecker)?;
    let e_follow_g = encoder_follow(&trainer.models, &checker.d, &cfg.architecture, &images, &e_probe, EncoderTarget::Generator)?;
    let seconds = start.elapsed().as_secs_f64();
    let rows: Vec<_> = points.iter().map(|p| json!({ "step": p.step, "accuracy": p.accuracy })).collect();
    let follow = |f: &[FollowPoint]| -> Vec<serde_json::Value> {
        f.iter().map(|p| json!({ "step": p.step, "s_xz": p.s_xz, "own_above_other": p.own_above_other, "corr": p.corr })).collect()
    };
    out.emit(
        &json!({ "name": cfg.name, "checkpoint_step": step, "game_d_scores_own_pair_lower": game, "game_d_scores_own_encoder_pair_higher": game_encoder,
                 "batch": probe.batch, "lr": probe.lr, "lr_g": g_probe.lr, "lr_e": e_probe.lr, "seconds": seconds, "points": rows, "g_follows_d": follow(&follow_d), "g_follows_e": follow(&follow_e),
                 "e_follows_fresh_d": follow(&e_follow_d), "e_follows_g": follow(&e_follow_g) }),
        || {
            println!("the run's own D scores the true pair (G(z), z) below (G(z), z′) for {:.1}% of held-out latents (50% = it ignores the pairing)", 100.0 * game);
            println!("the run's own D scores the true encoder pair (x, E(x)) above (x, E(x′)) for {:.1}% of training images", 100.0 * game_encoder);
            println!("a fresh D of {}'s architecture learning (G(z), z) against (G(z), z′), G of step {step} frozen (chance 0.5):", cfg.name);
            println!("{:>7}  held-out accuracy", "D step");
            for p in points {
                println!("{:>7}  {:.3}", p.step, p.accuracy);
            }
            println!("G of step {step} trained alone, D and E frozen, towards D's joint score | towards E itself (‖E(G(z)) − z‖²):");
            print_follow("G step", &follow_d, &follow_e);
            println!("E of step {step} trained alone, G frozen, towards the fresh D (its check of G's pairing, on training images) | towards G itself (‖E(G(z)) − z‖²):");
            print_follow("E step", &e_follow_d, &e_follow_g);
            println!("{seconds:.0} s");
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
