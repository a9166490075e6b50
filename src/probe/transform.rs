//! BN+CReLU from AvePool: `[ReLU(BN(h)), ReLU(−BN(h))]`, doubling the width (BigBiGAN §4.1).
//!
//! When an encoder outputs only `avepool`, BN uses the per-dimension mean and (biased) variance of the
//! **training split** the probe is fit on, no affine, eps `config::BN_EPS`. An encoder's own `bn_crelu`
//! output (e.g. BigBiGAN's) uses its internal statistics instead.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::config::BN_EPS;

#[derive(Debug, Clone)]
pub struct BnCrelu {
    pub mean: Array1<f32>,
    pub var: Array1<f32>,
}

impl BnCrelu {
    /// Statistics of the training rows.
    pub fn fit(train: ArrayView2<f32>) -> BnCrelu {
        BnCrelu::from_moments(crate::moments::column_moments(train))
    }

    pub fn from_moments((mean, var): (Array1<f64>, Array1<f64>)) -> BnCrelu {
        BnCrelu { mean: mean.mapv(|v| v as f32), var: var.mapv(|v| v as f32) }
    }

    pub fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let d = x.ncols();
        let mut out = Array2::<f32>::zeros((x.nrows(), 2 * d));
        let inv_std: Vec<f32> = self.var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
        for (row, mut dst) in x.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
            for j in 0..d {
                let b = (row[j] - self.mean[j]) * inv_std[j];
                dst[j] = b.max(0.0);
                dst[d + j] = (-b).max(0.0);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn crelu_splits_signs_of_the_normalised_value() {
        // Column 0: mean 2, var 1 → values −1, +1; column 1 constant → 0.
        let x = array![[1.0f32, 5.0], [3.0, 5.0]];
        let head = BnCrelu::fit(x.view());
        let y = head.apply(x.view());
        let s = 1.0 / (1.0f32 + BN_EPS).sqrt();
        assert_eq!(y.shape(), &[2, 4]);
        assert!((y[[0, 0]] - 0.0).abs() < 1e-7 && (y[[0, 2]] - s).abs() < 1e-6);
        assert!((y[[1, 0]] - s).abs() < 1e-6 && (y[[1, 2]] - 0.0).abs() < 1e-7);
        assert_eq!((y[[0, 1]], y[[0, 3]]), (0.0, 0.0));
    }
}
