//! Where a probe's rows come from, one chunk at a time: a matrix already in memory, or a Parquet cache
//! file read about `chunk_rows` rows (whole row groups) at a time, so an ImageNet-size set (1.28M × 4096 f32 = 21 GB) never has to
//! be in memory at once. [`Prepared`] puts a row selection (the train-val split) and the fitted
//! [`Transform`] (BN+CReLU, standardisation) in front of either, chunk by chunk.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis, CowArray, Ix2};

use super::Transform;
use crate::error::{Error, Result};
use crate::features::FeatureFile;

/// Consecutive rows of a source: `offset` is the global index of its first row.
pub struct Chunk<'a> {
    pub offset: usize,
    pub labels: Cow<'a, [u32]>,
    pub values: CowArray<'a, f32, Ix2>,
}

pub trait RowSource: Sync {
    /// Where the rows come from, for error messages.
    fn describe(&self) -> String;
    fn width(&self) -> usize;
    fn chunk_count(&self) -> usize;
    /// Rows in chunk `i`, known without reading it.
    fn chunk_len(&self, i: usize) -> usize;
    fn chunk(&self, i: usize) -> Result<Chunk<'_>>;

    fn len(&self) -> usize {
        (0..self.chunk_count()).map(|i| self.chunk_len(i)).sum()
    }
    /// Every label, in row order.
    fn all_labels(&self) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.chunk_count() {
            out.extend_from_slice(&self.chunk(i)?.labels);
        }
        Ok(out)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn chunk_bounds(n: usize, chunk_rows: usize, i: usize) -> (usize, usize) {
    let start = i * chunk_rows;
    (start, chunk_rows.min(n.saturating_sub(start)))
}

/// A matrix in memory, served as chunks of views (no copies).
pub struct InMemory<'a> {
    pub name: String,
    pub values: ArrayView2<'a, f32>,
    pub labels: &'a [u32],
    pub chunk_rows: usize,
}

impl RowSource for InMemory<'_> {
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn width(&self) -> usize {
        self.values.ncols()
    }
    fn chunk_count(&self) -> usize {
        self.values.nrows().div_ceil(self.chunk_rows.max(1))
    }
    fn chunk_len(&self, i: usize) -> usize {
        chunk_bounds(self.values.nrows(), self.chunk_rows.max(1), i).1
    }
    fn chunk(&self, i: usize) -> Result<Chunk<'_>> {
        let (start, len) = chunk_bounds(self.values.nrows(), self.chunk_rows.max(1), i);
        Ok(Chunk {
            offset: start,
            labels: Cow::Borrowed(&self.labels[start..start + len]),
            values: CowArray::from(self.values.slice(ndarray::s![start..start + len, ..])),
        })
    }
}

/// A Parquet cache file, read a few row groups (about `chunk_rows` rows) per chunk, each checked against
/// its checksum as it is read.
pub struct ParquetRows {
    file: FeatureFile,
    /// Row groups of each chunk.
    chunks: Vec<Range<usize>>,
}

impl ParquetRows {
    /// A bbeval cache file or any file in its documented schema (see `FeatureFile::open_any`).
    pub fn open(path: &Path, chunk_rows: usize) -> Result<ParquetRows> {
        Ok(Self::from_file(FeatureFile::open_any(path)?, chunk_rows))
    }

