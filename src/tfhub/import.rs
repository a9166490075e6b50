//! `bbeval import-tfhub`: convert a TF1 hub module (a folder or its `.tar.gz`) to TorchScript encoder (and
//! generator) files with manifests and verification records, verified three times before anything lands
//! in the output folder.
//!
//! 1. `tools/tfhub/setup_env.sh` installs the TF side into its own cached venv on first use (never the
//!    main one).
//! 2. `tools/tfhub/import_module.py` converts into a staging folder beside the output and checks TF vs ONNX
//!    vs TorchScript in Python (separate processes: TF and torch cannot share one).
//! 3. bbeval loads the TorchScript through tch and checks it against TF's recorded outputs at batch sizes 1,
//!    7 and 64 (CPU, and the context's CUDA device when there is one).
//!
//! Only then are the files moved into place, the manifests last, so that an interrupted or failed import
//! leaves nothing half-written that a run could pick up.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::verify::{self, Stage};
use crate::context::ExecutionContext;
use crate::error::{Error, IoContext, Result};
use crate::reporter::Reporter;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// A hub module folder (`saved_model.pb`, `tfhub_module.pb`, `variables/`) or its `.tar.gz`.
    pub module: PathBuf,
    /// The encoder's name (files `<name>.pt`, `<name>.toml`, …; also its cache-key name).
    pub name: String,
    /// Where the files go (default `assets/encoders`).
    pub out_dir: PathBuf,
    /// The "Architecture" column (default: the module's folder name).
    pub architecture: Option<String>,
    /// Real images for the record (default: the foolbox ImageNet JPEGs `make setup` installs).
    pub images: Option<PathBuf>,
    /// The project's `tools/` folder.
    pub tools: PathBuf,
}

/// What an import wrote and how bbeval's checks went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub encoder: PathBuf,
    pub generator: Option<PathBuf>,
    /// (manifest, stage) of every bbeval check.
    pub checks: Vec<(PathBuf, Stage)>,
}

fn import_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Import { path: path.into(), reason: reason.into() }
}

/// The module must be a hub module folder or a gzip'd tar of one; everything else is refused before any
/// tool is installed.
fn check_module(module: &Path) -> Result<()> {
    if module.is_dir() {
        if module.join("saved_model.pb").is_file() || module.join("tfhub_module.pb").is_file() {
            return Ok(());
        }
        return Err(import_err(module, "not a TF Hub module or SavedModel (no saved_model.pb or tfhub_module.pb); point --module at the unpacked module folder or its .tar.gz"));
    }
    if module.is_file() {
        let mut magic = [0u8; 2];
        use std::io::Read;
        std::fs::File::open(module).at(module)?.read_exact(&mut magic).at(module)?;
        if magic == [0x1f, 0x8b] {
            return Ok(());
        }
        return Err(import_err(module, "not a gzip archive; download the module's compressed form (its URL with `?tf-hub-format=compressed`) or unpack it and pass the folder"));
    }
    Err(import_err(module, "no such file or folder"))
}

fn names_ok(name: &str) -> Result<()> {
    if name.is_empty() || crate::data::sanitize(name) != name {
        return Err(import_err(Path::new(name), "--name may hold only ASCII letters, digits, `-`, `_` and `.` (it becomes file and cache names)"));
    }
    Ok(())
}

