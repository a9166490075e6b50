//! Files that appear whole or not at all: a unique temporary file beside the target, created exclusively
//! (never through an existing file or symlink) and named after the writing process
//! (`.tmp-<pid>-<random><suffix>`, so `cache gc` can tell a killed writer's leftovers from a live one's),
//! then renamed over the target. Readable like any other file (0644 before the umask), not 0600.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Prefix of every temporary file bbeval writes (followed by the writer's pid and `-`).
pub const TEMP_PREFIX: &str = ".tmp-";

/// A new temporary file in `dir` (created if missing); removed on drop unless persisted.
pub fn temp_file(dir: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    std::fs::create_dir_all(dir).at(dir)?;
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(suffix)
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .at(dir)
}

/// Move a finished temporary file over `target`.
pub fn persist(tmp: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    tmp.persist(target).map_err(|e| e.error).at(target)?;
    Ok(())
}

/// Write `bytes` to `target` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> Result<()> {
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = temp_file(dir, "")?;
    tmp.write_all(bytes).at(tmp.path())?;
    tmp.as_file().sync_all().at(tmp.path())?;
    persist(tmp, target)
}
