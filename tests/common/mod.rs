//! Shared helpers of the integration tests: asset paths and throw-away manifests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An asset installed by `make setup`; the message says how to get it.
pub fn asset(rel: &str) -> PathBuf {
    let p = root().join("assets").join(rel);
    assert!(p.exists(), "{} is missing: run `make setup` first", p.display());
    p
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

pub fn efficientnet_manifest() -> PathBuf {
    asset("encoders/efficientnet-lite0.toml")
}

/// Copy a TorchScript fixture into `dir` with a manifest declaring `outputs`; returns the manifest path.
pub fn fixture_encoder(dir: &Path, model: &str, outputs: &str, input: &str) -> PathBuf {
    let src = fixture(model);
    let weights = dir.join(model);
    std::fs::copy(&src, &weights).expect("copy fixture model");
    let sha = bbeval::data::file_sha256(&weights).expect("hash");
    let name = model.trim_end_matches(".pt").replace('_', "-");
    let manifest = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\nweights = \"{model}\"\nweights_sha256 = \"{sha}\"\n[input]\n{input}\n[outputs]\n{outputs}\n"
    );
    std::fs::write(&manifest, text).expect("write manifest");
    manifest
}

/// Load and run a run file on the CPU; returns the results and the folder they were written to.
pub fn run(path: &Path, opts: &bbeval::run::RunOptions) -> bbeval::Result<(bbeval::report::Results, PathBuf)> {
    let run = bbeval::runfile::RunFile::load(path)?;
    match bbeval::run::run_file(&run, opts)? {
        bbeval::run::RunOutcome::Written { results, dir } => Ok((*results, dir)),
        bbeval::run::RunOutcome::Sharded { .. } => panic!("a shard run writes no results"),
    }
}

/// The CPU context of the tests.
pub fn cpu() -> bbeval::context::ExecutionContext {
    bbeval::context::ExecutionContext::cpu()
}

/// Open a dataset split, reading every file's bytes for its content hash.
pub fn open(spec: &bbeval::data::DatasetSpec, split: &str) -> bbeval::Result<bbeval::data::Dataset> {
    bbeval::data::Dataset::open(spec, split, &bbeval::data::HashOptions::default())
}
