//! The Parquet feature cache: one file per (encoder weights, dataset content, split, rows, preprocessing,
//! feature, dtype, protocol version) — see [`CacheKey`].
//!
//! Columns: `index` u32 (the row's position among the images asked for), `id` string, `label` u32,
//! `feature` fixed-size list of f32 — or, with `f16` storage, binary: each row's width × IEEE half,
//! little-endian (`np.frombuffer(b, "<f2")`). Key-value metadata: `bbeval.key` (the key, checked against the
//! file name), `bbeval.skipped` (ids of unreadable images left out) and `bbeval.layout` (width, rows per row
//! group and an xxh3 checksum of each row group's labels and feature bytes). Every read checks the
//! checksums of the row groups it reads; `cache verify` reads everything and also checks the ids against the
//! key. Files are written to a unique temporary file (`.tmp-<pid>-…`, created exclusively) and renamed, so a
//! killed run never leaves a file a later run would take as complete.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub use super::key::{ids_digest, CacheKey, Storage};
use super::parquet_fast;
use crate::atomic::temp_file;
use crate::error::{Error, IoContext, Result};
use crate::protocol::{PROTOCOL_VERSION, ROW_GROUP_ROWS};

pub const KEY_METADATA: &str = "bbeval.key";
pub const SKIPPED_METADATA: &str = "bbeval.skipped";
pub const LAYOUT_METADATA: &str = "bbeval.layout";
pub use crate::atomic::TEMP_PREFIX;

/// A feature matrix with its row identities.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    pub key: CacheKey,
    pub ids: Vec<String>,
    pub labels: Vec<u32>,
    /// `n × width`.
    pub values: Array2<f32>,
    /// Ids of images that could not be read and were left out.
    pub skipped: Vec<String>,
}

impl FeatureTable {
    pub fn width(&self) -> usize {
        self.values.ncols()
    }
    pub fn len(&self) -> usize {
        self.values.nrows()
    }
    pub fn is_empty(&self) -> bool {
        self.values.nrows() == 0
    }
}

/// Width, row groups and their checksums: what the footer says the data must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub width: usize,
    /// Rows of each row group.
    pub row_groups: Vec<usize>,
    /// xxh3-64 of each row group's labels (u32 LE) then feature bytes as stored, hex.
    pub checksums: Vec<String>,
}

pub(crate) fn cache_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Cache { path: path.into(), reason: reason.into() }
}

/// A feature value as stored: f32 or IEEE half, little-endian.
pub(crate) fn stored_bytes(values: &[f32], storage: Storage) -> Vec<u8> {
    match storage {
        Storage::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Storage::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
    }
}

/// The xxh3 digest of one row group: its labels (u32 little-endian), then its stored feature bytes.
pub(crate) fn digest(labels: &[u32], feature_bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash3_64::new();
    for l in labels {
        h.write(&l.to_le_bytes());
    }
    h.write(feature_bytes);
    h.finish()
}

/// A digest as the footer stores it.
pub(crate) fn digest_hex(digest: u64) -> String {
    format!("{digest:016x}")
}

/// The checksum of one row group, as the footer stores it.
pub(crate) fn checksum(labels: &[u32], feature_bytes: &[u8]) -> String {
    digest_hex(digest(labels, feature_bytes))
}

/// Polars errors while writing, with the file named (a full disk must say which file).
fn write_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| cache_err(path, format!("cannot write ({e}); check free space and permissions of {}", path.parent().unwrap_or(Path::new(".")).display()))
}

/// Appends row groups to a new cache file; [`CacheWriter::finish`] renames it into place.
pub struct CacheWriter {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    writer: polars::io::parquet::write::BatchedWriter<File>,
    storage: Storage,
}

