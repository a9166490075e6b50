//! The extraction loop: decode + resize on rayon threads one batch ahead of the encoder, collect every
//! output feature, check it is finite, and write one cache file per feature.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use rayon::prelude::*;

use super::cache::{self, CacheKey, FeatureTable, Storage};
use crate::config::PROTOCOL_VERSION;
use crate::data::{Dataset, Sample, Source};
use crate::encoder::{Batch, Encoder, FeatureBatch};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub cache_dir: PathBuf,
    pub batch_size: usize,
    /// Stop at the first unreadable image instead of skipping it.
    pub strict: bool,
    pub progress: bool,
    /// f32, or f16 to halve the cache's size and read time.
    pub storage: Storage,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            cache_dir: PathBuf::from(crate::config::CACHE_DIR),
            batch_size: crate::config::BATCH_SIZE_CPU,
            strict: false,
            progress: false,
            storage: Storage::F32,
        }
    }
}

/// What an extraction produced (or found in the cache).
#[derive(Debug, Clone)]
pub struct Extraction {
    /// Feature name → cache file.
    pub files: BTreeMap<String, PathBuf>,
    pub cache_hit: bool,
    pub images: usize,
    pub seconds: f64,
    /// `(id, reason)` of unreadable images left out.
    pub skipped: Vec<(String, String)>,
}

/// The cache key of `feature` for this encoder on this dataset split.
pub fn cache_key(encoder: &dyn Encoder, dataset: &Dataset, feature: &str, storage: Storage) -> CacheKey {
    CacheKey {
        encoder: encoder.name().to_string(),
        weights_sha256: encoder.weights_sha256().to_string(),
        dataset: dataset.spec.to_string(),
        dataset_name: dataset.spec.name(),
        dataset_hash: dataset.content_hash.clone(),
        split: dataset.split.clone(),
        subset: dataset.subset,
        preprocess: encoder.preprocess().describe(),
        feature: feature.to_string(),
        dtype: encoder.dtype().to_string(),
        protocol_version: PROTOCOL_VERSION,
        storage,
    }
}

fn source_name(source: &Source, id: &str) -> String {
    match source {
        Source::File(p) => p.display().to_string(),
        Source::Gray { .. } => id.to_string(),
    }
}

/// Extract every output of `encoder` over `dataset`, or return the cached files if all are present.
pub fn extract(encoder: &mut dyn Encoder, dataset: &Dataset, opts: &ExtractOptions) -> Result<Extraction> {
    let outputs = encoder.outputs();
    let keys: Vec<CacheKey> = outputs.iter().map(|f| cache_key(encoder, dataset, f, opts.storage)).collect();
    let cached: Vec<Option<PathBuf>> = keys.iter().map(|k| cache::lookup(&opts.cache_dir, k)).collect();
    if cached.iter().all(Option::is_some) {
        let files: BTreeMap<String, PathBuf> = outputs.iter().cloned().zip(cached.into_iter().flatten()).collect();
        // The key holds the weights, not the manifest: a manifest whose widths are wrong must still fail.
        for (feature, path) in &files {
            let (_, width) = cache::shape(path)?;
            if let Some(declared) = encoder.declared_width(feature).filter(|&d| d != width) {
                return Err(Error::Cache {
                    path: path.clone(),
                    reason: format!("`{feature}` has width {width}, encoder `{}` declares [N, {declared}]; fix the manifest's [outputs]", encoder.name()),
                });
            }
        }
        return Ok(Extraction { files, cache_hit: true, images: 0, seconds: 0.0, skipped: Vec::new() });
    }

    let start = Instant::now();
    let mut ids = Vec::with_capacity(dataset.len());
    let mut labels = Vec::with_capacity(dataset.len());
    let mut values: BTreeMap<String, (usize, Vec<f32>)> = BTreeMap::new();
    let skipped = stream(encoder, dataset, opts, |samples, features| {
        ids.extend(samples.iter().map(|s| s.id.clone()));
        labels.extend(samples.iter().map(|s| s.label));
        for f in features {
            let entry = values.entry(f.name).or_insert((f.width, Vec::new()));
            entry.1.extend_from_slice(&f.values);
        }
        Ok(())
    })?;

    if ids.is_empty() {
        let first = skipped.first().map(|(id, why)| format!("{id}: {why}")).unwrap_or_default();
        return Err(Error::UnreadableImages { count: skipped.len(), first });
    }
    let skipped_ids: Vec<String> = skipped.iter().map(|(id, _)| id.clone()).collect();
    // Check every feature before writing any, so a bad model leaves the cache as it was.
    let mut tables = Vec::new();
    for key in keys {
        let (width, flat) = values.remove(&key.feature).ok_or_else(|| Error::Probe(format!("encoder gave no `{}`", key.feature)))?;
        let matrix = Array2::from_shape_vec((ids.len(), width), flat).map_err(|e| Error::Probe(e.to_string()))?;
        check_finite(encoder.name(), &matrix, &ids)?;
        tables.push(FeatureTable { key, ids: ids.clone(), labels: labels.clone(), values: matrix, skipped: skipped_ids.clone() });
    }
    let mut files = BTreeMap::new();
    for table in &tables {
        files.insert(table.key.feature.clone(), cache::write(&opts.cache_dir, table)?);
    }
    Ok(Extraction { files, cache_hit: false, images: ids.len(), seconds: start.elapsed().as_secs_f64(), skipped })
}

