//! The three BigBiGAN networks at small scale (BigBiGAN §3; sizes from the config's `[architecture]`).
//!
//! Two families share E's head and D's latent and joint parts:
//! * `dcgan` (the CPU recipe, ~40 MFLOP per image-step at 28×28): G = linear → 7×7 → two transposed convs
//!   → 28×28; E and D's F = strided convolutions (DCGAN/ALI scale).
//! * `resnet` (the GPU recipe): BigGAN residual up/down blocks at 32×32 (28×28 padded with −1).
//! * `mlp` (BiGAN's permutation-invariant MNIST networks, `mnist_mlp` in its official code): two hidden
//!   fully connected layers of `*_width` units in each network, for comparison with that recipe
//!   (`tools/bigan_mlp_reference.py`); E's AvePool is its second hidden layer (there is no map to pool).
//!
//! * [`Generator`] G(z): images in [-1, 1].
//! * [`Encoder`] E(x): body → global average pool (**AvePool**), **BN+CReLU** of AvePool (its own batch
//!   statistics), and an MLP head giving `z_mean` (optionally batch-normalised), `z_stdev` and
//!   `z_sample = z_mean + z_stdev · ε`. σ is bounded (`z_stdev_max · sigmoid`) or E is deterministic
//!   (σ = 0), so that E cannot match the prior's marginal with noise alone.
//! * [`Discriminator`] D(x, z): F (spectral-norm body on x, **mean**-pooled or read out densely), H (a
//!   residual MLP on z, so |H(z)| stays near |z|) and J (2 × `j_width` with dropout, as ALI, on both): unary scores
//!   `s_x = θ_x·F(x)`, `s_z = θ_z·H(z)` and the joint `s_xz = J(F(x), H(z))` [+ F(x)ᵀ·W·H(z) with
//!   `projection = true`].

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use super::layers::{lrelu, ResDown, ResUp, SnConv, SnLinear};
use super::Architecture;
use crate::error::Result;

/// Which family of networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    #[default]
    Dcgan,
    Resnet,
    Mlp,
}

/// How D's F reads its last feature map out (see `Architecture::f_readout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    #[default]
    Mean,
    Dense,
}

impl NetKind {
    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            NetKind::Dcgan => "dcgan",
            NetKind::Resnet => "resnet",
            NetKind::Mlp => "mlp",
        }
    }
}

impl Architecture {
    /// The side the networks work at: 28 (dcgan, mlp) or 32 (resnet: 28×28 images padded with −1).
    pub fn image_size(&self) -> i64 {
        match self.kind {
            NetKind::Dcgan | NetKind::Mlp => 28,
            NetKind::Resnet => 32,
        }
    }

    /// Side of D's last feature map (resnet halves three times: 32 → 4; dcgan twice, 28 → 7, or three
    /// times with `d_layers = 4`, 28 → 3).
    fn f_map_side(&self) -> i64 {
        match self.kind {
            NetKind::Dcgan if self.d_layers == 4 => 3,
            NetKind::Dcgan => self.image_size() / 4,
            NetKind::Resnet => self.image_size() / 8,
            // No map: F's last hidden layer is already a vector (the readout option is refused for mlp).
            NetKind::Mlp => 1,
        }
    }

    /// Width of F(x).
    pub fn f_width(&self) -> i64 {
        match (self.kind, self.f_readout) {
            (NetKind::Mlp, _) => self.d_width,
            (_, Readout::Mean) => 4 * self.d_width,
            (_, Readout::Dense) => self.head_width,
        }
    }

    /// Values in one image at the networks' side: what mlp's first layers read and its G writes.
    pub fn pixels(&self) -> i64 {
        self.channels * self.image_size() * self.image_size()
    }

    /// Width of E's AvePool (its BN+CReLU is twice that).
    pub fn avepool_width(&self) -> i64 {
        match self.kind {
            NetKind::Mlp => self.e_width,
            _ => 4 * self.e_width,
        }
    }
}

#[derive(Debug)]
pub struct Generator {
    latent: i64,
    kind: NetKind,
    /// resnet: fc → 4×4; dcgan: fc → 7×7; mlp: fc → the first hidden layer.
    fc: nn::Linear,
    /// mlp: the second hidden layer and the output layer (784 pixels).
    hidden: Vec<(nn::Linear, Option<nn::BatchNorm>)>,
    bn_fc: Option<nn::BatchNorm>,
    up: Vec<ResUp>,
    deconv: Vec<(nn::ConvTranspose2D, Option<nn::BatchNorm>)>,
    bn: Option<nn::BatchNorm>,
    out: Option<SnConv>,
    width: i64,
    side: i64,
}