impl CacheWriter {
    /// A writer for `key` in `dir`; `layout` and `skipped` are known up front (they are the footer).
    pub fn new(dir: &Path, key: &CacheKey, layout: &Layout, skipped: &[String]) -> Result<CacheWriter> {
        let path = dir.join(key.file_name());
        let tmp = temp_file(dir, ".parquet")?;
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| cache_err(&path, e));
        let metadata = vec![
            (KEY_METADATA.to_string(), json(key)?),
            (SKIPPED_METADATA.to_string(), json(&skipped.to_vec())?),
            (LAYOUT_METADATA.to_string(), json(layout)?),
        ];
        let file = tmp.reopen().at(tmp.path())?;
        let schema = schema(layout.width, key.storage);
        let writer = ParquetWriter::new(file)
            // f32 features barely compress; uncompressed PLAIN pages read at memory speed.
            .with_compression(ParquetCompression::Uncompressed)
            .with_row_group_size(Some(ROW_GROUP_ROWS))
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(metadata)))
            .batched(&schema)
            .map_err(write_err(&path))?;
        Ok(CacheWriter { path, tmp, writer, storage: key.storage })
    }

    /// One row group: `positions` (the `index` column), ids, labels and values.
    pub fn append(&mut self, positions: &[u32], ids: &[String], labels: &[u32], values: &[f32], width: usize) -> Result<()> {
        let df = frame(positions, ids, labels, values, width, self.storage).map_err(write_err(&self.path))?;
        self.writer.write_batch(&df).map_err(write_err(&self.path))?;
        Ok(())
    }

    pub fn finish(self) -> Result<PathBuf> {
        self.writer.finish().map_err(write_err(&self.path))?;
        self.tmp.as_file().sync_all().at(self.tmp.path())?;
        crate::atomic::persist(self.tmp, &self.path)?;
        Ok(self.path)
    }
}

/// serde_json for the footer values, as a small object-safe trait.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Result<String, String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, String> {
            serde_json::to_string(self).map_err(|e| e.to_string())
        }
    }
}

fn schema(width: usize, storage: Storage) -> Schema {
    let feature = match storage {
        Storage::F32 => DataType::Array(Box::new(DataType::Float32), width),
        Storage::F16 => DataType::Binary,
    };
    Schema::from_iter([
        Field::new("index".into(), DataType::UInt32),
        Field::new("id".into(), DataType::String),
        Field::new("label".into(), DataType::UInt32),
        Field::new("feature".into(), feature),
    ])
}

fn frame(positions: &[u32], ids: &[String], labels: &[u32], values: &[f32], width: usize, storage: Storage) -> PolarsResult<DataFrame> {
    let n = labels.len();
    let feature = match storage {
        Storage::F32 => Series::new("feature".into(), values).reshape_array(&[ReshapeDimension::new(n as i64), ReshapeDimension::new(width as i64)])?,
        Storage::F16 => BinaryChunked::from_iter_values("feature".into(), values.chunks(width.max(1)).map(|row| stored_bytes(row, Storage::F16))).into_series(),
    };
    DataFrame::new_infer_height(vec![
        Column::new("index".into(), positions),
        Column::new("id".into(), ids),
        Column::new("label".into(), labels),
        feature.into(),
    ])
}

/// Check values can be stored (f16's range) before anything is written.
pub(crate) fn check_storable(path: &Path, values: &[f32], storage: Storage) -> Result<()> {
    if storage == Storage::F16 {
        if let Some(v) = values.iter().find(|v| v.abs() > f32::from(half::f16::MAX)) {
            return Err(cache_err(path, format!("feature value {v} is out of f16 range (±65504); store this encoder's features as f32")));
        }
    }
    Ok(())
}

/// The layout of a table cut into row groups of `ROW_GROUP_ROWS`.
fn layout_of(table: &FeatureTable) -> Layout {
    let width = table.width();
    let flat = table.values.as_standard_layout();
    let flat = flat.as_slice().unwrap_or_default();
    let mut layout = Layout { width, row_groups: Vec::new(), checksums: Vec::new() };
    for start in (0..table.len()).step_by(ROW_GROUP_ROWS) {
        let end = (start + ROW_GROUP_ROWS).min(table.len());
        layout.row_groups.push(end - start);
        layout.checksums.push(checksum(&table.labels[start..end], &stored_bytes(&flat[start * width..end * width], table.key.storage)));
    }
    layout
}

