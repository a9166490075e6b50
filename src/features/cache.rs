//! The Parquet feature cache: one file per (encoder weights, dataset content, split, subset, preprocessing,
//! feature, dtype, protocol version).
//!
//! The key is stored as JSON in the file's key-value metadata (`bbeval.key`) and its sha256 prefix is in
//! the file name (`<encoder>__<dataset>__<split>__<feature>__<hash>.parquet`). Columns: `index` u32, `id`
//! string, `label` u32, `feature` fixed-size list of f32 — or, with `f16` storage (half the disk and read
//! volume), `feature` binary: each row's width × IEEE half, little-endian (numpy: `np.frombuffer(b,
//! "<f2")`). Files are written to a temporary name and
//! renamed, so a killed run never leaves a file a later run would take as complete; a file whose stored
//! key does not match its name is never read as valid.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{PROTOCOL_VERSION, ROW_GROUP_ROWS};
use crate::data::sanitize;
use crate::error::{Error, IoContext, Result};

pub const KEY_METADATA: &str = "bbeval.key";
pub const SKIPPED_METADATA: &str = "bbeval.skipped";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub encoder: String,
    pub weights_sha256: String,
    pub dataset: String,
    pub dataset_name: String,
    pub dataset_hash: String,
    pub split: String,
    /// `(limit, seed)` of a seeded subset.
    pub subset: Option<(usize, u64)>,
    pub preprocess: String,
    pub feature: String,
    pub dtype: String,
    pub protocol_version: u32,
    /// Left out of the key when f32, so f32 files keep the names they had before f16 existed.
    #[serde(default, skip_serializing_if = "Storage::is_f32")]
    pub storage: Storage,
}

/// How feature values are stored on disk; probes always compute in f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    F32,
    /// IEEE half: about 3 significant digits, range ±65504 (values beyond are an error at write time).
    F16,
}

impl Storage {
    pub fn is_f32(&self) -> bool {
        *self == Storage::F32
    }
}

impl CacheKey {
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))[..16].to_string()
    }

    pub fn file_name(&self) -> String {
        format!(
            "{}__{}__{}__{}__{}.parquet",
            sanitize(&self.encoder),
            sanitize(&self.dataset_name),
            sanitize(&self.split),
            sanitize(&self.feature),
            self.digest()
        )
    }

    /// This key for another feature of the same extraction.
    pub fn with_feature(&self, feature: &str) -> CacheKey {
        CacheKey { feature: feature.to_string(), ..self.clone() }
    }
}

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

fn cache_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Cache { path: path.into(), reason: reason.into() }
}

/// Write atomically: `<name>.tmp` then rename.
pub fn write(dir: &Path, table: &FeatureTable) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).at(dir)?;
    let path = dir.join(table.key.file_name());
    let tmp = path.with_extension("parquet.tmp");
    let result = write_file(&tmp, table);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).at(&path)?;
    Ok(path)
}

fn to_frame(table: &FeatureTable) -> Result<DataFrame> {
    let n = table.len();
    let width = table.width();
    let flat: Vec<f32> = table.values.as_standard_layout().into_owned().into_raw_vec_and_offset().0;
    let feature = match table.key.storage {
        Storage::F32 => Series::new("feature".into(), flat)
            .reshape_array(&[ReshapeDimension::new(n as i64), ReshapeDimension::new(width as i64)])?,
        Storage::F16 => {
            let rows = flat.chunks(width.max(1)).map(|row| row.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect::<Vec<u8>>());
            BinaryChunked::from_iter_values("feature".into(), rows).into_series()
        }
    };
    let df = DataFrame::new_infer_height(vec![
        Column::new("index".into(), (0..n as u32).collect::<Vec<u32>>()),
        Column::new("id".into(), table.ids.clone()),
        Column::new("label".into(), table.labels.clone()),
        feature.into(),
    ])?;
    Ok(df)
}

