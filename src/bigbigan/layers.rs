//! Building blocks: spectrally normalised convolutions and linear maps (one power iteration per training
//! forward, as BigGAN), and BigGAN-style residual up- and down-sampling blocks.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// `W / σ(W)` with σ estimated by power iteration on a persistent vector `u` (not trained).
#[derive(Debug)]
pub struct SpectralNorm {
    weight: Tensor,
    u: Tensor,
}

fn unit(t: &Tensor) -> Tensor {
    t / (t.norm() + 1e-12)
}

impl SpectralNorm {
    fn new(p: &nn::Path, dims: &[i64]) -> SpectralNorm {
        let weight = p.kaiming_uniform("weight", dims);
        let mut u = p.zeros_no_train("u", &[dims[0]]);
        tch::no_grad(|| u.copy_(&unit(&Tensor::randn([dims[0]], (Kind::Float, p.device())))));
        SpectralNorm { weight, u }
    }

    /// The normalised weight; `train` stores the power iteration's new `u`.
    pub fn weight(&self, train: bool) -> Tensor {
        let w = self.weight.flatten(1, -1);
        let mut u = self.u.shallow_clone();
        // One power iteration from the stored u, renormalised first: the EMA generator's u is an average
        // of unit vectors, shorter than 1, and σ computed with it would be off by up to ~13%. A copy of u
        // enters the graph: the persistent u changes in place at the next forward, which may come before
        // this graph's backward (D scores two batches per loss).
        let (u_now, v) = tch::no_grad(|| {
            let v = unit(&w.tr().mv(&unit(&u)));
            let u_new = unit(&w.mv(&v));
            if train {
                u.copy_(&u_new);
            }
            (u_new, v)
        });
        let sigma = u_now.dot(&w.mv(&v));
        &self.weight / sigma
    }
}

#[derive(Debug)]
pub struct SnConv {
    sn: SpectralNorm,
    bias: Tensor,
    stride: i64,
    padding: i64,
}

impl SnConv {
    /// A `k × k` convolution, stride 1, "same" padding.
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64) -> SnConv {
        SnConv::strided(p, c_in, c_out, k, 1, k / 2)
    }

    pub fn strided(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> SnConv {
        SnConv { sn: SpectralNorm::new(&p, &[c_out, c_in, k, k]), bias: p.zeros("bias", &[c_out]), stride, padding }
    }
}

impl ModuleT for SnConv {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.conv2d(&self.sn.weight(train), Some(&self.bias), [self.stride, self.stride], [self.padding, self.padding], [1, 1], 1)
    }
}

/// LeakyReLU with slope 0.2 (DCGAN, ALI).
pub fn lrelu(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

#[derive(Debug)]
pub struct SnLinear {
    sn: SpectralNorm,
    bias: Tensor,
}

impl SnLinear {
    pub fn new(p: nn::Path, c_in: i64, c_out: i64) -> SnLinear {
        SnLinear { sn: SpectralNorm::new(&p, &[c_out, c_in]), bias: p.zeros("bias", &[c_out]) }
    }
}

impl ModuleT for SnLinear {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.linear(&self.sn.weight(train), Some(&self.bias))
    }
}

/// BigGAN generator block: BN → ReLU → up ×2 → conv3 → BN → ReLU → conv3, plus up ×2 → conv1 shortcut.
#[derive(Debug)]
pub struct ResUp {
    bn1: nn::BatchNorm,
    conv1: SnConv,
    bn2: nn::BatchNorm,
    conv2: SnConv,
    skip: SnConv,
}

fn up2(x: &Tensor) -> Tensor {
    let s = x.size();
    x.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None)
}

impl ResUp {
    pub fn new(p: nn::Path, c_in: i64, c_out: i64) -> ResUp {
        ResUp {
            bn1: nn::batch_norm2d(&p / "bn1", c_in, Default::default()),
            conv1: SnConv::new(&p / "conv1", c_in, c_out, 3),
            bn2: nn::batch_norm2d(&p / "bn2", c_out, Default::default()),
            conv2: SnConv::new(&p / "conv2", c_out, c_out, 3),
            skip: SnConv::new(&p / "skip", c_in, c_out, 1),
        }
    }
}

