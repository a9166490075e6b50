//! The evaluation protocol: choose hyper-parameters on the train-val split (held out of train, seeded),
//! retrain on all of train, score the official val split once. Nothing is ever chosen on val.

use std::collections::BTreeSet;
use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::metrics::{accuracy, bootstrap_ci, per_class, topk_correct};
use super::torch_backend::{self, Head, TorchOptions};
use super::{linfa_backend, LinearModel, Standardiser};
use crate::config::{Backend, ProbeConfig, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use crate::data::split::train_val_split;
use crate::encoder::BnCrelu;
use crate::error::{Error, Result};
use crate::features::FeatureTable;

/// What the protocol needs besides the features.
#[derive(Debug, Clone)]
pub struct ProbeSetup {
    pub config: ProbeConfig,
    /// Train rows held out for model selection.
    pub train_val: usize,
    pub split_seed: u64,
    /// Compute BN+CReLU from these AvePool features with training-split statistics.
    pub bn_crelu_from_avepool: bool,
    pub device: Device,
}

/// One point of the hyper-parameter grid and its train-val top-1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GridPoint {
    pub l2: f64,
    /// Learning rate (libtorch back-end only).
    pub lr: Option<f64>,
    pub train_val_top1: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub backend: Backend,
    pub top1: f64,
    pub top5: f64,
    /// Percentile bootstrap 95% interval of val top-1.
    pub top1_ci95: (f64, f64),
    /// Train-val top-1 of the chosen hyper-parameters (Table 1's "Cls.").
    pub train_val_top1: f64,
    pub chosen: GridPoint,
    pub grid: Vec<GridPoint>,
    pub per_class_top1: Vec<Option<f64>>,
    pub n_train: usize,
    pub n_fit: usize,
    pub n_train_val: usize,
    pub n_val: usize,
    pub num_classes: usize,
    pub seconds: f64,
}

/// BN+CReLU (optional) then standardisation, both fit on training rows only.
struct Transform {
    bn: Option<BnCrelu>,
    std: Standardiser,
}

impl Transform {
    fn fit(x: ArrayView2<f32>, bn_crelu: bool) -> Transform {
        let bn = bn_crelu.then(|| BnCrelu::fit(x));
        let std = match &bn {
            Some(head) => Standardiser::fit(head.apply(x).view()),
            None => Standardiser::fit(x),
        };
        Transform { bn, std }
    }

    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        match &self.bn {
            Some(head) => self.std.apply(head.apply(x).view()),
            None => self.std.apply(x),
        }
    }
}

fn check_inputs(train: &FeatureTable, val: &FeatureTable) -> Result<()> {
    if train.width() != val.width() {
        return Err(Error::WidthMismatch { train: train.width(), other_split: "val".into(), other: val.width() });
    }
    let seen: BTreeSet<u32> = train.labels.iter().copied().collect();
    if let Some(&label) = val.labels.iter().find(|l| !seen.contains(l)) {
        return Err(Error::UnseenClass { label, split: "val".into() });
    }
    for table in [train, val] {
        if let Some(row) = table.values.rows().into_iter().position(|r| r.iter().any(|v| !v.is_finite())) {
            return Err(Error::Probe(format!(
                "{} split of {}: NaN/Inf feature in row {} (id {}); re-extract the features or fix the encoder",
                table.key.split, table.key.encoder, row, table.ids[row]
            )));
        }
    }
    Ok(())
}

fn rows(x: &Array2<f32>, idx: &[usize]) -> Array2<f32> {
    x.select(Axis(0), idx)
}

fn pick(labels: &[u32], idx: &[usize]) -> Vec<u32> {
    idx.iter().map(|&i| labels[i]).collect()
}

fn heads(cfg: &ProbeConfig) -> Vec<Head> {
    match cfg.backend {
        Backend::Torch => cfg.l2.iter().flat_map(|&l2| cfg.lr.iter().map(move |&lr| Head { l2, lr })).collect(),
        Backend::Linfa => cfg.l2.iter().map(|&l2| Head { l2, lr: 0.0 }).collect(),
    }
}

