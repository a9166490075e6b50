//! What identifies an image folder's content: a blake3 digest of every file's bytes, computed in parallel.
//!
//! Reading every byte of ImageNet (140 GB) on every run would be slow, so digests are kept in a stat cache
//! (`<cache>/file-hashes/<root digest>.tsv`): a file whose size, modification time, change time and inode
//! are unchanged is not read again. The change time (ctime) cannot be set back by `touch` or `cp -p`, so a
//! replaced file is always re-read, even at the same size and mtime. `--rehash` ignores the stat cache.

use std::collections::HashMap;
use std::fmt::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

/// How content digests of image folders are obtained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashOptions {
    /// Folder of the stat caches; `None` reads every file every time.
    pub stat_cache: Option<PathBuf>,
    /// Ignore the stat cache (read every file), then refresh it.
    pub rehash: bool,
}

impl HashOptions {
    /// The stat cache under a feature-cache folder.
    pub fn under(cache_dir: &Path, rehash: bool) -> HashOptions {
        HashOptions { stat_cache: Some(cache_dir.join("file-hashes")), rehash }
    }
}

/// What the stat cache remembers of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp> {
        let m = std::fs::metadata(path).at(path)?;
        Ok(Stamp {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            inode: m.ino(),
        })
    }
}

fn cache_file(dir: &Path, root: &Path) -> PathBuf {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let digest = hex::encode(Sha256::digest(root.to_string_lossy().as_bytes()));
    dir.join(format!("{}.tsv", &digest[..16]))
}

/// `relative path → (stamp, digest)`; a missing or unreadable cache is empty (it is only a shortcut).
fn load(path: &Path) -> HashMap<String, (Stamp, String)> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [id, size, mtime, ctime, inode, digest] = f.as_slice() else { return None };
            let stamp = Stamp { size: size.parse().ok()?, mtime_ns: mtime.parse().ok()?, ctime_ns: ctime.parse().ok()?, inode: inode.parse().ok()? };
            Some((id.to_string(), (stamp, digest.to_string())))
        })
        .collect()
}

fn save(path: &Path, entries: &HashMap<String, (Stamp, String)>) -> Result<()> {
    let mut ids: Vec<&String> = entries.keys().collect();
    ids.sort();
    let mut text = String::new();
    for id in ids {
        let (s, d) = &entries[id];
        writeln!(text, "{id}\t{}\t{}\t{}\t{}\t{d}", s.size, s.mtime_ns, s.ctime_ns, s.inode).expect("writing to a String");
    }
    // A unique temporary file per writer, then an atomic rename: concurrent runs never mix lines.
    crate::atomic::write(path, text.as_bytes())
}

/// blake3 of a file's bytes, hex.
fn digest_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut f = std::fs::File::open(path).at(path)?;
    std::io::copy(&mut f, &mut hasher).at(path)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Digests of `files` (ids relative to `root`, in the given order). Unchanged files come from the stat
/// cache; the others are read in parallel, and the cache is refreshed.
pub fn file_digests(root: &Path, files: &[(String, PathBuf)], opts: &HashOptions) -> Result<Vec<String>> {
    let cache_path = opts.stat_cache.as_ref().map(|dir| cache_file(dir, root));
    let mut known = match (&cache_path, opts.rehash) {
        (Some(p), false) => load(p),
        _ => HashMap::new(),
    };
    let stamps: Vec<Stamp> = files.par_iter().map(|(_, path)| Stamp::of(path)).collect::<Result<_>>()?;
    let digests: Vec<String> = files
        .par_iter()
        .zip(&stamps)
        .map(|((id, path), stamp)| match known.get(id) {
            Some((s, d)) if s == stamp => Ok(d.clone()),
            _ => digest_file(path),
        })
        .collect::<Result<_>>()?;
    if let Some(p) = &cache_path {
        let changed = files.iter().zip(&stamps).zip(&digests).any(|(((id, _), s), d)| known.get(id).is_none_or(|(ks, kd)| ks != s || kd != d));
        if changed {
            for (((id, _), s), d) in files.iter().zip(stamps).zip(&digests) {
                known.insert(id.clone(), (s, d.clone()));
            }
            save(p, &known)?;
        }
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_same_size_replacement_changes_the_digest_even_with_the_old_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("a.jpg");
        std::fs::write(&file, b"first!").unwrap();
        let opts = HashOptions::under(&dir.path().join("cache"), false);
        let files = vec![("a.jpg".to_string(), file.clone())];
        let first = file_digests(&root, &files, &opts).unwrap();
        // Same size, and the old modification time put back: only the change time and content differ.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"second").unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
        let second = file_digests(&root, &files, &opts).unwrap();
        assert_ne!(first, second);
        assert_eq!(second[0], blake3::hash(b"second").to_hex().to_string());
        // Unchanged files come from the stat cache, which now holds the new digest.
        assert_eq!(file_digests(&root, &files, &opts).unwrap(), second);
    }
}
