#!/usr/bin/env python3
"""BiGAN's own permutation-invariant MNIST recipe, re-written in PyTorch and run on Fashion-MNIST: does the
setting in which BiGAN's authors showed an encoder learning (their official log: E above its random
initialisation, reconstructions better than chance) make E invert G on this data, and how fast? A reference
cross-check for `bbeval train-bigbigan` (issue 12), never part of bbeval's main path.

The recipe, from the official code (github.com/jeffdonahue/bigan: train_mnist.sh, net.py `mnist_mlp` and
`deconvnet_mnist_mlp`, gan.py, dist.py, train_gan.py defaults):
* z ~ U(-1, 1)^50 ("u-50"); E's output is squashed into the prior's range (2·sigmoid − 1, dist.py).
* E: FC 1024 → LReLU(0.2) → FC 1024 → BN → LReLU → FC 50; G: FC 1024 → BN → ReLU → FC 1024 → BN → ReLU →
  FC 784 → sigmoid (images in [0, 1]); no biases, BN without gain or bias (`--nobias --nogain`), weights
  N(0, 0.02).
* D: FC 1024 → LReLU on x, then FC 1024 on that **plus FC(z)** (net.py `apply_cond`: z enters as a bias of
  D's second layer) → BN → LReLU → FC 1 (logit).
* Cross-entropy losses, E and G with flipped labels (gan.py `opp_loss`); Adam lr 2e-4, β1 0.5, L2 weight
  decay 2.5e-5; batch 128; one D step per E/G step.
Not reproduced: the learning-rate decay over the second half of 400 epochs (this runs ≤ 25).

Measured every `--eval_every` epochs: corr(z, E(G(z))) (mean over the 50 dimensions, 2,048 seeded latents),
top-1 of a logistic regression (sklearn, C = 1, standardised features) on E's layer before its output (the
official log's CLS_e-) trained on 10,000 seeded training images and scored on 2,000 others (the demo's
protocol sizes), and the reconstruction error ‖x − G(E(x))‖ beside its baseline ‖x′ − G(E(x))‖ (the official
log's EGr / EGr_b) on 1,000 of those images.

Ablations towards `bbeval train-bigbigan`'s CPU recipe, one ingredient at a time:
  --loss hinge       BigBiGAN's hinge loss for D, raw scores for E/G
  --prior gaussian   z ~ N(0, I), E's output unbounded (the recipe's deterministic E)
  --fusion late      z through its own FC 1024 → LReLU, joined with x's features in a joint FC layer (ALI's and
                     the recipe's J on [F(x), H(z)]) instead of entering D's x-path as a bias
  --d_bn 0           no BN in D (the recipe's D uses spectral norm instead)

    python tools/bigan_mlp_reference.py [--epochs 25] [--eval_every 2.5] [--seed 0] [ablations] [--export DIR]
                                        [--export_every EPOCHS]

With `--export DIR`, E's layer before its output is saved at step 0 and at the end (and every `--export_every`
epochs, as `DIR/bigan-mlp-reference-e-ep<N>.*`) as TorchScript encoders
with bbeval manifests (`DIR/bigan-mlp-reference-e-random.*`, `DIR/bigan-mlp-reference-e.*`: input 28×28 gray
in [-1, 1] as bbeval feeds it, output `avepool`, 1024 wide; BN statistics calibrated on 16 × 128 seeded
training images first, as bbeval calibrates its own exports), so `bbeval run` probes them on its protocol.

Prints one line per evaluation. 2 CPU threads by default: ≈ 32 s per epoch on the 2-core machine. Each
evaluation reseeds torch afterwards (from the seed and the step), so runs of one seed with evaluations at
different points train on different latents after the first.
"""
import argparse
import os
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from fashion_mnist import FOLDER, read_idx

# The script's probe is a quick reading at 300 L-BFGS iterations (bbeval's own protocol is the careful one).
warnings.filterwarnings("ignore", category=ConvergenceWarning)