/// Write a whole table atomically; returns its path.
pub fn write(dir: &Path, table: &FeatureTable) -> Result<PathBuf> {
    let path = dir.join(table.key.file_name());
    let flat = table.values.as_standard_layout().into_owned();
    let flat = flat.as_slice().unwrap_or_default();
    check_storable(&path, flat, table.key.storage)?;
    let layout = layout_of(table);
    let mut writer = CacheWriter::new(dir, &table.key, &layout, &table.skipped)?;
    let width = table.width();
    let mut start = 0;
    for &rows in &layout.row_groups {
        let positions: Vec<u32> = (start as u32..(start + rows) as u32).collect();
        writer.append(&positions, &table.ids[start..start + rows], &table.labels[start..start + rows], &flat[start * width..(start + rows) * width], width)?;
        start += rows;
    }
    writer.finish()
}

/// A cache file's footer, read once: key (checked against the name), layout, skipped ids.
#[derive(Debug, Clone)]
pub struct FeatureFile {
    pub path: PathBuf,
    pub key: CacheKey,
    pub layout: Layout,
    pub skipped: Vec<String>,
    /// Written by another tool in the documented schema: no key, no checksums (nothing to check).
    pub foreign: bool,
    /// Row offset of each row group.
    starts: Vec<usize>,
}

impl FeatureFile {
    /// A bbeval cache file; anything else is an error.
    pub fn open(path: &Path) -> Result<FeatureFile> {
        Self::open_footer(path, parquet_fast::footer(path)?)
    }

    /// A bbeval cache file, or any Parquet file with the documented columns (`label` u32, `feature`
    /// fixed-size f32 list or f16 binary rows) written by another tool: `bbeval probe` takes both.
    pub fn open_any(path: &Path) -> Result<FeatureFile> {
        let footer = parquet_fast::footer(path)?;
        if footer.metadata.iter().any(|(k, _)| k == KEY_METADATA) {
            return Self::open_footer(path, footer);
        }
        let (storage, width) = foreign_first_row(path)?;
        let rows: usize = footer.row_groups.iter().sum();
        let name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let key = CacheKey {
            encoder: format!("external:{name}"),
            weights_sha256: String::new(),
            dataset: path.display().to_string(),
            dataset_name: name,
            dataset_hash: String::new(),
            split: String::new(),
            subset: None,
            rows,
            ids_digest: String::new(),
            preprocess: String::new(),
            feature: "feature".into(),
            dtype: "f32".into(),
            protocol_version: PROTOCOL_VERSION,
            storage,
        };
        let layout = Layout { width, row_groups: footer.row_groups, checksums: Vec::new() };
        let starts = starts_of(&layout);
        Ok(FeatureFile { path: path.to_path_buf(), key, layout, skipped: Vec::new(), foreign: true, starts })
    }