fn write_file(path: &Path, table: &FeatureTable) -> Result<()> {
    if table.key.storage == Storage::F16 {
        if let Some(v) = table.values.iter().find(|v| v.abs() > f32::from(half::f16::MAX)) {
            return Err(cache_err(path, format!("feature value {v} is out of f16 range (±65504); store this encoder's features as f32")));
        }
    }
    let mut df = to_frame(table)?;
    let key = serde_json::to_string(&table.key).map_err(|e| cache_err(path, e.to_string()))?;
    let skipped = serde_json::to_string(&table.skipped).map_err(|e| cache_err(path, e.to_string()))?;
    let file = File::create(path).at(path)?;
    ParquetWriter::new(file)
        // f32 features barely compress; uncompressed pages read fastest.
        .with_compression(ParquetCompression::Uncompressed)
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![
            (KEY_METADATA.to_string(), key),
            (SKIPPED_METADATA.to_string(), skipped),
        ])))
        .finish(&mut df)?;
    Ok(())
}

fn metadata_value(path: &Path, reader: &mut ParquetReader<File>, name: &str) -> Result<Option<String>> {
    let meta = reader.get_metadata().map_err(|e| cache_err(path, format!("not a readable Parquet file ({e}); delete it")))?;
    Ok(meta
        .key_value_metadata()
        .as_ref()
        .and_then(|kv| kv.iter().find(|k| k.key == name))
        .and_then(|k| k.value.clone()))
}

/// The key stored inside a cache file (checked against the file name).
pub fn read_key(path: &Path) -> Result<CacheKey> {
    let file = File::open(path).at(path)?;
    let mut reader = ParquetReader::new(file);
    key_of(path, &mut reader)
}

fn key_of(path: &Path, reader: &mut ParquetReader<File>) -> Result<CacheKey> {
    let json = metadata_value(path, reader, KEY_METADATA)?
        .ok_or_else(|| cache_err(path, format!("no `{KEY_METADATA}` metadata: not a bbeval feature file")))?;
    let key: CacheKey = serde_json::from_str(&json).map_err(|e| cache_err(path, format!("bad key metadata: {e}")))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name != key.file_name() {
        return Err(cache_err(path, format!("stored key hashes to {}, not to this file name; delete the file", key.file_name())));
    }
    Ok(key)
}

/// Ids of the images an extraction skipped, from the footer alone.
pub fn read_skipped(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).at(path)?;
    let mut reader = ParquetReader::new(file);
    Ok(metadata_value(path, &mut reader, SKIPPED_METADATA)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
}

/// Read a whole cache file.
pub fn read(path: &Path) -> Result<FeatureTable> {
    let file = File::open(path).at(path)?;
    let mut reader = ParquetReader::new(file);
    let key = key_of(path, &mut reader)?;
    let skipped = read_skipped(path)?;
    let df = reader.read_parallel(ParallelStrategy::RowGroups).finish().map_err(|e| cache_err(path, format!("cannot decode ({e}); delete the file")))?;
    let (ids, labels, values) = from_frame(path, &df)?;
    Ok(FeatureTable { key, ids, labels, values, skipped })
}

/// Read rows `[offset, offset + len)` of a cache file: the probes stream ImageNet-size sets this way.
pub fn read_rows(path: &Path, offset: usize, len: usize) -> Result<(Vec<u32>, Array2<f32>)> {
    let file = File::open(path).at(path)?;
    let df = ParquetReader::new(file)
        .with_columns(Some(vec!["label".into(), "feature".into()]))
        .with_slice(Some((offset, len)))
        .finish()?;
    let labels = labels_of(path, &df)?;
    Ok((labels, matrix_of(path, &df)?))
}

/// The `label` column alone.
pub fn read_labels(path: &Path) -> Result<Vec<u32>> {
    let file = File::open(path).at(path)?;
    let df = ParquetReader::new(file).with_columns(Some(vec!["label".into()])).finish()?;
    labels_of(path, &df)
}

/// Number of rows and the feature width, from the footer alone.
pub fn shape(path: &Path) -> Result<(usize, usize)> {
    let file = File::open(path).at(path)?;
    let mut reader = ParquetReader::new(file);
    let rows = reader.num_rows()?;
    let schema = reader.schema()?;
    let width = match schema.get("feature").map(|f| &f.dtype) {
        Some(ArrowDataType::FixedSizeList(_, w)) => *w,
        // f16 rows are bytes: the first row tells the width.
        Some(ArrowDataType::Binary | ArrowDataType::LargeBinary | ArrowDataType::BinaryView) if rows > 0 => {
            read_rows(path, 0, 1)?.1.ncols()
        }
        _ => return Err(cache_err(path, "no fixed-size or f16 `feature` column")),
    };
    Ok((rows, width))
}

