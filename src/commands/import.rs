//! `import-tfhub` and `verify-import`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use bbeval::context::ExecutionContext;
use bbeval::tfhub::{import::ImportOptions, verify};

use super::Output;

pub fn import(out: &Output, opts: ImportOptions, ctx: &ExecutionContext) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let imported = bbeval::tfhub::import::import(&opts, ctx, &out.reporter)?;
    out.emit(&imported, || {
        println!("imported {} in {:.0} s, verified (TF = ONNX = TorchScript = bbeval through libtorch):", opts.name, start.elapsed().as_secs_f64());
        println!("encoder: {}", imported.encoder.display());
        if let Some(g) = &imported.generator {
            println!("generator: {}", g.display());
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn verify(out: &Output, manifest: &Path, ctx: &ExecutionContext) -> Result<ExitCode> {
    let stage = verify::verify_manifest(manifest, ctx)?;
    out.emit(&stage, || {
        println!("{} on {}: {}", manifest.display(), stage.device, if stage.passed { "passed" } else { "FAILED" });
        for line in verify::describe(&stage) {
            println!("  {line}");
        }
    })?;
    Ok(if stage.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
