//! The evaluation protocol: choose hyper-parameters on the train-val split (held out of train, seeded),
//! retrain on all of train, score the official val split once. Nothing is ever chosen on val.

use std::collections::BTreeSet;
use std::time::Instant;

use ndarray::ArrayView2;

use serde::{Deserialize, Serialize};

use super::backend::{Backend, ProbeBackend};
use super::config::ValidProbe;
use super::metrics::{accuracy, bootstrap_ci, packed_hits, per_class, topk_correct};
use super::source::{self, InMemory, Prepared, RowSource};
use super::{LinearModel, Transform};
use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::protocol::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use crate::seeded::train_val_split;

/// What the protocol needs besides the features.
pub struct ProbeSetup<'a> {
    /// Checked probe settings (`ProbeConfig::check`).
    pub probe: &'a ValidProbe,
    /// Train rows held out for model selection.
    pub train_val: usize,
    pub split_seed: u64,
    /// Compute BN+CReLU from these AvePool features with training-split statistics.
    pub bn_crelu_from_avepool: bool,
    pub ctx: ExecutionContext,
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
    /// The back-end that fit the heads (`auto` resolved).
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
    /// Per-val-image top-1 and top-5 hits in val order (paired bootstrap in `compare`); empty in results
    /// written before they were recorded.
    #[serde(default, with = "packed_hits")]
    pub val_top1_hits: Vec<bool>,
    #[serde(default, with = "packed_hits")]
    pub val_top5_hits: Vec<bool>,
    pub n_train: usize,
    pub n_fit: usize,
    pub n_train_val: usize,
    pub n_val: usize,
    pub num_classes: usize,
    pub seconds: f64,
}

/// Bytes of a prepared row source held as one f32 matrix.
fn prepared_bytes(rows: &dyn RowSource) -> usize {
    rows.len() * rows.width() * std::mem::size_of::<f32>()
}

/// Top-1 and top-5 hits (`[model][row]`) and the rows' labels.
type Hits = (Vec<Vec<bool>>, Vec<Vec<bool>>, Vec<u32>);

/// Top-1 and top-5 hits of every model on every row, in row order (`[model][row]`).
fn hits(rows: &dyn RowSource, models: &[LinearModel]) -> Result<Hits> {
    let mut top1 = vec![Vec::with_capacity(rows.len()); models.len()];
    let mut top5 = vec![Vec::with_capacity(rows.len()); models.len()];
    let mut labels = Vec::with_capacity(rows.len());
    for i in 0..rows.chunk_count() {
        let chunk = rows.chunk(i)?;
        for (m, model) in models.iter().enumerate() {
            let scores = model.scores(chunk.values.view());
            top1[m].extend(topk_correct(scores.view(), &chunk.labels, 1));
            top5[m].extend(topk_correct(scores.view(), &chunk.labels, 5));
        }
        labels.extend_from_slice(&chunk.labels);
    }
    Ok((top1, top5, labels))
}

/// Run the protocol on train and val matrices in memory (`(values, labels)` each).
pub fn run<'a>(train: (ArrayView2<'a, f32>, &'a [u32]), val: (ArrayView2<'a, f32>, &'a [u32]), setup: &ProbeSetup) -> Result<ProbeOutcome> {
    let chunk_rows = setup.probe.chunk_rows;
    let train = InMemory { name: "train features".into(), values: train.0, labels: train.1, chunk_rows };
    let val = InMemory { name: "val features".into(), values: val.0, labels: val.1, chunk_rows };
    run_rows(&train, &val, setup)
}

