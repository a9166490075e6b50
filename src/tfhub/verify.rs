//! Verification records of imported models, and bbeval's own check of them through libtorch.
//!
//! `tools/tfhub/import_module.py` writes `<name>.verify.json` + `<name>.verify.npz`: fixed inputs (real
//! preprocessed ImageNet JPEGs and seeded noise, as uint8 pixels; or seeded latents for a generator), TF's
//! outputs on them, the tolerances and what the Python stages measured (TF vs ONNX vs TorchScript). Here
//! bbeval loads the TorchScript the way every run does (tch, the manifest's outputs) at batch sizes 1, 7
//! and 64, compares with TF's outputs and adds its stage (`bbeval_tch_cpu`, or `bbeval_tch_cuda:0` …) to
//! the record. An encoder whose manifest names a record is used only when the record exists, is for these
//! very weights, and every stage passed.

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array4, ArrayView2};
use ndarray_npy::NpzReader;
use serde::Serialize;
use serde_json::{json, Value};

use crate::context::ExecutionContext;
use crate::encoder::{Batch, Encoder, Manifest, TorchScriptEncoder};
use crate::error::{Error, IoContext, Result};
use crate::genmetrics::generator::Generator;

/// Batch sizes bbeval checks: one image, an odd batch, the whole record.
pub const BATCH_SIZES: [usize; 3] = [1, 7, 64];

/// How far one output is from TF's.
#[derive(Debug, Clone, Serialize)]
pub struct OutputError {
    pub max_abs_err: f64,
    pub max_abs_ref: f64,
    /// `max_abs_err / max_abs_ref`.
    pub rel: f64,
    pub min_row_cosine: f64,
    pub passed: bool,
}

/// bbeval's stage of a record.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub device: String,
    pub batch_sizes: Vec<usize>,
    pub outputs: std::collections::BTreeMap<String, OutputError>,
    pub passed: bool,
}

fn verr(path: &Path, reason: impl Into<String>) -> Error {
    Error::Verification { path: path.into(), reason: reason.into() }
}

/// The record beside a manifest, parsed.
fn load_record(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| verr(path, format!("missing or unreadable ({e}); import the module again with `bbeval import-tfhub`")))?;
    serde_json::from_str(&text).map_err(|e| verr(path, format!("not a verification record ({e}); import the module again")))
}

/// Why a record does not vouch for `weights_sha256`, if it does not.
fn record_problem(record: &Value, weights_sha256: &str) -> Option<String> {
    if record["weights_sha256"].as_str() != Some(weights_sha256) {
        return Some(format!("it verifies weights {}, the manifest names {weights_sha256}: the TorchScript changed after its import; import the module again", record["weights_sha256"].as_str().unwrap_or("?")));
    }
    let stages = record["stages"].as_object()?;
    if let Some((name, _)) = stages.iter().find(|(_, s)| s["passed"].as_bool() != Some(true)) {
        return Some(format!("stage `{name}` failed; see the record for which output and by how much"));
    }
    if !stages.keys().any(|k| k.starts_with("bbeval_tch")) {
        return Some("bbeval's own check through libtorch has not run; run `bbeval verify-import <manifest>`".into());
    }
    (record["passed"].as_bool() != Some(true)).then(|| "the record says it did not pass".into())
}

/// Refuse an imported encoder without a passing record (a manifest without `verification` is not an
/// import and passes).
pub fn require(manifest: &Manifest, manifest_path: &Path) -> Result<()> {
    let Some(path) = &manifest.verification else { return Ok(()) };
    let record = load_record(path)?;
    match record_problem(&record, &manifest.weights_sha256) {
        None => Ok(()),
        Some(why) => Err(verr(path, format!("{} (encoder {}): {why}", manifest.name, manifest_path.display()))),
    }
}

/// The same for an imported generator.
pub fn require_generator(generator: &Generator) -> Result<()> {
    let Some(path) = &generator.manifest.verification else { return Ok(()) };
    let record = load_record(path)?;
    match record_problem(&record, &generator.manifest.weights_sha256) {
        None => Ok(()),
        Some(why) => Err(verr(path, format!("{} (generator {}): {why}", generator.manifest.name, generator.path.display()))),
    }
}

