//! Samples from a TorchScript generator, folded into Inception statistics without keeping them.
//!
//! Generator manifest (TOML beside the TorchScript file; `forward(z [N, latent]) -> Tensor [N, 3, H, W]`):
//! ```toml
//! name = "bigbigan-fmnist-g"
//! weights = "generator.pt"
//! weights_sha256 = "…"
//! latent = 120
//! range = [-1, 1]        # output value range, mapped to pixels 0–255
//! ```
//! z ~ N(0, I) from a seeded ChaCha8 stream (truncation re-draws entries with |z| > t, as BigGAN's
//! truncation trick). Images are clamped to the range, mapped to 0–255 in f32, centre-cropped as the
//! scoring network's manifest says and resized to its input by bilinear interpolation (align_corners =
//! false), which for up-sampling equals the Pillow-kernel bilinear used for real images.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Deserialize;
use tch::{CModule, Device, Kind, Tensor};

use super::{RunningStats, Statistics};
use crate::encoder::{Batch, Encoder, FeatureBatch};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorManifest {
    pub name: String,
    pub weights: PathBuf,
    pub weights_sha256: String,
    pub latent: usize,
    pub range: [f32; 2],
    pub source: Option<String>,
    /// Verification record of an imported generator (`bbeval import-tfhub`), relative to the manifest.
    pub verification: Option<PathBuf>,
}

pub struct Generator {
    pub manifest: GeneratorManifest,
    /// The manifest file (errors name it).
    pub path: PathBuf,
    module: CModule,
    device: Device,
}

/// How to draw samples.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub samples: usize,
    pub seed: u64,
    /// Re-draw latent entries whose magnitude exceeds this.
    pub truncation: Option<f32>,
    pub batch_size: usize,
}