/// Run the protocol on train and val rows read chunk by chunk (e.g. straight from the Parquet cache).
pub fn run_rows(train: &dyn RowSource, val: &dyn RowSource, setup: &ProbeSetup) -> Result<ProbeOutcome> {
    let start = Instant::now();
    if train.width() != val.width() {
        return Err(Error::WidthMismatch { train: train.width(), other_split: "val".into(), other: val.width() });
    }
    let train_labels = train.all_labels()?;
    let val_labels = val.all_labels()?;
    let seen: BTreeSet<u32> = train_labels.iter().copied().collect();
    if seen.len() < 2 {
        return Err(Error::Labels {
            path: train.describe().into(),
            reason: format!("train holds {} class(es); a probe needs at least two (check the labels and the subset)", seen.len()),
        });
    }
    if let Some(&label) = val_labels.iter().find(|l| !seen.contains(l)) {
        return Err(Error::UnseenClass { label, split: "val".into() });
    }
    // Train rows are checked as the transform is fit, before any training; val is checked here so a bad
    // val file stops the run before the (long) fits, not after.
    source::check_finite(val)?;
    let num_classes = train_labels.iter().chain(&val_labels).map(|&l| l as usize + 1).max().unwrap_or(0);
    let n = train_labels.len();
    let split = train_val_split(n, setup.train_val, setup.split_seed);
    if split.fit.is_empty() || split.train_val.is_empty() {
        return Err(Error::TooFewRows { rows: n, held_out: setup.train_val });
    }
    let mut in_fit = vec![true; n];
    for &i in &split.train_val {
        in_fit[i] = false;
    }
    let in_train_val: Vec<bool> = in_fit.iter().map(|&b| !b).collect();

    // 1. Model selection: fit on train minus train-val, score train-val.
    let bn = setup.bn_crelu_from_avepool;
    let transform = Transform::fit(train, Some(&in_fit), bn)?;
    let fit_rows = Prepared::new(train, Some(&in_fit), Some(&transform));
    let backend: &dyn ProbeBackend = setup.probe.for_size(prepared_bytes(&fit_rows), &setup.ctx);
    let grid_heads = backend.heads();
    let models = backend.fit(&fit_rows, num_classes, &grid_heads, None, &setup.ctx)?;
    let (tv_top1, _, _) = hits(&Prepared::new(train, Some(&in_train_val), Some(&transform)), &models)?;
    let grid: Vec<GridPoint> = grid_heads.iter().zip(&tv_top1).map(|(h, hit)| GridPoint { l2: h.l2, lr: h.lr, train_val_top1: accuracy(hit) }).collect();
    // Highest train-val top-1; ties go to the first grid point (smallest L2, then smallest lr).
    let best = grid.iter().enumerate().fold(0, |best, (i, g)| if g.train_val_top1 > grid[best].train_val_top1 { i } else { best });
    let chosen = grid[best].clone();

    // 2. Retrain the chosen head on all of train, warm-started from its selection fit (back-ends that
    // cannot warm-start begin from zero); score val once.
    let transform = Transform::fit(train, None, bn)?;
    // The same back-end as the selection, so the chosen head means the same thing.
    let all_rows = Prepared::new(train, None, Some(&transform));
    let init = std::slice::from_ref(&models[best]);
    let mut refit = backend.fit(&all_rows, num_classes, &grid_heads[best..=best], Some(init), &setup.ctx)?;
    let model = refit.pop().ok_or(Error::TooFewRows { rows: n, held_out: 0 })?;
    let (top1, top5, labels) = hits(&Prepared::new(val, None, Some(&transform)), std::slice::from_ref(&model))?;
    let (top1, top5) = (&top1[0], &top5[0]);
    Ok(ProbeOutcome {
        backend: backend.kind(),
        top1: accuracy(top1),
        top5: accuracy(top5),
        top1_ci95: bootstrap_ci(top1, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
        train_val_top1: chosen.train_val_top1,
        chosen,
        grid,
        per_class_top1: per_class(top1, &labels, num_classes),
        val_top1_hits: top1.clone(),
        val_top5_hits: top5.clone(),
        n_train: n,
        n_fit: split.fit.len(),
        n_train_val: split.train_val.len(),
        n_val: labels.len(),
        num_classes,
        seconds: start.elapsed().as_secs_f64(),
    })
}
