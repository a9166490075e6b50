//! `bbeval compare` and `bbeval check`: print the library's comparisons and map a regression to exit 1.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::compare::check::{check as check_runs, CheckOptions};
use bbeval::compare::{deltas, plots, versions_agree};
use bbeval::config::RunFile;
use bbeval::data::sanitize;
use bbeval::report::Results;
use bbeval::run::{run_config, RunOptions};

pub fn compare(paths: &[std::path::PathBuf], plot_dir: Option<&Path>, allow_mixed: bool, json: bool) -> Result<ExitCode> {
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
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "deltas": all, "plots": written }))?);
    } else {
        print!("{}", deltas::markdown(&all));
        for r in runs[1..].iter() {
            for key in deltas::missing_rows(baseline, r) {
                println!("note: `{}` has no row {key}", r.name);
            }
        }
        for p in &written {
            println!("written: {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(baseline_path: &Path, run: Option<&Path>, opts: &RunOptions, check: &CheckOptions, out: Option<&Path>, json: bool) -> Result<ExitCode> {
    let baseline = Results::load_any(baseline_path)?;
    // Refuse before the (long) re-run when the baseline's protocol is not this build's.
    versions_agree(&[&baseline], check.allow_mixed_versions)?;
    let config = match run {
        Some(path) => RunFile::load(path)?,
        None => baseline.config.clone(),
    };
    let fresh = run_config(&config, opts).with_context(|| format!("re-running `{}`", config.name))?;
    if let Some(dir) = out {
        fresh.write(dir)?;
    }
    let report = check_runs(&baseline, &fresh, check)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.passed {
        println!("check passed: {} metrics of `{}` within {:.2} points of the baseline", report.findings.len(), baseline.name, 100.0 * check.tolerance);
    } else {
        println!("check FAILED: regressions against `{}` ({}):\n", baseline.name, baseline_path.display());
        print!("{}", report.regressions_markdown());
        for f in report.regressions() {
            println!("- {} {}: {}", f.delta.row, f.delta.metric, f.reason.as_deref().unwrap_or(""));
        }
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