/// Compare `ours` with TF's `reference` row by row.
fn compare(ours: ArrayView2<f32>, reference: ArrayView2<f32>, rel_tol: f64, cos_tol: f64) -> OutputError {
    let max_abs_ref = reference.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let max_abs_err = ours.iter().zip(reference.iter()).fold(0f64, |m, (&a, &b)| m.max((f64::from(a) - f64::from(b)).abs()));
    let min_row_cosine = ours
        .rows()
        .into_iter()
        .zip(reference.rows())
        .map(|(a, b)| {
            let (dot, na, nb) = a.iter().zip(b.iter()).fold((0f64, 0f64, 0f64), |(d, x, y), (&p, &q)| (d + f64::from(p) * f64::from(q), x + f64::from(p).powi(2), y + f64::from(q).powi(2)));
            // Two zero rows agree perfectly.
            if na == 0.0 && nb == 0.0 { 1.0 } else { dot / (na.sqrt() * nb.sqrt()).max(1e-300) }
        })
        .fold(1f64, f64::min);
    let rel = if max_abs_ref > 0.0 { max_abs_err / max_abs_ref } else { max_abs_err };
    let passed = ours.dim() == reference.dim() && rel <= rel_tol && min_row_cosine >= cos_tol;
    OutputError { max_abs_err, max_abs_ref, rel, min_row_cosine, passed }
}

fn npz_path(record_path: &Path) -> PathBuf {
    record_path.with_extension("npz")
}

fn tolerances(record: &Value, ctx: &ExecutionContext) -> (f64, f64) {
    let rel = record["tolerance"]["rel_max_abs"].as_f64().unwrap_or(1e-4);
    let cos = record["tolerance"]["min_row_cosine"].as_f64().unwrap_or(0.99999);
    if ctx.is_cuda() {
        // TF32 matmuls and other kernels on CUDA: the tolerance measured on an H200 is recorded in the
        // README; reduced precisions are looser still.
        match ctx.precision {
            crate::context::Precision::F32 => (rel.max(CUDA_REL_TOL), cos.min(CUDA_MIN_COSINE)),
            _ => (HALF_REL_TOL, HALF_MIN_COSINE),
        }
    } else {
        (rel, cos)
    }
}

/// Tolerances on CUDA in f32 and in half precision (per output's maximum; per row cosine).
pub const CUDA_REL_TOL: f64 = 1e-3;
pub const CUDA_MIN_COSINE: f64 = 0.9999;
pub const HALF_REL_TOL: f64 = 5e-2;
pub const HALF_MIN_COSINE: f64 = 0.995;

