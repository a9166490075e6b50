//! What each subcommand does: thin calls into the library, printing for people (or JSON for machines).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::data::{Dataset, DatasetSpec};
use bbeval::features::{self, cache, ExtractOptions};
use bbeval::report::{table, Results};
use bbeval::run::{run_file, RunOptions};
use tch::Device;

use crate::cli::{CacheAction, Cli, Command};

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    match cli.command {
        Command::Extract { encoder, dataset, split, limit, seed, batch_size, cache_dir, strict, dtype } => {
            let spec = DatasetSpec::parse(&dataset)?;
            let data = Dataset::open(&spec, &split)?.subset(limit, seed);
            let mut enc = bbeval::encoder::open(&encoder, spec.kind, dtype)?;
            let batch_size = batch_size.unwrap_or_else(|| bbeval::config::default_batch_size(tch::Cuda::is_available()));
            let opts = ExtractOptions { cache_dir, batch_size, strict, progress };
            let e = features::extract(enc.as_mut(), &data, &opts)?;
            if e.cache_hit {
                println!("cache hit: nothing computed");
            } else {
                println!("{} images in {:.1} s ({:.1} images/s)", e.images, e.seconds, e.images as f64 / e.seconds.max(1e-9));
            }
            for (id, why) in &e.skipped {
                println!("skipped {id}: {why}");
            }
            for (feature, path) in &e.files {
                println!("{feature}\t{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache { action: CacheAction::Ls { cache_dir, json } } => {
            let entries = cache::list(&cache_dir)?;
            if json {
                let ok: Vec<_> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
                println!("{}", serde_json::to_string_pretty(&ok)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<12} {:>8} {:>6} {:>10}  {}", "feature", "rows", "width", "MB", "file (encoder, dataset, split)");
            for entry in entries {
                match entry {
                    Ok(e) => println!(
                        "{:<12} {:>8} {:>6} {:>10.1}  {} ({}, {} [{}])",
                        e.key.feature,
                        e.rows,
                        e.width,
                        e.bytes as f64 / 1e6,
                        e.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                        e.key.encoder,
                        e.key.dataset,
                        e.key.split
                    ),
                    Err(err) => println!("INVALID      {err}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache { action: CacheAction::Verify { cache_dir } } => {
            let mut bad = 0;
            let results = cache::verify(&cache_dir)?;
            for (path, r) in &results {
                match r {
                    Ok(e) => println!("ok       {} ({} × {})", path.display(), e.rows, e.width),
                    Err(err) => {
                        bad += 1;
                        println!("INVALID  {err}");
                    }
                }
            }
            println!("{} file(s), {bad} invalid", results.len());
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Run { file, strict, dtype, cpu } => {
            let device = if cpu { Device::Cpu } else { Device::cuda_if_available() };
            let opts = RunOptions { strict, progress, precision: dtype, device };
            let (results, dir) = run_file(&file, &opts).with_context(|| format!("run {}", file.display()))?;
            println!("{}", table::markdown(&results));
            println!("written: {}/{{results.json,report.md,results.csv}}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { results } => {
            let r = Results::load(&results)?;
            let dir = results.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            r.write(&dir)?;
            println!("{}", table::markdown(&r));
            Ok(ExitCode::SUCCESS)
        }
    }
}
