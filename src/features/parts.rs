//! Resumable and sharded extraction.
//!
//! An extraction (one encoder over one dataset split, every output feature) is cut into parts of
//! `PART_ROWS` images, in the dataset's order. Each part is computed under a lock file and written as its
//! own small Parquet file (`<cache>/parts/<job>/part-000012.parquet`, all features side by side, f32) by a
//! temporary file and a rename; `job.json` beside them holds the cache keys. A re-run after a kill
//! recomputes only the parts that are missing; `--shard i/n` computes one contiguous slice of the parts, so
//! that n processes (a Slurm array, or one per GPU) share the work under the same keys. When every part is
//! present, [`Job::assemble`] writes the per-feature cache files (row group = part, checksums from the
//! parts) and removes the folder. A stale lock — its process gone — is taken over; a live one is left to its
//! owner and waited for.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::cache::{cache_err, check_storable, checksum, stored_bytes, CacheWriter, Layout};
use crate::atomic::{persist, temp_file};
use super::key::CacheKey;
use crate::error::{Error, IoContext, Result};
use crate::protocol::EXTRACT_PART_ROWS;

/// Folder of unfinished extractions inside a cache folder.
pub const PARTS_DIR: &str = "parts";
const JOB_FILE: &str = "job.json";
const PART_METADATA: &str = "bbeval.part";

/// `--shard i/n`: the i-th (0-based) of n contiguous slices of an extraction's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || Error::Cache { path: PathBuf::from("--shard"), reason: format!("`{s}` is not `i/n` with 0 ≤ i < n (e.g. 0/4 … 3/4; Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)") };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Whether process `pid` runs on this machine.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// `job.json`: what the parts belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JobRecord {
    /// One key per feature, in output order.
    keys: Vec<CacheKey>,
    rows: usize,
    part_rows: usize,
}

/// What a part file says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartRecord {
    /// Digest of the job's keys: a part of another extraction is foreign.
    job: String,
    part: usize,
    positions: (usize, usize),
    /// The shard that computed it, if any (for messages about missing parts).
    shard: Option<Shard>,
    /// Unreadable images of this part: (position, id, reason).
    skipped: Vec<(usize, String, String)>,
    /// Per feature: (width, checksum of its row group as the final file stores it).
    features: BTreeMap<String, (usize, String)>,
}

/// The features of one part, computed.
pub struct PartData {
    pub positions: Vec<u32>,
    pub ids: Vec<String>,
    pub labels: Vec<u32>,
    /// Feature → (width, row-major values).
    pub features: BTreeMap<String, (usize, Vec<f32>)>,
    pub skipped: Vec<(usize, String, String)>,
}

/// A held part lock; removed on drop.
pub struct PartLock {
    path: PathBuf,
}

impl Drop for PartLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One extraction's parts.
pub struct Job {
    pub dir: PathBuf,
    record: JobRecord,
    digest: String,
}

/// How a part stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartState {
    Done,
    Missing,
    /// Locked by a live process (host, pid).
    Busy(String),
}

