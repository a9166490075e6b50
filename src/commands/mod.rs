//! What each subcommand does: thin calls into the library, printing for people (or JSON for machines).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::data::{Dataset, DatasetKind, DatasetSpec};
use bbeval::encoder::Precision;
use bbeval::compare::check::CheckOptions;
use bbeval::config::ProbeConfig;
use bbeval::genmetrics;
use bbeval::probe::protocol::{self, ProbeSetup};
use bbeval::probe::source::{ParquetRows, RowSource};
use bbeval::features::cache::Storage;
use bbeval::features::{self, cache, ExtractOptions};
use bbeval::report::{table, Results};
use bbeval::run::{run_file, RunOptions};
use tch::Device;

use crate::cli::{BatchFlags, CacheAction, Cli, Command};

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    match cli.command {
        Command::Extract { encoder, dataset, split, subset, batches, strict, dtype, storage } => {
            let spec = DatasetSpec::parse(&dataset)?;
            let data = Dataset::open(&spec, &split)?.subset(subset.limit, subset.seed);
            let mut enc = bbeval::encoder::open(&encoder, spec.kind, dtype)?;
            let opts = ExtractOptions { storage, ..extract_options(batches, strict, progress) };
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
        Command::Fid { a, b, subset, inception, batches, strict, save_stats, json } => {
            let mut enc = bbeval::encoder::open(&inception.to_string_lossy(), DatasetKind::Folder, Precision::F32)?;
            let opts = extract_options(batches, strict, progress);
            let (sa, da) = genmetrics::resolve_statistics(&a, enc.as_mut(), subset.limit, subset.seed, &opts)?;
            let (sb, db) = genmetrics::resolve_statistics(&b, enc.as_mut(), subset.limit, subset.seed, &opts)?;
            let fid = genmetrics::frechet_distance(&sa, &sb)?;
            if let Some(dir) = save_stats {
                std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
                sa.save_npz(&dir.join("a.npz"))?;
                sb.save_npz(&dir.join("b.npz"))?;
            }
            let warnings: Vec<String> = [sa.warning(), sb.warning()].into_iter().flatten().collect();
            if json {
                let out = serde_json::json!({ "fid": fid, "a": da, "b": db, "n_a": sa.n, "n_b": sb.n,
                    "inception": enc.name(), "resize": enc.preprocess().describe(), "warnings": warnings });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("FID {fid:.4}  ({da} [n={}] vs {db} [n={}]; {}, {})", sa.n, sb.n, enc.name(), enc.preprocess().describe());
                for w in warnings {
                    println!("warning: {w}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Is { a, classifier, subset, splits, batches, json } => {
            let (spec, split) = DatasetSpec::parse_with_split(&a, "val")?;
            let data = Dataset::open(&spec, &split)?.subset(subset.limit, subset.seed);
            let mut enc = bbeval::encoder::open(&classifier.to_string_lossy(), spec.kind, Precision::F32)?;
            if !enc.outputs().iter().any(|o| o == "logits") {
                anyhow::bail!("{}: the classifier's manifest declares no `logits` output", classifier.display());
            }
            let e = features::extract(enc.as_mut(), &data, &extract_options(batches, false, progress))?;
            let logits = cache::read(&e.files["logits"])?;
            let (mean, std) = genmetrics::inception_score(logits.values.view(), splits);
            let label = genmetrics::inception_score::is_label(enc.name(), logits.width());
            if json {
                let out = serde_json::json!({ "metric": label, "mean": mean, "std": std, "splits": splits, "n": logits.len(), "dataset": data.describe() });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{label} {mean:.3} ± {std:.3}  ({}, n={}, {splits} splits)", data.describe(), logits.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { train, val, backend, l2, lr, epochs, chunk_rows, train_val, bn_crelu, cpu, json } => {
            let defaults = ProbeConfig::default();
            let config = ProbeConfig {
                backend: backend.unwrap_or(defaults.backend),
                l2: if l2.is_empty() { defaults.l2.clone() } else { l2 },
                lr: if lr.is_empty() { defaults.lr.clone() } else { lr },
                epochs: epochs.unwrap_or(defaults.epochs),
                chunk_rows: chunk_rows.unwrap_or(defaults.chunk_rows),
                ..defaults
            };
            let train_rows = ParquetRows::open(&train, config.chunk_rows)?;
            let val_rows = ParquetRows::open(&val, config.chunk_rows)?;
            let held_out = train_val.unwrap_or((train_rows.len() as f64 * bbeval::config::TRAIN_VAL_FRACTION).round() as usize);
            let device = if cpu { Device::Cpu } else { Device::cuda_if_available() };
            let setup = ProbeSetup { config, train_val: held_out, split_seed: bbeval::config::SPLIT_SEED, bn_crelu_from_avepool: bn_crelu, device };
            let out = protocol::run_rows(&train_rows, &val_rows, &setup)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let chosen_lr = out.chosen.lr.map(|lr| format!(", lr {lr}")).unwrap_or_default();
                println!(
                    "top-1 {:.2}% [{:.2}, {:.2}]  top-5 {:.2}%  (λ {}{chosen_lr}; train-val top-1 {:.2}%; n {}/{}/{}; {:.1} s)",
                    100.0 * out.top1,
                    100.0 * out.top1_ci95.0,
                    100.0 * out.top1_ci95.1,
                    100.0 * out.top5,
                    out.chosen.l2,
                    100.0 * out.train_val_top1,
                    out.n_fit,
                    out.n_train_val,
                    out.n_val,
                    out.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { runs, plots, allow_mixed_versions, json } => crate::gate::compare(&runs, plots.as_deref(), allow_mixed_versions, json),
        Command::Check { baseline, run, tolerance, interval, allow_mixed_versions, out, cpu, json } => {
            let device = if cpu { Device::Cpu } else { Device::cuda_if_available() };
            let opts = RunOptions { strict: false, progress, precision: Precision::F32, device };
            let check = CheckOptions { tolerance: tolerance / 100.0, interval, allow_mixed_versions };
            crate::gate::check(&baseline, run.as_deref(), &opts, &check, out.as_deref(), json)
        }
        Command::Reconstruct { encoder, generator, dataset, n, seed, out } => {
            let (spec, split) = DatasetSpec::parse_with_split(&dataset, "val")?;
            let data = Dataset::open(&spec, &split)?.subset(Some(n), seed);
            let mut enc = bbeval::encoder::open(&encoder.to_string_lossy(), spec.kind, Precision::F32)?;
            let gen = genmetrics::generator::Generator::open(&generator, Device::cuda_if_available())?;
            let (w, h) = genmetrics::reconstruct::reconstruction_grid(enc.as_mut(), &gen, &data, n, &out)?;
            println!("written: {} ({w}×{h}: top row x, bottom row G(E(x)))", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainBigbigan { config, resume, steps, cpu } => crate::train_cmd::train_bigbigan(&config, resume, steps, cpu, progress),
        Command::Report { results } => {
            let r = Results::load(&results)?;
            let dir = results.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            r.write(&dir)?;
            println!("{}", table::markdown(&r));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn extract_options(batches: BatchFlags, strict: bool, progress: bool) -> ExtractOptions {
    let batch_size = batches.batch_size.unwrap_or_else(|| bbeval::config::default_batch_size(tch::Cuda::is_available()));
    ExtractOptions { cache_dir: batches.cache_dir, batch_size, strict, progress, storage: Storage::F32 }
}
