//! Raw pixels as features: the baseline rows of a Table-2 style report.

use super::{Batch, Encoder, FeatureBatch};
use crate::data::Preprocess;
use crate::error::{Error, Result};

pub struct RawPixels {
    preprocess: Preprocess,
    name: String,
}

impl RawPixels {
    /// `raw` keeps the native size and the dataset's `channels` (1 for IDX sets, 3 otherwise);
    /// `raw:<size>` resizes the whole image (no crop) to a square of that side, bicubic.
    pub fn from_spec(spec: &str, channels: u8) -> Result<RawPixels> {
        let mut preprocess = Preprocess::native(channels);
        if let Some(size) = spec.strip_prefix("raw:") {
            let size: u32 = size.parse().ok().filter(|&s| s > 0).ok_or_else(|| Error::Unknown {
                kind: "encoder",
                name: spec.into(),
                suggestion: String::new(),
                known: "raw, raw:<size>, or the path of a manifest .toml".into(),
            })?;
            preprocess.size = Some(size);
        }
        Ok(RawPixels { preprocess, name: spec.replace(':', "") })
    }
}

impl Encoder for RawPixels {
    fn name(&self) -> &str {
        &self.name
    }
    fn architecture(&self) -> &str {
        "—"
    }
    fn weights_sha256(&self) -> &str {
        "none"
    }
    fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }
    fn outputs(&self) -> Vec<String> {
        vec!["pixels".into()]
    }
    fn encode(&mut self, batch: &Batch) -> Result<Vec<FeatureBatch>> {
        let width = batch.shape.iter().product();
        Ok(vec![FeatureBatch { name: "pixels".into(), width, values: batch.pixels.clone() }])
    }
}
