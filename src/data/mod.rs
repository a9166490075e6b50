//! Datasets: which samples a split holds, with labels and a content hash; seeded subsets; decoding and
//! resizing of images.
//!
//! A dataset is named by a spec `kind:path`; the kinds are the entries of [`KINDS`] (ImageNet folders,
//! class-per-folder sets, IDX files, foolbox-style sample folders), whose `help` texts describe the layouts.

mod content;
mod folders;
mod idx;
pub mod preprocess;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::protocol::{TRAIN_VAL_FRACTION, TRAIN_VAL_IMAGENET};
use crate::suggest::did_you_mean;

pub use content::HashOptions;
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

/// What opening one split of a dataset found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub samples: Vec<Sample>,
    pub num_classes: usize,
    /// sha256 over what identifies the content, hex.
    pub content_hash: String,
    /// Things the user should hear about (entries that are not images, empty classes, …).
    pub notes: Vec<String>,
}

/// One dataset kind: how a `kind:path` spec of it is opened. [`KINDS`] is the registry that parsing,
/// display, the CLI help and the raw-pixel encoder all read; adding a kind is one entry here plus its
/// opener.
#[derive(Debug)]
pub struct KindInfo {
    pub name: &'static str,
    /// The layout, for the CLI help and error messages.
    pub help: &'static str,
    /// Channels of the raw images (the raw-pixel encoder keeps them).
    pub channels: u8,
    open: fn(&Path, &str, &HashOptions) -> Result<Listing>,
    /// Train images held out for model selection by default, given the train size.
    default_train_val: fn(usize) -> usize,
}

fn fraction_train_val(n_train: usize) -> usize {
    ((n_train as f64) * TRAIN_VAL_FRACTION).round() as usize
}

pub static KINDS: &[KindInfo] = &[
    KindInfo {
        name: "imagenet",
        help: "ROOT/train/<wnid>/*.JPEG, and ROOT/val/<wnid>/ or a flat ROOT/val/ with ROOT/val_labels.txt",
        channels: 3,
        open: folders::open_imagenet,
        default_train_val: |n| TRAIN_VAL_IMAGENET.min(n / 2),
    },
    KindInfo { name: "folder", help: "ROOT/<split>/<class>/* (class-per-folder image sets)", channels: 3, open: folders::open_class_folders, default_train_val: fraction_train_val },
    KindInfo { name: "idx", help: "MNIST/Fashion-MNIST IDX files in DIR (`.gz` or not; val = t10k)", channels: 1, open: idx::open, default_train_val: fraction_train_val },
    KindInfo { name: "samples", help: "foolbox-style DIR of images named *_<label>.<ext>; one split, `val`", channels: 3, open: folders::open_samples, default_train_val: fraction_train_val },
];

/// A dataset kind: an entry of [`KINDS`]. Serialised as its name.
#[derive(Clone, Copy)]
pub struct DatasetKind(&'static KindInfo);

impl DatasetKind {
    pub fn by_name(name: &str) -> Result<DatasetKind> {
        KINDS.iter().find(|k| k.name == name).map(DatasetKind).ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            Error::Unknown { kind: "dataset kind", name: name.into(), suggestion: did_you_mean(name, &known), known: known.join(", ") }
        })
    }
    pub fn info(&self) -> &'static KindInfo {
        self.0
    }
    pub fn name(&self) -> &'static str {
        self.0.name
    }
    pub fn channels(&self) -> u8 {
        self.0.channels
    }
}

impl PartialEq for DatasetKind {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for DatasetKind {}

impl std::fmt::Debug for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Serialize for DatasetKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for DatasetKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        DatasetKind::by_name(&name).map_err(serde::de::Error::custom)
    }
}

/// The `--dataset` help text, from the registry: one line per kind.
pub fn kinds_help() -> String {
    let lines: Vec<String> = KINDS.iter().map(|k| format!("`{}:PATH`: {}", k.name, k.help)).collect();
    format!("`kind:path`; kinds: {}", lines.join("; "))
}

/// `kind:path`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub kind: DatasetKind,
    pub path: PathBuf,
}

impl DatasetSpec {
    pub fn parse(spec: &str) -> Result<DatasetSpec> {
        let (kind, path) = spec.split_once(':').ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            Error::Dataset { path: spec.into(), reason: format!("a dataset is `kind:path` with kind one of {}", known.join(", ")) }
        })?;
        Ok(DatasetSpec { kind: DatasetKind::by_name(kind)?, path: PathBuf::from(path) })
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
        (self.kind.0.default_train_val)(n_train)
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.path.display())
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
    /// What opening it found worth telling (see [`Listing::notes`]).
    pub notes: Vec<String>,
}

impl Dataset {
    /// List a split and identify its content (image folders: file digests, see [`HashOptions`]).
    pub fn open(spec: &DatasetSpec, split: &str, hashing: &HashOptions) -> Result<Dataset> {
        let Listing { samples, num_classes, content_hash, notes } = (spec.kind.0.open)(&spec.path, split, hashing)?;
        if samples.is_empty() {
            return Err(Error::Dataset { path: spec.path.clone(), reason: format!("split `{split}` holds no images") });
        }
        Ok(Dataset { spec: spec.clone(), split: split.to_string(), samples, num_classes, content_hash, subset: None, notes })
    }

    /// A seeded subset of at most `limit` samples, in the original order.
    pub fn subset(mut self, limit: Option<usize>, seed: u64) -> Dataset {
        if let Some(limit) = limit {
            if limit < self.samples.len() {
                let keep = crate::seeded::subset(self.samples.len(), limit, seed);
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

/// sha256 over `id \t label \t content digest` lines: a changed, added, removed or relabelled file changes
/// it.
pub(crate) fn content_hash(items: &[(String, u32, String)]) -> String {
    let mut h = Sha256::new();
    for (id, label, digest) in items {
        h.update(format!("{id}\t{label}\t{digest}\n").as_bytes());
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
