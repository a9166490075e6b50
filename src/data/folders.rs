//! Image folders: ImageNet layout, class-per-folder sets and foolbox-style sample folders.
//!
//! Labels and splits that cannot be right are errors, never silently dropped images: a val class that
//! train lacks, a flat val folder without its label file (or with one in the wrong place), images the label
//! file does not list, duplicate label lines. Entries that are not images are left out and reported.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::content::{file_digests, HashOptions};
use super::{content_hash, Listing, Sample, Source};
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

fn file_name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Images of one folder, and what else it holds (other files, subfolders) for the notes.
struct Folder {
    images: Vec<PathBuf>,
    others: Vec<PathBuf>,
}

fn read_folder(dir: &Path) -> Result<Folder> {
    let (images, others) = sorted_entries(dir)?.into_iter().partition(|p| p.is_file() && is_image(p));
    Ok(Folder { images, others })
}

/// Collects the notes of a listing: non-image entries, empty classes.
#[derive(Default)]
struct Notes {
    skipped: Vec<PathBuf>,
    notes: Vec<String>,
}

impl Notes {
    fn finish(mut self, root: &Path) -> Vec<String> {
        if let Some(first) = self.skipped.first() {
            let first = first.strip_prefix(root).unwrap_or(first).display().to_string();
            self.notes.push(format!("{} entr{} not an image ({}) left out of {}, first: {first}", self.skipped.len(), if self.skipped.len() == 1 { "y is" } else { "ies are" }, IMAGE_EXTENSIONS.join("/"), root.display()));
        }
        self.notes
    }
}

/// Build samples with ids relative to `root` and the content hash over (id, label, content digest).
fn finish(root: &Path, files: Vec<(PathBuf, u32)>, num_classes: usize, notes: Vec<String>, hashing: &HashOptions) -> Result<Listing> {
    let ids: Vec<(String, PathBuf)> = files.iter().map(|(p, _)| (p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned(), p.clone())).collect();
    let digests = file_digests(root, &ids, hashing)?;
    let items: Vec<(String, u32, String)> = ids.iter().zip(&files).zip(digests).map(|(((id, _), (_, label)), d)| (id.clone(), *label, d)).collect();
    let samples = ids.into_iter().zip(files).map(|((id, path), (_, label))| Sample { id, label, source: Source::File(path) }).collect();
    Ok(Listing { samples, num_classes, content_hash: content_hash(&items), notes })
}

/// Images of the class folders of `split_dir`, labelled by their index in `classes`. A class folder that
/// is not in `classes` is an error (its images would otherwise vanish without a word).
fn class_folders(split_dir: &Path, classes: &[String], notes: &mut Notes) -> Result<Vec<(PathBuf, u32)>> {
    let known: HashSet<&str> = classes.iter().map(String::as_str).collect();
    for dir in subdirs(split_dir)? {
        let name = file_name(&dir);
        if !known.contains(name.as_str()) {
            return Err(Error::Labels {
                path: dir,
                reason: format!("class `{name}` is not a class of train ({} classes); its images cannot be labelled — remove the folder or add the class to train", classes.len()),
            });
        }
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = split_dir.join(class);
        if !dir.is_dir() {
            continue;
        }
        let folder = read_folder(&dir)?;
        notes.skipped.extend(folder.others);
        files.extend(folder.images.into_iter().map(|p| (p, label as u32)));
    }
    let stray = read_folder(split_dir)?;
    notes.skipped.extend(stray.images.into_iter().chain(stray.others.into_iter().filter(|p| p.is_file())));
    Ok(files)
}

/// Class names of a train folder; empty class folders are noted.
fn class_names(dir: &Path, notes: &mut Notes) -> Result<Vec<String>> {
    let dirs = subdirs(dir)?;
    let empty: Vec<String> = dirs.iter().filter(|d| read_folder(d).map(|f| f.images.is_empty()).unwrap_or(false)).map(|d| file_name(d)).collect();
    if !empty.is_empty() {
        notes.notes.push(format!("{} class folder(s) of {} hold no images (first: {}); their classes cannot be learnt", empty.len(), dir.display(), empty[0]));
    }
    Ok(dirs.iter().map(|p| file_name(p)).collect())
}

/// `ROOT/<split>/<class>/*`; classes are the sorted folder names of `ROOT/train` (or of the split itself).
pub(super) fn open_class_folders(root: &Path, split: &str, hashing: &HashOptions) -> Result<Listing> {
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Err(Error::Dataset { path: split_dir, reason: "no such split folder; expected ROOT/<split>/<class>/*".into() });
    }
    let mut notes = Notes::default();
    let train_dir = root.join("train");
    let classes = class_names(if train_dir.is_dir() { &train_dir } else { &split_dir }, &mut notes)?;
    let files = class_folders(&split_dir, &classes, &mut notes)?;
    finish(root, files, classes.len(), notes.finish(root), hashing)
}

/// Label files bbeval does not read, which a user may expect it to.
const FOREIGN_LABEL_FILES: [&str; 3] = ["LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt", "val.txt"];

