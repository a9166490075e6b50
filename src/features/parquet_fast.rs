//! Reading bbeval's own cache files at memory speed.
//!
//! A cache file is uncompressed, and its `label` and `feature` columns are PLAIN-encoded: once the page
//! headers and level runs are skipped, a page holds the values back to back (f32 little-endian, or — for
//! f16 storage — length-prefixed rows of halves). Going through a general decoder costs a repetition level
//! per value (polars and arrow-rs both read such a 20,000 × 4096 file at ~250 MB/s); this reader maps the
//! file, walks the pages of the row groups asked for with the `parquet` crate's low-level page reader
//! (in parallel, one row group per task), checks that every definition level is the maximum (no nulls),
//! and copies the value bytes. Anything else — compression, dictionary pages, nulls, another layout —
//! returns `None`, and the caller takes the general polars path, so files written by other tools still
//! read.

use std::fs::File;
use std::hash::Hasher;
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::Page;
use parquet::file::reader::{FileReader, SerializedFileReader};
use rayon::prelude::*;

use super::key::Storage;
use crate::error::{Error, IoContext, Result};

fn cache_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Cache { path: path.into(), reason: reason.into() }
}

/// What the footer holds that bbeval reads: key-value metadata and the rows of each row group.
pub struct Footer {
    pub metadata: Vec<(String, String)>,
    pub row_groups: Vec<usize>,
}

/// The file mapped into memory as `Bytes`, so that pages are slices of it, not copies.
fn map(path: &Path) -> Result<Bytes> {
    let file = File::open(path).at(path)?;
    // SAFETY: cache files are written once under a temporary name and renamed into place, never modified
    // afterwards; a file truncated under us would fail the checksums of the row groups read from it.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.at(path)?;
    Ok(Bytes::from_owner(mmap))
}

fn open(path: &Path) -> Result<SerializedFileReader<Bytes>> {
    SerializedFileReader::new(map(path)?).map_err(|e| cache_err(path, format!("not a readable Parquet file ({e}); delete it")))
}

pub fn footer(path: &Path) -> Result<Footer> {
    let reader = open(path)?;
    let meta = reader.metadata();
    let metadata = meta
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().filter_map(|k| k.value.clone().map(|v| (k.key.clone(), v))).collect())
        .unwrap_or_default();
    let row_groups = meta.row_groups().iter().map(|rg| rg.num_rows() as usize).collect();
    Ok(Footer { metadata, row_groups })
}

/// A leaf column by its top-level name, with its level maxima.
struct Leaf {
    index: usize,
    max_def: i16,
    max_rep: i16,
}

fn leaf(reader: &SerializedFileReader<Bytes>, name: &str) -> Option<Leaf> {
    let schema = reader.metadata().file_metadata().schema_descr();
    let index = schema.columns().iter().position(|c| c.path().parts().first().is_some_and(|p| p == name))?;
    let c = schema.column(index);
    Some(Leaf { index, max_def: c.max_def_level(), max_rep: c.max_rep_level() })
}

/// Bits needed for levels up to `max`.
fn bit_width(max: i16) -> usize {
    (16 - (max as u16).leading_zeros()) as usize
}

fn uleb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The first `count` values of an RLE/bit-packed hybrid run of `width`-bit values (dictionary indices);
/// `None` when the data ends early.
fn decode_hybrid(mut data: &[u8], width: usize, count: usize) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let (header, used) = uleb128(data)?;
        data = &data[used..];
        if header & 1 == 0 {
            let run = (header >> 1) as usize;
            let bytes = width.div_ceil(8);
            let value = data.get(..bytes)?.iter().rev().fold(0u32, |v, &b| (v << 8) | u32::from(b));
            out.extend(std::iter::repeat_n(value, run.min(count - out.len())));
            data = &data[bytes..];
        } else {
            let values = (header >> 1) as usize * 8;
            let bytes = values * width / 8;
            let packed = data.get(..bytes)?;
            for i in 0..values.min(count - out.len()) {
                let bit = i * width;
                let mut v = 0u32;
                for b in 0..width {
                    let at = bit + b;
                    v |= u32::from((packed[at / 8] >> (at % 8)) & 1) << b;
                }
                out.push(v);
            }
            data = &data[bytes..];
        }
    }
    Some(out)
}

