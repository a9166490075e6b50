//! Cache housekeeping: what a cache folder holds besides valid files (temporaries of killed writers,
//! unfinished extractions), and removing what is no longer needed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cache::{is_temporary, lookup, TEMP_PREFIX};
use super::parts::{self, process_alive, PARTS_DIR};
use crate::error::{IoContext, Result};

/// Folder of a cache directory that holds finished run results (`run::memo`); its temporaries are
/// leftovers like any other.
pub const RESULTS_DIR: &str = "results";

/// What a cache folder holds besides valid files: temporaries and unfinished extractions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Leftovers {
    /// Temporary files (`.tmp-<pid>-…`), with whether their writer is still running.
    pub temporaries: Vec<(PathBuf, bool)>,
    /// Folders of extractions in progress or interrupted (resumable).
    pub parts: Vec<PathBuf>,
}

/// The pid in a temporary's name, and whether that process still runs on this machine.
fn writer_alive(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let pid = name.strip_prefix(TEMP_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(process_alive)
}

/// Temporaries and part folders under `dir`.
pub fn leftovers(dir: &Path) -> Result<Leftovers> {
    let mut out = Leftovers::default();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut walk = vec![dir.to_path_buf()];
    while let Some(d) = walk.pop() {
        for entry in std::fs::read_dir(&d).at(&d)?.filter_map(|e| e.ok()) {
            let path = entry.path();
            if is_temporary(&path) {
                let alive = writer_alive(&path);
                out.temporaries.push((path, alive));
            } else if path.is_dir() && d == dir && path.file_name().is_some_and(|n| n == PARTS_DIR) {
                for job in std::fs::read_dir(&path).at(&path)?.filter_map(|e| e.ok()) {
                    out.parts.push(job.path());
                    walk.push(job.path());
                }
            } else if path.is_dir() && d == dir && path.file_name().is_some_and(|n| n == RESULTS_DIR) {
                walk.push(path);
            }
        }
    }
    out.temporaries.sort();
    out.parts.sort();
    Ok(out)
}

/// Remove temporaries whose writer is gone, and part folders of extractions whose files are all written
/// (a process killed between writing them and removing its parts); returns what was removed.
pub fn gc(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (path, alive) in leftovers(dir)?.temporaries {
        if !alive {
            std::fs::remove_file(&path).at(&path)?;
            removed.push(path);
        }
    }
    for job in parts::jobs(dir)? {
        if job.keys().iter().all(|k| lookup(dir, k).is_some()) {
            std::fs::remove_dir_all(&job.dir).at(&job.dir)?;
            removed.push(job.dir.clone());
        }
    }
    Ok(removed)
}

