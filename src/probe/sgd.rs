//! Many probes at once by mini-batch SGD in libtorch: every (L2, learning rate) head of a grid shares each
//! mini-batch, and one batched matmul `[B, D] × [H, D, C]` computes all their logits (as DINOv2's linear
//! eval does). The back-end for training sets that must stream from the cache.
//!
//! Plain SGD with momentum 0.9 and a cosine-decayed learning rate, gradients written out analytically
//! (softmax − one-hot), so no autograd graph is kept. Batches follow a seeded ChaCha permutation per
//! epoch, never torch's global RNG: the same seed gives the same numbers on CPU.

use ndarray::ArrayView2;
use tch::{Device, Kind, Tensor};

use super::backend::{Backend, Head, ProbeBackend};
use super::source::{Chunk, InMemory, RowSource};
use super::{models_from_stacked, LinearModel};
use crate::context::ExecutionContext;
use crate::error::Result;
use crate::seeded::seeded_permutation;

/// The SGD back-end's checked settings (see `ProbeConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    pub l2: Vec<f64>,
    pub lr: Vec<f64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Sets up to this size are gathered into one matrix (one chunk) before training; larger ones stream
    /// chunk by chunk, which changes the batch order (`None`: the device's default).
    pub resident_bytes: Option<usize>,
}

impl ProbeBackend for Sgd {
    fn kind(&self) -> Backend {
        Backend::Sgd
    }
    fn heads(&self) -> Vec<Head> {
        self.l2.iter().flat_map(|&l2| self.lr.iter().map(move |&lr| Head { l2, lr: Some(lr) })).collect()
    }
    /// SGD always starts from zero weights: `init` is ignored.
    fn fit(&self, rows: &dyn RowSource, num_classes: usize, heads: &[Head], _init: Option<&[LinearModel]>, ctx: &ExecutionContext) -> Result<Vec<LinearModel>> {
        if rows.len() * rows.width() * std::mem::size_of::<f32>() <= super::backend::resident_limit(self.resident_bytes, ctx) {
            let (x, y) = super::source::collect(rows)?;
            return fit_grid(x.view(), &y, num_classes, heads, self, ctx.device);
        }
        fit_grid_rows(rows, num_classes, heads, self, ctx.device)
    }
}

const MOMENTUM: f64 = 0.9;

/// Train every head of `heads` on the matrix `(x, y)` on `device`; returns one model per head, in order.
pub fn fit_grid<'a>(x: ArrayView2<'a, f32>, y: &'a [u32], num_classes: usize, heads: &[Head], sgd: &Sgd, device: Device) -> Result<Vec<LinearModel>> {
    let rows = InMemory { name: "feature matrix".into(), values: x, labels: y, chunk_rows: x.nrows().max(1) };
    fit_grid_rows(&rows, num_classes, heads, sgd, device)
}

/// A chunk on the device: features, labels and a row count.
struct DeviceChunk {
    x: Tensor,
    y: Tensor,
    rows: usize,
}

fn to_device(chunk: &Chunk, dev: Device) -> Result<DeviceChunk> {
    let (x, y) = super::chunk_tensors(chunk, dev)?;
    Ok(DeviceChunk { x, y, rows: chunk.labels.len() })
}

/// The order chunks are visited in during `epoch` (seeded; a single chunk is always chunk 0).
fn chunk_order(chunks: usize, seed: u64, epoch: usize) -> Vec<usize> {
    seeded_permutation(chunks, (seed ^ 0x6368_756e_6b73).wrapping_add(epoch as u64)) // "chunks"
}

