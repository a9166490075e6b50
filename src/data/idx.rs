//! IDX files (MNIST, Fashion-MNIST): `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]` for
//! train, `t10k-*` for val.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Listing, Sample, Source};
use crate::error::{Error, IoContext, Result};

/// 8-bit gray images held in memory (Fashion-MNIST train is 47 MB).
#[derive(Debug)]
pub struct IdxImages {
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[index * n..(index + 1) * n]
    }
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for candidate in [dir.join(format!("{stem}.gz")), dir.join(stem)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::Dataset {
        path: dir.join(stem),
        reason: "IDX file not found (with or without .gz); point `idx:` at the folder holding it (`make setup` installs Fashion-MNIST in assets/fashion-mnist)".into(),
    })
}

/// The file's bytes, gunzipped if they start with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).at(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Dataset { path: path.into(), reason: format!("corrupt gzip: {e}; re-run `make setup`") })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse an IDX header: returns the dimensions and the payload.
fn parse(path: &Path, bytes: &[u8], want_dims: usize) -> Result<(Vec<usize>, usize)> {
    let bad = |reason: String| Error::Dataset { path: path.into(), reason };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("not an unsigned-byte IDX file (bad magic number)".into()));
    }
    let dims = bytes[3] as usize;
    if dims != want_dims {
        return Err(bad(format!("expected {want_dims} dimensions, the header says {dims}")));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let expected = shape.iter().product::<usize>();
    if bytes.len() - header != expected {
        return Err(bad(format!("payload is {} bytes, the header promises {expected}; the file is truncated", bytes.len() - header)));
    }
    Ok((shape, header))
}

pub(super) fn open(dir: &Path, split: &str, _hashing: &super::HashOptions) -> Result<Listing> {
    let prefix = match split {
        "train" => "train",
        "val" | "test" => "t10k",
        other => {
            return Err(Error::Dataset { path: dir.into(), reason: format!("IDX sets have splits `train` and `val`, not `{other}`") })
        }
    };
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let image_bytes = read_maybe_gz(&images_path)?;
    let label_bytes = read_maybe_gz(&labels_path)?;
    let (shape, offset) = parse(&images_path, &image_bytes, 3)?;
    let (lshape, loffset) = parse(&labels_path, &label_bytes, 1)?;
    if lshape[0] != shape[0] {
        return Err(Error::Dataset {
            path: labels_path,
            reason: format!("{} labels for {} images in {}", lshape[0], shape[0], images_path.display()),
        });
    }
    let labels = &label_bytes[loffset..];
    let num_classes = labels.iter().copied().max().map(|m| m as usize + 1).unwrap_or(0);
    let mut h = Sha256::new();
    h.update(&image_bytes);
    h.update(&label_bytes);
    let hash = hex::encode(h.finalize());
    let images = Arc::new(IdxImages { rows: shape[1], cols: shape[2], pixels: image_bytes[offset..].to_vec() });
    let samples = labels
        .iter()
        .enumerate()
        .map(|(index, &label)| Sample {
            id: format!("{prefix}:{index}"),
            label: label as u32,
            source: Source::Gray { images: images.clone(), index },
        })
        .collect();
    Ok(Listing { samples, num_classes, content_hash: hash, notes: Vec::new() })
}
