#!/usr/bin/env python3
"""The probe protocol's speed, side by side: `bbeval probe` (its default back-end: L-BFGS along the λ path,
strong to weak, each head warm-started; the refit warm-started) against scikit-learn's LogisticRegression(lbfgs) running the same protocol on the same features.

    ~/.cache/bbeval/venv/bin/python tools/bench_fit_speed.py real TRAIN.parquet VAL.parquet
    ~/.cache/bbeval/venv/bin/python tools/bench_fit_speed.py synthetic --rows 100000 --width 4096 --classes 1000

The protocol on both sides: standardise with the fit rows' statistics, fit one model per λ of the grid
(default bbeval's: 1e-6 … 1e-2; sklearn C = 1/(λ n)) on train minus a 10% train-val split, choose λ by
train-val top-1, standardise with all of train, refit the chosen λ on all of train, score val once.
sklearn stops at tol 1e-4 (its default, the same projected-gradient criterion bbeval uses) and max_iter
1000 (bbeval's limit). Its split is its own seeded 10% (bbeval's ChaCha8 split is not reproduced in numpy),
so the chosen λ may differ; top-1 is compared on the same val rows.

`real`: two feature files in bbeval's layout (e.g. EfficientNet-Lite0 AvePool of all 60,000 Fashion-MNIST
train images and the 10,000 test images: `bbeval extract … --split train|val`).
`synthetic`: `bbeval cache synthetic` writes seeded Gaussian classes (mean_c ~ N(0, scale² I), x = mean_y +
N(0, I)).

Both sides run as their own process under /usr/bin/time -v (wall time and peak RSS, reading the features
included), one after the other on an otherwise idle machine.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

BBEVAL = os.environ.get("BBEVAL", os.path.expanduser("~/.cache/bbeval/target/release/bbeval"))
GRID = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]


def read_parquet(path):
    t = pq.read_table(path, columns=["label", "feature"])
    f = t.column("feature").combine_chunks()
    return f.flatten().to_numpy().reshape(len(t), f.type.list_size), t.column("label").to_numpy().astype(np.int64)


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {p.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return wall, rss, p.stdout


def sklearn_protocol(train, val, grid, tol, max_iter):
    """Run in its own process (see main): prints one JSON line."""
    from sklearn.linear_model import LogisticRegression
    x, y = read_parquet(train)
    xv, yv = read_parquet(val)
    rng = np.random.default_rng(0)
    held = rng.permutation(len(y))[: round(0.1 * len(y))]
    fit = np.ones(len(y), bool)
    fit[held] = False

    def standardised(a, rows):
        mean, std = a[rows].mean(0), a[rows].std(0)
        inv = np.where(std > 1e-6, 1 / np.maximum(std, 1e-12), 0).astype(np.float32)
        return lambda b: ((b - mean) * inv).astype(np.float32)

    s = standardised(x, fit)
    xf, xt = s(x[fit]), s(x[~fit])
    scores, iters = [], []
    for l2 in grid:
        clf = LogisticRegression(C=1 / (l2 * fit.sum()), tol=tol, max_iter=max_iter).fit(xf, y[fit])
        scores.append(float((clf.predict(xt) == y[~fit]).mean()))
        iters.append(int(np.max(clf.n_iter_)))
    best = int(np.argmax(scores))
    s = standardised(x, np.ones(len(y), bool))
    clf = LogisticRegression(C=1 / (grid[best] * len(y)), tol=tol, max_iter=max_iter).fit(s(x), y)
    top1 = float((clf.predict(s(xv)) == yv).mean())
    print(json.dumps({"top1": top1, "l2": grid[best], "train_val": scores, "iterations": iters, "refit_iterations": int(np.max(clf.n_iter_))}))


def compare(train, val, args):
    grid = ",".join(str(v) for v in args.grid)
    tb, rb, out = timed([BBEVAL, "--json", "-q", "probe", train, val, "--device", "cpu", "--l2", grid, "--tol", str(args.tol), "--max-iter", str(args.max_iter)])
    ours = json.loads(out)
    print(f"bbeval probe ({ours['backend']}, {len(args.grid)} λ along the path + refit): {tb:.1f} s, top-1 {ours['top1']:.4f} (λ {ours['chosen']['l2']}), peak RSS {rb:.0f} MiB")
    ts, rs, out = timed([sys.executable, os.path.abspath(__file__), "sklearn-protocol", train, val, "--grid"] + [str(v) for v in args.grid] + ["--tol", str(args.tol), "--max-iter", str(args.max_iter)])
    theirs = json.loads(out)
    print(f"sklearn lbfgs ({len(args.grid)} λ one by one + refit, iterations {theirs['iterations']} + {theirs['refit_iterations']}): {ts:.1f} s, top-1 {theirs['top1']:.4f} (λ {theirs['l2']}), peak RSS {rs:.0f} MiB")
    print(f"speed-up {ts / tb:.2f}x; top-1 bbeval {100 * ours['top1']:.2f} vs sklearn {100 * theirs['top1']:.2f} ({100 * (ours['top1'] - theirs['top1']):+.2f} points)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["real", "synthetic", "sklearn-protocol"])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--grid", type=float, nargs="+", default=GRID)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--val-rows", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--scale", type=float, default=0.1)
    args = ap.parse_args()
    if args.mode == "sklearn-protocol":
        sklearn_protocol(*args.files, args.grid, args.tol, args.max_iter)
    elif args.mode == "real":
        compare(*args.files, args)
    else:
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([BBEVAL, "--json", "-q", "cache", "synthetic", "--cache-dir", d, "--rows", str(args.rows), "--val-rows", str(args.val_rows),
                                  "--width", str(args.width), "--classes", str(args.classes), "--scale", str(args.scale)], capture_output=True, text=True, check=True)
            files = json.loads(out.stdout)
            print(f"synthetic {args.rows} × {args.width}, {args.classes} classes, scale {args.scale}; val {args.val_rows}")
            compare(files["train"], files["val"], args)


if __name__ == "__main__":
    main()
