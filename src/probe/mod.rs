//! Linear probes: multinomial logistic regression on feature matrices, never images.
//!
//! Two back-ends: [`linfa_backend`] (L-BFGS on CPU, the exact reference) and [`torch_backend`] (many heads
//! — an L2 × learning-rate grid — trained at once with one batched matmul per step, GPU when present).
//! Both minimise `mean CE + λ/2 ‖W‖²` (bias not penalised), i.e. scikit-learn's LogisticRegression with
//! `C = 1/(λ n)`. [`protocol`] chooses hyper-parameters on the train-val split and scores val once.

pub mod linfa_backend;
pub mod metrics;
pub mod protocol;
pub mod source;
pub mod torch_backend;

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::encoder::BnCrelu;
use crate::error::Result;
use crate::moments::ColumnMoments;
use source::{Prepared, RowSource};

/// `scores = x · w + b`, with `w` of shape `width × classes`.
#[derive(Debug, Clone)]
pub struct LinearModel {
    pub w: Array2<f32>,
    pub b: Array1<f32>,
}

impl LinearModel {
    pub fn scores(&self, x: ArrayView2<f32>) -> Array2<f32> {
        x.dot(&self.w) + &self.b
    }
}

/// Per-dimension standardisation with training statistics (constant dimensions map to 0).
#[derive(Debug, Clone)]
pub struct Standardiser {
    pub mean: Array1<f32>,
    pub inv_std: Array1<f32>,
}

impl Standardiser {
    pub fn fit(x: ArrayView2<f32>) -> Standardiser {
        Standardiser::from_moments(crate::moments::column_moments(x))
    }

    pub fn from_moments((mean, var): (Array1<f64>, Array1<f64>)) -> Standardiser {
        let inv_std = var.mapv(|v| if v > 1e-12 { (1.0 / v.sqrt()) as f32 } else { 0.0 });
        Standardiser { mean: mean.mapv(|v| v as f32), inv_std }
    }

    pub fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = x.to_owned();
        self.apply_in_place(&mut out);
        out
    }

    pub fn apply_in_place(&self, x: &mut Array2<f32>) {
        for mut row in x.axis_iter_mut(Axis(0)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = (*v - m) * s;
            }
        }
    }
}

/// BN+CReLU (optional) then standardisation, both fit on training rows only.
#[derive(Debug, Clone)]
pub struct Transform {
    bn: Option<BnCrelu>,
    /// `None` only while the transform is being fit.
    std: Option<Standardiser>,
}

impl Transform {
    /// Fit on the rows of `src` that `keep` selects: one streaming pass per stage (two with BN+CReLU).
    pub fn fit(src: &dyn RowSource, keep: Option<&[bool]>, bn_crelu: bool) -> Result<Transform> {
        let bn = if bn_crelu { Some(BnCrelu::from_moments(moments(&Prepared::new(src, keep, None))?)) } else { None };
        let mut transform = Transform { bn, std: None };
        let std = Standardiser::from_moments(moments(&Prepared::new(src, keep, Some(&transform)))?);
        transform.std = Some(std);
        Ok(transform)
    }

    pub fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut x = match &self.bn {
            Some(head) => head.apply(x),
            None => x.to_owned(),
        };
        if let Some(std) = &self.std {
            std.apply_in_place(&mut x);
        }
        x
    }

    pub fn output_width(&self, input: usize) -> usize {
        if self.bn.is_some() { 2 * input } else { input }
    }
}

fn moments(src: &dyn RowSource) -> Result<(Array1<f64>, Array1<f64>)> {
    let mut m = ColumnMoments::default();
    for i in 0..src.chunk_count() {
        m.add(src.chunk(i)?.values.view());
    }
    Ok(m.finish())
}
