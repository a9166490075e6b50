//! The protocol: its version and the one table of defaults that change reported numbers.
//!
//! Imports nothing from the crate, so every module may use it. Every default is written once, here; the
//! CLI, run files and library refer to these constants. Defaults that do not change numbers (cache folder,
//! batch sizes) live here too, so that there is one table to read.

/// Bumped whenever preprocessing, probe or metric definitions change, so old and new numbers never mix.
///
/// Changelog:
/// * 1 — first protocol (train-val selection, standardised features, bootstrap 95% CI; probe features
///   streamed in chunks of `PROBE_CHUNK_ROWS` when over `PROBE_RESIDENT_BYTES`).
/// * 2 — the default probe back-end is `auto`: full-batch L-BFGS along the λ path, strong to weak, each head
///   warm-started from the one before (stop at `LBFGS_TOL` on the largest gradient entry, sklearn's
///   criterion; refit warm-started from the selection fit), so the selection grid is over λ alone;
///   mini-batch SGD only for sets beyond the resident size.
///   Cache files carry row-group checksums and the rows their key asks for; image folders are identified
///   by their files' contents; the key names the dataset by kind and folder name, not by path.
pub const PROTOCOL_VERSION: u32 = 2;

/// Every default that changes reported numbers, as one string. tests/check.rs pins its hash for the
/// current `PROTOCOL_VERSION`, so changing one of them without a version bump fails the tests. (Changes
/// to preprocessing or metric *code* need the same bump by hand; the golden tests usually flag them.)
pub fn protocol_defaults() -> String {
    format!(
        "train_val_imagenet={TRAIN_VAL_IMAGENET} train_val_fraction={TRAIN_VAL_FRACTION} split_seed={SPLIT_SEED} \
         bn_eps={BN_EPS} bootstrap={BOOTSTRAP_RESAMPLES}/{BOOTSTRAP_SEED} probe_seed={PROBE_SEED} epochs={PROBE_EPOCHS} \
         batch={PROBE_BATCH} l2={PROBE_L2_GRID:?} lr={PROBE_LR_GRID:?} linfa_iter={LINFA_MAX_ITER} chunk_rows={PROBE_CHUNK_ROWS} resident_bytes={PROBE_RESIDENT_BYTES} \
         resident_cuda={PROBE_RESIDENT_CUDA_FRACTION}/{PROBE_RESIDENT_BYTES_CUDA} backend=auto lbfgs_tol={LBFGS_TOL} lbfgs_iter={LBFGS_MAX_ITER} lbfgs_history={LBFGS_HISTORY}"
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
/// Images per part of an extraction: the unit of resumption and of `--shard` slices (a kill loses at most
/// one part's work), and one row group of the assembled cache file.
pub const EXTRACT_PART_ROWS: usize = ROW_GROUP_ROWS;
/// BatchNorm epsilon of the BN+CReLU head computed from AvePool (no affine).
pub const BN_EPS: f32 = 1e-5;

/// Bootstrap resamples for the 95% interval on top-1.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Seed of the bootstrap.
pub const BOOTSTRAP_SEED: u64 = 0;

/// Seed of the probes' batch order (SGD back-end).
pub const PROBE_SEED: u64 = 0;
pub const PROBE_EPOCHS: usize = 30;
pub const PROBE_BATCH: usize = 512;
/// L2 weights λ of `mean CE + λ/2 ‖W‖²` (sklearn's C = 1/(λ n)).
pub const PROBE_L2_GRID: [f64; 5] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];
/// Learning rates of the SGD heads (momentum 0.9, cosine decay).
pub const PROBE_LR_GRID: [f64; 3] = [0.01, 0.03, 0.1];
/// Rows per chunk when the probe streams features from the cache: two chunks are in memory at once
/// (16,384 × 4096 f32 = 256 MiB each); smaller sets are one chunk, loaded once.
pub const PROBE_CHUNK_ROWS: usize = 16_384;
/// Feature matrices up to this size (after BN+CReLU) are loaded into memory once for the fit instead of
/// being re-read chunk by chunk every epoch (60k × 1280: 4× faster); larger ones stream.
pub const PROBE_RESIDENT_BYTES: usize = 4 << 30;
/// The libtorch L-BFGS back-end stops a head when its largest gradient entry is at most this
/// (scikit-learn's default `tol`, which it passes to scipy as `pgtol`).
pub const LBFGS_TOL: f64 = 1e-4;
/// Iteration limit of the libtorch L-BFGS back-end.
pub const LBFGS_MAX_ITER: u64 = 1000;
/// Curvature pairs the libtorch L-BFGS keeps (scipy's default `m`).
pub const LBFGS_HISTORY: usize = 10;
/// On CUDA, prepared sets up to this fraction of the GPU's free memory are fit resident on the GPU (an
/// H200 holds ImageNet's 1.28M × 4096 f32 BN+CReLU, 21 GB); `PROBE_RESIDENT_BYTES_CUDA` when the free
/// memory cannot be read.
pub const PROBE_RESIDENT_CUDA_FRACTION: f64 = 0.6;
pub const PROBE_RESIDENT_BYTES_CUDA: usize = 16 << 30;
/// L-BFGS iterations of the linfa back-end.
pub const LINFA_MAX_ITER: u64 = 200;

/// `bbeval check`: the largest drop of any accuracy tolerated, in percentage points.
pub const CHECK_TOLERANCE_POINTS: f64 = 0.5;
/// `bbeval check`: the largest rise of FID tolerated (FID units). A deterministic CPU run reproduces FID to
/// many digits; 1.0 is far above that noise and far below the gaps between models in the paper's tables.
pub const CHECK_TOLERANCE_FID: f64 = 1.0;
/// `bbeval check`: the largest drop of IS tolerated.
pub const CHECK_TOLERANCE_IS: f64 = 0.1;

/// The FID Inception's manifest, written by `make setup`.
pub const FID_INCEPTION_MANIFEST: &str = "assets/fid/inception.toml";
/// Samples drawn from a generator when no count is given (the usual FID sample size).
pub const GENERATOR_SAMPLES: usize = 10_000;
/// Below this many samples the 2048-d covariance is singular and FID is biased: the report warns.
pub const FID_FULL_RANK_SAMPLES: usize = 2048;
/// IS is averaged over this many splits (Salimans et al. 2016).
pub const IS_SPLITS: usize = 10;

/// Which split of a dataset.
pub const SPLITS: [&str; 2] = ["train", "val"];