impl Job {
    /// The job of `keys` (one per feature, same extraction) over `rows` images, under `cache_dir`. Its
    /// folder and `job.json` are created on first use; a `job.json` for other keys is an error.
    pub fn open(cache_dir: &Path, keys: &[CacheKey], rows: usize) -> Result<Job> {
        let first = keys.first().ok_or_else(|| cache_err(cache_dir, "an extraction needs at least one feature"))?;
        let dir = cache_dir.join(PARTS_DIR).join(first.parts_dir_name());
        let record = JobRecord { keys: keys.to_vec(), rows, part_rows: EXTRACT_PART_ROWS };
        let digest = job_digest(&record);
        let job = Job { dir, record, digest };
        let path = job.dir.join(JOB_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let stored: JobRecord = serde_json::from_str(&text).map_err(|e| cache_err(&path, format!("unreadable ({e}); delete the folder {}", job.dir.display())))?;
                if stored != job.record {
                    return Err(cache_err(&path, format!("belongs to another extraction (other keys, rows or part size); delete the folder {} to start this one", job.dir.display())));
                }
            }
            Err(_) => job.write_record()?,
        }
        Ok(job)
    }

    /// A job from its folder alone (`bbeval cache merge`).
    pub fn load(dir: &Path) -> Result<Job> {
        let path = dir.join(JOB_FILE);
        let text = std::fs::read_to_string(&path).at(&path)?;
        let record: JobRecord = serde_json::from_str(&text).map_err(|e| cache_err(&path, format!("unreadable ({e}); delete the folder")))?;
        let digest = job_digest(&record);
        Ok(Job { dir: dir.to_path_buf(), record, digest })
    }

    fn write_record(&self) -> Result<()> {
        let mut tmp = temp_file(&self.dir, ".json")?;
        let json = serde_json::to_string_pretty(&self.record).map_err(|e| cache_err(&self.dir, e.to_string()))?;
        tmp.write_all(json.as_bytes()).at(tmp.path())?;
        // Another process may have written the same record first: either copy is right.
        persist(tmp, &self.dir.join(JOB_FILE))
    }

    pub fn keys(&self) -> &[CacheKey] {
        &self.record.keys
    }
    pub fn rows(&self) -> usize {
        self.record.rows
    }
    pub fn part_count(&self) -> usize {
        self.record.rows.div_ceil(self.record.part_rows).max(1)
    }
    /// Image positions of part `i`.
    pub fn part_rows(&self, i: usize) -> Range<usize> {
        let start = i * self.record.part_rows;
        start..(start + self.record.part_rows).min(self.record.rows)
    }
    /// The parts of `shard` (all parts without one).
    pub fn shard_parts(&self, shard: Option<Shard>) -> Range<usize> {
        let n = self.part_count();
        match shard {
            None => 0..n,
            Some(s) => (s.index * n / s.count)..((s.index + 1) * n / s.count),
        }
    }
    /// The shard of a `count`-way split that computes part `i`.
    fn shard_of(&self, i: usize, count: usize) -> usize {
        (0..count).find(|&s| self.shard_parts(Some(Shard { index: s, count })).contains(&i)).unwrap_or(0)
    }

    fn part_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("part-{i:06}.parquet"))
    }
    fn lock_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("part-{i:06}.lock"))
    }

    /// Part `i`'s record, if its file is present; a part of another extraction is an error.
    fn part_record(&self, i: usize) -> Result<Option<PartRecord>> {
        let path = self.part_path(i);
        if !path.is_file() {
            return Ok(None);
        }
        let footer = super::parquet_fast::footer(&path)?;
        let json = footer.metadata.iter().find(|(k, _)| k == PART_METADATA).map(|(_, v)| v.clone());
        let record: PartRecord = json
            .and_then(|j| serde_json::from_str(&j).ok())
            .ok_or_else(|| cache_err(&path, "not a bbeval part file (no part metadata); delete it"))?;
        let range = self.part_rows(i);
        if record.job != self.digest || record.part != i || record.positions != (range.start, range.end) {
            return Err(cache_err(&path, format!("is a foreign part (of another extraction or another part numbering: job {}, part {}); delete it", record.job, record.part)));
        }
        Ok(Some(record))
    }

    /// The state of part `i`.
    pub fn state(&self, i: usize) -> Result<PartState> {
        if self.part_record(i)?.is_some() {
            return Ok(PartState::Done);
        }
        match std::fs::read_to_string(self.lock_path(i)) {
            Ok(owner) if lock_alive(&owner) => Ok(PartState::Busy(owner.trim().to_string())),
            _ => Ok(PartState::Missing),
        }
    }

    /// Take part `i`'s lock: `None` when a live process holds it. A lock whose process is gone (on this
    /// machine) is taken over.
    pub fn try_lock(&self, i: usize) -> Result<Option<PartLock>> {
        take_lock(self.lock_path(i))
    }

    /// The lock of assembling the final files; `None` while another process holds it, or when the folder
    /// is gone (another process assembled the job).
    pub fn try_lock_assembly(&self) -> Result<Option<PartLock>> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        take_lock(self.dir.join("assemble.lock"))
    }

    /// Write part `i` (under its lock): checked, checksummed per feature, atomically.
    pub fn write_part(&self, i: usize, part: &PartData, shard: Option<Shard>, _lock: &PartLock) -> Result<()> {
        let path = self.part_path(i);
        let mut features = BTreeMap::new();
        for key in &self.record.keys {
            let (width, values) = part.features.get(&key.feature).ok_or_else(|| cache_err(&path, format!("the encoder gave no `{}`", key.feature)))?;
            check_storable(&self.dir.join(key.file_name()), values, key.storage)?;
            features.insert(key.feature.clone(), (*width, checksum(&part.labels, &stored_bytes(values, key.storage))));
        }
        let range = self.part_rows(i);
        let record = PartRecord { job: self.digest.clone(), part: i, positions: (range.start, range.end), shard, skipped: part.skipped.clone(), features };
        let n = part.labels.len();
        let mut columns = vec![
            Column::new("index".into(), &part.positions),
            Column::new("id".into(), &part.ids),
            Column::new("label".into(), &part.labels),
        ];
        for (name, (width, values)) in &part.features {
            let s = Series::new(format!("f:{name}").into(), values.as_slice()).reshape_array(&[ReshapeDimension::new(n as i64), ReshapeDimension::new(*width as i64)])?;
            columns.push(s.into());
        }
        let mut df = DataFrame::new_infer_height(columns)?;
        let tmp = temp_file(&self.dir, ".parquet")?;
        let meta = serde_json::to_string(&record).map_err(|e| cache_err(&path, e.to_string()))?;
        ParquetWriter::new(tmp.reopen().at(tmp.path())?)
            .with_compression(ParquetCompression::Uncompressed)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(PART_METADATA.to_string(), meta)])))
            .finish(&mut df)
            .map_err(|e| cache_err(&path, format!("cannot write ({e}); check free space in {}", self.dir.display())))?;
        crate::testing::abort_point("part-before-rename");
        persist(tmp, &path)
    }

    /// Missing parts, as a message naming them and the shards (of the split the present parts used)
    /// that compute them; `None` when every part is present.
    pub fn missing(&self) -> Result<Option<String>> {
        let mut missing = Vec::new();
        let mut shard_counts = Vec::new();
        for i in 0..self.part_count() {
            match self.part_record(i)? {
                Some(r) => shard_counts.extend(r.shard.map(|s| s.count)),
                None => missing.push(i),
            }
        }
        if missing.is_empty() {
            return Ok(None);
        }
        let count = shard_counts.first().copied();
        let names: Vec<String> = missing
            .iter()
            .take(8)
            .map(|&i| {
                let rows = self.part_rows(i);
                let shard = count.map(|c| format!(", shard {}/{c}", self.shard_of(i, c))).unwrap_or_default();
                format!("part {i} (images {}–{}{shard})", rows.start, rows.end - 1)
            })
            .collect();
        let more = if missing.len() > 8 { format!(" and {} more", missing.len() - 8) } else { String::new() };
        Ok(Some(format!("{} of {} parts missing: {}{more}", missing.len(), self.part_count(), names.join(", "))))
    }

    /// Write the per-feature cache files from the parts (all must be present), then remove the folder.
    /// Returns feature → path.
    pub fn assemble(&self, cache_dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
        if let Some(missing) = self.missing()? {
            return Err(cache_err(&self.dir, format!("cannot assemble: {missing}; run those shards (or an extract without --shard) first")));
        }
        let records: Vec<PartRecord> = (0..self.part_count()).map(|i| self.part_record(i).map(|r| r.expect("checked present"))).collect::<Result<_>>()?;
        let skipped: Vec<String> = records.iter().flat_map(|r| r.skipped.iter().map(|(_, id, _)| id.clone())).collect();
        let mut files = BTreeMap::new();
        for key in &self.record.keys {
            let mut layout = Layout { width: 0, row_groups: Vec::new(), checksums: Vec::new() };
            for r in &records {
                let (width, sum) = r.features.get(&key.feature).ok_or_else(|| cache_err(&self.part_path(r.part), format!("has no `{}`", key.feature)))?;
                layout.width = *width;
                let rows = (r.positions.1 - r.positions.0) - r.skipped.len();
                if rows > 0 {
                    layout.row_groups.push(rows);
                    layout.checksums.push(sum.clone());
                }
            }
            if layout.row_groups.is_empty() {
                let first = skipped.first().cloned().unwrap_or_default();
                return Err(Error::UnreadableImages { count: skipped.len(), first, advice: "" });
            }
            let mut writer = CacheWriter::new(cache_dir, key, &layout, &skipped)?;
            for i in 0..self.part_count() {
                let (positions, ids, labels, values, width) = self.read_part(i, &key.feature)?;
                if !labels.is_empty() {
                    writer.append(&positions, &ids, &labels, &values, width)?;
                }
            }
            files.insert(key.feature.clone(), writer.finish()?);
        }
        crate::testing::abort_point("assembled-before-cleanup");
        let _ = std::fs::remove_dir_all(&self.dir);
        // The parts folder itself goes when its last extraction does (another may still be running).
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(files)
    }

    /// One feature of part `i`: positions, ids, labels, values, width.
    #[allow(clippy::type_complexity)]
    fn read_part(&self, i: usize, feature: &str) -> Result<(Vec<u32>, Vec<String>, Vec<u32>, Vec<f32>, usize)> {
        let path = self.part_path(i);
        let column = format!("f:{feature}");
        let df = ParquetReader::new(File::open(&path).at(&path)?)
            .with_columns(Some(vec!["index".into(), "id".into(), "label".into(), column.as_str().into()]))
            .finish()
            .map_err(|e| cache_err(&path, format!("cannot decode ({e}); delete it")))?;
        let bad = |what: &str| cache_err(&path, format!("bad `{what}` column; delete it"));
        let positions: Vec<u32> = df.column("index").ok().and_then(|c| c.u32().ok()).ok_or_else(|| bad("index"))?.into_no_null_iter().collect();
        let labels: Vec<u32> = df.column("label").ok().and_then(|c| c.u32().ok()).ok_or_else(|| bad("label"))?.into_no_null_iter().collect();
        let ids: Vec<String> = df.column("id").ok().and_then(|c| c.str().ok()).ok_or_else(|| bad("id"))?.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let arr = df.column(&column).ok().and_then(|c| c.array().ok().cloned()).ok_or_else(|| bad(&column))?;
        let width = arr.width();
        let leaf = arr.get_leaf_array();
        let leaf = leaf.f32().map_err(|_| bad(&column))?;
        let values: Vec<f32> = leaf.downcast_iter().flat_map(|c| c.values().iter().copied()).collect();
        Ok((positions, ids, labels, values, width))
    }

    /// Wait until part `i` is no longer busy (its owner finished or died); polls once a second.
    pub fn wait(&self, i: usize) -> Result<PartState> {
        loop {
            match self.state(i)? {
                PartState::Busy(_) => std::thread::sleep(Duration::from_secs(1)),
                other => return Ok(other),
            }
        }
    }
}

