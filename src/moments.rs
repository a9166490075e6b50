//! Per-dimension mean and (biased) variance of a feature matrix, accumulated in f64. Shared by the
//! BN+CReLU head and the probes' standardisation, both of which are fit on training rows only.

use ndarray::{Array1, ArrayView2};

/// `(mean, variance)` of each column; variance divides by n (as BatchNorm and sklearn's StandardScaler).
pub fn column_moments(x: ArrayView2<f32>) -> (Array1<f64>, Array1<f64>) {
    let n = x.nrows().max(1) as f64;
    let mut sum = vec![0f64; x.ncols()];
    let mut sum2 = vec![0f64; x.ncols()];
    for row in x.rows() {
        for (j, &v) in row.iter().enumerate() {
            sum[j] += f64::from(v);
            sum2[j] += f64::from(v) * f64::from(v);
        }
    }
    let mean: Array1<f64> = sum.iter().map(|s| s / n).collect();
    let var: Array1<f64> = sum.iter().zip(&sum2).map(|(s, s2)| (s2 / n - (s / n) * (s / n)).max(0.0)).collect();
    (mean, var)
}
