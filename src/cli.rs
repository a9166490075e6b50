//! Command-line flags. Defaults come from `bbeval::config`, written once there.

use std::path::PathBuf;

use bbeval::config;
use bbeval::config::Backend;
use bbeval::encoder::Precision;
use bbeval::features::cache::Storage;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bbeval", version, about = "Representation quality the BigBiGAN way: features, linear probes, FID/IS, Table-style reports")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract an encoder's features over a dataset split into the Parquet cache.
    Extract {
        /// `raw`, `raw:<size>`, or the path of an encoder manifest (.toml beside the TorchScript file).
        #[arg(long)]
        encoder: String,
        /// `kind:path` with kind imagenet, folder, idx or samples.
        #[arg(long)]
        dataset: String,
        /// `train` or `val`.
        #[arg(long, default_value = "train")]
        split: String,
        #[command(flatten)]
        subset: SubsetFlags,
        #[command(flatten)]
        batches: BatchFlags,
        /// Stop at the first unreadable image instead of skipping it.
        #[arg(long)]
        strict: bool,
        /// Forward-pass precision (f16/bf16 need CUDA).
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
        /// How the cache stores the features (f16 halves disk space and read time).
        #[arg(long, value_enum, default_value = "f32")]
        storage: Storage,
    },
    /// Inspect the feature cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Extract → probe → report for a run file (see eval/).
    Run {
        file: PathBuf,
        #[arg(long)]
        strict: bool,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
        /// Run on the CPU even where CUDA is present.
        #[arg(long)]
        cpu: bool,
    },
    /// FID between two image sets or `.npz` statistics (pytorch-fid/TTUR layout).
    Fid {
        /// `.npz` statistics, `gen:<generator manifest>` (draws --limit samples, default 10,000, seeded by
        /// --seed), or a dataset `kind:path[@split]` (split defaults to `val`).
        a: String,
        b: String,
        #[command(flatten)]
        subset: SubsetFlags,
        /// Manifest of the FID Inception.
        #[arg(long, default_value = config::FID_INCEPTION_MANIFEST)]
        inception: PathBuf,
        #[command(flatten)]
        batches: BatchFlags,
        #[arg(long)]
        strict: bool,
        /// Write the statistics of A and B as `a.npz` and `b.npz` into this folder.
        #[arg(long)]
        save_stats: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Inception Score of an image set from a classifier's `logits` (standard only for TF Inception's 1008).
    Is {
        /// A dataset `kind:path[@split]`.
        a: String,
        /// Manifest of a classifier whose outputs include `logits`.
        #[arg(long)]
        classifier: PathBuf,
        #[command(flatten)]
        subset: SubsetFlags,
        #[arg(long, default_value_t = bbeval::genmetrics::IS_SPLITS)]
        splits: usize,
        #[command(flatten)]
        batches: BatchFlags,
        #[arg(long)]
        json: bool,
    },
    /// Run the probe protocol on two feature files (bbeval's Parquet layout), read in chunks.
    Probe {
        /// Train features: the fit and train-val rows come from here.
        train: PathBuf,
        /// Val features: scored once, never used for a choice.
        val: PathBuf,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// L2 grid, comma-separated [default: the [probe] default grid].
        #[arg(long, value_delimiter = ',')]
        l2: Vec<f64>,
        /// Learning-rate grid of the libtorch back-end, comma-separated.
        #[arg(long, value_delimiter = ',')]
        lr: Vec<f64>,
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        chunk_rows: Option<usize>,
        /// Train rows held out for selection [default: 10% of train].
        #[arg(long)]
        train_val: Option<usize>,
        /// Compute BN+CReLU from these (AvePool) features with train statistics.
        #[arg(long)]
        bn_crelu: bool,
        /// Run on the CPU even where CUDA is present.
        #[arg(long)]
        cpu: bool,
        #[arg(long)]
        json: bool,
    },
    /// Deltas of every shared (method, feature, metric) between runs, with paired bootstrap intervals;
    /// curves of top-1 over training steps and grid heat maps with --plots.
    Compare {
        /// Results folders or results.json files; the first is the baseline.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Write top1_vs_step.{png,svg} and grid heat maps here.
        #[arg(long)]
        plots: Option<PathBuf>,
        #[arg(long)]
        allow_mixed_versions: bool,
        #[arg(long)]
        json: bool,
    },
    /// Re-run a baseline's run file (using the cache) and exit 1 if any metric regressed.
    Check {
        /// The committed results.json (or its folder) to hold the new run to.
        #[arg(long)]
        baseline: PathBuf,
        /// Run file to execute [default: the one recorded in the baseline].
        #[arg(long)]
        run: Option<PathBuf>,
        /// Largest tolerated drop of any accuracy, in percentage points.
        #[arg(long, default_value_t = config::CHECK_TOLERANCE_POINTS)]
        tolerance: f64,
        /// Also fail when the paired 95% interval of a change lies entirely below zero.
        #[arg(long)]
        interval: bool,
        #[arg(long)]
        allow_mixed_versions: bool,
        /// Write the new run's results here (nothing is written by default).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        cpu: bool,
        #[arg(long)]
        json: bool,
    },
    /// A PNG grid of real images above their reconstructions G(E(x)) (the paper's Figure 2).
    Reconstruct {
        /// Encoder manifest with a `z_mean` or `z_sample` output.
        #[arg(long)]
        encoder: PathBuf,
        /// Generator manifest whose latent matches the encoder's.
        #[arg(long)]
        generator: PathBuf,
        /// Images: `kind:path[@split]` (split defaults to `val`).
        #[arg(long)]
        dataset: String,
        /// Images in the grid (a seeded subset of the split).
        #[arg(long, default_value_t = 8)]
        n: usize,
        #[arg(long, default_value_t = config::SPLIT_SEED)]
        seed: u64,
        #[arg(long, default_value = "reconstructions.png")]
        out: PathBuf,
    },
    /// Train a mini BigBiGAN (tch, CPU or CUDA) and export its encoder and generator as TorchScript.
    TrainBigbigan {
        /// Training config (see eval/bigbigan-fmnist.toml).
        #[arg(long)]
        config: PathBuf,
        /// Continue from the checkpoint in the config's out_dir.
        #[arg(long)]
        resume: bool,
        /// Override the config's number of steps.
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long)]
        cpu: bool,
    },
    /// Re-render report.md and results.csv from a results.json.
    Report { results: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// List cached feature files with their keys.
    Ls {
        #[arg(long, default_value = config::CACHE_DIR)]
        cache_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Read every cached file completely and check its key, protocol version and values.
    Verify {
        #[arg(long, default_value = config::CACHE_DIR)]
        cache_dir: PathBuf,
    },
}

/// A seeded subset of a dataset.
#[derive(Debug, Args)]
pub struct SubsetFlags {
    /// Use a seeded subset of at most this many images.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = config::SPLIT_SEED)]
    pub seed: u64,
}

/// How images are batched through an encoder and where features are cached.
#[derive(Debug, Args)]
pub struct BatchFlags {
    /// Images per batch [default: 4 on CPU, 64 on CUDA].
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value = config::CACHE_DIR)]
    pub cache_dir: PathBuf,
}
