//! The one table of defaults, and the TOML run files of `eval/` that set the same options.
//!
//! Every default is written once, here; the CLI and run files refer to these constants.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::suggest::did_you_mean;

/// Bumped whenever preprocessing, probe or metric definitions change, so old and new numbers never mix.
/// Changelog: 1 — first protocol (train-val selection, standardised features, bootstrap 95% CI; probe
/// features streamed in chunks of `PROBE_CHUNK_ROWS` when over `PROBE_RESIDENT_BYTES`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Every default that changes reported numbers, as one string. tests/check.rs pins its hash for the
/// current `PROTOCOL_VERSION`, so changing one of them without a version bump fails the tests. (Changes
/// to preprocessing or metric *code* need the same bump by hand; the golden tests usually flag them.)
pub fn protocol_defaults() -> String {
    format!(
        "train_val_imagenet={TRAIN_VAL_IMAGENET} train_val_fraction={TRAIN_VAL_FRACTION} split_seed={SPLIT_SEED} \
         bn_eps={BN_EPS} bootstrap={BOOTSTRAP_RESAMPLES}/{BOOTSTRAP_SEED} probe_seed={PROBE_SEED} epochs={PROBE_EPOCHS} \
         batch={PROBE_BATCH} l2={PROBE_L2_GRID:?} lr={PROBE_LR_GRID:?} linfa_iter={LINFA_MAX_ITER} chunk_rows={PROBE_CHUNK_ROWS} resident_bytes={PROBE_RESIDENT_BYTES}"
    )
}

/// Where extracted features are cached, relative to the working directory.
pub const CACHE_DIR: &str = ".bbeval-cache";
/// Images per encoder batch on CPU: small batches keep libtorch's activations under glibc's mmap
/// threshold (EfficientNet-Lite0 on 2 cores: 33 images/s at 2–6, 14 images/s at 32; see runtime.rs).
pub const BATCH_SIZE_CPU: usize = 4;
/// Images per encoder batch on CUDA.
pub const BATCH_SIZE_CUDA: usize = 64;

/// The default batch size for the device the encoders run on.
pub fn default_batch_size(cuda: bool) -> usize {
    if cuda { BATCH_SIZE_CUDA } else { BATCH_SIZE_CPU }
}
/// Images held out of ImageNet's train split for model selection (the paper's train-val split).
pub const TRAIN_VAL_IMAGENET: usize = 10_000;
/// Fraction of train held out for model selection on small sets.
pub const TRAIN_VAL_FRACTION: f64 = 0.1;
/// Seed of the train-val split and of subsets.
pub const SPLIT_SEED: u64 = 0;
/// Rows per Parquet row group: 1–4k rows decode in parallel (DESIGN.md build notes).
pub const ROW_GROUP_ROWS: usize = 2048;
/// BatchNorm epsilon of the BN+CReLU head computed from AvePool (no affine).
pub const BN_EPS: f32 = 1e-5;

/// Bootstrap resamples for the 95% interval on top-1.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Seed of the bootstrap.
pub const BOOTSTRAP_SEED: u64 = 0;

/// Probe defaults (see [`ProbeConfig`]).
pub const PROBE_SEED: u64 = 0;
pub const PROBE_EPOCHS: usize = 30;
pub const PROBE_BATCH: usize = 512;
/// L2 weights λ of `mean CE + λ/2 ‖W‖²` (sklearn's C = 1/(λ n)).
pub const PROBE_L2_GRID: [f64; 5] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];
/// Learning rates of the libtorch heads (SGD, momentum 0.9, cosine decay).
pub const PROBE_LR_GRID: [f64; 3] = [0.01, 0.03, 0.1];
/// Rows per chunk when the probe streams features from the cache: two chunks are in memory at once
/// (16,384 × 4096 f32 = 256 MiB each); smaller sets are one chunk, loaded once.
pub const PROBE_CHUNK_ROWS: usize = 16_384;
/// Feature matrices up to this size (after BN+CReLU) are loaded into memory once for the libtorch fit
/// instead of being re-read chunk by chunk every epoch (60k × 1280: 4× faster); larger ones stream.
pub const PROBE_RESIDENT_BYTES: usize = 4 << 30;
/// L-BFGS iterations of the linfa back-end.
pub const LINFA_MAX_ITER: u64 = 200;