p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--data", default=FOLDER)
p.add_argument("--epochs", type=float, default=25)
p.add_argument("--eval_every", type=float, default=2.5, help="epochs between evaluations")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--latent", type=int, default=50)
p.add_argument("--width", type=int, default=1024)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--loss", choices=["bce", "hinge"], default="bce")
p.add_argument("--prior", choices=["uniform", "gaussian"], default="uniform")
p.add_argument("--fusion", choices=["early", "late"], default="early")
p.add_argument("--d_bn", type=int, choices=[0, 1], default=1)
p.add_argument("--export", help="folder for E's TorchScript exports with bbeval manifests")
p.add_argument("--export_every", type=float, default=0,
               help="with --export, also export E every this many epochs (as bigan-mlp-reference-e-ep<N>)")
args = p.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)


X = torch.tensor(read_idx("train-images-idx3-ubyte.gz", args.data).reshape(-1, 784), dtype=torch.float32) / 255.0
Y = read_idx("train-labels-idx1-ubyte.gz", args.data)
N, W, L = X.shape[0], args.width, args.latent


def fc(i, o):
    layer = nn.Linear(i, o, bias=False)
    nn.init.normal_(layer.weight, 0, 0.02)
    return layer


def bn(n):
    return nn.BatchNorm1d(n, affine=False)


encoder = nn.Sequential(fc(784, W), nn.LeakyReLU(0.2), fc(W, W), bn(W), nn.LeakyReLU(0.2), fc(W, L))
features = encoder[:5]  # the layer before E's output (CLS_e-)
generator = nn.Sequential(fc(L, W), bn(W), nn.ReLU(), fc(W, W), bn(W), nn.ReLU(), fc(W, 784), nn.Sigmoid())


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.x1, self.x2, self.out = fc(784, W), fc(W, W), fc(W, 1)
        self.bn = bn(W) if args.d_bn else nn.Identity()
        if args.fusion == "early":
            self.z = fc(L, W)
        else:
            self.z = nn.Sequential(fc(L, W), nn.LeakyReLU(0.2))
            self.joint = fc(2 * W, W)

    def forward(self, x, z):
        h = F.leaky_relu(self.x1(x), 0.2)
        if args.fusion == "early":
            return self.out(F.leaky_relu(self.bn(self.x2(h) + self.z(z)), 0.2)).squeeze(1)
        h = F.leaky_relu(self.bn(self.x2(h)), 0.2)
        return self.out(F.leaky_relu(self.joint(torch.cat([h, self.z(z)], 1)), 0.2)).squeeze(1)


discriminator = Discriminator()
if args.prior == "uniform":
    def encode(x):
        return 2 * torch.sigmoid(encoder(x)) - 1

    def prior(n):
        return torch.rand(n, L) * 2 - 1
else:
    encode = encoder

    def prior(n):
        return torch.randn(n, L)


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), weight_decay=2.5e-5)


opt_d = adam(discriminator.parameters())
opt_eg = adam(list(encoder.parameters()) + list(generator.parameters()))

rng = np.random.default_rng(args.seed)
probe_train = rng.choice(N, 10000, replace=False)
probe_val = rng.choice(np.setdiff1d(np.arange(N), probe_train), 2000, replace=False)
steps_per_epoch = N // args.batch
eval_every = max(1, int(args.eval_every * steps_per_epoch))
total = int(args.epochs * steps_per_epoch)
export_every = int(args.export_every * steps_per_epoch)


def evaluate(step, started):
    encoder.eval(), generator.eval()
    with torch.no_grad():
        torch.manual_seed(args.seed + 1)  # the same latents at every evaluation
        z = prior(2048)
        ez = encode(generator(z))
        zc, ec = z - z.mean(0), ez - ez.mean(0)
        corr = ((zc * ec).sum(0) / (zc.norm(dim=0) * ec.norm(dim=0) + 1e-12)).mean().item()
        f_train, f_val = features(X[probe_train]).numpy(), features(X[probe_val]).numpy()
        mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
        probe = LogisticRegression(max_iter=300, C=1.0).fit((f_train - mu) / sd, Y[probe_train])
        top1 = (probe.predict((f_val - mu) / sd) == Y[probe_val]).mean()
        x = X[probe_val[:1000]]
        rec = generator(encode(x))
        egr = (x - rec).norm(dim=1).mean().item()
        egr_b = (x.roll(1, 0) - rec).norm(dim=1).mean().item()
    encoder.train(), generator.train()
    print(f"step {step:6d}  epoch {step / steps_per_epoch:5.1f}  corr {corr:6.3f}  probe top-1 {100 * top1:.1f}"
          f"  EGr/EGr_b {egr:.2f}/{egr_b:.2f}  ({time.time() - started:.0f} s)", flush=True)
    torch.manual_seed(args.seed + 2 + step)


