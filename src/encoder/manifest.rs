//! The encoder manifest: a TOML file beside a TorchScript file saying how to feed it and what it returns.
//!
//! ```toml
//! name = "efficientnet-lite0"
//! architecture = "EfficientNet-Lite0"
//! weights = "efficientnet-lite0.pt"      # relative to the manifest
//! weights_sha256 = "…"
//! [input]
//! policy = "bigbigan"                     # or explicit: size, crop_fraction, filter, channels,
//! size = 224                              #   and range = [-1, 1] or mean/std on [0, 1] pixels
//! [outputs]
//! avepool = 1280                          # required
//! logits = 1000
//! ```
//!
//! A model returns `Dict[str, Tensor]`, a bare tensor when it declares one output, or — with
//! `output_order = ["avepool", …]` — a tuple in that order or one tensor whose columns are the outputs
//! side by side with their declared widths (what `bbeval train-bigbigan` exports).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::preprocess::POLICIES;
use crate::data::{Filter, Preprocess};
use crate::error::{Error, Result};
use crate::suggest::did_you_mean;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub policy: Option<String>,
    pub size: Option<u32>,
    pub crop_fraction: Option<f64>,
    pub filter: Option<Filter>,
    pub channels: Option<u8>,
    /// Values of pixel 0 and pixel 255 after normalisation, e.g. `[-1, 1]`.
    pub range: Option<[f32; 2]>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    /// Resample in f32 without rounding to 8 bits (clean-fid style).
    pub float_resize: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub architecture: Option<String>,
    pub weights: PathBuf,
    pub weights_sha256: String,
    pub source: Option<String>,
    pub input: InputSpec,
    pub outputs: BTreeMap<String, usize>,
    /// For models that return a tuple, or one tensor whose columns are the outputs side by side (what tch
    /// tracing can export): the output names in order.
    pub output_order: Option<Vec<String>>,
    /// Latent width, for generators and encoders that output `z_*`.
    pub latent: Option<usize>,
    /// Verification record of an imported model (`bbeval import-tfhub`), relative to the manifest; an
    /// encoder that names one is used only when the record exists and passed.
    pub verification: Option<PathBuf>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let fail = |reason: String| Error::Manifest { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("{e} (pass the .toml manifest beside the TorchScript file)")))?;
        let mut m: Manifest = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if !m.outputs.contains_key("avepool") {
            return Err(fail("[outputs] must declare `avepool` with its width".into()));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        if m.weights.is_relative() {
            m.weights = dir.join(&m.weights);
        }
        if let Some(v) = m.verification.as_mut().filter(|v| v.is_relative()) {
            *v = dir.join(&*v);
        }
        crate::data::sanitize(&m.name).eq(&m.name).then_some(()).ok_or_else(|| {
            fail(format!("name `{}` may hold only ASCII letters, digits, `-`, `_` and `.` (it becomes a file name)", m.name))
        })?;
        m.preprocess(path)?;
        Ok(m)
    }

    /// Resolve `[input]` into a preprocessing policy: a named policy, overridden field by field.
    pub fn preprocess(&self, path: &Path) -> Result<Preprocess> {
        let fail = |reason: String| Error::Manifest { path: path.into(), reason };
        let i = &self.input;
        let mut p = match &i.policy {
            Some(name) => Preprocess::policy(name).ok_or_else(|| {
                fail(format!("unknown input policy `{name}`{}; known: {}", did_you_mean(name, &POLICIES), POLICIES.join(", ")))
            })?,
            None => {
                let size = i.size.ok_or_else(|| fail("[input] needs `policy` or `size`".into()))?;
                Preprocess { size: Some(size), ..Preprocess::bigbigan() }
            }
        };
        if i.size.is_some() {
            p.size = i.size;
        }
        if let Some(c) = i.crop_fraction {
            if !(c > 0.0 && c <= 1.0) {
                return Err(fail(format!("crop_fraction {c} must be in (0, 1]")));
            }
            p.crop_fraction = c;
        }
        if let Some(f) = i.filter {
            p.filter = f;
        }
        if let Some(f) = i.float_resize {
            p.float_resize = f;
        }
        if let Some(c) = i.channels {
            if c != 1 && c != 3 {
                return Err(fail(format!("channels {c} must be 1 or 3")));
            }
            p.channels = c;
        }
        match (i.range, i.mean, i.std) {
            (Some([lo, hi]), None, None) if hi > lo => {
                p.mean = [-lo / (hi - lo); 3];
                p.std = [1.0 / (hi - lo); 3];
            }
            (Some(_), None, None) => return Err(fail("range must be [low, high] with high > low".into())),
            (None, Some(mean), Some(std)) if std.iter().all(|s| *s > 0.0) => {
                p.mean = mean;
                p.std = std;
            }
            (None, None, None) if i.policy.is_some() => {}
            _ => return Err(fail("[input] needs exactly one of `range` or `mean` + `std` (std > 0), unless a policy sets them".into())),
        }
        Ok(p)
    }
}
