//! What each subcommand does: thin calls into the library, printing for people (or `--json` for machines).
//! The reporter and the execution context are made here, once per command, and handed down.

mod cache;
mod gate;
mod import;
mod measure;
mod train;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use bbeval::context::ExecutionContext;
use bbeval::reporter::Reporter;
use serde::Serialize;

use crate::cli::{Cli, Command, ComputeFlags};

/// What every command needs to know about how to talk.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub reporter: Reporter,
}

impl Output {
    /// Print `value` as JSON, or the human form.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

/// The execution context from flags alone (commands without a run file).
pub fn context(flags: &ComputeFlags) -> Result<ExecutionContext> {
    Ok(ExecutionContext::decide(flags.device.unwrap_or_default(), flags.dtype.unwrap_or_default(), flags.threads)?)
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let out = Output { json: cli.json, reporter: Reporter::new(cli.quiet, std::io::stderr().is_terminal()) };
    match cli.command {
        Command::Extract { encoder, dataset, split, subset, batches, strict, storage, shard, rehash, compute } => {
            measure::extract(&out, &encoder, &dataset, &split, &subset, batches, strict, storage, shard, rehash, &context(&compute)?)
        }
        Command::Cache { action } => cache::run(&out, action),
        Command::Run { file, strict, overwrite, allow_unverified, shard, dataset, rehash, recompute, compute } => {
            gate::run(&out, &file, gate::RunFlags { strict, overwrite, allow_unverified, shard, dataset, rehash, recompute }, &compute)
        }
        Command::Fid { a, b, subset, inception, batches, strict, save_stats, compute } => measure::fid(&out, &a, &b, &subset, &inception, batches, strict, save_stats, &context(&compute)?),
        Command::Is { a, classifier, subset, splits, batches, compute } => measure::inception_score(&out, &a, &classifier, &subset, splits, batches, &context(&compute)?),
        Command::Probe { train, val, backend, l2, lr, epochs, max_iter, tol, chunk_rows, train_val, bn_crelu, compute } => {
            let flags = measure::ProbeFlags { backend, l2, lr, epochs, max_iter, tol, chunk_rows, train_val, bn_crelu };
            measure::probe(&out, &train, &val, flags, &context(&compute)?)
        }
        Command::Compare { runs, plots, allow_mixed_versions } => gate::compare(&out, &runs, plots.as_deref(), allow_mixed_versions),
        Command::Check { baseline, run, tolerance, interval, allow_mixed_versions, out: dir, compute } => {
            gate::check(&out, &baseline, run.as_deref(), &tolerance, interval, allow_mixed_versions, dir.as_deref(), &compute)
        }
        Command::Reconstruct { encoder, generator, dataset, n, seed, out: png, compute } => measure::reconstruct(&out, &encoder, &generator, &dataset, n, seed, &png, &context(&compute)?),
        Command::TrainBigbigan { config, resume, steps, seed, max_seconds, export_generator, pairing_probe, plot_log, compute } => {
            if plot_log {
                return train::plot_log(&out, &config, seed);
            }
            let ctx = context(&compute)?;
            match (export_generator, pairing_probe) {
                (true, _) => train::export_generator(&out, &config, seed, &ctx),
                (false, Some(probe_steps)) => train::pairing_probe(&out, &config, seed, probe_steps, &ctx),
                (false, None) => train::train_bigbigan(&out, &config, train::TrainFlags { resume, steps, seed, max_seconds }, &ctx),
            }
        }
        Command::ImportTfhub { module, name, out: dir, architecture, images, tools, compute } => {
            import::import(&out, bbeval::tfhub::import::ImportOptions { module, name, out_dir: dir, architecture, images, tools }, &context(&compute)?)
        }
        Command::VerifyImport { manifest, compute } => import::verify(&out, &manifest, &context(&compute)?),
        Command::Report { results } => gate::report(&out, &results),
    }
}