/// ImageNet: `train/<wnid>/*`, and `val/<wnid>/*` or a flat `val/` with `val_labels.txt`.
pub(super) fn open_imagenet(root: &Path, split: &str, hashing: &HashOptions) -> Result<Listing> {
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        return Err(Error::Dataset { path: train_dir, reason: "ImageNet layout needs ROOT/train/<wnid>/ (the class list comes from it)".into() });
    }
    let mut notes = Notes::default();
    let classes = class_names(&train_dir, &mut notes)?;
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Err(Error::Dataset { path: split_dir, reason: "no such split folder".into() });
    }
    let label_file = root.join(format!("{split}_labels.txt"));
    let flat = subdirs(&split_dir)?.is_empty();
    let files = if flat {
        if !label_file.is_file() {
            return Err(missing_label_file(root, &split_dir, &label_file));
        }
        flat_with_labels(&split_dir, &label_file, &classes, &mut notes)?
    } else {
        if label_file.is_file() {
            notes.notes.push(format!("{} is not used: {} has class folders, which give the labels", label_file.display(), split_dir.display()));
        }
        class_folders(&split_dir, &classes, &mut notes)?
    };
    finish(root, files, classes.len(), notes.finish(root), hashing)
}

/// The error for a flat split folder without `<split>_labels.txt`, pointing at a label file in the wrong
/// place or of another format when there is one.
fn missing_label_file(root: &Path, split_dir: &Path, expected: &Path) -> Error {
    let name = file_name(expected);
    let misplaced = [split_dir.join(&name)].into_iter().chain(FOREIGN_LABEL_FILES.iter().flat_map(|f| [root.join(f), split_dir.join(f)])).find(|p| p.is_file());
    let hint = match misplaced {
        Some(p) if file_name(&p) == name => format!("; found {} — move it to {}", p.display(), expected.display()),
        Some(p) => format!("; {} is not read: convert it to lines `<file name> <wnid or class index>` in {}", p.display(), expected.display()),
        None => format!("; write lines `<file name> <wnid or class index>` to {}, or sort the images into class folders", expected.display()),
    };
    Error::Labels { path: split_dir.into(), reason: format!("a flat split folder needs its labels in {}{hint}", expected.display()) }
}

/// A flat folder with a label file of lines `<file name> <wnid or class index>`. Every image must be
/// listed once, and every line must name an existing image.
fn flat_with_labels(dir: &Path, label_file: &Path, classes: &[String], notes: &mut Notes) -> Result<Vec<(PathBuf, u32)>> {
    let by_wnid: HashMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    let text = std::fs::read_to_string(label_file).at(label_file)?;
    let mut files = Vec::new();
    let mut listed: HashMap<String, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| Error::Labels { path: label_file.into(), reason: format!("line {}: {reason}", n + 1) };
        let (name, label) = line.split_once(char::is_whitespace).ok_or_else(|| bad("expected `<file name> <label>`"))?;
        let label = label.trim();
        let label = match by_wnid.get(label) {
            Some(&l) => l,
            None => label.parse::<u32>().ok().filter(|&l| (l as usize) < classes.len()).ok_or_else(|| {
                bad(&format!("label `{label}` is neither a train wnid nor a class index below {}", classes.len()))
            })?,
        };
        if let Some(first) = listed.insert(name.to_string(), n + 1) {
            return Err(bad(&format!("`{name}` is listed again (first on line {first})")));
        }
        let path = dir.join(name);
        if !path.is_file() {
            return Err(bad(&format!("{} does not exist", path.display())));
        }
        files.push((path, label));
    }
    let folder = read_folder(dir)?;
    let unlisted: Vec<&PathBuf> = folder.images.iter().filter(|p| !listed.contains_key(&file_name(p))).collect();
    if let Some(first) = unlisted.first() {
        return Err(Error::Labels {
            path: label_file.into(),
            reason: format!("{} image(s) of {} have no label line (first: {}); add them or move them out", unlisted.len(), dir.display(), file_name(first)),
        });
    }
    notes.skipped.extend(folder.others.into_iter().filter(|p| p.as_path() != label_file));
    files.sort();
    Ok(files)
}

/// foolbox-style samples: `<anything>_<label>.<ext>`; the one split is `val`.
pub(super) fn open_samples(root: &Path, split: &str, hashing: &HashOptions) -> Result<Listing> {
    if split != "val" {
        return Err(Error::Dataset { path: root.into(), reason: format!("a sample folder has one split, `val`, not `{split}`") });
    }
    let folder = read_folder(root)?;
    let notes = Notes { skipped: folder.others, ..Default::default() };
    let mut files = Vec::new();
    for path in folder.images {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let label = stem
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|digits| digits.parse::<u32>().ok())
            .ok_or_else(|| Error::Labels { path: path.clone(), reason: "file name does not end in a label number (`name_<label>.jpg`)".into() })?;
        files.push((path, label));
    }
    let num_classes = files.iter().map(|(_, l)| *l as usize + 1).max().unwrap_or(0);
    finish(root, files, num_classes, notes.finish(root), hashing)
}