impl Generator {
    pub fn new(p: &nn::Path, a: &Architecture) -> Generator {
        let w = a.g_width;
        match a.kind {
            NetKind::Resnet => {
                let widths = [4 * w, 2 * w, w, w];
                Generator {
                    latent: a.latent,
                    kind: a.kind,
                    fc: nn::linear(p / "fc", a.latent, widths[0] * 16, Default::default()),
                    bn_fc: None,
                    hidden: Vec::new(),
                    up: (0..3).map(|i| ResUp::new(p / format!("up{i}"), widths[i], widths[i + 1])).collect(),
                    deconv: Vec::new(),
                    bn: Some(nn::batch_norm2d(p / "bn", widths[3], Default::default())),
                    out: Some(SnConv::new(p / "out", widths[3], a.channels, 3)),
                    width: widths[0],
                    side: 4,
                }
            }
            NetKind::Dcgan => {
                let cfg = nn::ConvTransposeConfig { stride: 2, padding: 1, ..Default::default() };
                Generator {
                    latent: a.latent,
                    kind: a.kind,
                    fc: nn::linear(p / "fc", a.latent, 4 * w * 49, Default::default()),
                    bn_fc: Some(nn::batch_norm1d(p / "bn_fc", 4 * w * 49, Default::default())),
                    hidden: Vec::new(),
                    up: Vec::new(),
                    deconv: vec![
                        (nn::conv_transpose2d(p / "deconv0", 4 * w, 2 * w, 4, cfg), Some(nn::batch_norm2d(p / "bn0", 2 * w, Default::default()))),
                        (nn::conv_transpose2d(p / "deconv1", 2 * w, a.channels, 4, cfg), None),
                    ],
                    bn: None,
                    out: None,
                    width: 4 * w,
                    side: 7,
                }
            }
            NetKind::Mlp => {
                Generator {
                    latent: a.latent,
                    kind: a.kind,
                    fc: nn::linear(p / "fc", a.latent, w, Default::default()),
                    bn_fc: Some(nn::batch_norm1d(p / "bn_fc", w, Default::default())),
                    hidden: vec![
                        (nn::linear(p / "fc1", w, w, Default::default()), Some(nn::batch_norm1d(p / "bn1", w, Default::default()))),
                        (nn::linear(p / "out", w, a.pixels(), Default::default()), None),
                    ],
                    up: Vec::new(),
                    deconv: Vec::new(),
                    bn: None,
                    out: None,
                    width: a.channels,
                    side: a.image_size(),
                }
            }
        }
    }

