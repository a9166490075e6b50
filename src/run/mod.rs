//! `bbeval run eval/<file>.toml`: extract → probe → (FID/IS) → report for every row and generator entry of
//! a run file, in the execution context decided once by the caller.

mod generation;
pub mod memo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::context::ExecutionContext;
use crate::data::{Dataset, DatasetSpec, HashOptions};
use crate::encoder::{self, Encoder};
use crate::error::{Error, Result};
use crate::features::{self, cache, ExtractOptions, Extraction, Shard};
use crate::probe::protocol::{self, ProbeSetup};
use crate::probe::source::ParquetRows;
use crate::protocol::default_batch_size;
use crate::report::{paper, DatasetRecord, Provenance, Results, RowResult};
use crate::reporter::Reporter;
use crate::runfile::RunFile;
use crate::suggest::did_you_mean;
use memo::Memo;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub strict: bool,
    pub reporter: Reporter,
    pub ctx: ExecutionContext,
    /// Extract only this slice of every extraction and stop (a job of a cluster array).
    pub shard: Option<Shard>,
    /// Replace an existing `results/<name>/`.
    pub overwrite: bool,
    /// Use imported encoders whose verification record is missing or failed (marked in the report).
    pub allow_unverified: bool,
    /// Re-read every image file to identify the dataset's content (ignore the stat cache).
    pub rehash: bool,
    /// Recompute every probe and generation entry instead of reusing finished ones ([`memo`]).
    pub recompute: bool,
}

impl RunOptions {
    /// CPU, f32, silent, strict off: what tests and scripts start from.
    pub fn cpu() -> RunOptions {
        RunOptions { strict: false, reporter: Reporter::silent(), ctx: ExecutionContext::cpu(), shard: None, overwrite: true, allow_unverified: false, rehash: false, recompute: false }
    }
}

/// Both splits of the run's dataset, subset as the run file says.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
}

pub fn open_splits(run: &RunFile, opts: &RunOptions) -> Result<Splits> {
    let spec = DatasetSpec::parse(&run.dataset.spec)?;
    let seed = run.dataset.seed;
    let hashing = HashOptions::under(&run.cache_dir(), opts.rehash);
    let train = Dataset::open(&spec, "train", &hashing)?.subset(run.dataset.train_limit, seed);
    let val = Dataset::open(&spec, "val", &hashing)?.subset(run.dataset.val_limit, seed);
    for d in [&train, &val] {
        for note in &d.notes {
            opts.reporter.warn(format!("{}: {note}", d.describe()));
        }
    }
    Ok(Splits { train, val })
}

/// An encoder with its extracted train and val features.
struct Extracted {
    name: String,
    architecture: String,
    sha256: String,
    outputs: Vec<String>,
    train: Extraction,
    val: Extraction,
    /// The verification warning of an imported encoder used without a passing record.
    unverified: Option<String>,
}

/// How a row's feature is obtained from an encoder's outputs.
fn resolve_feature(outputs: &[String], feature: &str, encoder: &str) -> Result<(String, bool)> {
    if outputs.iter().any(|o| o == feature) {
        return Ok((feature.to_string(), false));
    }
    if feature == "bn_crelu" && outputs.iter().any(|o| o == "avepool") {
        return Ok(("avepool".to_string(), true));
    }
    let mut known: Vec<&str> = outputs.iter().map(String::as_str).collect();
    if known.contains(&"avepool") {
        known.push("bn_crelu");
    }
    Err(Error::Unknown {
        kind: "feature",
        name: format!("{feature}` of encoder `{encoder}"),
        suggestion: did_you_mean(feature, &known),
        known: known.join(", "),
    })
}