def d_loss(real, gen):
    if args.loss == "bce":
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(gen, torch.zeros_like(gen))
    return F.relu(1 - real).mean() + F.relu(1 + gen).mean()


def eg_loss(real, gen):
    if args.loss == "bce":  # non-saturating: the labels flipped
        return F.binary_cross_entropy_with_logits(real, torch.zeros_like(real)) + \
            F.binary_cross_entropy_with_logits(gen, torch.ones_like(gen))
    return real.mean() - gen.mean()  # BigBiGAN's E/G loss: the raw scores


class Features(nn.Module):
    """E's layer before its output on bbeval's input convention ([N, 1, 28, 28] in [-1, 1])."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body((x.flatten(1) + 1) / 2)


def export(name, source):
    import copy
    import hashlib
    os.makedirs(args.export, exist_ok=True)
    body = copy.deepcopy(features)
    calibration = np.random.default_rng(args.seed ^ 0x63616C69).permutation(N)[:16 * 128]
    with torch.no_grad():
        for m in body.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
        body.train()
        for i in range(16):
            body(X[calibration[i * 128:(i + 1) * 128]])
    body.eval()
    traced = torch.jit.trace(Features(body), torch.zeros(2, 1, 28, 28))
    weights = os.path.join(args.export, f"{name}.pt")
    traced.save(weights)
    sha = hashlib.sha256(open(weights, "rb").read()).hexdigest()
    with open(os.path.join(args.export, f"{name}.toml"), "w") as f:
        f.write(f'# Written by tools/bigan_mlp_reference.py ({source}).\nname = "{name}"\n'
                f'architecture = "BiGAN mnist_mlp E (reference recipe, width {W})"\nweights = "{name}.pt"\n'
                f'weights_sha256 = "{sha}"\nsource = "{source}"\noutput_order = ["avepool"]\n\n'
                f'[input]\nsize = 28\nchannels = 1\nrange = [-1, 1]\n\n[outputs]\navepool = {W}\n')


print(f"# {vars(args)}", flush=True)
if args.export:
    export("bigan-mlp-reference-e-random", f"seed {args.seed}, step 0 (random init, BN calibrated)")
started = time.time()
evaluate(0, started)
order = torch.randperm(N)
for step in range(1, total + 1):
    at = (step - 1) % steps_per_epoch
    if at == 0 and step > 1:
        order = torch.randperm(N)
    x = X[order[at * args.batch:(at + 1) * args.batch]]
    z = prior(args.batch)
    ex, gx = encode(x), generator(z)
    loss = d_loss(discriminator(x, ex.detach()), discriminator(gx.detach(), z))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    loss = eg_loss(discriminator(x, ex), discriminator(gx, z))
    opt_eg.zero_grad()
    loss.backward()
    opt_eg.step()
    if step % eval_every == 0 or step == total:
        evaluate(step, started)
    if args.export and export_every and step % export_every == 0:
        epoch = step / steps_per_epoch
        export(f"bigan-mlp-reference-e-ep{epoch:g}", f"seed {args.seed}, step {step} (epoch {epoch:g} of a {args.epochs:g}-epoch run)")
if args.export:
    options = ", ".join(f"{k} {getattr(args, k)}" for k in ("loss", "prior", "fusion", "d_bn"))
    export("bigan-mlp-reference-e", f"seed {args.seed}, step {total} ({args.epochs:g} epochs; {options})")
