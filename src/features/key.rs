//! Cache keys: what identifies one feature matrix, and the file name it lives under.
//!
//! A key holds the encoder's weights, the dataset's content, the split and subset, the rows asked for
//! (their count and a digest of their ids), the preprocessing, the feature, the forward precision and the
//! protocol version. Its sha256 prefix is in the file name; the whole key is stored inside the file, and a
//! file whose key does not hash to its name is never read as valid.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{sanitize, Dataset};
use crate::encoder::Encoder;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub encoder: String,
    // `dataset` is `kind:<folder name>`; the content itself is identified by `dataset_hash`.
    pub weights_sha256: String,
    pub dataset: String,
    pub dataset_name: String,
    pub dataset_hash: String,
    pub split: String,
    /// `(limit, seed)` of a seeded subset.
    pub subset: Option<(usize, u64)>,
    /// Images asked for (rows + skipped unreadable images).
    pub rows: usize,
    /// Digest of the sorted ids of those images ([`ids_digest`]).
    pub ids_digest: String,
    pub preprocess: String,
    pub feature: String,
    pub dtype: String,
    pub protocol_version: u32,
    pub storage: Storage,
}

/// How feature values are stored on disk; probes always compute in f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    F32,
    /// IEEE half: about 3 significant digits, range ±65504 (values beyond are an error at write time).
    F16,
}

impl Storage {
    /// Bytes per stored value.
    pub fn value_bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::F16 => 2,
        }
    }
}

/// Digest of a set of ids, independent of their order: what a key says about the rows a file must hold.
pub fn ids_digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut sorted: Vec<&str> = ids.into_iter().collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    for id in sorted {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())[..32].to_string()
}

impl CacheKey {
    /// The key of `feature` for an encoder (name, weights, preprocessing, precision) on `dataset`.
    pub fn new(encoder: &dyn Encoder, dataset: &Dataset, feature: &str, storage: Storage) -> CacheKey {
        CacheKey {
            encoder: encoder.name().to_string(),
            weights_sha256: encoder.weights_sha256().to_string(),
            // Kind and folder name, not the whole path: the same files mounted elsewhere (another node of a
            // cluster, a relative or absolute spelling) are the same content, which `dataset_hash` holds.
            dataset: format!("{}:{}", dataset.spec.kind.name(), dataset.spec.name()),
            dataset_name: dataset.spec.name(),
            dataset_hash: dataset.content_hash.clone(),
            split: dataset.split.clone(),
            subset: dataset.subset,
            rows: dataset.len(),
            ids_digest: ids_digest(dataset.samples.iter().map(|s| s.id.as_str())),
            preprocess: encoder.preprocess().describe(),
            feature: feature.to_string(),
            dtype: encoder.dtype().to_string(),
            protocol_version: crate::protocol::PROTOCOL_VERSION,
            storage,
        }
    }

    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))[..16].to_string()
    }

    /// `<encoder>__<dataset>__<split>__<feature>__<digest>.parquet`
    pub fn file_name(&self) -> String {
        format!("{}.parquet", self.stem())
    }

    fn stem(&self) -> String {
        format!("{}__{}__{}__{}__{}", sanitize(&self.encoder), sanitize(&self.dataset_name), sanitize(&self.split), sanitize(&self.feature), self.digest())
    }

    /// This key for another feature of the same extraction.
    pub fn with_feature(&self, feature: &str) -> CacheKey {
        CacheKey { feature: feature.to_string(), ..self.clone() }
    }

    /// The folder of an extraction's parts: one per (encoder, dataset split, storage), all features.
    pub fn parts_dir_name(&self) -> String {
        self.with_feature("*").stem().replace("__*__", "__parts__")
    }
}
