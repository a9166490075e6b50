//! The library's one error type. Every variant that concerns a file names it, and says how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a readable image ({reason}); re-encode or remove it (bbeval skips such files unless --strict)")]
    Decode { path: PathBuf, reason: String },

    #[error("{count} unreadable image(s), first: {first}; remove or re-encode them, or run without --strict to skip them")]
    UnreadableImages { count: usize, first: String },

    #[error("dataset {path}: {reason}")]
    Dataset { path: PathBuf, reason: String },

    #[error("unknown {kind} `{name}`{suggestion}; known: {known}")]
    Unknown { kind: &'static str, name: String, suggestion: String, known: String },

    #[error("encoder manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },

    #[error("encoder `{encoder}`: {count} image(s) gave NaN/Inf features, first: {first}; check the manifest's input range and run in f32")]
    NonFinite { encoder: String, count: usize, first: String },

    #[error("feature cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },

    #[error("run file {path}: {reason}")]
    RunFile { path: PathBuf, reason: String },

    #[error("probe: {0}")]
    Probe(String),

    #[error("feature width differs between splits: train {train}, {other_split} {other}; both must come from the same encoder and feature")]
    WidthMismatch { train: usize, other_split: String, other: usize },

    #[error("class {label} occurs in {split} but never in train; the probe cannot predict it (check the label file or the subset)")]
    UnseenClass { label: u32, split: String },

    #[error("results {path}: {reason}")]
    Results { path: PathBuf, reason: String },

    #[error("protocol versions differ: {detail}; results of different protocols are not comparable (pass --allow-mixed-versions to compare anyway)")]
    ProtocolMismatch { detail: String },

    #[error("{0}")]
    Check(String),

    #[error("plot {path}: {reason}")]
    Plot { path: PathBuf, reason: String },

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
