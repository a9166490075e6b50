//! Mean and covariance in f64, updated batch by batch (Chan et al.'s pairwise update), and their
//! pytorch-fid/TTUR-compatible `.npz` form (`mu`, `sigma`).

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2, Axis};
use ndarray_npy::{NpzReader, NpzWriter};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct RunningStats {
    n: usize,
    mean: Array1<f64>,
    /// Sum of outer products of deviations from the mean.
    m2: Array2<f64>,
}

impl RunningStats {
    pub fn new(dim: usize) -> RunningStats {
        RunningStats { n: 0, mean: Array1::zeros(dim), m2: Array2::zeros((dim, dim)) }
    }

    pub fn update(&mut self, batch: ArrayView2<f32>) {
        let nb = batch.nrows();
        if nb == 0 {
            return;
        }
        let x = batch.mapv(f64::from);
        let mean_b = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
        let centred = &x - &mean_b;
        let m2_b = centred.t().dot(&centred);
        let (na, nbf) = (self.n as f64, nb as f64);
        let n = na + nbf;
        let delta = &mean_b - &self.mean;
        let outer = delta.view().insert_axis(Axis(1)).dot(&delta.view().insert_axis(Axis(0)));
        self.m2 = &self.m2 + &m2_b + &(outer * (na * nbf / n));
        self.mean = &self.mean + &(delta * (nbf / n));
        self.n += nb;
    }

    /// Mean and unbiased covariance (as `np.cov(rowvar=False)`).
    pub fn finish(&self) -> Result<Statistics> {
        if self.n < 2 {
            return Err(Error::Statistics(format!("statistics need at least 2 samples, got {}", self.n)));
        }
        Ok(Statistics { mu: self.mean.clone(), sigma: &self.m2 / (self.n as f64 - 1.0), n: self.n })
    }
}

#[derive(Debug, Clone)]
pub struct Statistics {
    pub mu: Array1<f64>,
    pub sigma: Array2<f64>,
    /// Samples behind the statistics (0 when loaded from a file that does not say).
    pub n: usize,
}

impl Statistics {
    /// The warning a report must carry when the covariance is singular: fewer samples than dimensions
    /// (2048 for the FID Inception, `FID_FULL_RANK_SAMPLES`).
    pub fn warning(&self) -> Option<String> {
        let d = self.mu.len();
        (self.n > 0 && self.n < d).then(|| {
            format!("statistics from {} samples < {d} dimensions: the covariance is singular and FID is biased upwards; use ≥ {d} samples", self.n)
        })
    }

    pub fn save_npz(&self, path: &Path) -> Result<()> {
        let fail = |e: String| Error::Cache { path: path.into(), reason: e };
        let tmp = path.with_extension("npz.tmp");
        {
            let file = std::fs::File::create(&tmp).map_err(|e| fail(e.to_string()))?;
            let mut npz = NpzWriter::new(file);
            npz.add_array("mu", &self.mu).map_err(|e| fail(e.to_string()))?;
            npz.add_array("sigma", &self.sigma).map_err(|e| fail(e.to_string()))?;
            npz.add_array("n", &ndarray::arr0(self.n as i64)).map_err(|e| fail(e.to_string()))?;
            npz.finish().map_err(|e| fail(e.to_string()))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
    }

    /// Read `mu` and `sigma` (f64 or f32) from a pytorch-fid/TTUR or bbeval `.npz`.
    pub fn load_npz(path: &Path) -> Result<Statistics> {
        let fail = |e: String| Error::Cache { path: path.into(), reason: format!("{e}; expected an .npz with `mu` [D] and `sigma` [D, D]") };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut npz = NpzReader::new(file).map_err(|e| fail(e.to_string()))?;
        let mu: Array1<f64> = match npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix1>("mu") {
            Ok(m) => m,
            Err(_) => npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix1>("mu").map_err(|e| fail(e.to_string()))?.mapv(f64::from),
        };
        let sigma: Array2<f64> = match npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix2>("sigma") {
            Ok(s) => s,
            Err(_) => npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix2>("sigma").map_err(|e| fail(e.to_string()))?.mapv(f64::from),
        };
        let n = npz.by_name::<ndarray::OwnedRepr<i64>, ndarray::Ix0>("n").map(|a| a.into_scalar().max(0) as usize).unwrap_or(0);
        if sigma.dim() != (mu.len(), mu.len()) {
            return Err(fail(format!("sigma is {:?} but mu has {} entries", sigma.dim(), mu.len())));
        }
        Ok(Statistics { mu, sigma, n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn streaming_equals_two_pass_covariance() {
        let x = array![[1.0f32, 2.0], [3.0, 1.0], [0.0, 5.0], [2.0, 2.0], [7.0, -1.0]];
        let mut r = RunningStats::new(2);
        r.update(x.slice(ndarray::s![..2, ..]));
        r.update(x.slice(ndarray::s![2..3, ..]));
        r.update(x.slice(ndarray::s![3.., ..]));
        let s = r.finish().unwrap();
        // numpy: x.mean(0) = [2.6, 1.8]; np.cov(x, rowvar=False) = [[7.3, -5.35], [-5.35, 4.7]]
        assert!((s.mu[0] - 2.6).abs() < 1e-12 && (s.mu[1] - 1.8).abs() < 1e-12);
        for (got, want) in s.sigma.iter().zip([7.3, -5.35, -5.35, 4.7]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }
}
