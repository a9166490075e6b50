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
        let n = x.nrows().max(1) as f64;
        let mut sum = vec![0f64; x.ncols()];
        let mut sum2 = vec![0f64; x.ncols()];
        for row in x.rows() {
            for (j, &v) in row.iter().enumerate() {
                sum[j] += f64::from(v);
                sum2[j] += f64::from(v) * f64::from(v);
            }
        }
        let mean: Array1<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let inv_std: Array1<f32> = sum
            .iter()
            .zip(&sum2)
            .map(|(s, s2)| {
                let var = (s2 / n - (s / n) * (s / n)).max(0.0);
                if var > 1e-12 { (1.0 / var.sqrt()) as f32 } else { 0.0 }
            })
            .collect();
        Standardiser { mean, inv_std }
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