/// `bbeval check`: the largest drop of any accuracy tolerated, in percentage points.
pub const CHECK_TOLERANCE_POINTS: f64 = 0.5;

/// The FID Inception's manifest, written by `make setup`.
pub const FID_INCEPTION_MANIFEST: &str = "assets/fid/inception.toml";

/// Which split of a dataset.
pub const SPLITS: [&str; 2] = ["train", "val"];

/// Probe back-ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// linfa-logistic, L-BFGS on CPU: the exact small-scale reference.
    Linfa,
    /// Many heads at once in libtorch (GPU when present).
    Torch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `kind:path`, e.g. `idx:assets/fashion-mnist` (see `data::DatasetSpec`).
    pub spec: String,
    /// Use at most this many train images (seeded subset); all by default.
    pub train_limit: Option<usize>,
    /// Use at most this many val images (seeded subset); all by default.
    pub val_limit: Option<usize>,
    /// Images held out of train for model selection; TRAIN_VAL_IMAGENET for ImageNet, else
    /// TRAIN_VAL_FRACTION of train.
    pub train_val: Option<usize>,
    /// Seed of subsets and of the train-val split; defaults to `SPLIT_SEED`.
    #[serde(default = "default_split_seed")]
    pub seed: u64,
}

fn default_split_seed() -> u64 {
    SPLIT_SEED
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Defaults to `torch`.
    #[serde(default = "default_backend")]
    pub backend: Backend,
    #[serde(default = "default_l2")]
    pub l2: Vec<f64>,
    #[serde(default = "default_lr")]
    pub lr: Vec<f64>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_probe_batch")]
    pub batch_size: usize,
    #[serde(default = "default_probe_seed")]
    pub seed: u64,
    #[serde(default = "default_linfa_iter")]
    pub max_iter: u64,
    /// Rows read from the cache at a time by the libtorch back-end (linfa needs all rows at once).
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
}

fn default_backend() -> Backend {
    Backend::Torch
}
fn default_l2() -> Vec<f64> {
    PROBE_L2_GRID.to_vec()
}
fn default_lr() -> Vec<f64> {
    PROBE_LR_GRID.to_vec()
}
fn default_epochs() -> usize {
    PROBE_EPOCHS
}
fn default_probe_batch() -> usize {
    PROBE_BATCH
}
fn default_probe_seed() -> u64 {
    PROBE_SEED
}
fn default_linfa_iter() -> u64 {
    LINFA_MAX_ITER
}
fn default_chunk_rows() -> usize {
    PROBE_CHUNK_ROWS
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            backend: default_backend(),
            l2: default_l2(),
            lr: default_lr(),
            epochs: default_epochs(),
            batch_size: default_probe_batch(),
            seed: default_probe_seed(),
            max_iter: default_linfa_iter(),
            chunk_rows: default_chunk_rows(),
        }
    }
}

impl ProbeConfig {
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Probe(format!("{what}; fix the [probe] table")));
        if self.l2.is_empty() || self.l2.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return bad("l2 must be a non-empty list of finite values ≥ 0");
        }
        if self.lr.is_empty() || self.lr.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return bad("lr must be a non-empty list of finite values > 0");
        }
        if self.epochs == 0 || self.batch_size == 0 || self.chunk_rows == 0 {
            return bad("epochs, batch_size and chunk_rows must be ≥ 1");
        }
        Ok(())
    }
}

