//! The extraction loop: decode + resize on rayon threads one batch ahead of the encoder, collect every
//! output feature part by part (see [`super::parts`]), check it is finite, and assemble one cache file per
//! feature when every part is present.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::cache::{self, CacheKey, FeatureFile, Storage};
use super::parts::{Job, PartData, PartState, Shard};
use crate::data::{Dataset, Sample, Source};
use crate::encoder::{Batch, Encoder, FeatureBatch};
use crate::error::{Error, Result};
use crate::reporter::Reporter;

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub cache_dir: PathBuf,
    pub batch_size: usize,
    /// Stop at the first unreadable image instead of skipping it; a cached file that skipped images does
    /// not satisfy a strict request either.
    pub strict: bool,
    pub reporter: Reporter,
    /// f32, or f16 to halve the cache's size and read time.
    pub storage: Storage,
    /// Compute only this slice of the parts (a cluster job of an array); nothing is assembled.
    pub shard: Option<Shard>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            cache_dir: PathBuf::from(crate::protocol::CACHE_DIR),
            batch_size: crate::protocol::BATCH_SIZE_CPU,
            strict: false,
            reporter: Reporter::silent(),
            storage: Storage::F32,
            shard: None,
        }
    }
}

/// What an extraction produced (or found in the cache).
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// Feature name → cache file (empty after a shard that did not finish the job).
    pub files: BTreeMap<String, PathBuf>,
    pub cache_hit: bool,
    /// Images encoded by this call.
    pub images: usize,
    pub seconds: f64,
    /// `(id, reason)` of unreadable images left out (of the parts this call computed, or of the cached
    /// file's metadata on a hit).
    pub skipped: Vec<(String, String)>,
    /// Parts already present when this call started, and this call's part count.
    pub resumed: Option<(usize, usize)>,
    /// Seconds spent writing parts and assembling the final files (the cost of resumability).
    pub io_seconds: f64,
}

/// The cache key of `feature` for this encoder on this dataset split.
pub fn cache_key(encoder: &dyn Encoder, dataset: &Dataset, feature: &str, storage: Storage) -> CacheKey {
    CacheKey::new(encoder, dataset, feature, storage)
}

fn source_name(source: &Source, id: &str) -> String {
    match source {
        Source::File(p) => p.display().to_string(),
        Source::Gray { .. } => id.to_string(),
    }
}

fn advice(strict: bool) -> &'static str {
    if strict { ", or run without --strict to skip them" } else { "" }
}

