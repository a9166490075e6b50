#!/usr/bin/env python3
"""Python side of the README's figures, on the same files and machine as `make bench` (benches/pipeline.rs).

1. PIL decode + centre square crop + bicubic 256 of foolbox's 20 ImageNet JPEGs, one core.
2. A PyTorch DataLoader (2 workers, PIL preprocessing as in tools/gen_efficientnet_golden.py, batch 20) feeding
   the same EfficientNet-Lite0 TorchScript on CPU: images/s.
3. numpy .npy write/read of 20,000 × 4096 f32: MB/s.
4. scikit-learn lbfgs on Parquet features written by bbeval (read with pyarrow), when given --features.

    ~/.cache/bbeval/venv/bin/python tools/bench_python.py [--features TRAIN.parquet VAL.parquet]
"""
import argparse
import glob
import os
import tempfile
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "assets/foolbox/imagenet/*.jpg")))


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def pil_load(path, size, crop, mean, std):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = min(w, h) * crop
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    a = np.asarray(im.resize((size, size), Image.BICUBIC, box=box), np.float32)
    return torch.from_numpy(((a / 255.0 - mean) / std).transpose(2, 0, 1).copy())


class Foolbox(torch.utils.data.Dataset):
    def __len__(self):
        return len(FILES)

    def __getitem__(self, i):
        return pil_load(FILES[i], 224, 0.875, 0.498, 0.502)


def bench_decode():
    t = best_of(lambda: [pil_load(f, 256, 1.0, 0.5, 0.5) for f in FILES])
    print(f"decode_resize PIL bigbigan-256 one core: {len(FILES) / t:.1f} images/s")


def bench_extract():
    torch.set_num_threads(os.cpu_count())
    model = torch.jit.load(os.path.join(ROOT, "assets/encoders/efficientnet-lite0.pt")).eval()
    for batch_size in (4, 20):
        loader = torch.utils.data.DataLoader(Foolbox(), batch_size=batch_size, num_workers=2)

        def run():
            with torch.no_grad():
                for x in loader:
                    model(x)["avepool"].numpy()

        run()  # warm-up (workers, TorchScript profiling)
        t = best_of(run)
        print(f"extract PyTorch DataLoader(2 workers, batch {batch_size}) + TorchScript CPU: {len(FILES) / t:.1f} images/s")


def bench_npy():
    x = np.random.default_rng(0).random((20_000, 4096), dtype=np.float32)
    mb = x.nbytes / 1e6
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.npy")
        tw = best_of(lambda: np.save(path, x), 3)
        tr = best_of(lambda: np.load(path).sum(), 3)
    print(f"npy 20000x4096 f32: write {mb / tw:.0f} MB/s, read {mb / tr:.0f} MB/s")


def bench_sklearn(train_path, val_path):
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    def load(p):
        t = pq.read_table(p)
        x = np.stack(t.column("feature").to_numpy(zero_copy_only=False)).astype(np.float32)
        return x, t.column("label").to_numpy()

    x, y = load(train_path)
    xv, yv = load(val_path)
    mean, std = x.mean(0), x.std(0)
    inv = np.where(std > 1e-6, 1 / np.maximum(std, 1e-12), 0)
    x, xv = (x - mean) * inv, (xv - mean) * inv
    t = time.perf_counter()
    clf = LogisticRegression(C=1.0 / (1e-4 * len(x)), max_iter=200).fit(x, y)
    dt = time.perf_counter() - t
    print(f"sklearn lbfgs {x.shape}: {dt:.1f} s, {clf.n_iter_} iterations, val top-1 {(clf.predict(xv) == yv).mean():.4f}")


def bench_frechet():
    import scipy.linalg
    rng = np.random.default_rng(0)
    a, b = rng.random((4096, 2048)), rng.random((4096, 2048))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    t = time.perf_counter()
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)
    print(f"frechet 2048-d scipy.linalg.sqrtm route: {time.perf_counter() - t:.2f} s")


def bench_inception():
    model = torch.jit.load(os.path.join(ROOT, "assets/fid/default_1.pt")).eval()

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(FILES)

        def __getitem__(self, i):
            im = np.asarray(Image.open(FILES[i]).convert("RGB"), np.float32)
            chans = [np.asarray(Image.fromarray(im[..., c], "F").resize((299, 299), Image.BILINEAR)) for c in range(3)]
            return torch.from_numpy((np.stack(chans) - 128.0) / 128.0)

    loader = torch.utils.data.DataLoader(Images(), batch_size=4, num_workers=2)

    def run():
        with torch.no_grad():
            feats = np.concatenate([model(x).numpy().astype(np.float64) for x in loader])
        return feats.mean(0), np.cov(feats, rowvar=False)

    run()
    t = best_of(run, 3)
    print(f"inception PyTorch DataLoader(2 workers, batch 4) + TorchScript CPU + np.cov: {len(FILES) / t:.1f} images/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", nargs=2, metavar=("TRAIN", "VAL"))
    args = ap.parse_args()
    bench_decode()
    bench_extract()
    bench_npy()
    bench_frechet()
    bench_inception()
    if args.features:
        bench_sklearn(*args.features)


if __name__ == "__main__":
    main()