fn labels_of(path: &Path, df: &DataFrame) -> Result<Vec<u32>> {
    let labels = df.column("label").map_err(|_| cache_err(path, "no `label` column"))?;
    let labels = labels.u32().map_err(|_| cache_err(path, "`label` must be u32"))?;
    labels.iter().map(|l| l.ok_or_else(|| cache_err(path, "null label"))).collect()
}

fn matrix_of(path: &Path, df: &DataFrame) -> Result<Array2<f32>> {
    let feature = df.column("feature").map_err(|_| cache_err(path, "no `feature` column"))?;
    let series = feature.as_materialized_series();
    if let Ok(binary) = series.binary() {
        return f16_matrix(path, binary, df.height());
    }
    let arr = series.array().map_err(|_| cache_err(path, "`feature` must be a fixed-size array of f32 or f16 bytes"))?;
    let width = arr.width();
    let leaf = arr.get_leaf_array();
    let leaf = leaf.f32().map_err(|_| cache_err(path, "`feature` values must be f32"))?;
    if leaf.null_count() > 0 {
        return Err(cache_err(path, "null feature values; delete the file"));
    }
    // One copy, chunk by chunk (a rechunk and a to_vec would copy twice: 0.5 s on 20k × 4096).
    let mut flat = Vec::with_capacity(df.height() * width);
    for chunk in leaf.downcast_iter() {
        flat.extend_from_slice(chunk.values().as_slice());
    }
    Array2::from_shape_vec((df.height(), width), flat).map_err(|e| cache_err(path, e.to_string()))
}

/// Rows of little-endian IEEE halves, all the same length.
fn f16_matrix(path: &Path, rows: &BinaryChunked, height: usize) -> Result<Array2<f32>> {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let width = rows.get(0).map_or(0, |b| b.len() / 2);
    let mut out = Array2::<f32>::zeros((height, width));
    // Row bytes are not 2-aligned: copy them into a u16 buffer, then convert the slice at once (half
    // uses the CPU's F16C instructions where present).
    let mut bits = vec![0u16; width];
    for (row, mut dst) in rows.iter().zip(out.rows_mut()) {
        let bytes = row.ok_or_else(|| cache_err(path, "null feature row; delete the file"))?;
        if bytes.len() != 2 * width {
            return Err(cache_err(path, "f16 feature rows differ in length; delete the file"));
        }
        for (b, pair) in bits.iter_mut().zip(bytes.chunks_exact(2)) {
            *b = u16::from_le_bytes([pair[0], pair[1]]);
        }
        let dst = dst.as_slice_mut().ok_or_else(|| cache_err(path, "internal: non-contiguous row"))?;
        bits.reinterpret_cast::<half::f16>().convert_to_f32_slice(dst);
    }
    Ok(out)
}

fn from_frame(path: &Path, df: &DataFrame) -> Result<(Vec<String>, Vec<u32>, Array2<f32>)> {
    let ids = df.column("id").map_err(|_| cache_err(path, "no `id` column"))?;
    let ids: Vec<String> = ids
        .str()
        .map_err(|_| cache_err(path, "`id` must be a string"))?
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect();
    Ok((ids, labels_of(path, df)?, matrix_of(path, df)?))
}

/// The cached file for `key` in `dir`, if present and valid.
pub fn lookup(dir: &Path, key: &CacheKey) -> Option<PathBuf> {
    let path = dir.join(key.file_name());
    match read_key(&path) {
        Ok(stored) if &stored == key => Some(path),
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
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

pub fn list(dir: &Path) -> Result<Vec<Result<CacheEntry>>> {
    Ok(cache_files(dir)?
        .into_iter()
        .map(|path| {
            let key = read_key(&path)?;
            let (rows, width) = shape(&path)?;
            let bytes = std::fs::metadata(&path).at(&path)?.len();
            Ok(CacheEntry { path, key, rows, width, bytes })
        })
        .collect())
}

/// Read every file completely: key matches name, protocol is current, values decode and are finite.
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