/// An imported encoder (its manifest names a verification record) is used only when the record passed;
/// `allow_unverified` turns the refusal into a loud warning carried to the report.
fn verification_of(spec: &str, opts: &RunOptions) -> Result<Option<String>> {
    if spec == "raw" || spec.starts_with("raw:") {
        return Ok(None);
    }
    let manifest = encoder::Manifest::load(Path::new(spec))?;
    match crate::tfhub::verify::require(&manifest, Path::new(spec)) {
        Ok(()) => Ok(None),
        Err(e) if opts.allow_unverified => {
            opts.reporter.warn(format!("USING AN UNVERIFIED IMPORT (--allow-unverified): {e}"));
            Ok(Some(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

fn extract_all(run: &RunFile, splits: &Splits, opts: &RunOptions) -> Result<BTreeMap<String, Extracted>> {
    let channels = splits.train.spec.kind.channels();
    let eopts = extract_options(run, opts);
    // Open every encoder and check every row's feature before any heavy work.
    let mut encoders: BTreeMap<String, (Box<dyn Encoder>, Option<String>)> = BTreeMap::new();
    for row in &run.rows {
        if !encoders.contains_key(&row.encoder) {
            let unverified = verification_of(&row.encoder, opts)?;
            encoders.insert(row.encoder.clone(), (encoder::open(&row.encoder, channels, &opts.ctx)?, unverified));
        }
        let enc = &encoders[&row.encoder].0;
        resolve_feature(&enc.outputs(), &row.feature, &row.encoder)?;
    }
    let mut out = BTreeMap::new();
    for (spec_str, (mut enc, unverified)) in encoders {
        let train = features::extract(enc.as_mut(), &splits.train, &eopts)?;
        let val = features::extract(enc.as_mut(), &splits.val, &eopts)?;
        for (split, e) in [("train", &train), ("val", &val)] {
            let state = match (e.cache_hit, e.files.is_empty()) {
                (true, _) => "cache hit".to_string(),
                (false, true) => format!("shard done, {} images in {:.1} s", e.images, e.seconds),
                (false, false) => format!("{} images in {:.1} s", e.images, e.seconds),
            };
            opts.reporter.info(format!("extract {} {split}: {state}", enc.name()));
            for (id, why) in e.skipped.iter().take(10) {
                opts.reporter.warn(format!("skipped {id}: {why}"));
            }
        }
        out.insert(
            spec_str,
            Extracted {
                name: enc.name().to_string(),
                architecture: enc.architecture().to_string(),
                sha256: enc.weights_sha256().to_string(),
                outputs: enc.outputs(),
                train,
                val,
                unverified,
            },
        );
    }
    Ok(out)
}

/// What `run_file` did: the results and where they were written, or — with a shard — only extraction.
pub enum RunOutcome {
    Written { results: Box<Results>, dir: PathBuf },
    Sharded { shard: Shard },
}

/// Run a run file end to end; writes results.json, report.md and results.csv into its out_dir (never over
/// existing results unless `opts.overwrite`).
pub fn run_file(run: &RunFile, opts: &RunOptions) -> Result<RunOutcome> {
    let dir = run.out_dir();
    if !opts.overwrite && opts.shard.is_none() && dir.join("results.json").exists() {
        return Err(Error::ResultsExist { path: dir });
    }
    if let Some(shard) = opts.shard {
        let splits = open_splits(run, opts)?;
        extract_all(run, &splits, opts)?;
        return Ok(RunOutcome::Sharded { shard });
    }
    let results = run_config(run, opts)?;
    results.write(&dir)?;
    Ok(RunOutcome::Written { results: Box::new(results), dir })
}

/// Extract (or reuse the cache), probe and collect results for a loaded run file; writes nothing.
pub fn run_config(run: &RunFile, opts: &RunOptions) -> Result<Results> {
    let splits = open_splits(run, opts)?;
    let train_val = run.dataset.train_val.unwrap_or_else(|| splits.train.spec.default_train_val(splits.train.len()));
    let extracted = extract_all(run, &splits, opts)?;
    let probe = run.probe.check(&format!("run file `{}`, [probe]", run.name))?;
    let setup_for = |derived: bool| ProbeSetup { probe: &probe, train_val, split_seed: run.dataset.seed, bn_crelu_from_avepool: derived, ctx: opts.ctx };
    let memo = Memo::under(&run.cache_dir(), !opts.recompute);

    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for row in &run.rows {
        let e = &extracted[&row.encoder];
        let (stored, derived) = resolve_feature(&e.outputs, &row.feature, &row.encoder)?;
        let (train_file, val_file) = (&e.train.files[&stored], &e.val.files[&stored]);
        let (train_meta, val_meta) = (cache::FeatureFile::open(train_file)?, cache::FeatureFile::open(val_file)?);
        let skipped = train_meta.skipped.len() + val_meta.skipped.len();
        let mut inputs = Memo::common_inputs(&opts.ctx);
        inputs["probe_row"] = serde_json::json!({
            "train": memo::feature_identity(&train_meta), "val": memo::feature_identity(&val_meta), "derived": derived,
            "probe": &run.probe, "train_val": train_val, "split_seed": run.dataset.seed,
        });
        let (outcome, reused) = match memo.get::<protocol::ProbeOutcome>("probe", &inputs) {
            Some(outcome) => (outcome, true),
            None => {
                let train = ParquetRows::from_file(train_meta, probe.chunk_rows);
                let val = ParquetRows::from_file(val_meta, probe.chunk_rows);
                let outcome = protocol::run_rows(&train, &val, &setup_for(derived))?;
                memo.keep("probe", &inputs, &outcome, &format!("probe of {} {}", e.name, row.feature), &opts.reporter);
                (outcome, false)
            }
        };
        opts.reporter.info(format!(
            "probe {} {}: top-1 {:.1}% (train-val {:.1}%, {:?}, {:.1} s{})",
            e.name,
            row.feature,
            100.0 * outcome.top1,
            100.0 * outcome.train_val_top1,
            outcome.backend,
            outcome.seconds,
            if reused { ", finished by an earlier run: reused" } else { "" }
        ));
        if skipped > 0 {
            warnings.push(format!("{}: {skipped} unreadable image(s) were skipped (listed in the cache files' metadata)", e.name));
        }
        if let Some(why) = &e.unverified {
            warnings.push(format!("{} / {}: UNVERIFIED IMPORT used with --allow-unverified ({why})", row.method, row.feature));
        }
        let architecture = row.architecture.clone().unwrap_or_else(|| e.architecture.clone());
        rows.push(RowResult {
            paper: paper::reference(&e.name, &row.feature),
            method: row.method.clone(),
            architecture,
            encoder: e.name.clone(),
            encoder_sha256: e.sha256.clone(),
            feature: row.feature.clone(),
            feature_derived: derived,
            unverified: e.unverified.is_some(),
            extract_seconds: e.train.seconds + e.val.seconds,
            cache_hit: e.train.cache_hit && e.val.cache_hit,
            skipped_images: skipped,
            probe: outcome,
            probe_reused: reused,
        });
    }
    let mut generation_results = Vec::new();
    for entry in &run.generation {
        let mut scored = generation::evaluate(entry, &run.dataset.spec, &extract_options(run, opts), &opts.ctx, &memo)?;
        // Results are one per run.rows entry, in order; the run file was checked at load.
        if let Some(i) = entry.cls_row_index(&run.rows).map_err(|reason| Error::RunFile { path: run.name.clone().into(), reason })? {
            scored.cls = Some(rows[i].probe.train_val_top1);
        }
        opts.reporter.info(format!(
            "generation {}: FID {:.2}{} ({} samples, {:.1} s)",
            scored.variant,
            scored.fid,
            scored.is.as_ref().map(|i| format!(", {} {:.2}", i.label, i.mean)).unwrap_or_default(),
            scored.samples,
            scored.seconds
        ));
        warnings.extend(scored.warnings.iter().map(|w| format!("{}: {w}", scored.variant)));
        generation_results.push(scored);
    }
    for d in [&splits.train, &splits.val] {
        warnings.extend(d.notes.iter().map(|n| format!("{}: {n}", d.describe())));
    }
    Ok(Results {
        name: run.name.clone(),
        protocol_version: crate::protocol::PROTOCOL_VERSION,
        provenance: Provenance::now(&opts.ctx),
        dataset: DatasetRecord {
            spec: run.dataset.spec.clone(),
            train_hash: splits.train.content_hash.clone(),
            val_hash: splits.val.content_hash.clone(),
            n_train: splits.train.len(),
            n_val: splits.val.len(),
            train_limit: run.dataset.train_limit,
            val_limit: run.dataset.val_limit,
            split_seed: run.dataset.seed,
            train_val,
        },
        config: run.clone(),
        rows,
        generation: generation_results,
        warnings,
    })
}

fn extract_options(run: &RunFile, opts: &RunOptions) -> ExtractOptions {
    ExtractOptions {
        cache_dir: run.cache_dir(),
        batch_size: run.batch_size.unwrap_or_else(|| default_batch_size(opts.ctx.is_cuda())),
        strict: opts.strict,
        reporter: opts.reporter,
        storage: run.storage,
        shard: opts.shard,
    }
}