impl Generator {
    pub fn open(path: &Path, device: Device) -> Result<Generator> {
        let fail = |reason: String| Error::Generator { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut manifest: GeneratorManifest = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if manifest.weights.is_relative() {
            manifest.weights = dir.join(&manifest.weights);
        }
        if let Some(v) = manifest.verification.as_mut().filter(|v| v.is_relative()) {
            *v = dir.join(&*v);
        }
        if manifest.range[1].partial_cmp(&manifest.range[0]) != Some(std::cmp::Ordering::Greater) || manifest.latent == 0 {
            return Err(fail("needs latent ≥ 1 and range = [low, high] with high > low".into()));
        }
        let sha = crate::data::file_sha256(&manifest.weights)?;
        if sha != manifest.weights_sha256 {
            return Err(fail(format!("weights have sha256 {sha}, the manifest says {}; re-export or update it", manifest.weights_sha256)));
        }
        let mut module = CModule::load_on_device(&manifest.weights, device).map_err(|e| fail(e.to_string()))?;
        module.set_eval();
        Ok(Generator { manifest, path: path.to_path_buf(), module, device })
    }

    /// Latent batch `[n, latent]` drawn from `rng`.
    fn latents(&self, rng: &mut ChaCha8Rng, n: usize, truncation: Option<f32>) -> Vec<f32> {
        (0..n * self.manifest.latent)
            .map(|_| loop {
                let z: f32 = StandardNormal.sample(rng);
                if truncation.is_none_or(|t| z.abs() <= t) {
                    break z;
                }
            })
            .collect()
    }

    /// Images `[n, 3, H, W]` as pixels 0–255 (f32), on CPU.
    pub fn generate(&self, z: &[f32], n: usize) -> Result<Tensor> {
        let zt = Tensor::f_from_slice(z)?.f_view([n as i64, self.manifest.latent as i64])?.f_to_device(self.device)?;
        let x = tch::no_grad(|| self.module.forward_ts(&[zt])).map_err(|e| Error::Generator {
            path: self.path.clone(),
            reason: format!("generator forward failed for z of shape [{n}, {}] (is `latent` right?): {e}", self.manifest.latent),
        })?;
        let size = x.size();
        if size.len() != 4 || size[0] != n as i64 || size[1] != 3 {
            return Err(Error::Generator {
                path: self.path.clone(),
                reason: format!("generator returned shape {size:?}; expected [N, 3, H, W] for z of width {}", self.manifest.latent),
            });
        }
        let [lo, hi] = self.manifest.range;
        Ok(x.f_to_kind(Kind::Float)?.f_clamp(f64::from(lo), f64::from(hi))?.f_sub_scalar(f64::from(lo))?.f_mul_scalar(255.0 / f64::from(hi - lo))?.f_to_device(Device::Cpu)?)
    }

    /// Draw `sampling.samples` images batch by batch, prepare each batch for `encoder` (centre crop,
    /// bilinear resize to its input size, its mean/std) and hand the encoder's features to `sink`.
    pub fn encode_samples(
        &self,
        encoder: &mut dyn Encoder,
        sampling: &Sampling,
        mut sink: impl FnMut(&[FeatureBatch]) -> Result<()>,
    ) -> Result<()> {
        let pre = encoder.preprocess().clone();
        let size = pre.size.ok_or_else(|| Error::EncoderOutput { encoder: encoder.name().into(), reason: "needs an input size in its manifest to score generated images".into() })? as i64;
        let mean = Tensor::f_from_slice(&pre.mean)?.f_view([1, 3, 1, 1])?;
        let std = Tensor::f_from_slice(&pre.std)?.f_view([1, 3, 1, 1])?;
        let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
        let mut done = 0;
        while done < sampling.samples {
            let n = sampling.batch_size.max(1).min(sampling.samples - done);
            let z = self.latents(&mut rng, n, sampling.truncation);
            let pixels = centre_crop(self.generate(&z, n)?, pre.crop_fraction)?;
            let resized = pixels.f_upsample_bilinear2d([size, size], false, None, None)?;
            let x = resized.f_div_scalar(255.0)?.f_sub(&mean)?.f_div(&std)?.f_contiguous()?;
            let values = Vec::<f32>::try_from(&x.f_flatten(0, -1)?)?;
            sink(&encoder.encode(&Batch { pixels: values, n, shape: [3, size as usize, size as usize] })?)?;
            done += n;
        }
        Ok(())
    }

    /// Statistics of `inception`'s `avepool` over freshly drawn samples.
    pub fn statistics(&self, inception: &mut dyn Encoder, sampling: &Sampling) -> Result<Statistics> {
        let mut running: Option<RunningStats> = None;
        self.encode_samples(inception, sampling, |features| super::fold_avepool(&mut running, features))?;
        running.ok_or_else(|| Error::Statistics("no samples drawn".into()))?.finish()
    }

    /// A classifier's `logits` over freshly drawn samples, `[samples, classes]` (for IS).
    pub fn logits(&self, classifier: &mut dyn Encoder, sampling: &Sampling) -> Result<ndarray::Array2<f32>> {
        let mut rows: Vec<f32> = Vec::new();
        let mut width = 0;
        let name = classifier.name().to_string();
        self.encode_samples(classifier, sampling, |features| {
            let logits = features.iter().find(|f| f.name == "logits").ok_or_else(|| Error::EncoderOutput { encoder: name.clone(), reason: "gave no `logits`".into() })?;
            width = logits.width;
            rows.extend_from_slice(&logits.values);
            Ok(())
        })?;
        ndarray::Array2::from_shape_vec((rows.len() / width.max(1), width), rows).map_err(|e| Error::Statistics(e.to_string()))
    }
}

/// The centred square of `fraction` × the short side (the encoders' eval crop), as for real images.
fn centre_crop(x: Tensor, fraction: f64) -> Result<Tensor> {
    if fraction >= 1.0 {
        return Ok(x);
    }
    let (h, w) = (x.size()[2], x.size()[3]);
    let side = ((h.min(w) as f64) * fraction).round().max(1.0) as i64;
    Ok(x.f_narrow(2, (h - side) / 2, side)?.f_narrow(3, (w - side) / 2, side)?)
}