    fn open_footer(path: &Path, footer: parquet_fast::Footer) -> Result<FeatureFile> {
        let get = |name: &str| footer.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let key_json = get(KEY_METADATA).ok_or_else(|| cache_err(path, format!("no `{KEY_METADATA}` metadata: not a bbeval feature file")))?;
        let key: CacheKey = serde_json::from_str(key_json).map_err(|e| cache_err(path, format!("bad key metadata ({e}); delete the file")))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name != key.file_name() {
            return Err(cache_err(path, format!("stored key hashes to {}, not to this file name; delete the file", key.file_name())));
        }
        let layout: Layout = get(LAYOUT_METADATA)
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| cache_err(path, format!("no readable `{LAYOUT_METADATA}` metadata (written by an older bbeval?); delete the file")))?;
        let skipped: Vec<String> = get(SKIPPED_METADATA).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let rows: usize = layout.row_groups.iter().sum();
        if layout.row_groups != footer.row_groups || layout.checksums.len() != layout.row_groups.len() {
            return Err(cache_err(path, format!("row groups {:?} differ from the recorded layout {:?}; delete the file", footer.row_groups, layout.row_groups)));
        }
        if rows + skipped.len() != key.rows {
            return Err(cache_err(path, format!("holds {rows} rows and {} skipped ids, the key asks for {} images; delete the file", skipped.len(), key.rows)));
        }
        let starts = starts_of(&layout);
        Ok(FeatureFile { path: path.to_path_buf(), key, layout, skipped, foreign: false, starts })
    }

    pub fn rows(&self) -> usize {
        self.layout.row_groups.iter().sum()
    }
    pub fn width(&self) -> usize {
        self.layout.width
    }
    pub fn row_group_count(&self) -> usize {
        self.layout.row_groups.len()
    }
    /// Rows `[start, end)` covered by row groups `groups`.
    pub fn row_range(&self, groups: Range<usize>) -> Range<usize> {
        let start = self.starts.get(groups.start).copied().unwrap_or(self.rows());
        let end = self.starts.get(groups.end).copied().unwrap_or(self.rows());
        start..end
    }

    /// Labels and values of row groups `groups`, checked against their checksums.
    pub fn read_groups(&self, groups: Range<usize>) -> Result<(Vec<u32>, Array2<f32>)> {
        self.read_groups_checked(groups, true)
    }

    /// As `read_groups`; `verify: false` skips the checksums, only to measure their share of a read
    /// (`bbeval cache read --checksum-share`).
    pub fn read_groups_checked(&self, groups: Range<usize>, verify: bool) -> Result<(Vec<u32>, Array2<f32>)> {
        let rows = self.row_range(groups.clone());
        let verify = verify && !self.foreign;
        let check = |g: usize, digest: u64| -> Result<()> {
            if digest_hex(digest) == self.layout.checksums[g] {
                return Ok(());
            }
            let start = self.starts[g];
            let end = start + self.layout.row_groups[g];
            Err(cache_err(&self.path, format!("row group {g} (rows {start}–{}) does not match its checksum: the file is damaged; delete it and extract again", end - 1)))
        };
        let (labels, values) = match parquet_fast::read_groups(&self.path, groups.clone(), self.width(), self.key.storage, verify.then_some(&check as _))? {
            Some(read) => read,
            None => {
                let (labels, bytes) = self.read_groups_polars(rows.clone())?;
                let value_bytes = self.key.storage.value_bytes() * self.width();
                let mut at = 0;
                for g in groups.filter(|_| verify) {
                    let n = self.layout.row_groups[g];
                    check(g, digest(&labels[at..at + n], &bytes[at * value_bytes..(at + n) * value_bytes]))?;
                    at += n;
                }
                (labels, decode(&self.path, &bytes, rows.len(), self.width(), self.key.storage)?)
            }
        };
        let values = Array2::from_shape_vec((rows.len(), self.width()), values).map_err(|e| cache_err(&self.path, e.to_string()))?;
        Ok((labels, values))
    }

    /// The general path (any compression or encoding): polars, then the stored bytes rebuilt.
    fn read_groups_polars(&self, rows: Range<usize>) -> Result<(Vec<u32>, Vec<u8>)> {
        let file = File::open(&self.path).at(&self.path)?;
        let df = ParquetReader::new(file)
            .with_columns(Some(vec!["label".into(), "feature".into()]))
            .with_slice(Some((rows.start, rows.len())))
            .finish()
            .map_err(|e| cache_err(&self.path, format!("cannot decode ({e}); delete the file")))?;
        let labels = labels_of(&self.path, &df)?;
        let feature = df.column("feature").map_err(|_| cache_err(&self.path, "no `feature` column"))?.as_materialized_series().clone();
        let bytes = if let Ok(binary) = feature.binary() {
            let mut out = Vec::with_capacity(rows.len() * self.width() * 2);
            for row in binary.iter() {
                out.extend_from_slice(row.ok_or_else(|| cache_err(&self.path, "null feature row; delete the file"))?);
            }
            out
        } else {
            let arr = feature.array().map_err(|_| cache_err(&self.path, "`feature` must be a fixed-size array of f32 or f16 bytes"))?;
            let leaf = arr.get_leaf_array();
            let leaf = leaf.f32().map_err(|_| cache_err(&self.path, "`feature` values must be f32"))?;
            if leaf.null_count() > 0 {
                return Err(cache_err(&self.path, "null feature values; delete the file"));
            }
            leaf.downcast_iter().flat_map(|chunk| chunk.values().iter().flat_map(|v| v.to_le_bytes())).collect()
        };
        Ok((labels, bytes))
    }

    /// Every label, in row order (one pass over the label column).
    pub fn read_labels(&self) -> Result<Vec<u32>> {
        if let Some(labels) = parquet_fast::read_labels(&self.path)? {
            return Ok(labels);
        }
        let file = File::open(&self.path).at(&self.path)?;
        let df = ParquetReader::new(file).with_columns(Some(vec!["label".into()])).finish()?;
        labels_of(&self.path, &df)
    }

    /// The whole table, checksums and ids (against the key) checked.
    pub fn read_all(&self) -> Result<FeatureTable> {
        let (labels, values) = self.read_groups(0..self.row_group_count())?;
        let file = File::open(&self.path).at(&self.path)?;
        let df = ParquetReader::new(file).with_columns(Some(vec!["id".into()])).finish()?;
        let ids: Vec<String> = df
            .column("id")
            .map_err(|_| cache_err(&self.path, "no `id` column"))?
            .str()
            .map_err(|_| cache_err(&self.path, "`id` must be a string"))?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect();
        if !self.foreign && ids_digest(ids.iter().chain(&self.skipped).map(String::as_str)) != self.key.ids_digest {
            return Err(cache_err(&self.path, "its row ids (with the skipped ones) are not the images its key asks for; delete the file"));
        }
        Ok(FeatureTable { key: self.key.clone(), ids, labels, values, skipped: self.skipped.clone() })
    }
}

