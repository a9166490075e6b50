//! `extract`, `fid`, `is`, `probe` and `reconstruct`: one measurement each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bbeval::context::ExecutionContext;
use bbeval::data::{Dataset, DatasetSpec, HashOptions};
use bbeval::features::cache::{FeatureFile, Storage};
use bbeval::features::{self, ExtractOptions, Shard};
use bbeval::genmetrics;
use bbeval::probe::protocol::{self, ProbeSetup};
use bbeval::probe::source::{ParquetRows, RowSource};
use bbeval::probe::{Backend, ProbeConfig};
use bbeval::protocol::{default_batch_size, SPLIT_SEED, TRAIN_VAL_FRACTION};
use serde_json::json;

use super::Output;
use crate::cli::{BatchFlags, SubsetFlags};

/// Scoring networks (FID Inception, IS classifiers) read RGB.
const RGB: u8 = 3;

fn extract_options(out: &Output, batches: BatchFlags, strict: bool, ctx: &ExecutionContext) -> ExtractOptions {
    let batch_size = batches.batch_size.unwrap_or_else(|| default_batch_size(ctx.is_cuda()));
    ExtractOptions { cache_dir: batches.cache_dir, batch_size, strict, reporter: out.reporter, storage: Storage::F32, shard: None }
}

fn open_dataset(out: &Output, spec: &DatasetSpec, split: &str, subset: &SubsetFlags, cache_dir: &Path, rehash: bool) -> Result<Dataset> {
    let data = Dataset::open(spec, split, &HashOptions::under(cache_dir, rehash))?.subset(subset.limit(), subset.seed);
    for note in &data.notes {
        out.reporter.warn(format!("{}: {note}", data.describe()));
    }
    Ok(data)
}

