//! Encoders: one [`Encoder`] trait over TorchScript models (with a TOML manifest) and raw pixels.
//!
//! An encoder knows tensors, never files: it is handed batches of preprocessed pixels and returns named
//! feature matrices. Always in eval mode, without gradients, on the execution context's device.

pub mod manifest;
mod raw;
mod torchscript;

use crate::context::ExecutionContext;
use crate::data::Preprocess;
use crate::error::Result;

pub use crate::context::Precision;
pub use manifest::Manifest;
pub use raw::RawPixels;
pub use torchscript::TorchScriptEncoder;

/// A batch of preprocessed images, `n × c × h × w` values in row-major order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub pixels: Vec<f32>,
    pub n: usize,
    pub shape: [usize; 3],
}

/// One named feature for a batch: `n × width` values in row-major order.
#[derive(Debug, Clone)]
pub struct FeatureBatch {
    pub name: String,
    pub width: usize,
    pub values: Vec<f32>,
}

pub trait Encoder: Send {
    /// Name used in cache file names and tables.
    fn name(&self) -> &str;
    /// The "Architecture" column.
    fn architecture(&self) -> &str;
    /// sha256 of the weights (part of every cache key).
    fn weights_sha256(&self) -> &str;
    /// How images must be prepared for this encoder.
    fn preprocess(&self) -> &Preprocess;
    /// Feature names this encoder outputs.
    fn outputs(&self) -> Vec<String>;
    /// The width the encoder declares for `feature`, if it declares one (checked against cached files).
    fn declared_width(&self, _feature: &str) -> Option<usize> {
        None
    }
    /// Numeric precision the features are computed in (part of the cache key).
    fn dtype(&self) -> &str {
        "f32"
    }
    fn encode(&mut self, batch: &Batch) -> Result<Vec<FeatureBatch>>;
}

/// `raw` (native size), `raw:<size>` (resized square), or the path of a manifest TOML, run in `ctx`.
/// `channels` is the dataset's (its kind's `channels`): raw pixels keep them.
pub fn open(spec: &str, channels: u8, ctx: &ExecutionContext) -> Result<Box<dyn Encoder>> {
    if spec == "raw" || spec.starts_with("raw:") {
        return Ok(Box::new(RawPixels::from_spec(spec, channels)?));
    }
    Ok(Box::new(TorchScriptEncoder::open(std::path::Path::new(spec), ctx)?))
}
