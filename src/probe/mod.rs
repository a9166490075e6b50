//! Linear probes: multinomial logistic regression on feature matrices, never images.
//!
//! Two back-ends: [`linfa_backend`] (L-BFGS on CPU, the exact reference) and [`torch_backend`] (many heads
//! — an L2 × learning-rate grid — trained at once with one batched matmul per step, GPU when present).
//! Both minimise `mean CE + λ/2 ‖W‖²` (bias not penalised), i.e. scikit-learn's LogisticRegression with
//! `C = 1/(λ n)`. [`protocol`] chooses hyper-parameters on the train-val split and scores val once.

pub mod linfa_backend;
pub mod metrics;
pub mod protocol;
pub mod torch_backend;

use ndarray::{Array1, Array2, ArrayView2, Axis};

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
        let (mean, var) = crate::moments::column_moments(x);
        let inv_std = var.mapv(|v| if v > 1e-12 { (1.0 / v.sqrt()) as f32 } else { 0.0 });
        Standardiser { mean: mean.mapv(|v| v as f32), inv_std }
    }

    pub fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = x.to_owned();
        for mut row in out.axis_iter_mut(Axis(0)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = (*v - m) * s;
            }
        }
        out
    }
}
