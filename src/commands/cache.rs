//! `cache ls | verify | gc | merge`.

use std::process::ExitCode;

use anyhow::Result;
use bbeval::features::cache;
use bbeval::features::{maintenance, parts};
use serde_json::json;

use super::Output;
use crate::cli::CacheAction;

pub fn run(out: &Output, action: CacheAction) -> Result<ExitCode> {
    match action {
        CacheAction::Ls { cache_dir } => {
            let entries = cache::list(&cache_dir)?;
            let leftovers = maintenance::leftovers(&cache_dir)?;
            let ok: Vec<_> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
            let bad: Vec<String> = entries.iter().filter_map(|e| e.as_ref().err().map(|e| e.to_string())).collect();
            out.emit(&json!({ "files": ok, "invalid": bad, "unfinished": leftovers.parts, "temporaries": leftovers.temporaries }), || {
                println!("{:<12} {:>8} {:>6} {:>10}  file (encoder, dataset, split)", "feature", "rows", "width", "MB");
                for e in &ok {
                    let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    println!("{:<12} {:>8} {:>6} {:>10.1}  {name} ({}, {} [{}])", e.key.feature, e.rows, e.width, e.bytes as f64 / 1e6, e.key.encoder, e.key.dataset, e.key.split);
                }
                for err in &bad {
                    println!("INVALID      {err}");
                }
                for p in &leftovers.parts {
                    println!("UNFINISHED   {} (resumable: re-run the extraction; `cache merge` when sharded)", p.display());
                }
                for (p, alive) in &leftovers.temporaries {
                    println!("TEMPORARY    {} ({})", p.display(), if *alive { "being written" } else { "left by a killed process; `cache gc` removes it" });
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Verify { cache_dir } => {
            let results = cache::verify(&cache_dir)?;
            let leftovers = maintenance::leftovers(&cache_dir)?;
            let bad = results.iter().filter(|(_, r)| r.is_err()).count();
            let rows: Vec<_> = results.iter().map(|(p, r)| json!({ "path": p, "ok": r.is_ok(), "error": r.as_ref().err().map(|e| e.to_string()) })).collect();
            out.emit(&json!({ "files": rows, "invalid": bad, "temporaries": leftovers.temporaries, "unfinished": leftovers.parts }), || {
                for (path, r) in &results {
                    match r {
                        Ok(e) => println!("ok       {} ({} × {})", path.display(), e.rows, e.width),
                        Err(err) => println!("INVALID  {err}"),
                    }
                }
                for (p, _) in &leftovers.temporaries {
                    println!("temporary {}", p.display());
                }
                println!("{} file(s), {bad} invalid, {} temporar(ies), {} unfinished extraction(s)", results.len(), leftovers.temporaries.len(), leftovers.parts.len());
            })?;
            Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        CacheAction::Gc { cache_dir } => {
            let removed = maintenance::gc(&cache_dir)?;
            out.emit(&json!({ "removed": removed }), || {
                for p in &removed {
                    println!("removed {}", p.display());
                }
                println!("{} removed", removed.len());
            })?;
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Merge { cache_dir } => {
            let mut merged = Vec::new();
            let mut incomplete = Vec::new();
            for job in parts::jobs(&cache_dir)? {
                match job.missing()? {
                    None => merged.push(job.assemble(&cache_dir)?),
                    Some(why) => incomplete.push(format!("{}: {why}", job.dir.display())),
                }
            }
            out.emit(&json!({ "merged": merged, "incomplete": incomplete }), || {
                for files in &merged {
                    for (feature, p) in files {
                        println!("merged {feature}\t{}", p.display());
                    }
                }
                for i in &incomplete {
                    println!("INCOMPLETE {i}");
                }
            })?;
            if !incomplete.is_empty() {
                anyhow::bail!("{} extraction(s) cannot be merged yet: {}", incomplete.len(), incomplete.join("; "));
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Diff { a, b } => {
            let d = bbeval::features::diff::diff(&cache::read(&a)?, &cache::read(&b)?)?;
            out.emit(&d, || {
                println!(
                    "{} rows × {}: max |Δ| {:.3e} (rel {:.3e} of the largest value), row cosine min {:.7} mean {:.7}, same argmax {}/{}",
                    d.rows, d.width, d.max_abs_diff, d.rel, d.min_row_cosine, d.mean_row_cosine, d.same_argmax, d.rows
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Read { file, repeat, checksum_share } => {
            let f = cache::FeatureFile::open(&file)?;
            let shape = (f.rows(), f.width());
            let median_of = |verify: bool| -> Result<(f64, Vec<f64>)> {
                let mut seconds = Vec::new();
                for _ in 0..repeat.max(1) {
                    let start = std::time::Instant::now();
                    let f = cache::FeatureFile::open(&file)?;
                    f.read_groups_checked(0..f.row_group_count(), verify)?;
                    seconds.push(start.elapsed().as_secs_f64());
                }
                seconds.sort_by(f64::total_cmp);
                Ok((seconds[seconds.len() / 2], seconds))
            };
            let (median, seconds) = median_of(true)?;
            // The unchecked reads run after the checked ones, on a file the checked reads left in the page cache.
            let unchecked = if checksum_share { Some(median_of(false)?.0) } else { None };
            let share = unchecked.map(|u| (median - u) / median);
            let mb = (shape.0 * shape.1 * 4) as f64 / 1e6;
            out.emit(
                &json!({ "rows": shape.0, "width": shape.1, "median_seconds": median, "mb_per_s": mb / median, "seconds": seconds,
                         "median_seconds_without_checksums": unchecked, "checksum_share": share }),
                || {
                    println!("{} × {}: median {:.3} s over {} reads, {:.0} MB/s of f32 delivered", shape.0, shape.1, median, seconds.len(), mb / median);
                    if let (Some(u), Some(share)) = (unchecked, share) {
                        println!("without checksums: median {u:.3} s; the checksums' share of a read {:.1}%", share * 100.0);
                    }
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Synthetic { cache_dir, rows, val_rows, width, classes, scale, seed, storage } => {
            let (train, val) = bbeval::features::synthetic::write_pair(&cache_dir, (rows, val_rows), width, classes, scale, seed, storage)?;
            out.emit(&json!({ "train": train, "val": val }), || println!("train\t{}\nval\t{}", train.display(), val.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