#[allow(clippy::too_many_arguments)]
pub fn extract(out: &Output, encoder: &str, dataset: &str, split: &str, subset: &SubsetFlags, batches: BatchFlags, strict: bool, storage: Storage, shard: Option<Shard>, rehash: bool, ctx: &ExecutionContext) -> Result<ExitCode> {
    let spec = DatasetSpec::parse(dataset)?;
    let data = open_dataset(out, &spec, split, subset, &batches.cache_dir, rehash)?;
    let mut enc = bbeval::encoder::open(encoder, spec.kind.channels(), ctx)?;
    let opts = ExtractOptions { storage, shard, ..extract_options(out, batches, strict, ctx) };
    let e = features::extract(enc.as_mut(), &data, &opts)?;
    let value = json!({
        "cache_hit": e.cache_hit, "images": e.images, "seconds": e.seconds, "files": e.files,
        "skipped": e.skipped, "resumed": e.resumed, "io_seconds": e.io_seconds, "shard": shard.map(|s| s.to_string()), "device": ctx.device_name(),
    });
    out.emit(&value, || {
        if e.cache_hit {
            println!("cache hit: nothing computed");
        } else {
            println!("{} images in {:.1} s ({:.1} images/s) on {}", e.images, e.seconds, e.images as f64 / e.seconds.max(1e-9), ctx.describe());
        }
        if let Some((done, total)) = e.resumed {
            println!("resumed: {done} of this call's {total} parts were already done");
        }
        if let Some(s) = shard {
            println!("shard {s} done; assemble with `bbeval cache merge` (or any extract/run without --shard) once every shard has run");
        }
        for (id, why) in &e.skipped {
            println!("skipped {id}: {why}");
        }
        for (feature, path) in &e.files {
            println!("{feature}\t{}", path.display());
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
pub fn fid(out: &Output, a: &str, b: &str, subset: &SubsetFlags, inception: &Path, batches: BatchFlags, strict: bool, save_stats: Option<PathBuf>, ctx: &ExecutionContext) -> Result<ExitCode> {
    // FID is defined in f32, whatever --dtype says.
    let ctx = ctx.with_precision(bbeval::context::Precision::F32);
    let mut enc = bbeval::encoder::open(&inception.to_string_lossy(), RGB, &ctx)?;
    let opts = extract_options(out, batches, strict, &ctx);
    let (sa, da) = genmetrics::resolve_statistics(a, enc.as_mut(), subset.limit(), subset.seed, &opts, &ctx)?;
    let (sb, db) = genmetrics::resolve_statistics(b, enc.as_mut(), subset.limit(), subset.seed, &opts, &ctx)?;
    let fid = genmetrics::frechet_distance(&sa, &sb)?;
    if let Some(dir) = save_stats {
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        sa.save_npz(&dir.join("a.npz"))?;
        sb.save_npz(&dir.join("b.npz"))?;
    }
    let warnings: Vec<String> = [sa.warning(), sb.warning()].into_iter().flatten().collect();
    let value = json!({ "fid": fid, "a": da, "b": db, "n_a": sa.n, "n_b": sb.n, "inception": enc.name(), "resize": enc.preprocess().describe(), "device": ctx.device_name(), "warnings": warnings });
    out.emit(&value, || {
        println!("FID {fid:.4}  ({da} [n={}] vs {db} [n={}]; {}, {})", sa.n, sb.n, enc.name(), enc.preprocess().describe());
        for w in &warnings {
            println!("warning: {w}");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn inception_score(out: &Output, a: &str, classifier: &Path, subset: &SubsetFlags, splits: usize, batches: BatchFlags, ctx: &ExecutionContext) -> Result<ExitCode> {
    let ctx = ctx.with_precision(bbeval::context::Precision::F32);
    let (spec, split) = DatasetSpec::parse_with_split(a, "val")?;
    let data = open_dataset(out, &spec, &split, subset, &batches.cache_dir, false)?;
    let mut enc = bbeval::encoder::open(&classifier.to_string_lossy(), RGB, &ctx)?;
    if !enc.outputs().iter().any(|o| o == "logits") {
        anyhow::bail!("{}: the classifier's manifest declares no `logits` output", classifier.display());
    }
    let e = features::extract(enc.as_mut(), &data, &extract_options(out, batches, false, &ctx))?;
    let logits = bbeval::features::cache::read(&e.files["logits"])?;
    let (mean, std) = genmetrics::inception_score(logits.values.view(), splits);
    let label = genmetrics::inception_score::is_label(enc.name(), logits.width());
    let value = json!({ "metric": label, "mean": mean, "std": std, "splits": splits, "n": logits.len(), "dataset": data.describe() });
    out.emit(&value, || println!("{label} {mean:.3} ± {std:.3}  ({}, n={}, {splits} splits)", data.describe(), logits.len()))?;
    Ok(ExitCode::SUCCESS)
}

/// The flags of `bbeval probe` that fill a `[probe]` table.
pub struct ProbeFlags {
    pub backend: Option<Backend>,
    pub l2: Vec<f64>,
    pub lr: Vec<f64>,
    pub epochs: Option<usize>,
    pub max_iter: Option<u64>,
    pub tol: Option<f64>,
    pub chunk_rows: Option<usize>,
    pub train_val: Option<usize>,
    pub bn_crelu: bool,
}

pub fn probe(out: &Output, train: &Path, val: &Path, f: ProbeFlags, ctx: &ExecutionContext) -> Result<ExitCode> {
    let d = ProbeConfig::default();
    let config = ProbeConfig {
        backend: f.backend.unwrap_or(d.backend),
        l2: if f.l2.is_empty() { d.l2.clone() } else { f.l2 },
        lr: if f.lr.is_empty() { d.lr.clone() } else { f.lr },
        epochs: f.epochs.unwrap_or(d.epochs),
        max_iter: f.max_iter.or(d.max_iter),
        tol: f.tol.unwrap_or(d.tol),
        chunk_rows: f.chunk_rows.unwrap_or(d.chunk_rows),
        ..d
    };
    let probe = config.check("the flags of `bbeval probe`")?;
    let train_rows = ParquetRows::open(train, probe.chunk_rows)?;
    let val_rows = ParquetRows::open(val, probe.chunk_rows)?;
    let held_out = f.train_val.unwrap_or((train_rows.len() as f64 * TRAIN_VAL_FRACTION).round() as usize);
    let setup = ProbeSetup { probe: &probe, train_val: held_out, split_seed: SPLIT_SEED, bn_crelu_from_avepool: f.bn_crelu, ctx: *ctx };
    let result = protocol::run_rows(&train_rows, &val_rows, &setup)?;
    // The files' keys say what the features are; a file that is not bbeval's still probes.
    let _ = FeatureFile::open(train).map(|t| out.reporter.info(format!("train: {} {} of {}", t.key.encoder, t.key.feature, t.key.dataset)));
    out.emit(&result, || {
        let chosen_lr = result.chosen.lr.map(|lr| format!(", lr {lr}")).unwrap_or_default();
        println!(
            "top-1 {:.2}% [{:.2}, {:.2}]  top-5 {:.2}%  ({:?}, λ {}{chosen_lr}; train-val top-1 {:.2}%; n {}/{}/{}; {:.1} s on {})",
            100.0 * result.top1,
            100.0 * result.top1_ci95.0,
            100.0 * result.top1_ci95.1,
            100.0 * result.top5,
            result.backend,
            result.chosen.l2,
            100.0 * result.train_val_top1,
            result.n_fit,
            result.n_train_val,
            result.n_val,
            result.seconds,
            ctx.describe()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
pub fn reconstruct(out: &Output, encoder: &Path, generator: &Path, dataset: &str, n: usize, seed: u64, png: &Path, ctx: &ExecutionContext) -> Result<ExitCode> {
    let (spec, split) = DatasetSpec::parse_with_split(dataset, "val")?;
    let data = Dataset::open(&spec, &split, &HashOptions::under(Path::new(bbeval::protocol::CACHE_DIR), false))?.subset(Some(n), seed);
    let mut enc = bbeval::encoder::open(&encoder.to_string_lossy(), spec.kind.channels(), ctx)?;
    let gen = genmetrics::generator::Generator::open(generator, ctx.device)?;
    bbeval::tfhub::verify::require_generator(&gen)?;
    let (w, h) = genmetrics::reconstruct::reconstruction_grid(enc.as_mut(), &gen, &data, n, png)?;
    out.emit(&json!({ "written": png, "width": w, "height": h }), || println!("written: {} ({w}×{h}: top row x, bottom row G(E(x)))", png.display()))?;
    Ok(ExitCode::SUCCESS)
}
