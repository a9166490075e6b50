//! The three BigBiGAN networks at small scale (BigBiGAN §3; widths from the config).
//!
//! * [`Generator`] G(z): linear → 4×4 → three BigGAN residual up blocks → 32×32, BN → ReLU → conv → tanh.
//! * [`Encoder`] E(x): ResNet-style residual down blocks → ReLU → global average pool (**AvePool**),
//!   **BN+CReLU** of AvePool (its own batch statistics), and an MLP head giving `z_mean`, `z_stdev`
//!   (softplus) and the reparameterised `z_sample = z_mean + z_stdev · ε`.
//! * [`Discriminator`] D(x, z): F (spectral-norm residual down blocks on x, sum-pooled), H (MLP on z) and J
//!   (MLP on both): unary scores `s_x = θ_x·F(x)`, `s_z = θ_z·H(z)` and the joint `s_xz = J(F(x), H(z))`.

use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use super::layers::{ResDown, ResUp, SnConv, SnLinear};
use super::Architecture;

/// Images are 1×32×32 (Fashion-MNIST's 28×28 padded with the background value −1).
pub const IMAGE_SIZE: i64 = 32;

#[derive(Debug)]
pub struct Generator {
    latent: i64,
    width: i64,
    fc: SnLinear,
    blocks: Vec<ResUp>,
    bn: nn::BatchNorm,
    out: SnConv,
}

impl Generator {
    pub fn new(p: &nn::Path, a: &Architecture) -> Generator {
        let w = a.g_width;
        let widths = [4 * w, 2 * w, w, w];
        Generator {
            latent: a.latent,
            width: widths[0],
            fc: SnLinear::new(p / "fc", a.latent, widths[0] * 16),
            blocks: (0..3).map(|i| ResUp::new(p / format!("up{i}"), widths[i], widths[i + 1])).collect(),
            bn: nn::batch_norm2d(p / "bn", widths[3], Default::default()),
            out: SnConv::new(p / "out", widths[3], a.channels, 3),
        }
    }

    /// Images in [-1, 1], `[N, channels, 32, 32]`.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let mut h = self.fc.forward_t(z, train).view([-1, self.width, 4, 4]);
        for b in &self.blocks {
            h = b.forward_t(&h, train);
        }
        self.out.forward_t(&self.bn.forward_t(&h, train).relu(), train).tanh()
    }

    pub fn latent(&self) -> i64 {
        self.latent
    }
}

/// What the encoder gives for a batch.
#[derive(Debug)]
pub struct Encoded {
    pub avepool: Tensor,
    pub bn_crelu: Tensor,
    pub z_mean: Tensor,
    pub z_stdev: Tensor,
    pub z_sample: Tensor,
}

#[derive(Debug)]
pub struct Encoder {
    stem: nn::Conv2D,
    blocks: Vec<ResDown>,
    bn_out: nn::BatchNorm,
    bn_feature: nn::BatchNorm,
    head1: nn::Linear,
    head2: nn::Linear,
    latent: i64,
}

impl Encoder {
    pub fn new(p: &nn::Path, a: &Architecture) -> Encoder {
        let w = a.e_width;
        let widths = [w, 2 * w, 4 * w, 4 * w];
        Encoder {
            stem: nn::conv2d(p / "stem", a.channels, w, 3, nn::ConvConfig { padding: 1, ..Default::default() }),
            blocks: (0..3).map(|i| ResDown::batch_norm(p / format!("down{i}"), widths[i], widths[i + 1], false)).collect(),
            bn_out: nn::batch_norm2d(p / "bn_out", widths[3], Default::default()),
            // BN without affine before CReLU, as the paper's BN+CReLU feature.
            bn_feature: nn::batch_norm1d(p / "bn_feature", widths[3], nn::BatchNormConfig { affine: false, ..Default::default() }),
            head1: nn::linear(p / "head1", widths[3], a.head_width, Default::default()),
            head2: nn::linear(p / "head2", a.head_width, 2 * a.latent, Default::default()),
            latent: a.latent,
        }
    }

    pub fn avepool_width(&self) -> i64 {
        self.bn_feature.running_mean.size()[0]
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Encoded {
        let mut h = self.stem.forward(x);
        for b in &self.blocks {
            h = b.forward_t(&h, train);
        }
        let avepool = self.bn_out.forward_t(&h, train).relu().mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        let b = self.bn_feature.forward_t(&avepool, train);
        let bn_crelu = Tensor::cat(&[b.relu(), b.neg().relu()], 1);
        let stats = self.head2.forward(&self.head1.forward(&avepool).relu());
        let z_mean = stats.narrow(1, 0, self.latent);
        let z_stdev = stats.narrow(1, self.latent, self.latent).softplus() + 1e-4;
        let z_sample = &z_mean + &z_stdev * z_mean.randn_like();
        Encoded { avepool, bn_crelu, z_mean, z_stdev, z_sample }
    }
}

/// The three scores of D for a batch of (x, z) pairs, each `[N]`.
#[derive(Debug)]
pub struct Scores {
    pub s_x: Tensor,
    pub s_z: Tensor,
    pub s_xz: Tensor,
}

#[derive(Debug)]
pub struct Discriminator {
    f: Vec<ResDown>,
    theta_x: SnLinear,
    h: Vec<SnLinear>,
    theta_z: SnLinear,
    j: Vec<SnLinear>,
}

impl Discriminator {
    pub fn new(p: &nn::Path, a: &Architecture) -> Discriminator {
        let w = a.d_width;
        let widths = [a.channels, w, 2 * w, 4 * w];
        let m = a.head_width;
        Discriminator {
            f: (0..3).map(|i| ResDown::spectral(p / format!("f{i}"), widths[i], widths[i + 1], i == 0)).collect(),
            theta_x: SnLinear::new(p / "theta_x", widths[3], 1),
            h: vec![SnLinear::new(p / "h0", a.latent, m), SnLinear::new(p / "h1", m, m)],
            theta_z: SnLinear::new(p / "theta_z", m, 1),
            j: vec![SnLinear::new(p / "j0", widths[3] + m, m), SnLinear::new(p / "j1", m, 1)],
        }
    }

    pub fn forward_t(&self, x: &Tensor, z: &Tensor, train: bool) -> Scores {
        let mut fx = x.shallow_clone();
        for b in &self.f {
            fx = b.forward_t(&fx, train);
        }
        let fx = fx.relu().sum_dim_intlist([2i64, 3].as_slice(), false, Kind::Float);
        let mut hz = z.shallow_clone();
        for l in &self.h {
            hz = l.forward_t(&hz, train).relu();
        }
        let j = self.j[1].forward_t(&self.j[0].forward_t(&Tensor::cat(&[&fx, &hz], 1), train).relu(), train);
        Scores {
            s_x: self.theta_x.forward_t(&fx, train).squeeze_dim(1),
            s_z: self.theta_z.forward_t(&hz, train).squeeze_dim(1),
            s_xz: j.squeeze_dim(1),
        }
    }
}