/// Train every head of `heads` on a row source, chunk by chunk: each epoch visits the chunks in a seeded
/// order and each chunk's rows in a seeded order, and the next chunk is read on another thread while the
/// current one trains. Only two chunks are ever in memory; a source of one chunk is loaded once.
pub fn fit_grid_rows(src: &dyn RowSource, num_classes: usize, heads: &[Head], opts: &Sgd, dev: Device) -> Result<Vec<LinearModel>> {
    let (n, d, h, c) = (src.len(), src.width(), heads.len(), num_classes);
    super::check_fit_inputs(src, heads)?;
    let opts_f = (Kind::Float, dev);
    let mut w = Tensor::f_zeros([h as i64, d as i64, c as i64], opts_f)?;
    let mut b = Tensor::f_zeros([h as i64, 1, c as i64], opts_f)?;
    let mut mw = Tensor::f_zeros_like(&w)?;
    let mut mb = Tensor::f_zeros_like(&b)?;
    let l2: Vec<f32> = heads.iter().map(|hd| hd.l2 as f32).collect();
    let lr: Vec<f32> = heads.iter().map(|hd| hd.lr.unwrap_or(0.0) as f32).collect();
    let l2 = Tensor::f_from_slice(&l2)?.f_view([h as i64, 1, 1])?.f_to_device(dev)?;
    let lr0 = Tensor::f_from_slice(&lr)?.f_view([h as i64, 1, 1])?.f_to_device(dev)?;
    let batch = opts.batch_size.clamp(1, n);
    let chunks = src.chunk_count();
    let steps_per_epoch: usize = (0..chunks).map(|i| src.chunk_len(i).div_ceil(batch)).sum();
    let total = (opts.epochs * steps_per_epoch).max(1) as f64;
    let mut step = 0usize;
    let resident = if chunks == 1 { Some(to_device(&src.chunk(0)?, dev)?) } else { None };

    let mut train_chunk = |data: &DeviceChunk, seed: u64| -> Result<()> {
        let perm: Vec<i64> = seeded_permutation(data.rows, seed).into_iter().map(|i| i as i64).collect();
        let perm = Tensor::f_from_slice(&perm)?.f_to_device(dev)?;
        for start in (0..data.rows).step_by(batch) {
            let len = batch.min(data.rows - start);
            let idx = perm.f_narrow(0, start as i64, len as i64)?;
            let xb = data.x.f_index_select(0, &idx)?;
            let yb = data.y.f_index_select(0, &idx)?;
            // p = (softmax(xb·W + b) − onehot(y)) / B, shape [H, B, C]
            let logits = xb.f_matmul(&w)?.f_add(&b)?;
            let onehot = yb.f_one_hot(c as i64)?.f_to_kind(Kind::Float)?;
            let p = logits.f_softmax(-1, Kind::Float)?.f_sub(&onehot)?.f_div_scalar(len as f64)?;
            let gw = xb.f_tr()?.f_matmul(&p)?.f_add(&w.f_mul(&l2)?)?;
            let gb = p.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)?;
            let factor = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total).cos());
            let lr = lr0.f_mul_scalar(factor)?;
            step += 1;
            mw = mw.f_mul_scalar(MOMENTUM)?.f_add(&gw)?;
            mb = mb.f_mul_scalar(MOMENTUM)?.f_add(&gb)?;
            w = w.f_sub(&mw.f_mul(&lr)?)?;
            b = b.f_sub(&mb.f_mul(&lr)?)?;
        }
        Ok(())
    };
    // Seed of the row order of chunk `i` in `epoch` (chunk 0 keeps the single-matrix seed).
    let row_seed = |epoch: usize, i: usize| opts.seed.wrapping_add(epoch as u64).wrapping_add((i as u64) << 32);

    tch::no_grad(|| -> Result<()> {
        if let Some(data) = &resident {
            for epoch in 0..opts.epochs {
                train_chunk(data, row_seed(epoch, 0))?;
            }
            return Ok(());
        }
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, usize, Result<Chunk>)>(1);
            scope.spawn(move || {
                for epoch in 0..opts.epochs {
                    for i in chunk_order(chunks, opts.seed, epoch) {
                        if tx.send((epoch, i, src.chunk(i))).is_err() {
                            return;
                        }
                    }
                }
            });
            for (epoch, i, chunk) in rx {
                let data = to_device(&chunk?, dev)?;
                train_chunk(&data, row_seed(epoch, i))?;
            }
            Ok(())
        })
    })?;
    // [H, D, C] and [H, 1, C] → one model per head.
    models_from_stacked(&w, &b.f_squeeze_dim(1)?, d, c)
}
