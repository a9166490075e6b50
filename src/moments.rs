//! Per-dimension mean and (biased) variance of feature rows, accumulated in f64 and fed chunk by chunk.
//! Shared by the BN+CReLU head and the probes' standardisation, both fit on training rows only.

use ndarray::{Array1, ArrayView2};

/// Running column sums; the result does not depend on how the rows were split into chunks.
#[derive(Debug, Clone, Default)]
pub struct ColumnMoments {
    n: usize,
    sum: Vec<f64>,
    sum2: Vec<f64>,
}

impl ColumnMoments {
    pub fn add(&mut self, x: ArrayView2<f32>) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; x.ncols()];
            self.sum2 = vec![0.0; x.ncols()];
        }
        for row in x.rows() {
            for (j, &v) in row.iter().enumerate() {
                self.sum[j] += f64::from(v);
                self.sum2[j] += f64::from(v) * f64::from(v);
            }
        }
        self.n += x.nrows();
    }

    /// `(mean, variance)`; variance divides by n (as BatchNorm and sklearn's StandardScaler).
    pub fn finish(&self) -> (Array1<f64>, Array1<f64>) {
        let n = self.n.max(1) as f64;
        let mean: Array1<f64> = self.sum.iter().map(|s| s / n).collect();
        let var: Array1<f64> =
            self.sum.iter().zip(&self.sum2).map(|(s, s2)| (s2 / n - (s / n) * (s / n)).max(0.0)).collect();
        (mean, var)
    }
}

/// `(mean, variance)` of each column of one matrix.
pub fn column_moments(x: ArrayView2<f32>) -> (Array1<f64>, Array1<f64>) {
    let mut m = ColumnMoments::default();
    m.add(x);
    m.finish()
}
