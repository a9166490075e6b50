#!/usr/bin/env python3
"""Golden AvePool features and predictions of EfficientNet-Lite0 on foolbox's 20 ImageNet JPEGs.

PyTorch reference of the Rust pipeline on the same images: PIL decode → RGB, centre square of 0.875 of the
short side resampled bicubic to 224 (PIL `resize(box=...)`), (x/255 − 0.498)/0.502, the exported TorchScript
(assets/encoders/efficientnet-lite0.pt), torch 2.13.0 on CPU. Writes tests/fixtures/efficientnet_lite0_foolbox.npz
with rows in sorted file-name order: `avepool` (20×1280 f32), `top1` (predicted class), `labels`, and `crops`:
the PIL-preprocessed 224×224 RGB uint8 inputs of the first 3 images, so a test can feed the Rust pipeline the
very same pixels (lossless PNG) and compare the encoder's output within 1e-4.

    make setup && ~/.cache/bbeval/venv/bin/python tools/gen_efficientnet_golden.py
"""
import glob
import os
import re

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROP, SIZE, MEAN, STD = 0.875, 224, 0.498, 0.502


N_CROPS = 3


def crop(path: str) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = min(w, h) * CROP
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    return np.asarray(im.resize((SIZE, SIZE), Image.BICUBIC, box=box), np.uint8)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def main() -> None:
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(ROOT, "assets/foolbox/imagenet/*.jpg")))
    model = torch.jit.load(os.path.join(ROOT, "assets/encoders/efficientnet-lite0.pt")).eval()
    crops = np.stack([crop(f) for f in files])
    x = torch.from_numpy(np.stack([preprocess(c) for c in crops]))
    with torch.no_grad():
        out = model(x)
    labels = np.array([int(re.findall(r"_(\d+)\.jpg$", f)[0]) for f in files])
    top1 = out["logits"].argmax(1).numpy()
    np.savez_compressed(os.path.join(ROOT, "tests/fixtures/efficientnet_lite0_foolbox.npz"),
             avepool=out["avepool"].numpy().astype(np.float32),
             top1=top1.astype(np.int64), labels=labels.astype(np.int64), crops=crops[:N_CROPS])
    print(f"top-1 {int((top1 == labels).sum())}/{len(files)}")


if __name__ == "__main__":
    main()
