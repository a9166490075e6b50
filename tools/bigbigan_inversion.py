#!/usr/bin/env python3
"""How far a trained mini BigBiGAN has learnt to invert its generator — the figures behind the
"does it reproduce" note of results/bigbigan-fmnist (a diagnostic, not part of bbeval's main path).

For the exported TorchScript E and G of one or more training runs:

* latent recovery: the mean over the latent dimensions (120 here, from the manifest) of corr(z_d, E(G(z))_d) for seeded z ~ N(0, I)
  (1.0 = E inverts G exactly; 0 = E ignores G's latent),
* linear decodability: held-out R² of a least-squares map to z (fit on 4,000 seeded latents, scored on
  2,000 others) from E(G(z))'s z_mean, from its AvePool, from the AvePool of the run's random-init encoder
  (what training added) and from G(z)'s pixels themselves — the last says how much of z the generated
  images carry at all, so a low R² from E is E's failure, not G's,
* reconstruction error: mean squared pixel error of G(E(x)) against x on Fashion-MNIST test images, in
  [-1, 1] units, beside the error of always answering the mean test image (a reconstruction that beats it
  carries information about x).

    python tools/bigbigan_inversion.py results/bigbigan-fmnist [results/bigan-fmnist ...]

Prints one JSON line per run. Uses the exports' own input convention: E takes 28×28 gray in [-1, 1]; G
returns gray in [-1, 1] at 28×28 (dcgan) or at 32×32 with the images padded (resnet: centre 28×28 used),
its gray channel repeated where it gives three.
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = 1000
SEED = 0
# Latents for the linear decodability: fit on the first FIT, score on the rest.
DECODE_SAMPLES = 6000
DECODE_FIT = 4000


def test_images(n: int) -> torch.Tensor:
    path = os.path.join(ROOT, "assets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(raw[:n].astype(np.float32) / 127.5 - 1.0)


def split_outputs(manifest: dict, out: torch.Tensor) -> dict:
    """The exported encoder returns its outputs side by side in the manifest's `output_order`."""
    parts, start = {}, 0
    for key in manifest["output_order"]:
        width = manifest["outputs"][key]
        parts[key] = out[:, start : start + width]
        start += width
    return parts


def gray28(images: torch.Tensor) -> torch.Tensor:
    """G's output as E's input: the gray channel at 28×28."""
    images = images[:, :1]
    if images.shape[-1] == 32:
        images = images[:, :, 2:30, 2:30]
    return images.contiguous()


def heldout_r2(features: torch.Tensor, z: torch.Tensor) -> float:
    """R² on held-out latents of the least-squares affine map features → z (fit on the first DECODE_FIT)."""
    design = torch.cat([features, torch.ones(len(features), 1)], 1).double()
    fit = torch.linalg.lstsq(design[:DECODE_FIT], z[:DECODE_FIT].double(), driver="gelsd").solution
    residual = design[DECODE_FIT:] @ fit - z[DECODE_FIT:]
    held = z[DECODE_FIT:].double()
    return 1.0 - residual.square().sum().item() / (held - held.mean(0)).square().sum().item()


def load_manifest(export: str, name: str) -> dict:
    import tomllib

    with open(os.path.join(export, f"{name}.toml"), "rb") as f:
        return tomllib.load(f)


def diagnose(run_dir: str) -> dict:
    run = os.path.basename(os.path.normpath(run_dir))
    export = os.path.join(run_dir, "export")
    manifest = load_manifest(export, f"{run}-e")
    e = torch.jit.load(os.path.join(export, f"{run}-e.pt"))
    g = torch.jit.load(os.path.join(export, f"{run}-g.pt"))
    gen = torch.Generator().manual_seed(SEED)
    z = torch.randn(SAMPLES, manifest["latent"], generator=gen)
    with torch.no_grad():
        xg = gray28(g(z))
        z_hat = split_outputs(manifest, e(xg))["z_mean"]
        zc, hc = z - z.mean(0), z_hat - z_hat.mean(0)
        corr = (zc * hc).sum(0) / (zc.norm(dim=0) * hc.norm(dim=0) + 1e-12)
        x = test_images(SAMPLES)
        rec = gray28(g(split_outputs(manifest, e(x))["z_mean"]))
        mse = ((rec - x) ** 2).mean().item()
        mean_image_mse = ((x - x.mean(0, keepdim=True)) ** 2).mean().item()
        zd = torch.randn(DECODE_SAMPLES, manifest["latent"], generator=gen)
        xd = gray28(g(zd))
        out = split_outputs(manifest, e(xd))
        random_path = os.path.join(export, f"{run}-e-random.pt")
        random_avepool = split_outputs(manifest, torch.jit.load(random_path)(xd))["avepool"] if os.path.exists(random_path) else None
        r2 = {
            "r2_from_z_mean": heldout_r2(out["z_mean"], zd),
            "r2_from_avepool": heldout_r2(out["avepool"], zd),
            "r2_from_random_init_avepool": heldout_r2(random_avepool, zd) if random_avepool is not None else float("nan"),
            "r2_from_pixels": heldout_r2(xd.flatten(1), zd),
        }
    return {
        "run": run,
        "latent_corr_mean": round(corr.mean().item(), 4),
        "recon_mse": round(mse, 4),
        "mean_image_mse": round(mean_image_mse, 4),
        **{k: round(v, 3) for k, v in r2.items()},
        "samples": SAMPLES,
        "seed": SEED,
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for d in sys.argv[1:]:
        print(json.dumps(diagnose(d)))
