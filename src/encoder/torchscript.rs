//! A TorchScript encoder: `forward(x) -> Dict[str, Tensor]` (or a tuple / side-by-side tensor named by the
//! manifest's `output_order`), run on the execution context's device and precision.

use std::path::{Path, PathBuf};

use tch::{CModule, Device, IValue, Kind, Tensor};

use super::{Batch, Encoder, FeatureBatch, Manifest};
use crate::context::{ExecutionContext, Precision};
use crate::data::Preprocess;
use crate::error::{Error, Result};

pub struct TorchScriptEncoder {
    manifest: Manifest,
    manifest_path: PathBuf,
    preprocess: Preprocess,
    module: CModule,
    device: Device,
    precision: Precision,
}

impl TorchScriptEncoder {
    pub fn open(manifest_path: &Path, ctx: &ExecutionContext) -> Result<TorchScriptEncoder> {
        let (device, precision) = (ctx.device, ctx.precision);
        let manifest = Manifest::load(manifest_path)?;
        let preprocess = manifest.preprocess(manifest_path)?;
        let fail = |reason: String| Error::Manifest { path: manifest_path.into(), reason };
        let sha = crate::data::file_sha256(&manifest.weights)?;
        if sha != manifest.weights_sha256 {
            return Err(fail(format!(
                "weights {} have sha256 {sha}, the manifest says {}; re-export the model or update weights_sha256",
                manifest.weights.display(),
                manifest.weights_sha256
            )));
        }
        let mut module = CModule::load_on_device(&manifest.weights, device)
            .map_err(|e| fail(format!("cannot load TorchScript {}: {e}", manifest.weights.display())))?;
        module.set_eval();
        if precision != Precision::F32 {
            module.to(device, precision.kind(), false);
        }
        Ok(TorchScriptEncoder { manifest, manifest_path: manifest_path.into(), preprocess, module, device, precision })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn fail(&self, reason: String) -> Error {
        Error::Manifest { path: self.manifest_path.clone(), reason }
    }
}

/// Copy a float tensor of shape [n, d] to a CPU f32 vector.
fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    let t = t.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_contiguous()?.f_flatten(0, -1)?;
    Ok(Vec::<f32>::try_from(&t)?)
}

impl Encoder for TorchScriptEncoder {
    fn name(&self) -> &str {
        &self.manifest.name
    }
    fn architecture(&self) -> &str {
        self.manifest.architecture.as_deref().unwrap_or(&self.manifest.name)
    }
    fn weights_sha256(&self) -> &str {
        &self.manifest.weights_sha256
    }
    fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }
    fn outputs(&self) -> Vec<String> {
        self.manifest.outputs.keys().cloned().collect()
    }
    fn dtype(&self) -> &str {
        self.precision.as_str()
    }
    fn declared_width(&self, feature: &str) -> Option<usize> {
        self.manifest.outputs.get(feature).copied()
    }

    fn encode(&mut self, batch: &Batch) -> Result<Vec<FeatureBatch>> {
        let [c, h, w] = batch.shape;
        let x = Tensor::f_from_slice(&batch.pixels)?
            .f_view([batch.n as i64, c as i64, h as i64, w as i64])?
            .f_to_device(self.device)?
            .f_to_kind(self.precision.kind())?;
        let out = tch::no_grad(|| self.module.forward_is(&[IValue::Tensor(x)]))?;
        let mut found = std::collections::BTreeMap::new();
        match out {
            IValue::GenericDict(pairs) => {
                for (k, v) in pairs {
                    if let (IValue::String(name), IValue::Tensor(t)) = (k, v) {
                        found.insert(name, t);
                    }
                }
            }
            // A bare tensor is accepted when the manifest declares exactly one output (e.g. the FID Inception).
            IValue::Tensor(t) if self.manifest.outputs.len() == 1 => {
                if let Some(name) = self.manifest.outputs.keys().next() {
                    found.insert(name.clone(), t);
                }
            }
            IValue::Tensor(t) if self.manifest.output_order.is_some() => {
                let mut start = 0i64;
                for name in self.manifest.output_order.iter().flatten() {
                    let width = self.manifest.outputs.get(name).copied().unwrap_or(0) as i64;
                    let total = t.size().get(1).copied().unwrap_or(0);
                    if start + width > total {
                        return Err(self.fail(format!("the model returns {total} columns, fewer than [outputs] declares for output_order; fix [outputs]")));
                    }
                    found.insert(name.clone(), t.f_narrow(1, start, width)?.f_contiguous()?);
                    start += width;
                }
            }
            IValue::Tuple(items) if self.manifest.output_order.as_ref().is_some_and(|o| o.len() == items.len()) => {
                for (name, item) in self.manifest.output_order.iter().flatten().zip(items) {
                    if let IValue::Tensor(t) = item {
                        found.insert(name.clone(), t);
                    }
                }
            }
            _ => {
                return Err(self.fail(
                    "the model must return Dict[str, Tensor], or a tuple named by `output_order` in the manifest (see README, \"Encoder manifest\")".into(),
                ))
            }
        }
        let mut features = Vec::with_capacity(self.manifest.outputs.len());
        for (name, &width) in &self.manifest.outputs {
            let t = found.get(name).ok_or_else(|| {
                let have: Vec<&String> = found.keys().collect();
                self.fail(format!("the manifest declares output `{name}`, the model returns {have:?}; fix [outputs]"))
            })?;
            let size = t.size();
            if size != [batch.n as i64, width as i64] {
                return Err(self.fail(format!("output `{name}` has shape {size:?}, the manifest declares [N, {width}]; fix [outputs]")));
            }
            features.push(FeatureBatch { name: name.clone(), width, values: to_vec(t)? });
        }
        Ok(features)
    }
}