/// Run an imported encoder through bbeval on the record's inputs at [`BATCH_SIZES`] and compare every
/// output but `z_sample` (random by design; its law was checked on TF) with TF's.
pub fn check_encoder(manifest_path: &Path, ctx: &ExecutionContext) -> Result<Stage> {
    let manifest = Manifest::load(manifest_path)?;
    let record_path = manifest.verification.clone().ok_or_else(|| verr(manifest_path, "the manifest names no `verification` record; only imported models have one"))?;
    let record = load_record(&record_path)?;
    let npz = npz_path(&record_path);
    let mut reader = NpzReader::new(std::fs::File::open(&npz).at(&npz)?).map_err(|e| verr(&npz, e.to_string()))?;
    let inputs: Array4<u8> = reader.by_name("inputs").map_err(|e| verr(&npz, format!("no `inputs`: {e}")))?;
    let (n, h, w, c) = inputs.dim();
    // NHWC pixels p → NCHW x = p/127.5 − 1, exactly what the record's TF outputs saw.
    let x: Vec<f32> = inputs.permuted_axes([0, 3, 1, 2]).as_standard_layout().iter().map(|&p| f32::from(p) / 127.5 - 1.0).collect();
    let image = c * h * w;
    let mut encoder = TorchScriptEncoder::open(manifest_path, ctx)?;
    let (rel_tol, cos_tol) = tolerances(&record, ctx);
    let mut outputs = std::collections::BTreeMap::new();
    for name in encoder.outputs().into_iter().filter(|o| o != "z_sample") {
        let reference: Array2<f32> = reader.by_name(&format!("tf_{name}")).map_err(|e| verr(&npz, format!("no TF output `tf_{name}`: {e}")))?;
        let mut worst: Option<OutputError> = None;
        for &batch in &BATCH_SIZES {
            let mut rows = Vec::with_capacity(n * reference.ncols());
            for start in (0..n).step_by(batch) {
                let len = batch.min(n - start);
                let features = encoder.encode(&Batch { pixels: x[start * image..(start + len) * image].to_vec(), n: len, shape: [c, h, w] })?;
                let f = features.iter().find(|f| f.name == name).ok_or_else(|| verr(manifest_path, format!("the TorchScript gave no `{name}`")))?;
                rows.extend_from_slice(&f.values);
            }
            let ours = Array2::from_shape_vec((n, rows.len() / n.max(1)), rows).map_err(|e| verr(manifest_path, e.to_string()))?;
            let e = compare(ours.view(), reference.view(), rel_tol, cos_tol);
            if worst.as_ref().is_none_or(|w| e.rel > w.rel || !e.passed) {
                worst = Some(e);
            }
        }
        if let Some(e) = worst {
            outputs.insert(name, e);
        }
    }
    let passed = !outputs.is_empty() && outputs.values().all(|o| o.passed);
    Ok(Stage { device: ctx.describe(), batch_sizes: BATCH_SIZES.to_vec(), outputs, passed })
}

/// Run an imported generator on the record's latents and compare its images with TF's.
pub fn check_generator(manifest_path: &Path, ctx: &ExecutionContext) -> Result<Stage> {
    let generator = Generator::open(manifest_path, ctx.device)?;
    let record_path = generator.manifest.verification.clone().ok_or_else(|| verr(manifest_path, "the manifest names no `verification` record"))?;
    let record = load_record(&record_path)?;
    let npz = npz_path(&record_path);
    let mut reader = NpzReader::new(std::fs::File::open(&npz).at(&npz)?).map_err(|e| verr(&npz, e.to_string()))?;
    let z: Array2<f32> = reader.by_name("inputs").map_err(|e| verr(&npz, format!("no `inputs`: {e}")))?;
    let reference: Array4<f32> = reader.by_name("tf_image").map_err(|e| verr(&npz, format!("no `tf_image`: {e}")))?;
    let n = z.nrows();
    let (rel_tol, cos_tol) = tolerances(&record, ctx);
    let [lo, hi] = generator.manifest.range;
    let flat_ref = reference.to_shape((n, reference.len() / n.max(1))).map_err(|e| verr(&npz, e.to_string()))?.to_owned();
    let mut worst: Option<OutputError> = None;
    for &batch in &BATCH_SIZES {
        let mut rows: Vec<f32> = Vec::with_capacity(reference.len());
        for start in (0..n).step_by(batch) {
            let len = batch.min(n - start);
            let zs: Vec<f32> = z.slice(ndarray::s![start..start + len, ..]).iter().copied().collect();
            // generate() maps the range to pixels 0–255; map back to the module's own range.
            let px = generator.generate(&zs, len)?;
            let v = Vec::<f32>::try_from(&px.f_flatten(0, -1)?)?;
            rows.extend(v.into_iter().map(|p| lo + p / 255.0 * (hi - lo)));
        }
        let ours = Array2::from_shape_vec(flat_ref.dim(), rows).map_err(|e| verr(manifest_path, e.to_string()))?;
        // TF's images are compared after the same clamp to the range that every use applies.
        let clamped = flat_ref.mapv(|v| v.clamp(lo, hi));
        let e = compare(ours.view(), clamped.view(), rel_tol, cos_tol);
        if worst.as_ref().is_none_or(|w| e.rel > w.rel || !e.passed) {
            worst = Some(e);
        }
    }
    let outputs: std::collections::BTreeMap<String, OutputError> = worst.into_iter().map(|e| ("image".to_string(), e)).collect();
    let passed = outputs.values().all(|o| o.passed);
    Ok(Stage { device: ctx.describe(), batch_sizes: BATCH_SIZES.to_vec(), outputs, passed })
}