/// Run `encoder` over `dataset` batch by batch, decoding one batch ahead on rayon threads, and hand each
/// batch's readable samples and features to `sink`. Returns the `(id, reason)` of skipped images.
/// `extract` collects the batches; generation metrics fold them into running statistics instead.
pub fn stream<F>(encoder: &mut dyn Encoder, dataset: &Dataset, opts: &ExtractOptions, mut sink: F) -> Result<Vec<(String, String)>>
where
    F: FnMut(&[&Sample], Vec<FeatureBatch>) -> Result<()>,
{
    let preprocess = encoder.preprocess().clone();
    let bar = progress_bar(opts.progress, dataset);
    let mut skipped = Vec::new();
    let batch_size = opts.batch_size.max(1);
    std::thread::scope(|scope| -> Result<()> {
        // One batch decoded ahead of the encoder (the channel holds it while the encoder runs).
        let (tx, rx) = sync_channel(1);
        let samples = &dataset.samples;
        let preprocess = &preprocess;
        scope.spawn(move || {
            for chunk in samples.chunks(batch_size) {
                let loaded: Vec<_> = chunk.par_iter().map(|s| preprocess.load(s)).collect();
                if tx.send((chunk, loaded)).is_err() {
                    break;
                }
            }
        });
        for (chunk, loaded) in rx {
            let mut pixels = Vec::new();
            let mut shape: Option<[usize; 3]> = None;
            let mut good: Vec<&Sample> = Vec::with_capacity(chunk.len());
            for (sample, result) in chunk.iter().zip(loaded) {
                match result {
                    Ok((chw, s)) => {
                        if let Some(first) = shape.filter(|f| *f != s) {
                            return Err(Error::Dataset {
                                path: source_name(&sample.source, &sample.id).into(),
                                reason: format!("image shape {s:?} differs from {first:?} in the same batch; give the encoder an input size (e.g. `raw:32`)"),
                            });
                        }
                        shape = Some(s);
                        pixels.extend_from_slice(&chw);
                        good.push(sample);
                    }
                    Err(e) if opts.strict => return Err(e),
                    Err(e) => skipped.push((sample.id.clone(), e.to_string())),
                }
            }
            if let Some(shape) = shape {
                let features = encoder.encode(&Batch { pixels, n: good.len(), shape })?;
                sink(&good, features)?;
            }
            bar.inc(chunk.len() as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(skipped)
}

fn check_finite(encoder: &str, m: &Array2<f32>, ids: &[String]) -> Result<()> {
    let bad: Vec<usize> = m.rows().into_iter().enumerate().filter(|(_, r)| r.iter().any(|v| !v.is_finite())).map(|(i, _)| i).collect();
    match bad.first() {
        None => Ok(()),
        Some(&i) => Err(Error::NonFinite { encoder: encoder.into(), count: bad.len(), first: ids[i].clone() }),
    }
}

fn progress_bar(show: bool, dataset: &Dataset) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(dataset.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("extract {}", dataset.describe()));
    bar
}
