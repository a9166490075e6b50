//! Many probes at once in libtorch: every (L2, learning rate) head of a grid shares each mini-batch, and
//! one batched matmul `[B, D] × [H, D, C]` computes all their logits (as DINOv2's linear eval does).
//!
//! Plain SGD with momentum 0.9 and a cosine-decayed learning rate, gradients written out analytically
//! (softmax − one-hot), so no autograd graph is kept. Batches follow a seeded ChaCha permutation per
//! epoch, never torch's global RNG: the same seed gives the same numbers on CPU.

use ndarray::{Array1, Array2, ArrayView2};
use tch::{Device, Kind, Tensor};

use super::source::{Chunk, InMemory, RowSource};
use super::LinearModel;
use crate::data::split::seeded_permutation;
use crate::error::{Error, Result};

/// One head of the grid.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub l2: f64,
    pub lr: f64,
}

#[derive(Debug, Clone)]
pub struct TorchOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub device: Device,
}

const MOMENTUM: f64 = 0.9;

fn to_tensor(x: ArrayView2<f32>, device: Device) -> Result<Tensor> {
    let x = x.as_standard_layout();
    let slice = x.as_slice().ok_or_else(|| Error::Probe("feature matrix is not contiguous".into()))?;
    Ok(Tensor::f_from_slice(slice)?.f_view([x.nrows() as i64, x.ncols() as i64])?.f_to_device(device)?)
}

/// Train every head of `heads` on the matrix `(x, y)`; returns one model per head, in order.
pub fn fit_grid<'a>(x: ArrayView2<'a, f32>, y: &'a [u32], num_classes: usize, heads: &[Head], opts: &TorchOptions) -> Result<Vec<LinearModel>> {
    let rows = InMemory { name: "feature matrix".into(), values: x, labels: y, chunk_rows: x.nrows().max(1) };
    fit_grid_rows(&rows, num_classes, heads, opts)
}

/// A chunk on the device: features, labels and a row count.
struct DeviceChunk {
    x: Tensor,
    y: Tensor,
    rows: usize,
}

fn to_device(chunk: &Chunk, dev: Device) -> Result<DeviceChunk> {
    let labels: Vec<i64> = chunk.labels.iter().map(|&l| i64::from(l)).collect();
    Ok(DeviceChunk { x: to_tensor(chunk.values.view(), dev)?, y: Tensor::f_from_slice(&labels)?.f_to_device(dev)?, rows: labels.len() })
}

/// The order chunks are visited in during `epoch` (seeded; a single chunk is always chunk 0).
fn chunk_order(chunks: usize, seed: u64, epoch: usize) -> Vec<usize> {
    seeded_permutation(chunks, (seed ^ 0x6368_756e_6b73).wrapping_add(epoch as u64)) // "chunks"
}

/// Train every head of `heads` on a row source, chunk by chunk: each epoch visits the chunks in a seeded
/// order and each chunk's rows in a seeded order, and the next chunk is read on another thread while the
/// current one trains. Only two chunks are ever in memory; a source of one chunk is loaded once.
pub fn fit_grid_rows(src: &dyn RowSource, num_classes: usize, heads: &[Head], opts: &TorchOptions) -> Result<Vec<LinearModel>> {
    let (n, d, h, c) = (src.len(), src.width(), heads.len(), num_classes);
    if n == 0 || h == 0 {
        return Err(Error::Probe("nothing to train: no rows or no heads".into()));
    }
    let dev = opts.device;
    let opts_f = (Kind::Float, dev);
    let mut w = Tensor::f_zeros([h as i64, d as i64, c as i64], opts_f)?;
    let mut b = Tensor::f_zeros([h as i64, 1, c as i64], opts_f)?;
    let mut mw = Tensor::f_zeros_like(&w)?;
    let mut mb = Tensor::f_zeros_like(&b)?;
    let l2: Vec<f32> = heads.iter().map(|hd| hd.l2 as f32).collect();
    let lr: Vec<f32> = heads.iter().map(|hd| hd.lr as f32).collect();
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
    let w = w.f_to_device(Device::Cpu)?.f_contiguous()?;
    let b = b.f_to_device(Device::Cpu)?.f_contiguous()?;
    let wv = Vec::<f32>::try_from(&w.f_flatten(0, -1)?)?;
    let bv = Vec::<f32>::try_from(&b.f_flatten(0, -1)?)?;
    Ok((0..h)
        .map(|i| LinearModel {
            w: Array2::from_shape_vec((d, c), wv[i * d * c..(i + 1) * d * c].to_vec()).unwrap_or_else(|_| Array2::zeros((d, c))),
            b: Array1::from(bv[i * c..(i + 1) * c].to_vec()),
        })
        .collect())
}