fn fit(x: ArrayView2<f32>, y: &[u32], num_classes: usize, grid: &[Head], setup: &ProbeSetup) -> Result<Vec<LinearModel>> {
    let cfg = &setup.config;
    match cfg.backend {
        Backend::Linfa => grid.iter().map(|h| linfa_backend::fit(x, y, num_classes, h.l2, cfg.max_iter)).collect(),
        Backend::Torch => {
            let opts = TorchOptions { epochs: cfg.epochs, batch_size: cfg.batch_size, seed: cfg.seed, device: setup.device };
            torch_backend::fit_grid(x, y, num_classes, grid, &opts)
        }
    }
}

/// Run the protocol on cached train and val features.
pub fn run(train: &FeatureTable, val: &FeatureTable, setup: &ProbeSetup) -> Result<ProbeOutcome> {
    let start = Instant::now();
    setup.config.check()?;
    check_inputs(train, val)?;
    let num_classes = train.labels.iter().chain(&val.labels).map(|&l| l as usize + 1).max().unwrap_or(0);
    let split = train_val_split(train.len(), setup.train_val, setup.split_seed);
    if split.fit.is_empty() || split.train_val.is_empty() {
        return Err(Error::Probe(format!("train has {} rows: too few to hold out {} for train-val", train.len(), setup.train_val)));
    }

    // 1. Model selection: fit on train minus train-val, score train-val.
    let fit_x = rows(&train.values, &split.fit);
    let transform = Transform::fit(fit_x.view(), setup.bn_crelu_from_avepool);
    let fit_x = transform.apply(fit_x.view());
    let tv_x = transform.apply(rows(&train.values, &split.train_val).view());
    let fit_y = pick(&train.labels, &split.fit);
    let tv_y = pick(&train.labels, &split.train_val);
    let grid_heads = heads(&setup.config);
    let models = fit(fit_x.view(), &fit_y, num_classes, &grid_heads, setup)?;
    drop(fit_x);
    let is_torch = setup.config.backend == Backend::Torch;
    let grid: Vec<GridPoint> = grid_heads
        .iter()
        .zip(&models)
        .map(|(h, m)| GridPoint {
            l2: h.l2,
            lr: is_torch.then_some(h.lr),
            train_val_top1: accuracy(&topk_correct(m.scores(tv_x.view()).view(), &tv_y, 1)),
        })
        .collect();
    // Highest train-val top-1; ties go to the first grid point (smallest L2, then smallest lr).
    let best = grid.iter().enumerate().fold(0, |best, (i, g)| if g.train_val_top1 > grid[best].train_val_top1 { i } else { best });
    let chosen = grid[best].clone();

    // 2. Retrain the chosen head on all of train; score val once.
    let transform = Transform::fit(train.values.view(), setup.bn_crelu_from_avepool);
    let train_x = transform.apply(train.values.view());
    let model = fit(train_x.view(), &train.labels, num_classes, &grid_heads[best..=best], setup)?
        .pop()
        .ok_or_else(|| Error::Probe("retraining returned no model".into()))?;
    drop(train_x);
    let val_scores = model.scores(transform.apply(val.values.view()).view());
    let top1 = topk_correct(val_scores.view(), &val.labels, 1);
    let top5 = topk_correct(val_scores.view(), &val.labels, 5);
    Ok(ProbeOutcome {
        backend: setup.config.backend,
        top1: accuracy(&top1),
        top5: accuracy(&top5),
        top1_ci95: bootstrap_ci(&top1, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
        train_val_top1: chosen.train_val_top1,
        chosen,
        grid,
        per_class_top1: per_class(&top1, &val.labels, num_classes),
        n_train: train.len(),
        n_fit: split.fit.len(),
        n_train_val: split.train_val.len(),
        n_val: val.len(),
        num_classes,
        seconds: start.elapsed().as_secs_f64(),
    })
}
