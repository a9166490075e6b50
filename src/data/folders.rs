//! Image folders: ImageNet layout, class-per-folder sets and foolbox-style sample folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{content_hash, Sample, Source};
use crate::error::{Error, IoContext, Result};

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        entries.push(entry.at(dir)?.path());
    }
    entries.sort();
    Ok(entries)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()).collect())
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?.into_iter().filter(|p| p.is_file() && is_image(p)).collect())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Build samples, recording (id, label, size) for the content hash.
fn finish(root: &Path, files: Vec<(PathBuf, u32)>, num_classes: usize) -> Result<(Vec<Sample>, usize, String)> {
    let mut items = Vec::with_capacity(files.len());
    let mut samples = Vec::with_capacity(files.len());
    for (path, label) in files {
        let size = std::fs::metadata(&path).at(&path)?.len();
        let id = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        items.push((id.clone(), label, size));
        samples.push(Sample { id, label, source: Source::File(path) });
    }
    Ok((samples, num_classes, content_hash(&items)))
}

fn class_folders(split_dir: &Path, classes: &[String]) -> Result<Vec<(PathBuf, u32)>> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = split_dir.join(class);
        if dir.is_dir() {
            files.extend(images_in(&dir)?.into_iter().map(|p| (p, label as u32)));
        }
    }
    Ok(files)
}

fn class_names(dir: &Path) -> Result<Vec<String>> {
    Ok(subdirs(dir)?.iter().map(|p| file_name(p)).collect())
}

/// `ROOT/<split>/<class>/*`; classes are the sorted folder names of `ROOT/train` (or of the split itself).
pub(super) fn open_class_folders(root: &Path, split: &str) -> Result<(Vec<Sample>, usize, String)> {
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Err(Error::Dataset { path: split_dir, reason: "no such split folder; expected ROOT/<split>/<class>/*".into() });
    }
    let train_dir = root.join("train");
    let classes = class_names(if train_dir.is_dir() { &train_dir } else { &split_dir })?;
    let files = class_folders(&split_dir, &classes)?;
    finish(root, files, classes.len())
}

/// ImageNet: `train/<wnid>/*`, and `val/<wnid>/*` or a flat `val/` with `val_labels.txt`.
pub(super) fn open_imagenet(root: &Path, split: &str) -> Result<(Vec<Sample>, usize, String)> {
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        return Err(Error::Dataset { path: train_dir, reason: "ImageNet layout needs ROOT/train/<wnid>/ (the class list comes from it)".into() });
    }
    let classes = class_names(&train_dir)?;
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Err(Error::Dataset { path: split_dir, reason: "no such split folder".into() });
    }
    let label_file = root.join(format!("{split}_labels.txt"));
    let files = if subdirs(&split_dir)?.is_empty() && label_file.is_file() {
        flat_with_labels(&split_dir, &label_file, &classes)?
    } else {
        class_folders(&split_dir, &classes)?
    };
    finish(root, files, classes.len())
}

/// A flat folder with a label file of lines `<file name> <wnid or class index>`.
fn flat_with_labels(dir: &Path, label_file: &Path, classes: &[String]) -> Result<Vec<(PathBuf, u32)>> {
    let by_wnid: HashMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    let text = std::fs::read_to_string(label_file).at(label_file)?;
    let mut files = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| Error::Dataset { path: label_file.into(), reason: format!("line {}: {reason}", n + 1) };
        let (name, label) = line.split_once(char::is_whitespace).ok_or_else(|| bad("expected `<file name> <label>`"))?;
        let label = label.trim();
        let label = match by_wnid.get(label) {
            Some(&l) => l,
            None => label.parse::<u32>().ok().filter(|&l| (l as usize) < classes.len()).ok_or_else(|| {
                bad(&format!("label `{label}` is neither a train wnid nor a class index below {}", classes.len()))
            })?,
        };
        let path = dir.join(name);
        if !path.is_file() {
            return Err(bad(&format!("{} does not exist", path.display())));
        }
        files.push((path, label));
    }
    Ok(files)
}

/// foolbox-style samples: `<anything>_<label>.<ext>`; the one split is `val`.
pub(super) fn open_samples(root: &Path, split: &str) -> Result<(Vec<Sample>, usize, String)> {
    if split != "val" {
        return Err(Error::Dataset { path: root.into(), reason: format!("a sample folder has one split, `val`, not `{split}`") });
    }
    let mut files = Vec::new();
    for path in images_in(root)? {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let label = stem
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|digits| digits.parse::<u32>().ok())
            .ok_or_else(|| Error::Dataset { path: path.clone(), reason: "file name does not end in a label number (`name_<label>.jpg`)".into() })?;
        files.push((path, label));
    }
    let num_classes = files.iter().map(|(_, l)| *l as usize + 1).max().unwrap_or(0);
    finish(root, files, num_classes)
}