/// Row offset of each row group.
fn starts_of(layout: &Layout) -> Vec<usize> {
    layout.row_groups.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect()
}

/// The storage and width of a foreign file, from its first row (its labels must be u32).
fn foreign_first_row(path: &Path) -> Result<(Storage, usize)> {
    let file = File::open(path).at(path)?;
    let df = ParquetReader::new(file)
        .with_columns(Some(vec!["label".into(), "feature".into()]))
        .with_slice(Some((0, 1)))
        .finish()
        .map_err(|e| cache_err(path, format!("not a feature file: needs `label` (u32) and `feature` columns ({e})")))?;
    labels_of(path, &df)?;
    let feature = df.column("feature").map_err(|_| cache_err(path, "no `feature` column"))?.as_materialized_series().clone();
    if let Ok(binary) = feature.binary() {
        let width = binary.get(0).map_or(0, |b| b.len() / 2);
        return Ok((Storage::F16, width));
    }
    let arr = feature.array().map_err(|_| cache_err(path, "`feature` must be a fixed-size list of f32 (or binary f16 rows)"))?;
    Ok((Storage::F32, arr.width()))
}

/// Stored bytes → `n × width` f32 values, row-major.
fn decode(path: &Path, bytes: &[u8], n: usize, width: usize, storage: Storage) -> Result<Vec<f32>> {
    use half::slice::HalfFloatSliceExt;
    if bytes.len() != n * width * storage.value_bytes() {
        return Err(cache_err(path, "feature bytes do not match rows × width; delete the file"));
    }
    let mut out = vec![0f32; n * width];
    match storage {
        Storage::F32 => {
            for (dst, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *dst = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Storage::F16 => {
            let halves: Vec<half::f16> = bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]])).collect();
            halves.convert_to_f32_slice(&mut out);
        }
    }
    Ok(out)
}