/// Add `stage` to the record at `record_path` under `bbeval_tch_<device>` and recompute `passed`
/// (written through a temporary file).
pub fn record_stage(record_path: &Path, stage: &Stage, ctx: &ExecutionContext) -> Result<bool> {
    let mut record = load_record(record_path)?;
    let key = format!("bbeval_tch_{}", ctx.device_name());
    let value = serde_json::to_value(stage).map_err(|e| verr(record_path, e.to_string()))?;
    record["stages"][&key] = value;
    let all = record["stages"].as_object().is_some_and(|s| s.values().all(|s| s["passed"].as_bool() == Some(true)));
    record["passed"] = json!(all);
    let text = serde_json::to_string_pretty(&record).map_err(|e| verr(record_path, e.to_string()))?;
    crate::atomic::write(record_path, text.as_bytes())?;
    Ok(all)
}

/// Check an imported model (encoder or generator manifest) and record the stage; returns the stage.
pub fn verify_manifest(manifest_path: &Path, ctx: &ExecutionContext) -> Result<Stage> {
    let text = std::fs::read_to_string(manifest_path).at(manifest_path)?;
    let is_generator = text.lines().any(|l| l.trim_start().starts_with("range")) && !text.contains("[outputs]");
    let stage = if is_generator { check_generator(manifest_path, ctx)? } else { check_encoder(manifest_path, ctx)? };
    let record_path = if is_generator {
        Generator::open(manifest_path, ctx.device)?.manifest.verification
    } else {
        Manifest::load(manifest_path)?.verification
    }
    .ok_or_else(|| verr(manifest_path, "no verification record"))?;
    record_stage(&record_path, &stage, ctx)?;
    Ok(stage)
}

/// Per-output summary lines of a stage.
pub fn describe(stage: &Stage) -> Vec<String> {
    stage
        .outputs
        .iter()
        .map(|(name, e)| format!("{name}: max |Δ| {:.2e} of max {:.3} (rel {:.2e}), min row cosine {:.7} {}", e.max_abs_err, e.max_abs_ref, e.rel, e.min_row_cosine, if e.passed { "ok" } else { "FAILED" }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn comparison_is_relative_to_the_output_maximum_and_checks_every_row() {
        let reference = array![[1.0f32, 2.0], [0.0, 4.0]];
        let close = array![[1.0f32, 2.0002], [0.0, 4.0]];
        let e = compare(close.view(), reference.view(), 1e-4, 0.99999);
        assert!((e.rel - 0.0002 / 4.0).abs() < 1e-6 && e.passed, "{e:?}");
        let bad_row = array![[2.0f32, 1.0], [0.0, 4.0]];
        assert!(!compare(bad_row.view(), reference.view(), 1.0, 0.99999).passed);
    }

    #[test]
    fn a_record_vouches_only_for_its_own_weights_and_passing_stages() {
        let good = json!({"weights_sha256": "aa", "passed": true, "stages": {"torchscript_vs_tf": {"passed": true}, "bbeval_tch_cpu": {"passed": true}}});
        assert_eq!(record_problem(&good, "aa"), None);
        assert!(record_problem(&good, "bb").unwrap().contains("changed after its import"));
        let failed = json!({"weights_sha256": "aa", "passed": false, "stages": {"torchscript_vs_tf": {"passed": false}}});
        assert!(record_problem(&failed, "aa").unwrap().contains("torchscript_vs_tf"));
        let unchecked = json!({"weights_sha256": "aa", "passed": true, "stages": {"torchscript_vs_tf": {"passed": true}}});
        assert!(record_problem(&unchecked, "aa").unwrap().contains("verify-import"));
    }
}
