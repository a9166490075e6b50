//! Linear probes: multinomial logistic regression on feature matrices, never images or datasets.
//!
//! Every back-end minimises `mean CE + λ/2 ‖W‖²` (bias not penalised), i.e. scikit-learn's
//! LogisticRegression with `C = 1/(λ n)`. [`backend`] is the extension point (the `ProbeBackend` trait and
//! the `[probe]` settings); [`lbfgs`] fits every λ head at once by full-batch L-BFGS, [`sgd`] every
//! (λ, lr) head at once by mini-batch SGD over streamed chunks, [`linfa_backend`] is the exact f64
//! reference. [`protocol`] chooses hyper-parameters on the train-val split and scores val once;
//! [`transform`] holds the BN+CReLU and standardisation fit on training rows; [`source`] serves rows chunk
//! by chunk from memory or the Parquet cache.

pub mod backend;
pub mod config;
pub mod lbfgs;
pub mod linfa_backend;
pub mod metrics;
pub mod protocol;
pub mod sgd;
pub mod source;
pub mod transform;

use ndarray::{Array1, Array2, ArrayView2};
use tch::{Device, Kind, Tensor};

pub use backend::{Backend, Head, ProbeBackend};
pub use config::{ProbeConfig, ValidProbe};
use source::{Chunk, RowSource};
pub use transform::{BnCrelu, Standardiser, Transform};

use crate::error::{Error, Result};

/// `scores = x · w + b`, with `w` of shape `width × classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub w: Array2<f32>,
    pub b: Array1<f32>,
}

impl LinearModel {
    pub fn scores(&self, x: ArrayView2<f32>) -> Array2<f32> {
        x.dot(&self.w) + &self.b
    }
}

/// A fit needs rows and at least one head.
fn check_fit_inputs(src: &dyn RowSource, heads: &[Head]) -> Result<()> {
    if src.is_empty() || heads.is_empty() {
        return Err(Error::TooFewRows { rows: src.len(), held_out: 0 });
    }
    Ok(())
}

/// A row-major matrix as a `[rows, cols]` f32 tensor on `device`.
fn matrix_tensor(x: ArrayView2<f32>, device: Device) -> Result<Tensor> {
    let x = x.as_standard_layout();
    let (rows, cols) = (x.nrows() as i64, x.ncols() as i64);
    // as_standard_layout is contiguous, so as_slice always succeeds; the fallback copies.
    let t = match x.as_slice() {
        Some(slice) => Tensor::f_from_slice(slice)?,
        None => Tensor::f_from_slice(&x.iter().copied().collect::<Vec<f32>>())?,
    };
    Ok(t.f_view([rows, cols])?.f_to_device(device)?)
}

/// Features `[rows, width]` (f32) and labels `[rows]` (i64) on `device`.
fn rows_tensors(values: ArrayView2<f32>, labels: &[u32], device: Device) -> Result<(Tensor, Tensor)> {
    let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Ok((matrix_tensor(values, device)?, Tensor::f_from_slice(&labels)?.f_to_device(device)?))
}

/// A chunk's features and labels on `device`.
fn chunk_tensors(chunk: &Chunk, device: Device) -> Result<(Tensor, Tensor)> {
    rows_tensors(chunk.values.view(), &chunk.labels, device)
}

/// Heads stacked as weights `[H, D, C]` and biases `[H, C]` (any device) → one model per head.
fn models_from_stacked(w: &Tensor, b: &Tensor, d: usize, c: usize) -> Result<Vec<LinearModel>> {
    let w = w.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
    let b = b.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
    let wv = Vec::<f32>::try_from(&w.f_flatten(0, -1)?)?;
    let bv = Vec::<f32>::try_from(&b.f_flatten(0, -1)?)?;
    let heads = bv.len() / c.max(1);
    (0..heads)
        .map(|i| {
            let w = Array2::from_shape_vec((d, c), wv[i * d * c..(i + 1) * d * c].to_vec()).map_err(|e| Error::Torch(tch::TchError::Shape(e.to_string())))?;
            Ok(LinearModel { w, b: Array1::from(bv[i * c..(i + 1) * c].to_vec()) })
        })
        .collect()
}