    /// Images in [-1, 1], `[N, channels, side, side]` (side = `Architecture::image_size`).
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let mut h = self.fc.forward(z);
        if let Some(bn) = &self.bn_fc {
            h = bn.forward_t(&h, train).relu();
        }
        // mlp's dense layers (none for the other kinds): the last gives the 784 pixels before tanh.
        for (fc, bn) in &self.hidden {
            h = fc.forward(&h);
            if let Some(bn) = bn {
                h = bn.forward_t(&h, train).relu();
            }
        }
        let mut h = h.view([-1, self.width, self.side, self.side]);
        match self.kind {
            NetKind::Resnet => {
                for b in &self.up {
                    h = b.forward_t(&h, train);
                }
                let h = self.bn.as_ref().map_or(h.shallow_clone(), |bn| bn.forward_t(&h, train).relu());
                self.out.as_ref().map_or(h.shallow_clone(), |o| o.forward_t(&h, train)).tanh()
            }
            // mlp has no deconvolutions: only the tanh.
            NetKind::Dcgan | NetKind::Mlp => {
                for (conv, bn) in &self.deconv {
                    h = conv.forward(&h);
                    if let Some(bn) = bn {
                        h = bn.forward_t(&h, train).relu();
                    }
                }
                h.tanh()
            }
        }
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

/// E's body: image → feature map (before pooling).
#[derive(Debug)]
enum EncoderBody {
    // Boxed: its batch-norm layers make it ten times the size of the DCGAN variant.
    Resnet { stem: Box<nn::Conv2D>, blocks: Vec<ResDown>, bn_out: Box<nn::BatchNorm> },
    Dcgan { convs: Vec<(nn::Conv2D, Option<nn::BatchNorm>)> },
    /// Flattened pixels → FC → LReLU → FC → BN → LReLU (BiGAN's `mnist_mlp`).
    Mlp { layers: Vec<(nn::Linear, Option<nn::BatchNorm>)> },
}

#[derive(Debug)]
pub struct Encoder {
    body: EncoderBody,
    bn_feature: nn::BatchNorm,
    head1: nn::Linear,
    head2: nn::Linear,
    /// Normalises `z_mean` to the prior's moments, when the architecture asks for it.
    bn_z: Option<nn::BatchNorm>,
    /// Whitens `z_mean` in groups, when the architecture asks for it.
    whiten_z: Option<super::whitening::GroupWhitening>,
    latent: i64,
    width: i64,
    z_stdev_max: Option<f64>,
    deterministic: bool,
    head_reads_bn_crelu: bool,
}

impl Encoder {
    pub fn new(p: &nn::Path, a: &Architecture) -> Encoder {
        let w = a.e_width;
        let width = a.avepool_width();
        let body = match a.kind {
            NetKind::Resnet => {
                let widths = [w, 2 * w, 4 * w, 4 * w];
                EncoderBody::Resnet {
                    stem: Box::new(nn::conv2d(p / "stem", a.channels, w, 3, nn::ConvConfig { padding: 1, ..Default::default() })),
                    blocks: (0..3).map(|i| ResDown::batch_norm(p / format!("down{i}"), widths[i], widths[i + 1], false)).collect(),
                    bn_out: Box::new(nn::batch_norm2d(p / "bn_out", widths[3], Default::default())),
                }
            }
            NetKind::Dcgan => {
                let conv = |name: &str, i, o, k, stride, padding| nn::conv2d(p / name, i, o, k, nn::ConvConfig { stride, padding, ..Default::default() });
                let mut convs = vec![
                    (conv("conv0", a.channels, w, 4, 2, 1), None),
                    (conv("conv1", w, 2 * w, 4, 2, 1), Some(nn::batch_norm2d(p / "bn1", 2 * w, Default::default()))),
                    (conv("conv2", 2 * w, 4 * w, 3, 1, 1), Some(nn::batch_norm2d(p / "bn2", 4 * w, Default::default()))),
                ];
                if a.e_layers == 4 {
                    convs.push((conv("conv3", 4 * w, 4 * w, 4, 2, 1), Some(nn::batch_norm2d(p / "bn3", 4 * w, Default::default()))));
                }
                EncoderBody::Dcgan { convs }
            }
            NetKind::Mlp => EncoderBody::Mlp {
                layers: vec![
                    (nn::linear(p / "fc0", a.pixels(), w, Default::default()), None),
                    (nn::linear(p / "fc1", w, w, Default::default()), Some(nn::batch_norm1d(p / "bn1", w, Default::default()))),
                ],
            },
        };
        Encoder {
            body,
            // BN without affine before CReLU, as the paper's BN+CReLU feature.
            bn_feature: nn::batch_norm1d(p / "bn_feature", width, nn::BatchNormConfig { affine: false, ..Default::default() }),
            head1: nn::linear(p / "head1", if a.head_reads_bn_crelu { 2 * width } else { width }, a.head_width, Default::default()),
            head2: nn::linear(p / "head2", a.head_width, 2 * a.latent, Default::default()),
            bn_z: a.z_batch_norm.then(|| nn::batch_norm1d(p / "bn_z", a.latent, nn::BatchNormConfig { affine: false, ..Default::default() })),
            whiten_z: (a.z_whitening_group > 0).then(|| super::whitening::GroupWhitening::new(&(p / "whiten_z"), a.latent, a.z_whitening_group)),
            latent: a.latent,
            width,
            z_stdev_max: a.z_stdev_max,
            deterministic: a.deterministic_e,
            head_reads_bn_crelu: a.head_reads_bn_crelu,
        }
    }

