#!/usr/bin/env python3
"""Issue 3's fit-time figures: bbeval's probe (libtorch back-end, CPU) against scikit-learn's lbfgs on the
same features, with bbeval's peak memory.

    ~/.cache/bbeval/venv/bin/python tools/bench_fit_speed.py fmnist TRAIN.parquet VAL.parquet [--l2 1e-4]
    ~/.cache/bbeval/venv/bin/python tools/bench_fit_speed.py synthetic [--rows 100000 --width 4096 --classes 1000]

`fmnist`: EfficientNet-Lite0 AvePool of all 60,000 Fashion-MNIST train images and the 10,000 test images
(`bbeval extract ... --split train|val`). sklearn fits all train rows once; `bbeval probe` runs the whole
protocol (fit on train minus 10% train-val, score train-val, refit on all train, score val: two fits), so
the ratio is conservative.

`synthetic`: seeded Gaussian classes (mean_c ~ N(0, s² I), x = mean_y + N(0, I)), written as bbeval
Parquet files; sklearn cannot converge on 100k × 4096 × 1000 within a CI machine's patience, so it is
stopped after --sklearn-iter L-BFGS iterations and the figure is a lower bound on the speed-up at
equal or better accuracy.

Peak memory is the maximum resident set of the `bbeval probe` process (GNU time).
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BBEVAL = os.environ.get("BBEVAL", os.path.expanduser("~/.cache/bbeval/target/release/bbeval"))


def read_parquet(path):
    t = pq.read_table(path, columns=["label", "feature"])
    f = t.column("feature").combine_chunks()
    return f.flatten().to_numpy().reshape(len(t), f.type.list_size), t.column("label").to_numpy()


def write_parquet(path, x, y):
    n, d = x.shape
    feature = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), d)
    table = pa.table({"index": pa.array(np.arange(n, dtype=np.uint32)), "id": pa.array([str(i) for i in range(n)]),
                      "label": pa.array(y.astype(np.uint32)), "feature": feature})
    pq.write_table(table, path, compression="none", row_group_size=2048)


def run_bbeval(train, val, args):
    cmd = ["/usr/bin/time", "-v", BBEVAL, "probe", train, val, "--cpu", "--json", "--l2", str(args.l2),
           "--lr", str(args.lr), "--epochs", str(args.epochs)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    out = json.loads(p.stdout)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    print(f"bbeval probe (torch, 1 head, {args.epochs} epochs, whole protocol = 2 fits): {wall:.1f} s wall, "
          f"top-1 {out['top1']:.4f}, peak RSS {rss_kb / 1024:.0f} MiB")
    return wall, out["top1"]


def run_sklearn(x, y, xv, yv, l2, max_iter):
    from sklearn.linear_model import LogisticRegression
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-6] = np.inf
    xs, xvs = (x - mean) / std, (xv - mean) / std
    clf = LogisticRegression(C=1.0 / (l2 * len(y)), max_iter=max_iter, tol=1e-6)
    t = time.perf_counter()
    clf.fit(xs.astype(np.float32), y)
    fit = time.perf_counter() - t
    top1 = float((clf.predict(xvs.astype(np.float32)) == yv).mean())
    print(f"sklearn lbfgs (max_iter {max_iter}, used {int(np.max(clf.n_iter_))}): {fit:.1f} s, top-1 {top1:.4f}")
    return fit, top1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fmnist", "synthetic"])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--sklearn-iter", type=int, default=1000)
    args = ap.parse_args()
    if args.mode == "fmnist":
        train, val = args.files
        x, y = read_parquet(train)
        xv, yv = read_parquet(val)
        print(f"features {x.shape} train, {xv.shape} val")
        tb, ab = run_bbeval(train, val, args)
        ts, as_ = run_sklearn(x, y, xv, yv, args.l2, args.sklearn_iter)
    else:
        rng = np.random.default_rng(0)
        means = rng.standard_normal((args.classes, args.width), dtype=np.float32) * args.scale
        def draw(n):
            y = rng.integers(0, args.classes, n)
            return means[y] + rng.standard_normal((n, args.width), dtype=np.float32), y
        x, y = draw(args.rows)
        xv, yv = draw(args.rows // 10)
        with tempfile.TemporaryDirectory() as d:
            train, val = os.path.join(d, "train.parquet"), os.path.join(d, "val.parquet")
            write_parquet(train, x, y)
            write_parquet(val, xv, yv)
            print(f"synthetic {x.shape} train, {xv.shape} val, {args.classes} classes, scale {args.scale}")
            tb, ab = run_bbeval(train, val, args)
        ts, as_ = run_sklearn(x, y, xv, yv, args.l2, args.sklearn_iter)
    print(f"speed-up {ts / tb:.1f}x (sklearn {ts:.1f} s / bbeval {tb:.1f} s); top-1 bbeval {ab:.4f} vs sklearn {as_:.4f}")


if __name__ == "__main__":
    main()