/// Whether the first `count` levels of an RLE/bit-packed hybrid run all equal `want`.
fn levels_all(mut data: &[u8], width: usize, count: usize, want: u32) -> bool {
    let mut seen = 0;
    while seen < count {
        let Some((header, used)) = uleb128(data) else { return false };
        data = &data[used..];
        if header & 1 == 0 {
            let run = (header >> 1) as usize;
            let bytes = width.div_ceil(8);
            if data.len() < bytes {
                return false;
            }
            let value = data[..bytes].iter().rev().fold(0u32, |v, &b| (v << 8) | u32::from(b));
            if run > 0 && value != want {
                return false;
            }
            data = &data[bytes..];
            seen += run;
        } else {
            let values = (header >> 1) as usize * 8;
            let bytes = values * width / 8;
            if data.len() < bytes {
                return false;
            }
            for i in 0..values.min(count - seen) {
                let bit = i * width;
                let mut v = 0u32;
                for b in 0..width {
                    let at = bit + b;
                    v |= u32::from((data[at / 8] >> (at % 8)) & 1) << b;
                }
                if v != want {
                    return false;
                }
            }
            data = &data[bytes..];
            seen += values;
        }
    }
    true
}

/// How a data page's values are encoded.
enum Values {
    /// Back to back.
    Plain(Bytes),
    /// Dictionary indices: a bit-width byte, then an RLE/bit-packed hybrid run of `count` indices.
    Indices(Bytes, usize),
}

/// The values of one uncompressed data page with no nulls (PLAIN, or dictionary indices); `None` for
/// anything else.
fn page_values(page: &Page, leaf: &Leaf) -> Option<Values> {
    let wrap = |encoding: &Encoding, body: Bytes, count: usize| match encoding {
        Encoding::PLAIN => Some(Values::Plain(body)),
        Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => Some(Values::Indices(body, count)),
        _ => None,
    };
    match page {
        Page::DataPage { buf, num_values, encoding, def_level_encoding, rep_level_encoding, .. } => {
            let mut at = 0usize;
            let mut section = |max: i16, enc: &Encoding| -> Option<Option<Bytes>> {
                if max == 0 {
                    return Some(None);
                }
                if *enc != Encoding::RLE || buf.len() < at + 4 {
                    return None;
                }
                let len = u32::from_le_bytes(buf[at..at + 4].try_into().ok()?) as usize;
                let body = buf.slice(at + 4..at + 4 + len.min(buf.len() - at - 4));
                at += 4 + len;
                Some(Some(body))
            };
            let _rep = section(leaf.max_rep, rep_level_encoding)?;
            let def = section(leaf.max_def, def_level_encoding)?;
            if let Some(def) = def {
                if !levels_all(&def, bit_width(leaf.max_def), *num_values as usize, leaf.max_def as u32) {
                    return None;
                }
            }
            if at > buf.len() {
                return None;
            }
            wrap(encoding, buf.slice(at..), *num_values as usize)
        }
        Page::DataPageV2 { buf, encoding, num_nulls: 0, num_values, def_levels_byte_len, rep_levels_byte_len, is_compressed: false, .. } => {
            let start = (*def_levels_byte_len + *rep_levels_byte_len) as usize;
            if start > buf.len() {
                return None;
            }
            wrap(encoding, buf.slice(start..), *num_values as usize)
        }
        _ => None,
    }
}

/// The data pages of column `leaf` in row group `rg`, and its dictionary page if it has one; `None` when
/// not a layout this reader knows.
fn column_pages(reader: &SerializedFileReader<Bytes>, rg: usize, leaf: &Leaf) -> Result<Option<(Option<Bytes>, Vec<Values>)>> {
    let meta = reader.metadata().row_group(rg).column(leaf.index);
    if meta.compression() != Compression::UNCOMPRESSED {
        return Ok(None);
    }
    let row_group = reader.get_row_group(rg).map_err(|e| cache_err(Path::new("?"), e.to_string()))?;
    let pages = row_group.get_column_page_reader(leaf.index).map_err(|e| cache_err(Path::new("?"), e.to_string()))?;
    let (mut dictionary, mut out) = (None, Vec::new());
    for page in pages {
        let Ok(page) = page else { return Ok(None) };
        if let Page::DictionaryPage { buf, .. } = &page {
            dictionary = Some(buf.clone());
            continue;
        }
        match page_values(&page, leaf) {
            Some(values) => out.push(values),
            None => return Ok(None),
        }
    }
    Ok(Some((dictionary, out)))
}

