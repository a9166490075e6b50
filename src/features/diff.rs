//! How far two feature files of the same images are apart: CPU vs CUDA, f32 vs bf16, two builds.

use serde::Serialize;

use super::cache::FeatureTable;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct FeatureDiff {
    pub rows: usize,
    pub width: usize,
    pub max_abs_diff: f64,
    /// `max_abs_diff` over the largest |value| of the first file.
    pub rel: f64,
    pub min_row_cosine: f64,
    pub mean_row_cosine: f64,
    /// Rows whose largest entry is in the same column (the same top-1 class for logits).
    pub same_argmax: usize,
}

/// Compare two tables row by row; their ids must be the same, in the same order.
pub fn diff(a: &FeatureTable, b: &FeatureTable) -> Result<FeatureDiff> {
    if a.ids != b.ids || a.width() != b.width() {
        return Err(Error::Cache {
            path: b.key.file_name().into(),
            reason: format!("holds other rows or width than {} ({} × {} vs {} × {}); compare files of the same images and feature", a.key.file_name(), a.len(), a.width(), b.len(), b.width()),
        });
    }
    let argmax = |r: ndarray::ArrayView1<f32>| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &v)| if v > m.1 { (i, v) } else { m }).0;
    let (mut max_abs, mut max_ref, mut min_cos, mut sum_cos, mut same) = (0f64, 0f64, 1f64, 0f64, 0);
    for (ra, rb) in a.values.rows().into_iter().zip(b.values.rows()) {
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        for (&x, &y) in ra.iter().zip(rb.iter()) {
            let (x, y) = (f64::from(x), f64::from(y));
            max_abs = max_abs.max((x - y).abs());
            max_ref = max_ref.max(x.abs());
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        let cos = if na == 0.0 && nb == 0.0 { 1.0 } else { dot / (na.sqrt() * nb.sqrt()).max(1e-300) };
        min_cos = min_cos.min(cos);
        sum_cos += cos;
        same += usize::from(argmax(ra) == argmax(rb));
    }
    Ok(FeatureDiff {
        rows: a.len(),
        width: a.width(),
        max_abs_diff: max_abs,
        rel: if max_ref > 0.0 { max_abs / max_ref } else { max_abs },
        min_row_cosine: min_cos,
        mean_row_cosine: sum_cos / a.len().max(1) as f64,
        same_argmax: same,
    })
}