/// One row of a Table-2 style report: an encoder and one of its features.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowConfig {
    /// The "Method" column, e.g. "BigBiGAN" or "Raw pixels".
    pub method: String,
    /// `raw` for raw pixels, or the path of an encoder manifest (TOML beside its TorchScript file).
    pub encoder: String,
    /// `avepool`, `bn_crelu`, `pixels`, … (`bn_crelu` is derived from `avepool` if the encoder lacks it).
    pub feature: String,
    /// The "Architecture" column; defaults to the manifest's architecture.
    pub architecture: Option<String>,
}

/// A `[[generation]]` entry of a run file: a generator scored by FID (and IS with a classifier), one
/// line of the Table 1 / Table 3 layouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// The "Variant" (Table 1) or "Method" (Table 3) column.
    pub variant: String,
    /// Generator manifest (TOML beside its TorchScript file).
    pub generator: String,
    /// Samples drawn; defaults to `genmetrics::GENERATOR_SAMPLES`.
    pub samples: Option<usize>,
    #[serde(default = "default_split_seed")]
    pub seed: u64,
    /// Re-draw latent entries with |z| above this (BigGAN's truncation trick).
    pub truncation: Option<f32>,
    /// FID reference `kind:path[@split]`; defaults to the run's dataset, val split.
    pub reference: Option<String>,
    /// Seeded subset of the reference.
    pub reference_limit: Option<usize>,
    /// FID Inception manifest; defaults to `FID_INCEPTION_MANIFEST`.
    pub inception: Option<String>,
    /// Classifier manifest with `logits` for IS (labelled non-standard unless TF Inception's 1008).
    pub is_classifier: Option<String>,
    /// Method of the probe row whose train-val top-1 fills the "Cls." column (Table 1).
    pub cls_row: Option<String>,
}

/// A run file: `bbeval run eval/<name>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub name: String,
    /// Training step of the checkpoint this run evaluates (x axis of `bbeval compare`'s curves); when
    /// absent, the last number in `name` is used, if any.
    pub step: Option<u64>,
    /// Feature cache folder; defaults to `CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
    /// Results folder; defaults to `results/<name>`.
    pub out_dir: Option<PathBuf>,
    /// Images per encoder batch; defaults to `default_batch_size(device)`.
    pub batch_size: Option<usize>,
    /// How features are stored in the cache: `f32` (default) or `f16`.
    #[serde(default)]
    pub storage: crate::features::cache::Storage,
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub probe: ProbeConfig,
    #[serde(default)]
    pub rows: Vec<RowConfig>,
    #[serde(default)]
    pub generation: Vec<GenerationConfig>,
}

impl RunFile {
    pub fn load(path: &Path) -> Result<RunFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::RunFile { path: path.into(), reason: e.to_string() })?;
        let run: RunFile = toml::from_str(&text)
            .map_err(|e| Error::RunFile { path: path.into(), reason: explain_toml_error(&e) })?;
        run.probe.check().map_err(|e| Error::RunFile { path: path.into(), reason: e.to_string() })?;
        if run.rows.is_empty() && run.generation.is_empty() {
            return Err(Error::RunFile { path: path.into(), reason: "no [[rows]] or [[generation]]: add at least one encoder row or generator".into() });
        }
        Ok(run)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| PathBuf::from(CACHE_DIR))
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out_dir.clone().unwrap_or_else(|| Path::new("results").join(&self.name))
    }
}

/// serde names the unknown field and lists the expected ones; add "did you mean …?".
pub(crate) fn explain_toml_error(e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    let mut out = e.to_string().trim_end().to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        out.push_str(&did_you_mean(name, &known));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_gets_a_suggestion() {
        let text = "name='x'\nrows=[]\n[dataset]\nspec='idx:a'\n[probe]\nepohcs=3\n";
        let err = toml::from_str::<RunFile>(text).unwrap_err();
        let msg = explain_toml_error(&err);
        assert!(msg.contains("did you mean `epochs`?"), "{msg}");
    }
}
