//! Many probes at once in libtorch: every (L2, learning rate) head of a grid shares each mini-batch, and
//! one batched matmul `[B, D] × [H, D, C]` computes all their logits (as DINOv2's linear eval does).
//!
//! Plain SGD with momentum 0.9 and a cosine-decayed learning rate, gradients written out analytically
//! (softmax − one-hot), so no autograd graph is kept. Batches follow a seeded ChaCha permutation per
//! epoch, never torch's global RNG: the same seed gives the same numbers on CPU.

use ndarray::{Array1, Array2, ArrayView2};
use tch::{Device, Kind, Tensor};

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

/// Train every head of `heads` on `(x, y)`; returns one model per head, in order.
pub fn fit_grid(x: ArrayView2<f32>, y: &[u32], num_classes: usize, heads: &[Head], opts: &TorchOptions) -> Result<Vec<LinearModel>> {
    let (n, d, h, c) = (x.nrows(), x.ncols(), heads.len(), num_classes);
    if n == 0 || h == 0 {
        return Err(Error::Probe("nothing to train: no rows or no heads".into()));
    }
    let dev = opts.device;
    let xt = to_tensor(x, dev)?;
    let labels: Vec<i64> = y.iter().map(|&l| i64::from(l)).collect();
    let yt = Tensor::f_from_slice(&labels)?.f_to_device(dev)?;
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
    let steps_per_epoch = n.div_ceil(batch);
    let total = (opts.epochs * steps_per_epoch).max(1) as f64;
    let mut step = 0usize;
    tch::no_grad(|| -> Result<()> {
        for epoch in 0..opts.epochs {
            let perm: Vec<i64> = seeded_permutation(n, opts.seed.wrapping_add(epoch as u64)).into_iter().map(|i| i as i64).collect();
            let perm = Tensor::f_from_slice(&perm)?.f_to_device(dev)?;
            for s in 0..steps_per_epoch {
                let start = s * batch;
                let len = batch.min(n - start);
                let idx = perm.f_narrow(0, start as i64, len as i64)?;
                let xb = xt.f_index_select(0, &idx)?;
                let yb = yt.f_index_select(0, &idx)?;
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
        }
        Ok(())
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