    pub fn avepool_width(&self) -> i64 {
        self.width
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Encoded {
        self.from_avepool(self.avepool(x, train), train)
    }

    /// E's body: the AvePool feature of a batch of images.
    pub fn avepool(&self, x: &Tensor, train: bool) -> Tensor {
        match &self.body {
            EncoderBody::Resnet { stem, blocks, bn_out } => {
                let mut h = stem.forward(x);
                for b in blocks {
                    h = b.forward_t(&h, train);
                }
                bn_out.forward_t(&h, train).relu().mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            }
            EncoderBody::Dcgan { convs } => {
                let mut h = x.shallow_clone();
                for (conv, bn) in convs {
                    h = conv.forward(&h);
                    h = lrelu(&bn.as_ref().map_or(h.shallow_clone(), |bn| bn.forward_t(&h, train)));
                }
                h.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            }
            EncoderBody::Mlp { layers } => {
                let mut h = x.flatten(1, -1);
                for (fc, bn) in layers {
                    h = fc.forward(&h);
                    h = lrelu(&bn.as_ref().map_or(h.shallow_clone(), |bn| bn.forward_t(&h, train)));
                }
                h
            }
        }
    }

    /// E's head on a batch of AvePool features: the BN+CReLU feature and the code.
    pub fn from_avepool(&self, avepool: Tensor, train: bool) -> Encoded {
        let b = self.bn_feature.forward_t(&avepool, train);
        let bn_crelu = Tensor::cat(&[b.relu(), b.neg().relu()], 1);
        let head_input = if self.head_reads_bn_crelu { &bn_crelu } else { &avepool };
        let stats = self.head2.forward(&lrelu(&self.head1.forward(head_input)));
        let z_mean = stats.narrow(1, 0, self.latent);
        let z_mean = self.bn_z.as_ref().map_or(z_mean.shallow_clone(), |bn| bn.forward_t(&z_mean, train));
        let z_mean = self.whiten_z.as_ref().map_or(z_mean.shallow_clone(), |w| w.forward_t(&z_mean, train));
        let raw = stats.narrow(1, self.latent, self.latent);
        let z_stdev = if self.deterministic {
            raw.zeros_like()
        } else {
            match self.z_stdev_max {
                Some(max) => raw.sigmoid() * max + 1e-4,
                None => raw.softplus() + 1e-4,
            }
        };
        let z_sample = &z_mean + &z_stdev * z_mean.randn_like();
        Encoded { avepool, bn_crelu, z_mean, z_stdev, z_sample }
    }
}

/// Each row of a batch paired with the next row's (the last with the first): for a batch of two or more, no
/// row keeps its own — the "another image's latent" of mismatched pairs and of the contrastive joint score.
pub fn next_in_batch(t: &Tensor) -> Tensor {
    t.roll([1i64].as_slice(), [0i64].as_slice())
}

/// The rows `idx` of `t`, in that order (a seeded batch or subset of the training images).
pub fn select_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Ok(t.f_index_select(0, &Tensor::f_from_slice(&idx)?.f_to_device(t.device())?)?)
}

/// The three scores of D for a batch of (x, z) pairs, each `[N]`.
#[derive(Debug)]
pub struct Scores {
    pub s_x: Tensor,
    pub s_z: Tensor,
    pub s_xz: Tensor,
}

impl Scores {
    /// The first `n` pairs' scores and the rest's: D's scores of two batches judged as one.
    pub fn split_at(&self, n: i64) -> (Scores, Scores) {
        let rows = |start: i64, len: i64| Scores { s_x: self.s_x.narrow(0, start, len), s_z: self.s_z.narrow(0, start, len), s_xz: self.s_xz.narrow(0, start, len) };
        (rows(0, n), rows(n, self.s_xz.size()[0] - n))
    }
}

/// D's image network F.
#[derive(Debug)]
enum ImageBody {
    Resnet(Vec<ResDown>),
    Dcgan(Vec<SnConv>),
    Mlp(Vec<SnLinear>),
}

#[derive(Debug)]
pub struct Discriminator {
    f: ImageBody,
    /// The dense readout of F's last map, when the architecture asks for it (else mean pooling).
    readout: Option<SnLinear>,
    theta_x: SnLinear,
    h: Vec<SnLinear>,
    theta_z: SnLinear,
    j: Vec<SnLinear>,
    /// W of the projection term F(x)ᵀ·W·H(z), when the architecture asks for it.
    projection: Option<SnLinear>,
    /// s_xz = J(x, z) − J(x, z′) (see `Architecture::contrastive_joint`).
    contrastive: bool,
    dropout: f64,
}

impl Discriminator {
    pub fn new(p: &nn::Path, a: &Architecture) -> Discriminator {
        let w = a.d_width;
        let f = match a.kind {
            NetKind::Resnet => {
                let widths = [a.channels, w, 2 * w, 4 * w];
                ImageBody::Resnet((0..3).map(|i| ResDown::spectral(p / format!("f{i}"), widths[i], widths[i + 1], i == 0)).collect())
            }
            NetKind::Dcgan => {
                let mut convs = vec![
                    SnConv::strided(p / "f0", a.channels, w, 4, 2, 1),
                    SnConv::strided(p / "f1", w, 2 * w, 4, 2, 1),
                    SnConv::strided(p / "f2", 2 * w, 4 * w, 3, 1, 1),
                ];
                if a.d_layers == 4 {
                    convs.push(SnConv::strided(p / "f3", 4 * w, 4 * w, 4, 2, 1));
                }
                ImageBody::Dcgan(convs)
            }
            NetKind::Mlp => ImageBody::Mlp(vec![SnLinear::new(p / "f0", a.pixels(), w), SnLinear::new(p / "f1", w, w)]),
        };
        let (m, jw, latent, fw) = (a.head_width, a.j_width, a.latent, a.f_width());
        let side = a.f_map_side();
        Discriminator {
            f,
            readout: (a.f_readout == Readout::Dense).then(|| SnLinear::new(p / "readout", 4 * w * side * side, fw)),
            theta_x: SnLinear::new(p / "theta_x", fw, 1),
            // Residual: H(z) = z + W₂ lrelu(W₁ z), so H keeps z's scale instead of shrinking it.
            h: vec![SnLinear::new(p / "h0", latent, m), SnLinear::new(p / "h1", m, latent)],
            theta_z: SnLinear::new(p / "theta_z", latent, 1),
            j: vec![SnLinear::new(p / "j0", fw + latent, jw), SnLinear::new(p / "j1", jw, jw), SnLinear::new(p / "j2", jw, 1)],
            projection: a.projection.then(|| SnLinear::new(p / "projection", fw, latent)),
            contrastive: a.contrastive_joint,
            dropout: a.dropout,
        }
    }