fn labels_of(path: &Path, df: &DataFrame) -> Result<Vec<u32>> {
    let labels = df.column("label").map_err(|_| cache_err(path, "no `label` column"))?;
    let labels = labels.u32().map_err(|_| cache_err(path, "`label` must be u32"))?;
    labels.iter().map(|l| l.ok_or_else(|| cache_err(path, "null label"))).collect()
}

/// Read a whole cache file.
pub fn read(path: &Path) -> Result<FeatureTable> {
    FeatureFile::open(path)?.read_all()
}

/// Number of rows and the feature width, from the footer alone.
pub fn shape(path: &Path) -> Result<(usize, usize)> {
    let f = FeatureFile::open(path)?;
    Ok((f.rows(), f.width()))
}

/// The cached file for `key` in `dir`, if present and its footer is valid.
pub fn lookup(dir: &Path, key: &CacheKey) -> Option<PathBuf> {
    let path = dir.join(key.file_name());
    match FeatureFile::open(&path) {
        Ok(f) if &f.key == key => Some(path),
        _ => None,
    }
}

/// One line of `bbeval cache ls`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub path: PathBuf,
    pub key: CacheKey,
    pub rows: usize,
    pub width: usize,
    pub bytes: u64,
}

fn cache_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet") && !is_temporary(p))
        .collect();
    files.sort();
    Ok(files)
}

pub(crate) fn is_temporary(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
}

pub fn list(dir: &Path) -> Result<Vec<Result<CacheEntry>>> {
    Ok(cache_files(dir)?
        .into_iter()
        .map(|path| {
            let f = FeatureFile::open(&path)?;
            let bytes = std::fs::metadata(&path).at(&path)?.len();
            Ok(CacheEntry { rows: f.rows(), width: f.width(), key: f.key, path, bytes })
        })
        .collect())
}

/// Read every file completely: key matches name, protocol is current, checksums and ids match, values
/// are finite.
pub fn verify(dir: &Path) -> Result<Vec<(PathBuf, Result<CacheEntry>)>> {
    Ok(cache_files(dir)?
        .into_iter()
        .map(|path| {
            let check = || -> Result<CacheEntry> {
                let table = read(&path)?;
                if table.key.protocol_version != PROTOCOL_VERSION {
                    return Err(cache_err(&path, format!("protocol version {} (current {PROTOCOL_VERSION}); re-extract", table.key.protocol_version)));
                }
                if let Some(row) = table.values.rows().into_iter().position(|r| r.iter().any(|v| !v.is_finite())) {
                    return Err(cache_err(&path, format!("non-finite values in row {row} ({}); delete the file", table.ids[row])));
                }
                let bytes = std::fs::metadata(&path).at(&path)?.len();
                Ok(CacheEntry { path: path.clone(), rows: table.len(), width: table.width(), key: table.key, bytes })
            };
            let r = check();
            (path, r)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    /// The footer's checksums are XXH3-64 (seed 0) of the labels' and features' bytes, so that other tools
    /// can check them: the golden digest is Python's `xxhash` 4.1.0 (libxxhash 0.8.4):
    /// `xxhash.xxh3_64_hexdigest(struct.pack('<3I', 0, 1, 9) + bytes((i * 7) % 251 for i in range(100000)))`.
    /// 100,000 bytes take the long-input (SIMD) path.
    #[test]
    fn checksums_are_xxh3_64_as_libxxhash_computes_them() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| ((i * 7) % 251) as u8).collect();
        assert_eq!(super::checksum(&[0, 1, 9], &bytes), "5466d4aa258437ef");
    }
}
