//! `bbeval run eval/<file>.toml`: extract → probe → report for every (encoder, feature) row of a run file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::Device;

use crate::config::{default_batch_size, RunFile};
use crate::data::{Dataset, DatasetSpec};
use crate::encoder::{self, Encoder, Precision};
use crate::error::{Error, Result};
use crate::features::{self, cache, ExtractOptions, Extraction};
use crate::genmetrics;
use crate::probe::protocol::{self, ProbeSetup};
use crate::probe::source::ParquetRows;
use crate::report::{DatasetRecord, Provenance, Results, RowResult};
use crate::suggest::did_you_mean;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub strict: bool,
    pub progress: bool,
    pub precision: Precision,
    pub device: Device,
}

/// Both splits of the run's dataset, subset as the run file says.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
}

pub fn open_splits(run: &RunFile) -> Result<Splits> {
    let spec = DatasetSpec::parse(&run.dataset.spec)?;
    let seed = run.dataset.seed;
    let train = Dataset::open(&spec, "train")?.subset(run.dataset.train_limit, seed);
    let val = Dataset::open(&spec, "val")?.subset(run.dataset.val_limit, seed);
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

fn extract_all(run: &RunFile, splits: &Splits, opts: &RunOptions) -> Result<BTreeMap<String, Extracted>> {
    let spec = &splits.train.spec;
    let eopts = extract_options(run, opts);
    // Open every encoder and check every row's feature before any heavy work.
    let mut encoders: BTreeMap<String, Box<dyn Encoder>> = BTreeMap::new();
    for row in &run.rows {
        if !encoders.contains_key(&row.encoder) {
            encoders.insert(row.encoder.clone(), encoder::open(&row.encoder, spec.kind, opts.precision)?);
        }
        let enc = &encoders[&row.encoder];
        resolve_feature(&enc.outputs(), &row.feature, &row.encoder)?;
    }
    let mut out = BTreeMap::new();
    for (spec_str, mut enc) in encoders {
        let train = features::extract(enc.as_mut(), &splits.train, &eopts)?;
        let val = features::extract(enc.as_mut(), &splits.val, &eopts)?;
        for (split, e) in [("train", &train), ("val", &val)] {
            let state = if e.cache_hit { "cache hit".to_string() } else { format!("{} images in {:.1} s", e.images, e.seconds) };
            eprintln!("extract {} {split}: {state}", enc.name());
            for (id, why) in e.skipped.iter().take(10) {
                eprintln!("  skipped {id}: {why}");
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
            },
        );
    }
    Ok(out)
}

/// Run a run file end to end; writes results.json, report.md and results.csv into its out_dir.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<(Results, PathBuf)> {
    let run = RunFile::load(path)?;
    let results = run_config(&run, opts)?;
    let dir = run.out_dir();
    results.write(&dir)?;
    Ok((results, dir))
}

/// Extract (or reuse the cache), probe and collect results for a loaded run file; writes nothing.
pub fn run_config(run: &RunFile, opts: &RunOptions) -> Result<Results> {
    let splits = open_splits(&run)?;
    let train_val = run.dataset.train_val.unwrap_or_else(|| splits.train.spec.default_train_val(splits.train.len()));
    let extracted = extract_all(&run, &splits, opts)?;
    let setup_for = |derived: bool| ProbeSetup {
        config: run.probe.clone(),
        train_val,
        split_seed: run.dataset.seed,
        bn_crelu_from_avepool: derived,
        device: opts.device,
    };

    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for row in &run.rows {
        let e = &extracted[&row.encoder];
        let (stored, derived) = resolve_feature(&e.outputs, &row.feature, &row.encoder)?;
        let (train_file, val_file) = (&e.train.files[&stored], &e.val.files[&stored]);
        let train = ParquetRows::open(train_file, run.probe.chunk_rows)?;
        let val = ParquetRows::open(val_file, run.probe.chunk_rows)?;
        let outcome = protocol::run_rows(&train, &val, &setup_for(derived))?;
        eprintln!(
            "probe {} {}: top-1 {:.1}% (train-val {:.1}%, {:.1} s)",
            e.name,
            row.feature,
            100.0 * outcome.top1,
            100.0 * outcome.train_val_top1,
            outcome.seconds
        );
        let skipped = cache::read_skipped(train_file)?.len() + cache::read_skipped(val_file)?.len();
        if skipped > 0 {
            warnings.push(format!("{}: {skipped} unreadable image(s) were skipped (listed in the cache files' metadata)", e.name));
        }
        rows.push(RowResult {
            method: row.method.clone(),
            architecture: row.architecture.clone().unwrap_or_else(|| e.architecture.clone()),
            encoder: e.name.clone(),
            encoder_sha256: e.sha256.clone(),
            feature: row.feature.clone(),
            feature_derived: derived,
            extract_seconds: e.train.seconds + e.val.seconds,
            cache_hit: e.train.cache_hit && e.val.cache_hit,
            skipped_images: skipped,
            probe: outcome,
        });
    }
    let mut generation = Vec::new();
    for entry in &run.generation {
        let mut scored = genmetrics::entry::evaluate(entry, &run.dataset.spec, &extract_options(run, opts))?;
        if let Some(method) = &entry.cls_row {
            let row = rows.iter().find(|r| &r.method == method).ok_or_else(|| Error::RunFile {
                path: run.name.clone().into(),
                reason: format!("[[generation]] `{}` names cls_row `{method}`, but no [[rows]] has that method", entry.variant),
            })?;
            scored.cls = Some(row.probe.train_val_top1);
        }
        eprintln!("generation {}: FID {:.2}{} ({} samples, {:.1} s)", scored.variant, scored.fid, scored.is.as_ref().map(|i| format!(", {} {:.2}", i.label, i.mean)).unwrap_or_default(), scored.samples, scored.seconds);
        warnings.extend(scored.warnings.iter().map(|w| format!("{}: {w}", scored.variant)));
        generation.push(scored);
    }
    let device = if opts.device.is_cuda() { "cuda" } else { "cpu" };
    Ok(Results {
        name: run.name.clone(),
        protocol_version: crate::config::PROTOCOL_VERSION,
        provenance: Provenance::now(device),
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
        generation,
        warnings,
    })
}

fn extract_options(run: &RunFile, opts: &RunOptions) -> ExtractOptions {
    ExtractOptions {
        cache_dir: run.cache_dir(),
        batch_size: run.batch_size.unwrap_or_else(|| default_batch_size(opts.device.is_cuda())),
        strict: opts.strict,
        progress: opts.progress,
        storage: run.storage,
    }
}
