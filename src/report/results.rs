//! The results JSON: config, seeds, git commit, library versions, dataset hashes, protocol version and,
//! per (encoder, feature, probe), top-1/top-5 with a 95% bootstrap interval, train-val accuracy, chosen
//! hyper-parameters, per-class accuracy and timings.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::paper::PaperRef;
use crate::context::ExecutionContext;
use crate::error::{Error, IoContext, Result};
use crate::genmetrics::GenerationResult;
use crate::probe::protocol::ProbeOutcome;
use crate::protocol::PROTOCOL_VERSION;
use crate::runfile::RunFile;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub bbeval_version: String,
    pub git_commit: String,
    pub created: String,
    pub tch_version: String,
    pub libtorch_version: String,
    /// Where it ran: `cpu` or `cuda:N` (what actually ran, not what was asked for).
    pub device: String,
    /// Encoder forward precision (`f32`, `f16`, `bf16`).
    #[serde(default)]
    pub precision: String,
    /// libtorch CPU threads.
    #[serde(default)]
    pub threads: usize,
    pub protocol_version: u32,
}

impl Provenance {
    pub fn now(ctx: &ExecutionContext) -> Provenance {
        Provenance {
            bbeval_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            tch_version: env!("BBEVAL_TCH_VERSION").to_string(),
            libtorch_version: env!("BBEVAL_LIBTORCH_VERSION").to_string(),
            device: ctx.device_name(),
            precision: ctx.precision.as_str().to_string(),
            threads: ctx.threads,
            protocol_version: PROTOCOL_VERSION,
        }
    }
}

/// The commit of the working directory, with `-dirty` when it has uncommitted changes; `unknown` outside git.
fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{commit}-dirty") } else { commit }
        }
        None => "unknown".into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub spec: String,
    pub train_hash: String,
    pub val_hash: String,
    pub n_train: usize,
    pub n_val: usize,
    pub train_limit: Option<usize>,
    pub val_limit: Option<usize>,
    pub split_seed: u64,
    pub train_val: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowResult {
    pub method: String,
    pub architecture: String,
    pub encoder: String,
    pub encoder_sha256: String,
    pub feature: String,
    /// `true` when BN+CReLU was computed from AvePool with training-split statistics.
    pub feature_derived: bool,
    /// An imported encoder used without a passing verification record (`--allow-unverified`).
    #[serde(default)]
    pub unverified: bool,
    /// The paper's numbers for this row, when it is one of the paper's rows.
    #[serde(default)]
    pub paper: Option<PaperRef>,
    pub extract_seconds: f64,
    pub cache_hit: bool,
    pub skipped_images: usize,
    pub probe: ProbeOutcome,
    /// The probe was finished by an earlier run of the same build on the same inputs and taken from the
    /// cache (`probe.seconds` is that run's).
    #[serde(default)]
    pub probe_reused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub name: String,
    pub protocol_version: u32,
    pub provenance: Provenance,
    pub config: RunFile,
    pub dataset: DatasetRecord,
    pub rows: Vec<RowResult>,
    /// FID/IS of the run file's `[[generation]]` entries (Table 1 / Table 3 layouts).
    #[serde(default)]
    pub generation: Vec<GenerationResult>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Results {
    pub fn load(path: &Path) -> Result<Results> {
        let text = std::fs::read_to_string(path).at(path)?;
        serde_json::from_str(&text).map_err(|e| Error::Results { path: path.into(), reason: format!("{e}; is it a bbeval results.json?") })
    }

    /// A results.json, or the results folder holding one.
    pub fn load_any(path: &Path) -> Result<Results> {
        if path.is_dir() { Results::load(&path.join("results.json")) } else { Results::load(path) }
    }

    /// Write results.json, report.md and results.csv into `dir` (each atomically, through a unique
    /// temporary file).
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).at(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Results { path: dir.into(), reason: e.to_string() })?;
        let files = [
            ("results.json", json + "\n"),
            ("report.md", super::table::markdown(self)),
            ("results.csv", super::table::csv(self)),
        ];
        let generation = (!self.generation.is_empty()).then(|| ("generation.csv", super::generation_table::csv(self)));
        let files = files.into_iter().chain(generation);
        let mut written = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            crate::atomic::write(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}