    /// Rows of a feature file already opened, read `chunk_rows` at a time (whole row groups).
    pub fn from_file(file: FeatureFile, chunk_rows: usize) -> ParquetRows {
        let mut chunks = Vec::new();
        let (mut start, mut rows) = (0, 0);
        for (g, &n) in file.layout.row_groups.iter().enumerate() {
            rows += n;
            if rows >= chunk_rows.max(1) {
                chunks.push(start..g + 1);
                (start, rows) = (g + 1, 0);
            }
        }
        if start < file.row_group_count() {
            chunks.push(start..file.row_group_count());
        }
        ParquetRows { file, chunks }
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

impl RowSource for ParquetRows {
    fn describe(&self) -> String {
        self.file.path.display().to_string()
    }
    fn width(&self) -> usize {
        self.file.width()
    }
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
    fn chunk_len(&self, i: usize) -> usize {
        self.file.row_range(self.chunks[i].clone()).len()
    }
    fn chunk(&self, i: usize) -> Result<Chunk<'_>> {
        let offset = self.file.row_range(self.chunks[i].clone()).start;
        let (labels, values) = self.file.read_groups(self.chunks[i].clone())?;
        Ok(Chunk { offset, labels: Cow::Owned(labels), values: CowArray::from(values) })
    }
    fn all_labels(&self) -> Result<Vec<u32>> {
        self.file.read_labels()
    }
}

/// Stop at the first NaN/Inf value, naming its row and source.
pub fn check_finite(src: &dyn RowSource) -> Result<()> {
    for i in 0..src.chunk_count() {
        finite_chunk(src, &src.chunk(i)?)?;
    }
    Ok(())
}

fn finite_chunk(src: &dyn RowSource, chunk: &Chunk) -> Result<()> {
    if let Some(row) = chunk.values.rows().into_iter().position(|r| r.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFiniteFeature { source_name: src.describe(), row: chunk.offset + row });
    }
    Ok(())
}

/// A source seen through a row selection and a transform, chunk by chunk. Chunk `i` holds the kept rows
/// of the inner chunk `i`, transformed; its `offset` is the inner one (global row numbering).
pub struct Prepared<'a> {
    inner: &'a dyn RowSource,
    /// `keep[row]` for every global row; `None` keeps all.
    keep: Option<&'a [bool]>,
    transform: Option<&'a Transform>,
    lens: Vec<usize>,
}

impl<'a> Prepared<'a> {
    pub fn new(inner: &'a dyn RowSource, keep: Option<&'a [bool]>, transform: Option<&'a Transform>) -> Prepared<'a> {
        let mut offset = 0;
        let lens = (0..inner.chunk_count())
            .map(|i| {
                let len = inner.chunk_len(i);
                let kept = keep.map_or(len, |k| k[offset..offset + len].iter().filter(|&&b| b).count());
                offset += len;
                kept
            })
            .collect();
        Prepared { inner, keep, transform, lens }
    }
}

impl RowSource for Prepared<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn width(&self) -> usize {
        self.transform.map_or(self.inner.width(), |t| t.output_width(self.inner.width()))
    }
    fn chunk_count(&self) -> usize {
        self.lens.len()
    }
    fn chunk_len(&self, i: usize) -> usize {
        self.lens[i]
    }
    fn chunk(&self, i: usize) -> Result<Chunk<'_>> {
        let chunk = self.inner.chunk(i)?;
        finite_chunk(self.inner, &chunk)?;
        let (labels, values) = match self.keep {
            None => (chunk.labels, chunk.values),
            Some(keep) => {
                let rows: Vec<usize> =
                    (0..chunk.values.nrows()).filter(|&r| keep[chunk.offset + r]).collect();
                let labels: Vec<u32> = rows.iter().map(|&r| chunk.labels[r]).collect();
                (Cow::Owned(labels), CowArray::from(chunk.values.select(Axis(0), &rows)))
            }
        };
        let values = match self.transform {
            Some(t) => CowArray::from(t.apply(values.view())),
            None => values,
        };
        Ok(Chunk { offset: chunk.offset, labels, values })
    }
}

/// All rows of a source as one matrix (full-batch back-ends need them at once), filled chunk by chunk
/// into one allocation.
pub fn collect(src: &dyn RowSource) -> Result<(Array2<f32>, Vec<u32>)> {
    let mut values = Array2::<f32>::zeros((src.len(), src.width()));
    let mut labels = Vec::with_capacity(src.len());
    let mut at = 0;
    for i in 0..src.chunk_count() {
        let chunk = src.chunk(i)?;
        let rows = chunk.values.nrows();
        values.slice_mut(ndarray::s![at..at + rows, ..]).assign(&chunk.values);
        labels.extend_from_slice(&chunk.labels);
        at += rows;
    }
    Ok((values, labels))
}