    /// F(x): image features `[N, f_width]`, mean-pooled or read out densely.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.feature_map(x, train);
        if matches!(self.f, ImageBody::Mlp(_)) {
            return h;
        }
        match &self.readout {
            Some(dense) => lrelu(&dense.forward_t(&h.flatten(1, -1), train)).dropout(self.dropout, train),
            None => h.mean_dim([2i64, 3].as_slice(), false, Kind::Float),
        }
    }

    /// F's last feature map before its read-out (`[N, C, S, S]`; the MLP's last hidden layer, `[N, C]`).
    pub fn feature_map(&self, x: &Tensor, train: bool) -> Tensor {
        match &self.f {
            ImageBody::Resnet(blocks) => {
                let mut h = x.shallow_clone();
                for b in blocks {
                    h = b.forward_t(&h, train);
                }
                h.relu()
            }
            ImageBody::Dcgan(convs) => {
                let mut h = x.shallow_clone();
                for c in convs {
                    h = lrelu(&c.forward_t(&h, train)).dropout(self.dropout, train);
                }
                h
            }
            // Already a vector: F(x) is the last hidden layer.
            ImageBody::Mlp(layers) => {
                let mut h = x.flatten(1, -1);
                for l in layers {
                    h = lrelu(&l.forward_t(&h, train)).dropout(self.dropout, train);
                }
                h
            }
        }
    }

    /// H(z), residual.
    pub fn latent_features(&self, z: &Tensor, train: bool) -> Tensor {
        z + self.h[1].forward_t(&lrelu(&self.h[0].forward_t(z, train)), train)
    }

    /// J's MLP on given F(x) and H(z), without the projection term.
    pub fn joint_mlp(&self, fx: &Tensor, hz: &Tensor, train: bool) -> Tensor {
        let mut h = Tensor::cat(&[fx, hz], 1);
        for l in &self.j[..2] {
            h = lrelu(&l.forward_t(&h, train)).dropout(self.dropout, train);
        }
        self.j[2].forward_t(&h, train).squeeze_dim(1)
    }

    /// s_xz on given F(x) and H(z): J's MLP [+ the projection term].
    pub fn joint(&self, fx: &Tensor, hz: &Tensor, train: bool) -> Tensor {
        let mlp = self.joint_mlp(fx, hz, train);
        match &self.projection {
            Some(w) => mlp + (w.forward_t(fx, train) * hz).sum_dim_intlist([1i64].as_slice(), false, Kind::Float),
            None => mlp,
        }
    }

    pub fn forward_t(&self, x: &Tensor, z: &Tensor, train: bool) -> Scores {
        let fx = self.features(x, train);
        let hz = self.latent_features(z, train);
        let mut s_xz = self.joint(&fx, &hz, train);
        if self.contrastive {
            s_xz -= self.joint(&fx, &next_in_batch(&hz), train);
        }
        Scores { s_x: self.theta_x.forward_t(&fx, train).squeeze_dim(1), s_z: self.theta_z.forward_t(&hz, train).squeeze_dim(1), s_xz }
    }
}
