//! What the probe does to features before fitting, always with statistics of the rows it is fit on:
//! BN+CReLU from AvePool (optional) and per-dimension standardisation.
//!
//! BN+CReLU is `[ReLU(BN(h)), ReLU(−BN(h))]`, doubling the width (BigBiGAN §4.1). When an encoder outputs
//! only `avepool`, BN uses the per-dimension mean and (biased) variance of the **training rows the probe
//! is fit on**, no affine, eps `protocol::BN_EPS`. An encoder's own `bn_crelu` output (e.g. BigBiGAN's)
//! uses its internal statistics instead and never passes through here.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::source::{Prepared, RowSource};
use crate::error::Result;
use crate::moments::ColumnMoments;
use crate::protocol::BN_EPS;

/// Per-dimension `(x − mean) · inv_std`, from column moments of training rows.
#[derive(Debug, Clone)]
pub struct Standardiser {
    pub mean: Array1<f32>,
    pub inv_std: Array1<f32>,
}

impl Standardiser {
    pub fn fit(x: ArrayView2<f32>) -> Standardiser {
        Standardiser::from_moments(crate::moments::column_moments(x))
    }

    /// As scikit-learn's StandardScaler: constant dimensions map to 0.
    pub fn from_moments((mean, var): (Array1<f64>, Array1<f64>)) -> Standardiser {
        let inv_std = var.mapv(|v| if v > 1e-12 { (1.0 / v.sqrt()) as f32 } else { 0.0 });
        Standardiser { mean: mean.mapv(|v| v as f32), inv_std }
    }

    /// As BatchNorm without affine: `1 / sqrt(var + eps)`.
    pub fn batch_norm((mean, var): (Array1<f64>, Array1<f64>), eps: f32) -> Standardiser {
        Standardiser { mean: mean.mapv(|v| v as f32), inv_std: var.mapv(|v| 1.0 / (v as f32 + eps).sqrt()) }
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

/// BN (training statistics, no affine) then CReLU.
#[derive(Debug, Clone)]
pub struct BnCrelu {
    pub bn: Standardiser,
}

impl BnCrelu {
    /// Statistics of the training rows.
    pub fn fit(train: ArrayView2<f32>) -> BnCrelu {
        BnCrelu::from_moments(crate::moments::column_moments(train))
    }

    pub fn from_moments(moments: (Array1<f64>, Array1<f64>)) -> BnCrelu {
        BnCrelu { bn: Standardiser::batch_norm(moments, BN_EPS) }
    }

    pub fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let d = x.ncols();
        let mut out = Array2::<f32>::zeros((x.nrows(), 2 * d));
        for (row, mut dst) in x.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
            for j in 0..d {
                let b = (row[j] - self.bn.mean[j]) * self.bn.inv_std[j];
                dst[j] = b.max(0.0);
                dst[d + j] = (-b).max(0.0);
            }
        }
        out
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

    #[test]
    fn standardiser_zeroes_constant_columns() {
        let x = array![[1.0f32, 5.0], [3.0, 5.0]];
        let y = Standardiser::fit(x.view()).apply(x.view());
        assert_eq!(y, array![[-1.0f32, 0.0], [1.0, 0.0]]);
    }
}