/// Value bytes of a column that must be PLAIN (the features).
fn column_values(reader: &SerializedFileReader<Bytes>, rg: usize, leaf: &Leaf) -> Result<Option<Vec<Bytes>>> {
    let Some((None, pages)) = column_pages(reader, rg, leaf)? else { return Ok(None) };
    Ok(pages.into_iter().map(|p| match p {
        Values::Plain(b) => Some(b),
        Values::Indices(..) => None,
    }).collect())
}

/// A u32 column (the labels), PLAIN or dictionary-encoded (polars dictionary-encodes small integers).
fn column_u32(reader: &SerializedFileReader<Bytes>, rg: usize, leaf: &Leaf) -> Result<Option<Vec<u32>>> {
    let Some((dictionary, pages)) = column_pages(reader, rg, leaf)? else { return Ok(None) };
    let words = |b: &[u8]| b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<u32>>();
    let dict = dictionary.as_deref().map(words);
    let mut out = Vec::new();
    for page in pages {
        match (page, &dict) {
            (Values::Plain(b), _) => out.extend(words(&b)),
            (Values::Indices(b, count), Some(dict)) => {
                let Some((&width, runs)) = b.split_first() else { return Ok(None) };
                let Some(indices) = decode_hybrid(runs, width as usize, count) else { return Ok(None) };
                for i in indices {
                    let Some(&v) = dict.get(i as usize) else { return Ok(None) };
                    out.push(v);
                }
            }
            (Values::Indices(..), None) => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Decodes stored feature bytes into f32 values while they are still in cache, hashing them first: one
/// pass over the mapped pages instead of copy → concatenate → checksum → decode.
struct GroupSink<'a> {
    /// `None` when the caller checks nothing (foreign files, or measuring the checksums' share).
    hasher: Option<twox_hash::XxHash3_64>,
    values: &'a mut [f32],
    at: usize,
    halves: Vec<half::f16>,
}

impl GroupSink<'_> {
    /// Block size for hashing then decoding: small enough to stay in L1/L2 between the two.
    const BLOCK: usize = 16 * 1024;

    /// f32 values, back to back; `None` when they overrun the group.
    fn f32_bytes(&mut self, bytes: &[u8]) -> Option<()> {
        if !bytes.len().is_multiple_of(4) || self.at + bytes.len() / 4 > self.values.len() {
            return None;
        }
        for block in bytes.chunks(Self::BLOCK) {
            if let Some(h) = &mut self.hasher {
                h.write(block);
            }
            let dst = &mut self.values[self.at..self.at + block.len() / 4];
            for (d, b) in dst.iter_mut().zip(block.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            self.at += block.len() / 4;
        }
        Some(())
    }

    /// One row of little-endian halves.
    fn f16_row(&mut self, bytes: &[u8]) -> Option<()> {
        use half::slice::HalfFloatSliceExt;
        let n = bytes.len() / 2;
        if self.at + n > self.values.len() {
            return None;
        }
        if let Some(h) = &mut self.hasher {
            h.write(bytes);
        }
        self.halves.clear();
        self.halves.extend(bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]])));
        self.halves.convert_to_f32_slice(&mut self.values[self.at..self.at + n]);
        self.at += n;
        Some(())
    }
}

/// Read row group `rg` into `labels` and `values` (its rows, already sized); the xxh3 digest of its labels
/// and stored feature bytes (0 when `hash` is false), or `None` when not the plain layout.
fn read_group(reader: &SerializedFileReader<Bytes>, rg: usize, (label, feature): (&Leaf, &Leaf), storage: Storage, hash: bool, labels: &mut [u32], values: &mut [f32]) -> Result<Option<u64>> {
    let Some(group_labels) = column_u32(reader, rg, label)? else { return Ok(None) };
    let Some(feature_pages) = column_values(reader, rg, feature)? else { return Ok(None) };
    if group_labels.len() != labels.len() {
        return Ok(None);
    }
    labels.copy_from_slice(&group_labels);
    // The same bytes in the same order as `cache::digest`: labels (u32 little-endian), then the stored features.
    let mut sink = GroupSink { hasher: hash.then(twox_hash::XxHash3_64::new), values, at: 0, halves: Vec::new() };
    if let Some(h) = &mut sink.hasher {
        for l in &group_labels {
            h.write(&l.to_le_bytes());
        }
    }
    let row_bytes = if labels.is_empty() { 0 } else { sink.values.len() / labels.len() * storage.value_bytes() };
    for page in &feature_pages {
        let ok = match storage {
            Storage::F32 => sink.f32_bytes(page),
            // BYTE_ARRAY PLAIN: a u32 length before each row's bytes.
            Storage::F16 => {
                let mut at = 0;
                let mut ok = Some(());
                while ok.is_some() && at + 4 <= page.len() {
                    let len = u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]]) as usize;
                    ok = (len == row_bytes && at + 4 + len <= page.len()).then_some(()).and_then(|_| sink.f16_row(&page[at + 4..at + 4 + len]));
                    at += 4 + len;
                }
                ok.filter(|_| at == page.len())
            }
        };
        if ok.is_none() {
            return Ok(None);
        }
    }
    Ok((sink.at == sink.values.len()).then(|| sink.hasher.map_or(0, |h| h.finish())))
}

