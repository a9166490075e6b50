//! `run`, `compare`, `check` and `report`: run files and their results; a regression maps to exit 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::compare::check::{check as check_runs, CheckOptions, Tolerances};
use bbeval::compare::{deltas, plots, versions_agree};
use bbeval::data::sanitize;
use bbeval::features::Shard;
use bbeval::report::{table, Results};
use bbeval::run::{run_config, run_file, RunOptions, RunOutcome};
use bbeval::runfile::RunFile;
use serde_json::json;

use super::Output;
use crate::cli::ComputeFlags;

/// The flags of `bbeval run` besides the compute flags.
pub struct RunFlags {
    pub strict: bool,
    pub overwrite: bool,
    pub allow_unverified: bool,
    pub shard: Option<Shard>,
    pub dataset: Option<String>,
    pub rehash: bool,
    pub recompute: bool,
}

fn run_options(out: &Output, run: &RunFile, compute: &ComputeFlags) -> Result<RunOptions> {
    let ctx = run.context(compute.device, compute.dtype, compute.threads)?;
    Ok(RunOptions { reporter: out.reporter, ctx, ..RunOptions::cpu() })
}

pub fn run(out: &Output, file: &Path, flags: RunFlags, compute: &ComputeFlags) -> Result<ExitCode> {
    let mut run = RunFile::load(file)?;
    if let Some(spec) = flags.dataset {
        run.dataset.spec = spec;
    }
    let opts = RunOptions { strict: flags.strict, overwrite: flags.overwrite, allow_unverified: flags.allow_unverified, shard: flags.shard, rehash: flags.rehash, recompute: flags.recompute, ..run_options(out, &run, compute)? };
    out.reporter.info(format!("run {} on {}", run.name, opts.ctx.describe()));
    match run_file(&run, &opts).with_context(|| format!("run {}", file.display()))? {
        RunOutcome::Written { results, dir } => out.emit(&*results, || {
            println!("{}", table::markdown(&results));
            println!("written: {}/{{results.json,report.md,results.csv}}", dir.display());
        })?,
        RunOutcome::Sharded { shard } => out.emit(&json!({ "shard": shard.to_string(), "extracted": true }), || {
            println!("shard {shard}: extraction done; when every shard has run, `bbeval cache merge` (or `bbeval run` without --shard) assembles the features");
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn compare(out: &Output, paths: &[PathBuf], plot_dir: Option<&Path>, allow_mixed: bool) -> Result<ExitCode> {
    let runs: Vec<Results> = paths.iter().map(|p| Results::load_any(p)).collect::<bbeval::Result<_>>()?;
    let refs: Vec<&Results> = runs.iter().collect();
    versions_agree(&refs, allow_mixed)?;
    let baseline = &runs[0];
    let all: Vec<_> = runs[1..].iter().flat_map(|c| deltas::deltas(baseline, c)).collect();
    let mut written = Vec::new();
    if let Some(dir) = plot_dir {
        if refs.iter().filter(|r| bbeval::compare::step_of(r).is_some()).count() >= 2 {
            written.extend(plots::top1_curves(&refs, &dir.join("top1_vs_step"))?);
        }
        for r in &runs {
            for row in r.rows.iter().filter(|row| row.probe.grid.len() > 1) {
                let stem = dir.join(sanitize(&format!("grid__{}__{}__{}", r.name, row.method, row.feature)));
                written.extend(plots::grid_heatmap(r, row, &stem)?);
            }
        }
    }
    let missing: Vec<(String, String)> = runs[1..].iter().flat_map(|r| deltas::missing_rows(baseline, r).into_iter().map(|k| (r.name.clone(), k.to_string()))).collect();
    out.emit(&json!({ "deltas": all, "missing": missing, "plots": written }), || {
        print!("{}", deltas::markdown(&all));
        for (run, key) in &missing {
            println!("note: `{run}` has no row {key}");
        }
        for p in &written {
            println!("written: {}", p.display());
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The folder a results path names (a results.json or its folder), resolved.
fn results_dir(path: &Path) -> PathBuf {
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    dir.canonicalize().unwrap_or(dir)
}

#[allow(clippy::too_many_arguments)]
pub fn check(out: &Output, baseline_path: &Path, run: Option<&Path>, tolerance: &[String], interval: bool, allow_mixed: bool, write_to: Option<&Path>, compute: &ComputeFlags) -> Result<ExitCode> {
    let tolerances = Tolerances::parse(tolerance)?;
    if let Some(dir) = write_to {
        let target = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if target == results_dir(baseline_path) {
            anyhow::bail!("--out {} is the baseline's own folder; `check` never writes over the baseline it judges — pick another folder", dir.display());
        }
    }
    let baseline = Results::load_any(baseline_path)?;
    // Refuse before the (long) re-run when the baseline's protocol is not this build's.
    versions_agree(&[&baseline], allow_mixed)?;
    let config = match run {
        Some(path) => RunFile::load(path)?,
        None => baseline.config.clone(),
    };
    let opts = run_options(out, &config, compute)?;
    let fresh = run_config(&config, &opts).with_context(|| format!("re-running `{}`", config.name))?;
    if let Some(dir) = write_to {
        fresh.write(dir)?;
    }
    let report = check_runs(&baseline, &fresh, &CheckOptions { tolerances, interval, allow_mixed_versions: allow_mixed })?;
    out.emit(&report, || {
        if report.passed {
            println!("check passed: {} metrics of `{}` within tolerance ({})", report.findings.len(), baseline.name, tolerance_summary(&report.tolerances));
        } else {
            println!("check FAILED: regressions against `{}` ({}):\n", baseline.name, baseline_path.display());
            print!("{}", report.regressions_markdown());
            for f in report.regressions() {
                println!("- {} {}: {}", f.delta.row, f.delta.metric, f.reason.as_deref().unwrap_or(""));
            }
        }
    })?;
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn tolerance_summary(t: &Tolerances) -> String {
    t.0.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

pub fn report(out: &Output, results: &Path) -> Result<ExitCode> {
    let r = Results::load(results)?;
    let dir = results.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let written = r.write(&dir)?;
    out.emit(&json!({ "written": written }), || println!("{}", table::markdown(&r)))?;
    Ok(ExitCode::SUCCESS)
}
