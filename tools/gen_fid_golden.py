#!/usr/bin/env python3
"""Goldens for tests/genmetrics.rs.

1. Fréchet distance: two seeded random 64-d statistics (numpy default_rng(0)), written as pytorch-fid style
   .npz files (tests/fixtures/frechet_a.npz, frechet_b.npz with `mu`, `sigma`), and their distance by the
   scipy.linalg.sqrtm route of pytorch-fid's calculate_frechet_distance.
2. FID of the real pipeline: Fashion-MNIST's first 100 train vs first 100 t10k images, PIL bilinear resize
   to 299² in float (mode "F", as clean-fid), gray → RGB, (p − 128)/128, the FID Inception TorchScript (assets/fid/default_1.pt,
   torch 2.13.0 CPU), np.mean / np.cov(rowvar=False) in float64, scipy sqrtm route.

    make setup && ~/.cache/bbeval/venv/bin/python tools/gen_fid_golden.py
"""
import os

import numpy as np
import scipy
import scipy.linalg
import torch
from PIL import Image

from fashion_mnist import read_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests/fixtures")


def frechet_scipy(mu1, s1, mu2, s2):
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def random_stats(rng, d):
    a = rng.standard_normal((d, 3 * d))
    return rng.standard_normal(d), a @ a.T / (3 * d)


def inception_stats(model, images):
    xs = []
    for g in images:
        # clean-fid style: resample in float (PIL mode "F"), no rounding; gray replicated to 3 channels.
        ch = np.asarray(Image.fromarray(g.astype(np.float32), "F").resize((299, 299), Image.BILINEAR), np.float32)
        xs.append((np.stack([ch, ch, ch]) - 128.0) / 128.0)
    feats = []
    with torch.no_grad():
        for i in range(0, len(xs), 10):
            feats.append(model(torch.from_numpy(np.stack(xs[i:i + 10]))).numpy().astype(np.float64))
    f = np.concatenate(feats)
    return f.mean(0), np.cov(f, rowvar=False)


def main():
    rng = np.random.default_rng(0)
    mu1, s1 = random_stats(rng, 64)
    mu2, s2 = random_stats(rng, 64)
    np.savez(os.path.join(FIX, "frechet_a.npz"), mu=mu1, sigma=s1)
    np.savez(os.path.join(FIX, "frechet_b.npz"), mu=mu2, sigma=s2)
    print(f"scipy {scipy.__version__}: frechet(a, b) = {frechet_scipy(mu1, s1, mu2, s2)!r}")

    model = torch.jit.load(os.path.join(ROOT, "assets/fid/default_1.pt")).eval()
    a = inception_stats(model, read_idx("train-images-idx3-ubyte.gz")[:100])
    b = inception_stats(model, read_idx("t10k-images-idx3-ubyte.gz")[:100])
    print(f"FID fashion-mnist train[:100] vs t10k[:100] = {frechet_scipy(*a, *b)!r}")


if __name__ == "__main__":
    main()
