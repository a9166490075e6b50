//! The Fréchet distance `|μ1−μ2|² + tr(Σ1 + Σ2 − 2(Σ1^½ Σ2 Σ1^½)^½)`.
//!
//! tr((Σ1^½ Σ2 Σ1^½)^½) = Σ √λᵢ over the eigenvalues of a symmetric PSD matrix similar to Σ1 Σ2. When Σ1
//! is positive definite, Σ1 = L Lᵀ (Cholesky) and Lᵀ Σ2 L is that matrix: one Cholesky, two products and
//! one eigenvalues-only symmetric decomposition. When Σ1 is singular (fewer samples than dimensions) the
//! Cholesky fails and Σ1^½ = U diag(√λ) Uᵀ comes from a full symmetric eigendecomposition instead. Tiny
//! negative eigenvalues from rounding are clamped to 0. Both avoid scipy.linalg.sqrtm's general Schur route
//! (and its regressions, pytorch-fid #100).

use faer::{Mat, Side};
use ndarray::Array2;

use super::Statistics;
use crate::error::{Error, Result};

fn to_faer(a: &Array2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn eig_err(e: impl std::fmt::Debug) -> Error {
    Error::Statistics(format!("eigendecomposition failed: {e:?}"))
}

pub fn frechet_distance(a: &Statistics, b: &Statistics) -> Result<f64> {
    let d = a.mu.len();
    if b.mu.len() != d || a.sigma.dim() != (d, d) || b.sigma.dim() != (d, d) {
        return Err(Error::Statistics(format!("statistics of different widths: {} and {}", d, b.mu.len())));
    }
    let diff = &a.mu - &b.mu;
    let mean_term = diff.dot(&diff);
    let s1 = to_faer(&a.sigma);
    let s2 = to_faer(&b.sigma);
    let m = match s1.llt(Side::Lower) {
        Ok(llt) => {
            let l = llt.L();
            l.transpose() * &s2 * l
        }
        Err(_) => {
            let e1 = s1.self_adjoint_eigen(Side::Lower).map_err(eig_err)?;
            let (u, lambda) = (e1.U(), e1.S().column_vector());
            let root = Mat::from_fn(d, d, |i, j| if i == j { lambda[i].max(0.0).sqrt() } else { 0.0 });
            let s1_half = u * &root * u.transpose();
            &s1_half * &s2 * &s1_half
        }
    };
    // Symmetrise away rounding before the second symmetric eigendecomposition.
    let m = Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let trace_sqrt: f64 = m.self_adjoint_eigenvalues(Side::Lower).map_err(eig_err)?.iter().map(|l| l.max(0.0).sqrt()).sum();
    let trace = a.sigma.diag().sum() + b.sigma.diag().sum();
    Ok(mean_term + trace - 2.0 * trace_sqrt)
}
