//! Command-line flags. Defaults come from `bbeval::protocol`, written once there.

use std::path::PathBuf;

use bbeval::context::{DeviceChoice, Precision};
use bbeval::features::cache::Storage;
use bbeval::features::Shard;
use bbeval::probe::Backend;
use bbeval::protocol;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bbeval", version, about = "Representation quality the BigBiGAN way: features, linear probes, FID/IS, Table-style reports")]
pub struct Cli {
    /// Print results as JSON on stdout (progress and warnings stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress lines or bars on stderr (warnings and errors stay; results still print on stdout).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Where and how to compute: decided once per command.
#[derive(Debug, Args, Clone, Default)]
pub struct ComputeFlags {
    /// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N` [default: the run file's, else auto].
    #[arg(long)]
    pub device: Option<DeviceChoice>,
    /// Encoder forward precision; f16/bf16 need CUDA [default: the run file's, else f32].
    #[arg(long, value_enum)]
    pub dtype: Option<Precision>,
    /// libtorch CPU threads [default: libtorch's].
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract an encoder's features over a dataset split into the Parquet cache (resumes an interrupted
    /// extraction; `--shard i/n` computes one slice of it).
    Extract {
        /// `raw`, `raw:<size>`, or the path of an encoder manifest (.toml beside the TorchScript file).
        #[arg(long)]
        encoder: String,
        #[arg(long, help = bbeval::data::kinds_help())]
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
        /// How the cache stores the features (f16 halves disk space and read time).
        #[arg(long, value_enum, default_value = "f32")]
        storage: Storage,
        /// Compute only slice i of n (0-based; a Slurm array task: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).
        #[arg(long)]
        shard: Option<Shard>,
        /// Re-read every image file to identify the dataset's content (ignore the stat cache).
        #[arg(long)]
        rehash: bool,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Inspect and maintain the feature cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Extract → probe → report for a run file (see eval/).
    Run {
        file: PathBuf,
        /// Stop at the first unreadable image instead of skipping it (a cached file with skipped images does not satisfy it).
        #[arg(long)]
        strict: bool,
        /// Replace existing results/<name>/ (refused otherwise).
        #[arg(long)]
        overwrite: bool,
        /// Use imported encoders whose verification record is missing or failed (rows are marked).
        #[arg(long)]
        allow_unverified: bool,
        /// Only extract slice i of n of every extraction, then stop (see `extract --shard`).
        #[arg(long)]
        shard: Option<Shard>,
        /// Use this dataset instead of the run file's (`kind:path`, e.g. `imagenet:/data/imagenet`).
        #[arg(long)]
        dataset: Option<String>,
        /// Re-read every image file to identify the dataset's content (ignore the stat cache).
        #[arg(long)]
        rehash: bool,
        /// Recompute every probe and FID/IS entry; by default those an earlier run of the same build finished
        /// with the same inputs are reused (a stopped run goes on where it stopped).
        #[arg(long)]
        recompute: bool,
        #[command(flatten)]
        compute: ComputeFlags,
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
        #[arg(long, default_value = protocol::FID_INCEPTION_MANIFEST)]
        inception: PathBuf,
        #[command(flatten)]
        batches: BatchFlags,
        /// Stop at the first unreadable image instead of skipping it (a cached file with skipped images does not satisfy it).
        #[arg(long)]
        strict: bool,
        /// Write the statistics of A and B as `a.npz` and `b.npz` into this folder.
        #[arg(long)]
        save_stats: Option<PathBuf>,
        #[command(flatten)]
        compute: ComputeFlags,
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
        #[arg(long, default_value_t = protocol::IS_SPLITS)]
        splits: usize,
        #[command(flatten)]
        batches: BatchFlags,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Run the probe protocol on two feature files (bbeval's Parquet layout).
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
        /// Learning-rate grid of the SGD back-end, comma-separated.
        #[arg(long, value_delimiter = ',')]
        lr: Vec<f64>,
        #[arg(long)]
        epochs: Option<usize>,
        /// L-BFGS iteration limit.
        #[arg(long)]
        max_iter: Option<u64>,
        /// L-BFGS gradient tolerance (sklearn's `tol`).
        #[arg(long)]
        tol: Option<f64>,
        #[arg(long)]
        chunk_rows: Option<usize>,
        /// Train rows held out for selection [default: 10% of train].
        #[arg(long)]
        train_val: Option<usize>,
        /// Compute BN+CReLU from these (AvePool) features with train statistics.
        #[arg(long)]
        bn_crelu: bool,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Deltas of every shared (row, metric) between runs — accuracies with paired bootstrap intervals, FID
    /// and IS of generation entries; curves of top-1 over training steps and grid heat maps with --plots.
    Compare {
        /// Results folders or results.json files; the first is the baseline.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Write top1_vs_step.{png,svg} and grid heat maps here.
        #[arg(long)]
        plots: Option<PathBuf>,
        #[arg(long)]
        allow_mixed_versions: bool,
    },
    /// Re-run a baseline's run file (using the cache) and exit 1 if any metric got worse than tolerated.
    Check {
        /// The committed results.json (or its folder) to hold the new run to.
        #[arg(long)]
        baseline: PathBuf,
        /// Run file to execute [default: the one recorded in the baseline].
        #[arg(long)]
        run: Option<PathBuf>,
        /// Tolerated worsening: a number for every accuracy (points, default 0.5), or `metric=value`
        /// (e.g. `fid=1.0,is=0.1`); repeat or comma-separate.
        #[arg(long, allow_hyphen_values = true)]
        tolerance: Vec<String>,
        /// Also fail when the paired 95% interval of an accuracy's change lies entirely below zero.
        #[arg(long)]
        interval: bool,
        #[arg(long)]
        allow_mixed_versions: bool,
        /// Write the new run's results here (never into the baseline's folder; nothing is written by default).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        compute: ComputeFlags,
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
        #[arg(long, default_value_t = protocol::SPLIT_SEED)]
        seed: u64,
        #[arg(long, default_value = "reconstructions.png")]
        out: PathBuf,
        #[command(flatten)]
        compute: ComputeFlags,
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
        /// Override the config's seed (and write to `<out_dir>-seed<N>`).
        #[arg(long)]
        seed: Option<u64>,
        /// Stop training after the first step that ends past this many seconds (counted from the first
        /// step), checkpoint and export there; `--resume` continues to the config's steps. For a lent GPU's
        /// fixed minutes.
        #[arg(long, value_name = "SECONDS")]
        max_seconds: Option<f64>,
        /// Only re-create the EMA generator's export from the checkpoint (no training; the encoder's exports
        /// are left as they are). `make build` does this for the shipped run, whose generator is not committed.
        #[arg(long, conflicts_with_all = ["resume", "steps", "max_seconds"])]
        export_generator: bool,
        /// Diagnostic, no training: ask the checkpoint's D whether it checks the pairing of encoder pairs
        /// (x, E(x)) (on training images, so the dataset is read) and of generator pairs (G(z), z); train a
        /// fresh D of the run's architecture for this many steps to tell (G(z), z) from (G(z), z′) with G
        /// frozen; then train a copy of G alone for this many steps towards the frozen D, and towards E itself,
        /// and a copy of E alone towards the fresh D (its check of G's pairing), and towards G itself.
        #[arg(long, value_name = "STEPS", conflicts_with_all = ["resume", "steps", "max_seconds", "export_generator"])]
        pairing_probe: Option<usize>,
        /// Only (re)draw `<out_dir>/train_log.png` from the run's `train_log.csv` (no training): for a run
        /// trained where no fonts are installed, as on the bare GPU image.
        #[arg(long, conflicts_with_all = ["resume", "steps", "max_seconds", "export_generator", "pairing_probe"])]
        plot_log: bool,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Import a TF Hub module (BigBiGAN's, or any TF1 image module with an `encode` signature) as a
    /// verified TorchScript encoder (+ generator); installs the TF tools on first use.
    ImportTfhub {
        /// The module folder, or its `.tar.gz` (the `?tf-hub-format=compressed` download).
        #[arg(long)]
        module: PathBuf,
        /// Name of the encoder (files and cache keys), e.g. `bigbigan-resnet50`.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "assets/encoders")]
        out: PathBuf,
        /// The report's "Architecture" column, e.g. `ResNet-50`.
        #[arg(long)]
        architecture: Option<String>,
        /// Folder of real JPEGs for the verification record [default: assets/foolbox/imagenet].
        #[arg(long)]
        images: Option<PathBuf>,
        /// The project's tools/ folder.
        #[arg(long, default_value = "tools")]
        tools: PathBuf,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Re-check an imported encoder or generator against its verification record through libtorch, and
    /// record the result (e.g. on a GPU machine: `--device cuda`).
    VerifyImport {
        manifest: PathBuf,
        #[command(flatten)]
        compute: ComputeFlags,
    },
    /// Re-render report.md and results.csv from a results.json.
    Report { results: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// List cached feature files with their keys, unfinished extractions and leftover temporaries.
    Ls {
        #[arg(long, default_value = protocol::CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// Read every cached file completely and check its key, checksums, ids, protocol version and values.
    Verify {
        #[arg(long, default_value = protocol::CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// Remove temporaries whose writer is gone and part folders whose files are complete.
    Gc {
        #[arg(long, default_value = protocol::CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// Assemble extractions whose shards are all done; name the missing parts of the others.
    Merge {
        #[arg(long, default_value = protocol::CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// How far two feature files of the same images are apart (max |Δ|, row cosines, same argmax), e.g.
    /// features extracted on CPU and on CUDA.
    Diff { a: PathBuf, b: PathBuf },
    /// Read a feature file completely (checksums checked) `--repeat` times and report the median time and
    /// throughput — the figure to hold against pyarrow or numpy on the same file.
    Read {
        file: PathBuf,
        #[arg(long, default_value_t = 6)]
        repeat: usize,
        /// Also time reads that skip the checksums, to report their share of a read.
        #[arg(long)]
        checksum_share: bool,
    },
    /// Write a seeded synthetic train/val pair of feature files (Gaussian classes) for benchmarks.
    Synthetic {
        #[arg(long, default_value = protocol::CACHE_DIR)]
        cache_dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        #[arg(long, default_value_t = 2_000)]
        val_rows: usize,
        #[arg(long, default_value_t = 512)]
        width: usize,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Spread of the class means (smaller = harder).
        #[arg(long, default_value_t = 0.1)]
        scale: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "f32")]
        storage: Storage,
    },
}

/// A seeded subset of a dataset.
#[derive(Debug, Args)]
pub struct SubsetFlags {
    /// Use a seeded subset of at most this many images (≥ 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    #[arg(long, default_value_t = protocol::SPLIT_SEED)]
    pub seed: u64,
}

impl SubsetFlags {
    pub fn limit(&self) -> Option<usize> {
        self.limit.map(|l| l as usize)
    }
}

/// How images are batched through an encoder and where features are cached.
#[derive(Debug, Args)]
pub struct BatchFlags {
    /// Images per batch [default: 4 on CPU, 64 on CUDA].
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value = protocol::CACHE_DIR)]
    pub cache_dir: PathBuf,
}