/// Labels and f32 values of row groups `groups`, decoded straight into the final matrix (in parallel, one
/// row group per task); `check(g, digest)`, when given, is called for each row group with the xxh3 digest of
/// its labels and stored bytes, hashed while they are decoded, and its error (the first in row order) is
/// returned. `None` when the file is not in the plain layout this reader knows.
pub fn read_groups(
    path: &Path,
    groups: Range<usize>,
    width: usize,
    storage: Storage,
    check: Option<&(dyn Fn(usize, u64) -> Result<()> + Sync)>,
) -> Result<Option<(Vec<u32>, Vec<f32>)>> {
    let reader = open(path)?;
    let (Some(label), Some(feature)) = (leaf(&reader, "label"), leaf(&reader, "feature")) else { return Ok(None) };
    let counts: Vec<usize> = groups.clone().map(|rg| reader.metadata().row_group(rg).num_rows() as usize).collect();
    let n: usize = counts.iter().sum();
    // Zeroed by the allocator's fresh pages: costs nothing before the decode touches them.
    let mut labels = vec![0u32; n];
    let mut values = vec![0f32; n * width];
    let mut tasks = Vec::with_capacity(counts.len());
    let (mut label_rest, mut value_rest) = (labels.as_mut_slice(), values.as_mut_slice());
    for (rg, &rows) in groups.zip(&counts) {
        let (l, lr) = std::mem::take(&mut label_rest).split_at_mut(rows);
        let (v, vr) = std::mem::take(&mut value_rest).split_at_mut(rows * width);
        (label_rest, value_rest) = (lr, vr);
        tasks.push((rg, l, v));
    }
    let outcomes: Vec<Result<Option<()>>> = tasks
        .into_par_iter()
        .map(|(rg, l, v)| match (read_group(&reader, rg, (&label, &feature), storage, check.is_some(), l, v)?, check) {
            (Some(digest), Some(check)) => check(rg, digest).map(Some),
            (Some(_), None) => Ok(Some(())),
            (None, _) => Ok(None),
        })
        .collect();
    for outcome in outcomes {
        if outcome?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some((labels, values)))
}

/// Every label of the file; `None` when not the plain layout.
pub fn read_labels(path: &Path) -> Result<Option<Vec<u32>>> {
    let reader = open(path)?;
    let Some(label) = leaf(&reader, "label") else { return Ok(None) };
    let mut out = Vec::new();
    for rg in 0..reader.num_row_groups() {
        let Some(labels) = column_u32(&reader, rg, &label)? else { return Ok(None) };
        out.extend(labels);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_runs_are_checked_in_both_encodings() {
        // RLE run of 5 × value 3 (bit width 2): header 5 << 1, one value byte.
        assert!(levels_all(&[10, 3], 2, 5, 3));
        assert!(!levels_all(&[10, 2], 2, 5, 3));
        // Bit-packed: one group of 8 values of width 2, all 3 → 16 bits set.
        assert!(levels_all(&[3, 0xff, 0xff], 2, 8, 3));
        assert!(!levels_all(&[3, 0xff, 0x7f], 2, 8, 3));
        // Only the first `count` values of a padded group matter.
        assert!(levels_all(&[3, 0xff, 0x0f], 2, 6, 3));
    }

    #[test]
    fn dictionary_indices_decode_from_both_run_kinds() {
        // RLE run: 3 × index 2 (width 2); then one bit-packed group of 8: 0,1,2,3,0,1,2,3.
        let data = [6, 2, 3, 0b1110_0100, 0b1110_0100];
        assert_eq!(decode_hybrid(&data, 2, 11).unwrap(), vec![2, 2, 2, 0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(decode_hybrid(&data, 2, 12), None, "runs end before 12 values");
    }
}