/// Create the lock file at `path` exclusively, naming this host and process; `None` when a live process
/// holds it. A lock whose process is gone (on this machine) is taken over.
fn take_lock(path: PathBuf) -> Result<Option<PartLock>> {
    for _ in 0..2 {
        match File::options().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                writeln!(f, "{} {}", host(), std::process::id()).at(&path)?;
                return Ok(Some(PartLock { path }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                if lock_alive(&owner) {
                    return Ok(None);
                }
                // Stale: its writer was killed. Remove and try once more (another process may win).
                let _ = std::fs::remove_file(&path);
            }
            // The folder is gone: another process assembled the job meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    }
    Ok(None)
}

fn job_digest(record: &JobRecord) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(serde_json::to_string(record).unwrap_or_default().as_bytes()))[..16].to_string()
}

/// A lock is alive unless it names this host and a pid that no longer runs; locks of other hosts (a shared
/// file system) are trusted.
fn lock_alive(owner: &str) -> bool {
    let mut it = owner.split_whitespace();
    match (it.next(), it.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) if h == host() => process_alive(pid),
        (Some(_), Some(_)) => true,
        _ => false,
    }
}

/// Every unfinished job under `cache_dir`.
pub fn jobs(cache_dir: &Path) -> Result<Vec<Job>> {
    let dir = cache_dir.join(PARTS_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).at(&dir)?.filter_map(|e| e.ok()) {
        if entry.path().join(JOB_FILE).is_file() {
            out.push(Job::load(&entry.path())?);
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_cover_every_part_once() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let record = JobRecord { keys: vec![], rows: 10_000, part_rows: 2048 };
        let job = Job { dir: PathBuf::new(), digest: job_digest(&record), record };
        let mut seen = vec![0; job.part_count()];
        for s in 0..3 {
            for p in job.shard_parts(Some(Shard { index: s, count: 3 })) {
                seen[p] += 1;
            }
        }
        assert_eq!(seen, vec![1; 5]);
        assert_eq!(job.part_rows(4), 8192..10_000);
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_stale() {
        assert!(lock_alive(&format!("{} {}", host(), std::process::id())));
        assert!(!lock_alive(&format!("{} {}", host(), u32::MAX - 1)));
        assert!(lock_alive("some-other-node 12"));
        assert!(!lock_alive(""));
    }
}