/// Extract every output of `encoder` over `dataset`, or return the cached files if all are present.
/// Interrupted extractions resume from their parts; with `opts.shard` only that slice is computed.
pub fn extract(encoder: &mut dyn Encoder, dataset: &Dataset, opts: &ExtractOptions) -> Result<Extraction> {
    if dataset.is_empty() {
        return Err(Error::Dataset { path: dataset.spec.path.clone(), reason: format!("{} holds no images to extract (is --limit 0?)", dataset.describe()) });
    }
    let outputs = encoder.outputs();
    let keys: Vec<CacheKey> = outputs.iter().map(|f| cache_key(encoder, dataset, f, opts.storage)).collect();
    let cached: Vec<Option<PathBuf>> = keys.iter().map(|k| cache::lookup(&opts.cache_dir, k)).collect();
    if cached.iter().all(Option::is_some) {
        let files: BTreeMap<String, PathBuf> = outputs.iter().cloned().zip(cached.into_iter().flatten()).collect();
        return cache_hit(encoder, files, opts);
    }

    let start = Instant::now();
    let job = Job::open(&opts.cache_dir, &keys, dataset.len())?;
    let mine = job.shard_parts(opts.shard);
    // Only this call's own parts count as resumed (other shards' parts are theirs).
    let done_before = mine.clone().filter(|&i| matches!(job.state(i), Ok(PartState::Done))).count();
    if done_before > 0 {
        opts.reporter.info(format!("resumed {}: {done_before} of {} parts already done ({} images each)", dataset.describe(), mine.len(), job.part_rows(0).len()));
    }
    let bar = opts.reporter.bar(mine.clone().map(|i| job.part_rows(i).len() as u64).sum(), format!("extract {}", dataset.describe()));
    let mut images = 0;
    let mut io_seconds = 0.0;
    let mut skipped = Vec::new();
    let mut busy = Vec::new();
    for i in mine.clone() {
        if job.state(i)? == PartState::Done {
            bar.inc(job.part_rows(i).len() as u64);
            continue;
        }
        let Some(lock) = job.try_lock(i)? else {
            busy.push(i);
            continue;
        };
        // Re-check under the lock: its previous holder may have just finished it.
        if job.state(i)? == PartState::Done {
            continue;
        }
        let part = encode_part(encoder, dataset, job.part_rows(i), opts, &bar)?;
        images += part.labels.len();
        skipped.extend(part.skipped.iter().map(|(_, id, why)| (id.clone(), why.clone())));
        let t = Instant::now();
        job.write_part(i, &part, opts.shard, &lock)?;
        io_seconds += t.elapsed().as_secs_f64();
        drop(lock);
        crate::testing::abort_point("part-written");
    }
    // Parts another process was computing: wait for it; take over what it abandoned.
    for i in busy {
        opts.reporter.info(format!("waiting for part {i} of {}, computed by another process", dataset.describe()));
        if job.wait(i)? == PartState::Missing {
            if let Some(lock) = job.try_lock(i)? {
                let part = encode_part(encoder, dataset, job.part_rows(i), opts, &bar)?;
                images += part.labels.len();
                skipped.extend(part.skipped.iter().map(|(_, id, why)| (id.clone(), why.clone())));
                job.write_part(i, &part, opts.shard, &lock)?;
            }
        }
    }
    bar.finish_and_clear();
    let resumed = (done_before > 0).then_some((done_before, mine.len()));
    let mut out = Extraction { files: BTreeMap::new(), cache_hit: false, images, seconds: 0.0, skipped, resumed, io_seconds };
    if opts.shard.is_none() {
        // A shard leaves assembly to `bbeval cache merge` or to a run without --shard.
        let t = Instant::now();
        out.files = assemble(&job, opts)?;
        out.io_seconds += t.elapsed().as_secs_f64();
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Assemble a complete job, once: a second process that finds the files written (or being written)
/// takes them as a cache hit.
fn assemble(job: &Job, opts: &ExtractOptions) -> Result<BTreeMap<String, PathBuf>> {
    let cached = || job.keys().iter().map(|k| cache::lookup(&opts.cache_dir, k).map(|p| (k.feature.clone(), p))).collect::<Option<BTreeMap<_, _>>>();
    loop {
        if let Some(files) = cached() {
            return Ok(files);
        }
        match job.try_lock_assembly()? {
            Some(_lock) => return job.assemble(&opts.cache_dir),
            None if !job.dir.is_dir() && cached().is_none() => {
                return Err(Error::Cache { path: job.dir.clone(), reason: "the extraction's parts vanished before its files were written; run it again".into() })
            }
            None => std::thread::sleep(std::time::Duration::from_secs(1)),
        }
    }
}

/// All features cached: check their declared widths and, under `--strict`, that nothing was skipped.
fn cache_hit(encoder: &dyn Encoder, files: BTreeMap<String, PathBuf>, opts: &ExtractOptions) -> Result<Extraction> {
    let mut skipped = Vec::new();
    for (feature, path) in &files {
        let f = FeatureFile::open(path)?;
        // The key holds the weights, not the manifest: a manifest whose widths are wrong must still fail.
        if let Some(declared) = encoder.declared_width(feature).filter(|&d| d != f.width()) {
            return Err(Error::Cache {
                path: path.clone(),
                reason: format!("`{feature}` has width {}, encoder `{}` declares [N, {declared}]; fix the manifest's [outputs]", f.width(), encoder.name()),
            });
        }
        skipped = f.skipped.iter().map(|id| (id.clone(), "unreadable when extracted".to_string())).collect();
    }
    if opts.strict && !skipped.is_empty() {
        let first = skipped.first().map(|(id, _)| id.clone()).unwrap_or_default();
        return Err(Error::UnreadableImages { count: skipped.len(), first: format!("{first} (the cached features skipped them; --strict needs every image)"), advice: advice(true) });
    }
    Ok(Extraction { files, cache_hit: true, skipped, ..Default::default() })
}

/// Encode the images at `positions` of `dataset`: one part.
fn encode_part(encoder: &mut dyn Encoder, dataset: &Dataset, positions: std::ops::Range<usize>, opts: &ExtractOptions, bar: &ProgressBar) -> Result<PartData> {
    let first = positions.start;
    let samples = &dataset.samples[positions];
    let mut part = PartData { positions: Vec::new(), ids: Vec::new(), labels: Vec::new(), features: BTreeMap::new(), skipped: Vec::new() };
    let skipped = stream(encoder, samples, opts, bar, |batch, features| {
        for (pos, s) in batch {
            part.positions.push((first + pos) as u32);
            part.ids.push(s.id.clone());
            part.labels.push(s.label);
        }
        for f in features {
            let entry = part.features.entry(f.name).or_insert((f.width, Vec::new()));
            entry.1.extend_from_slice(&f.values);
        }
        crate::testing::abort_point("batch");
        Ok(())
    })?;
    part.skipped = skipped.into_iter().map(|(pos, id, why)| (first + pos, id, why)).collect();
    check_finite(encoder.name(), &part)?;
    Ok(part)
}

/// Run `encoder` over `samples` batch by batch, decoding one batch ahead on rayon threads, and hand each
/// batch's readable samples (with their positions in `samples`) and features to `sink`. Returns the
/// `(position, id, reason)` of skipped images. Extraction collects the batches; generation metrics fold
/// them into running statistics instead.
pub fn stream<F>(encoder: &mut dyn Encoder, samples: &[Sample], opts: &ExtractOptions, bar: &ProgressBar, mut sink: F) -> Result<Vec<(usize, String, String)>>
where
    F: FnMut(&[(usize, &Sample)], Vec<FeatureBatch>) -> Result<()>,
{
    let preprocess = encoder.preprocess().clone();
    let mut skipped = Vec::new();
    let batch_size = opts.batch_size.max(1);
    std::thread::scope(|scope| -> Result<()> {
        // One batch decoded ahead of the encoder (the channel holds it while the encoder runs).
        let (tx, rx) = sync_channel(1);
        let preprocess = &preprocess;
        scope.spawn(move || {
            for (b, chunk) in samples.chunks(batch_size).enumerate() {
                let loaded: Vec<_> = chunk.par_iter().map(|s| preprocess.load(s)).collect();
                if tx.send((b * batch_size, chunk, loaded)).is_err() {
                    break;
                }
            }
        });
        for (offset, chunk, loaded) in rx {
            let mut pixels = Vec::new();
            let mut shape: Option<[usize; 3]> = None;
            let mut good: Vec<(usize, &Sample)> = Vec::with_capacity(chunk.len());
            for (k, (sample, result)) in chunk.iter().zip(loaded).enumerate() {
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
                        good.push((offset + k, sample));
                    }
                    Err(e) if opts.strict => return Err(e),
                    Err(e) => skipped.push((offset + k, sample.id.clone(), e.to_string())),
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
    Ok(skipped)
}

fn check_finite(encoder: &str, part: &PartData) -> Result<()> {
    let mut bad: Vec<usize> = Vec::new();
    for (width, values) in part.features.values() {
        for (row, chunk) in values.chunks((*width).max(1)).enumerate() {
            if chunk.iter().any(|v| !v.is_finite()) {
                bad.push(row);
            }
        }
    }
    bad.sort_unstable();
    bad.dedup();
    match bad.first() {
        None => Ok(()),
        Some(&i) => Err(Error::NonFinite { encoder: encoder.into(), count: bad.len(), first: part.ids[i].clone() }),
    }
}
