//! Datasets: which samples a split holds, with labels and a content hash; seeded subsets and the train-val
//! split; decoding and resizing of images.
//!
//! A dataset is named by a spec `kind:path`:
//! * `imagenet:ROOT` — `ROOT/train/<wnid>/*.JPEG`, and `ROOT/val/<wnid>/*.JPEG` or a flat `ROOT/val/` with
//!   `ROOT/val_labels.txt` (lines `<file name> <wnid or class index>`); classes are the sorted wnids.
//! * `folder:ROOT` — class-per-folder image sets, `ROOT/<split>/<class>/*`.
//! * `idx:DIR` — IDX files (MNIST, Fashion-MNIST): `train-*` for train, `t10k-*` for val, `.gz` or not.
//! * `samples:DIR` — foolbox-style sample folders: every image, label = last number of the file name;
//!   the one split is called `val`.

mod folders;
mod idx;
pub mod preprocess;
pub mod split;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::suggest::did_you_mean;

pub use idx::IdxImages;
pub use preprocess::{Filter, Preprocess};

/// Where a sample's pixels come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An image file, decoded on demand.
    File(PathBuf),
    /// Record `index` of an in-memory 8-bit gray IDX array.
    Gray { images: Arc<IdxImages>, index: usize },
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// Stable identifier: the path relative to the dataset root, or `split:record` for IDX files.
    pub id: String,
    pub label: u32,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Imagenet,
    Folder,
    Idx,
    Samples,
}

const KINDS: [&str; 4] = ["imagenet", "folder", "idx", "samples"];

/// `kind:path`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub kind: DatasetKind,
    pub path: PathBuf,
}

impl DatasetSpec {
    pub fn parse(spec: &str) -> Result<DatasetSpec> {
        let (kind, path) = spec.split_once(':').ok_or_else(|| Error::Dataset {
            path: spec.into(),
            reason: format!("a dataset is `kind:path` with kind one of {}", KINDS.join(", ")),
        })?;
        let kind = match kind {
            "imagenet" => DatasetKind::Imagenet,
            "folder" => DatasetKind::Folder,
            "idx" => DatasetKind::Idx,
            "samples" => DatasetKind::Samples,
            other => {
                return Err(Error::Unknown {
                    kind: "dataset kind",
                    name: other.into(),
                    suggestion: did_you_mean(other, &KINDS),
                    known: KINDS.join(", "),
                })
            }
        };
        Ok(DatasetSpec { kind, path: PathBuf::from(path) })
    }

    /// `kind:path@split`, the split defaulting to `default_split` (used by `bbeval fid` and `bbeval is`).
    pub fn parse_with_split(arg: &str, default_split: &str) -> Result<(DatasetSpec, String)> {
        match arg.rsplit_once('@') {
            Some((spec, split)) if !split.contains('/') => Ok((DatasetSpec::parse(spec)?, split.to_string())),
            _ => Ok((DatasetSpec::parse(arg)?, default_split.to_string())),
        }
    }

    /// Short readable name for file names and tables: the last path component.
    pub fn name(&self) -> String {
        let base = self.path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
        sanitize(&base)
    }

    /// Default number of train images held out for model selection.
    pub fn default_train_val(&self, n_train: usize) -> usize {
        match self.kind {
            DatasetKind::Imagenet => crate::config::TRAIN_VAL_IMAGENET.min(n_train / 2),
            _ => ((n_train as f64) * crate::config::TRAIN_VAL_FRACTION).round() as usize,
        }
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", KINDS[self.kind as usize], self.path.display())
    }
}

/// Keep names usable in file names: ASCII alphanumerics, `-`, `_` and `.`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// One split of a dataset, possibly a seeded subset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub spec: DatasetSpec,
    pub split: String,
    pub samples: Vec<Sample>,
    pub num_classes: usize,
    /// sha256 over what identifies the content (see `content_hash`), hex.
    pub content_hash: String,
    /// `Some((limit, seed))` when this is a subset.
    pub subset: Option<(usize, u64)>,
}

impl Dataset {
    /// List a split. ImageNet-size folders are listed, never read, here.
    pub fn open(spec: &DatasetSpec, split: &str) -> Result<Dataset> {
        let (samples, num_classes, content_hash) = match spec.kind {
            DatasetKind::Idx => idx::open(&spec.path, split)?,
            DatasetKind::Imagenet => folders::open_imagenet(&spec.path, split)?,
            DatasetKind::Folder => folders::open_class_folders(&spec.path, split)?,
            DatasetKind::Samples => folders::open_samples(&spec.path, split)?,
        };
        if samples.is_empty() {
            return Err(Error::Dataset { path: spec.path.clone(), reason: format!("split `{split}` holds no images") });
        }
        Ok(Dataset { spec: spec.clone(), split: split.to_string(), samples, num_classes, content_hash, subset: None })
    }

    /// A seeded subset of at most `limit` samples, in the original order.
    pub fn subset(mut self, limit: Option<usize>, seed: u64) -> Dataset {
        if let Some(limit) = limit {
            if limit < self.samples.len() {
                let keep = split::subset(self.samples.len(), limit, seed);
                let mut samples = Vec::with_capacity(keep.len());
                for i in keep {
                    samples.push(self.samples[i].clone());
                }
                self.samples = samples;
                self.subset = Some((limit, seed));
            }
        }
        self
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn labels(&self) -> Vec<u32> {
        self.samples.iter().map(|s| s.label).collect()
    }

    /// Readable identity for tables and cache keys.
    pub fn describe(&self) -> String {
        match self.subset {
            Some((limit, seed)) => format!("{} [{}, subset {} seed {}]", self.spec, self.split, limit, seed),
            None => format!("{} [{}]", self.spec, self.split),
        }
    }
}

/// sha256 over `id \t label \t size` lines: what identifies a listed file set without reading every byte
/// of an ImageNet-size folder. A changed, added, removed or relabelled file changes it.
pub(crate) fn content_hash(items: &[(String, u32, u64)]) -> String {
    let mut h = Sha256::new();
    for (id, label, size) in items {
        h.update(format!("{id}\t{label}\t{size}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn file_sha256(path: &Path) -> Result<String> {
    use crate::error::IoContext;
    let mut f = std::fs::File::open(path).at(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).at(path)?;
    Ok(hex::encode(h.finalize()))
}