/// Run one step of the Python side; its last stderr line is the reason when it fails.
fn run_tool(mut cmd: Command, what: &str, module: &Path, reporter: &Reporter) -> Result<String> {
    reporter.info(format!("{what} …"));
    let out = cmd.output().map_err(|e| import_err(module, format!("cannot start {what} ({e}); is python3 installed?")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
        return Err(import_err(module, format!("{what} failed: {reason}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Import `opts.module`; see the module docs.
pub fn import(opts: &ImportOptions, ctx: &ExecutionContext, reporter: &Reporter) -> Result<Imported> {
    names_ok(&opts.name)?;
    check_module(&opts.module)?;
    let setup = opts.tools.join("tfhub/setup_env.sh");
    let driver = opts.tools.join("tfhub/import_module.py");
    if !setup.is_file() || !driver.is_file() {
        return Err(import_err(&opts.tools, "tools/tfhub/ is missing; run bbeval from the project folder (or pass --tools)"));
    }
    let mut bootstrap = Command::new("bash");
    bootstrap.arg(&setup);
    run_tool(bootstrap, "installing the TF Hub import tools (first use only)", &opts.module, reporter)?;

    std::fs::create_dir_all(&opts.out_dir).at(&opts.out_dir)?;
    // Staging beside the output (same file system: the final moves are renames); removed on every exit.
    let staging = tempfile::Builder::new().prefix(&format!(".import-{}-", opts.name)).tempdir_in(&opts.out_dir).at(&opts.out_dir)?;
    let mut cmd = Command::new("python3");
    cmd.arg(&driver).arg("--module").arg(&opts.module).arg("--name").arg(&opts.name).arg("--out").arg(staging.path());
    if let Some(a) = &opts.architecture {
        cmd.arg("--architecture").arg(a);
    }
    if let Some(images) = &opts.images {
        cmd.arg("--images").arg(images);
    }
    let stdout = run_tool(cmd, "converting (TF → ONNX → TorchScript, checked in Python)", &opts.module, reporter)?;
    for line in stdout.lines().filter(|l| !l.starts_with("IMPORT-OK")) {
        reporter.info(format!("  {line}"));
    }

    let encoder = staging.path().join(format!("{}.toml", opts.name));
    let generator = staging.path().join(format!("{}-g.toml", opts.name));
    let has_generator = generator.is_file();
    let manifests: Vec<PathBuf> = [encoder.clone(), generator].into_iter().filter(|p| p.is_file()).collect();
    if !encoder.is_file() {
        return Err(import_err(&opts.module, "the converter wrote no encoder manifest"));
    }
    let mut checks = Vec::new();
    let mut contexts = vec![ExecutionContext::cpu()];
    if ctx.is_cuda() {
        contexts.push(*ctx);
    }
    for manifest in &manifests {
        for c in &contexts {
            let stage = verify::verify_manifest(manifest, c)?;
            reporter.info(format!("bbeval check of {} on {}:", manifest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(), c.describe()));
            for line in verify::describe(&stage) {
                reporter.info(format!("  {line}"));
            }
            if !stage.passed {
                return Err(Error::Verification {
                    path: manifest.clone(),
                    reason: format!("bbeval's check through libtorch failed on {} ({}); nothing was installed", c.describe(), verify::describe(&stage).join("; ")),
                });
            }
            checks.push((opts.out_dir.join(manifest.file_name().unwrap_or_default()), stage));
        }
    }

    // Everything but the manifests first, then the manifests: a run never sees a manifest whose files are
    // not all in place.
    let mut files: Vec<PathBuf> = std::fs::read_dir(staging.path()).at(staging.path())?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort_by_key(|p| (p.extension().is_some_and(|e| e == "toml"), p.clone()));
    for f in files {
        let dest = opts.out_dir.join(f.file_name().unwrap_or_default());
        std::fs::rename(&f, &dest).at(&dest)?;
    }
    Ok(Imported {
        encoder: opts.out_dir.join(format!("{}.toml", opts.name)),
        generator: has_generator.then(|| opts.out_dir.join(format!("{}-g.toml", opts.name))),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_module_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_module(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no saved_model.pb") && err.contains(&dir.path().display().to_string()), "{err}");
        let junk = dir.path().join("m.tar.gz");
        std::fs::write(&junk, b"PK\x03\x04 not gzip").unwrap();
        assert!(check_module(&junk).unwrap_err().to_string().contains("compressed"));
        assert!(names_ok("bigbigan-resnet50").is_ok() && names_ok("a/b").is_err());
    }
}
