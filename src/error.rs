//! The library's one error type: one variant per kind of failure. Every variant that concerns a file names
//! it, and the message says how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a readable image ({reason}); re-encode or remove it (bbeval skips such files unless --strict)")]
    Decode { path: PathBuf, reason: String },

    /// Only raised under `--strict` (or when nothing at all was readable).
    #[error("{count} unreadable image(s), first: {first}; remove or re-encode them{advice}")]
    UnreadableImages { count: usize, first: String, advice: &'static str },

    #[error("dataset {path}: {reason}")]
    Dataset { path: PathBuf, reason: String },

    /// Labels or splits that cannot give a meaningful number.
    #[error("dataset {path}: {reason}")]
    Labels { path: PathBuf, reason: String },

    #[error("unknown {kind} `{name}`{suggestion}; known: {known}")]
    Unknown { kind: &'static str, name: String, suggestion: String, known: String },

    #[error("encoder manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },

    /// A model's outputs do not match what its manifest declares, or lack what a command needs.
    #[error("encoder `{encoder}`: {reason}")]
    EncoderOutput { encoder: String, reason: String },

    #[error("encoder `{encoder}`: {count} image(s) gave NaN/Inf features, first: {first}; check the manifest's input range and run in f32")]
    NonFinite { encoder: String, count: usize, first: String },

    #[error("generator {path}: {reason}")]
    Generator { path: PathBuf, reason: String },

    #[error("feature cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },

    #[error("run file {path}: {reason}")]
    RunFile { path: PathBuf, reason: String },

    /// A probe setting out of range; `origin` says where it came from (a run file's table, or a flag).
    #[error("probe setting `{field}` from {origin}: {reason}")]
    ProbeParam { origin: String, field: &'static str, reason: String },

    #[error("{source_name}: NaN/Inf feature in row {row}; re-extract the features or fix the encoder")]
    NonFiniteFeature { source_name: String, row: usize },

    #[error("train has {rows} rows: too few to hold out {held_out} for train-val and fit on the rest; lower train_val or use more images")]
    TooFewRows { rows: usize, held_out: usize },

    #[error("linfa-logistic: {0}")]
    Linfa(String),

    #[error("feature width differs between splits: train {train}, {other_split} {other}; both must come from the same encoder and feature")]
    WidthMismatch { train: usize, other_split: String, other: usize },

    #[error("class {label} occurs in {split} but never in train; the probe cannot predict it (check the label file or the subset)")]
    UnseenClass { label: u32, split: String },

    #[error("FID statistics: {0}")]
    Statistics(String),

    #[error("results {path}: {reason}")]
    Results { path: PathBuf, reason: String },

    #[error("results {path} already exist; pass --overwrite to replace them, or change `name`/`out_dir` in the run file")]
    ResultsExist { path: PathBuf },

    #[error("protocol versions differ: {detail}; results of different protocols are not comparable (pass --allow-mixed-versions to compare anyway)")]
    ProtocolMismatch { detail: String },

    #[error("{0}")]
    Check(String),

    #[error("plot {path}: {reason}")]
    Plot { path: PathBuf, reason: String },

    #[error("device: {0}")]
    Device(String),

    /// BigBiGAN training stopped (e.g. diverged); the last checkpoint is kept.
    #[error("training {name}: {reason}")]
    Training { name: String, reason: String },

    #[error("config {path}: {reason}")]
    TrainConfig { path: PathBuf, reason: String },

    /// A TF Hub import that could not be done (bad module, missing tool, failed conversion).
    #[error("import {path}: {reason}")]
    Import { path: PathBuf, reason: String },

    /// An imported model whose verification record is missing, failed, or does not match it.
    #[error("verification {path}: {reason}")]
    Verification { path: PathBuf, reason: String },

    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),

    #[error("parquet: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach a path to an I/O error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.into(), source })
    }
}