impl ModuleT for ResUp {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = up2(&self.bn1.forward_t(x, train).relu());
        let h = self.conv1.forward_t(&h, train);
        let h = self.conv2.forward_t(&self.bn2.forward_t(&h, train).relu(), train);
        h + self.skip.forward_t(&up2(x), train)
    }
}

fn down2(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
}

/// Discriminator/encoder block: ReLU → conv3 → ReLU → conv3 → avg-pool ×2, plus conv1 → pool shortcut.
/// Spectral norm in the discriminator; plain convolutions + BN in the encoder.
#[derive(Debug)]
pub struct ResDown {
    conv1: Box<dyn ModuleT>,
    conv2: Box<dyn ModuleT>,
    skip: Box<dyn ModuleT>,
    norm: Option<(nn::BatchNorm, nn::BatchNorm)>,
    first: bool,
}

impl ResDown {
    /// `first`: no ReLU before the first convolution (the input is an image).
    pub fn spectral(p: nn::Path, c_in: i64, c_out: i64, first: bool) -> ResDown {
        ResDown {
            conv1: Box::new(SnConv::new(&p / "conv1", c_in, c_out, 3)),
            conv2: Box::new(SnConv::new(&p / "conv2", c_out, c_out, 3)),
            skip: Box::new(SnConv::new(&p / "skip", c_in, c_out, 1)),
            norm: None,
            first,
        }
    }

    pub fn batch_norm(p: nn::Path, c_in: i64, c_out: i64, first: bool) -> ResDown {
        let conv = |name: &str, a, b, k| -> Box<dyn ModuleT> {
            Box::new(nn::conv2d(&p / name, a, b, k, nn::ConvConfig { padding: k / 2, ..Default::default() }))
        };
        ResDown {
            conv1: conv("conv1", c_in, c_out, 3),
            conv2: conv("conv2", c_out, c_out, 3),
            skip: conv("skip", c_in, c_out, 1),
            norm: Some((nn::batch_norm2d(&p / "bn1", c_in, Default::default()), nn::batch_norm2d(&p / "bn2", c_out, Default::default()))),
            first,
        }
    }
}

impl ModuleT for ResDown {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let pre = |bn: Option<&nn::BatchNorm>, h: &Tensor| match bn {
            Some(bn) => bn.forward_t(h, train).relu(),
            None => h.relu(),
        };
        let h = if self.first { x.shallow_clone() } else { pre(self.norm.as_ref().map(|n| &n.0), x) };
        let h = self.conv1.forward_t(&h, train);
        let h = self.conv2.forward_t(&pre(self.norm.as_ref().map(|n| &n.1), &h), train);
        down2(&h) + down2(&self.skip.forward_t(x, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eval-mode weight must not depend on the length of the stored `u`: the EMA generator's `u` is an
    /// average of unit vectors (|u| ≈ 0.9), and dividing by σ computed from it left weights ~13% off.
    #[test]
    fn eval_weight_is_w_over_its_top_singular_value_whatever_the_length_of_u() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let sn = SpectralNorm::new(&vs.root(), &[6, 8]);
        for _ in 0..100 {
            let _ = sn.weight(true); // power iterations converge u
        }
        let w = sn.weight.flatten(1, -1);
        let sigma = w.tr().mm(&w).linalg_eigvalsh("L").max().sqrt().double_value(&[]);
        let want = &sn.weight / sigma;
        let mut u = sn.u.shallow_clone();
        tch::no_grad(|| u.copy_(&(&sn.u * 0.9)));
        let got = sn.weight(false);
        let err = (&got - &want).abs().max().double_value(&[]);
        assert!(err < 1e-4, "eval weight off by {err}");
    }
}
