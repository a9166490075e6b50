//! The exact reference back-end: linfa-logistic's multinomial L-BFGS, in f64 on CPU, one fit per λ.
//!
//! linfa minimises `Σ CE + α/2 ‖W‖²`, so α = n·λ for our `mean CE + λ/2 ‖W‖²`.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2, ArrayView2};

use super::backend::{Backend, Head, ProbeBackend};
use super::source::{self, RowSource};
use super::LinearModel;
use crate::context::ExecutionContext;
use crate::error::{Error, Result};

/// The linfa back-end's checked settings (see `ProbeConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct Linfa {
    pub l2: Vec<f64>,
    pub max_iter: u64,
}

impl ProbeBackend for Linfa {
    fn kind(&self) -> Backend {
        Backend::Linfa
    }
    fn heads(&self) -> Vec<Head> {
        self.l2.iter().map(|&l2| Head { l2, lr: None }).collect()
    }
    /// Always on the CPU, from zero: linfa has neither devices nor warm starts.
    fn fit(&self, rows: &dyn RowSource, num_classes: usize, heads: &[Head], _init: Option<&[LinearModel]>, _ctx: &ExecutionContext) -> Result<Vec<LinearModel>> {
        let (x, y) = source::collect(rows)?;
        heads.iter().map(|h| fit(x.view(), &y, num_classes, h.l2, self.max_iter)).collect()
    }
}

pub fn fit(x: ArrayView2<f32>, y: &[u32], num_classes: usize, l2: f64, max_iter: u64) -> Result<LinearModel> {
    let n = x.nrows();
    let records: Array2<f64> = x.mapv(f64::from);
    let targets: Array1<usize> = y.iter().map(|&l| l as usize).collect();
    let dataset = linfa::Dataset::new(records, targets);
    let fitted = MultiLogisticRegression::default()
        .alpha(l2 * n as f64)
        .max_iterations(max_iter)
        .gradient_tolerance(1e-5)
        .fit(&dataset)
        .map_err(|e| Error::Linfa(e.to_string()))?;
    // linfa orders columns by the classes it saw; map them to class ids (absent classes score −∞-like).
    let mut w = Array2::<f32>::zeros((x.ncols(), num_classes));
    let mut b = Array1::<f32>::from_elem(num_classes, -1e9);
    for (col, &class) in fitted.classes().iter().enumerate() {
        w.column_mut(class).assign(&fitted.params().column(col).mapv(|v| v as f32));
        b[class] = fitted.intercept()[col] as f32;
    }
    Ok(LinearModel { w, b })
}
