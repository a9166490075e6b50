#!/usr/bin/env python3
"""Golden top-1/top-5 of scikit-learn's LogisticRegression for the probe agreement tests.

Two goldens (tests/probe_agreement.rs):
* raw pixels (default): described below.
* `--features TRAIN.parquet VAL.parquet --l2 λ`: bbeval's own cached features (read with pyarrow, so this
  also checks the documented schema), standardised with the train rows' statistics; the test extracts
  them itself (EfficientNet-Lite0 AvePool on seeded Fashion-MNIST subsets) and compares.

Data: Fashion-MNIST (assets/fashion-mnist, Debian dataset-fashion-mnist): the first 3000 train images fit,
the first 1000 t10k images are scored; raw pixels /255, standardised with the fit rows' mean and std
(constant pixels map to 0, as bbeval's Standardiser does). Objective: mean CE + λ/2 ‖W‖² with λ = 1e-2,
i.e. sklearn C = 1/(λ n). lbfgs, tol 1e-8, max_iter 5000 (converged); also the objective sklearn reaches
at its default tol 1e-4. Prints the numbers that tests/probe_agreement.rs asserts.
"""

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from fashion_mnist import read_idx

N_FIT, N_VAL, L2 = 3000, 1000, 1e-2


def objective(clf, x, y, l2):
    """mean CE + λ/2 ‖W‖² in float64, the objective every bbeval back-end minimises."""
    from scipy.special import logsumexp
    s = x.astype(np.float64) @ clf.coef_.T + clf.intercept_
    return (logsumexp(s, 1) - s[np.arange(len(y)), y]).mean() + 0.5 * l2 * (clf.coef_ ** 2).sum()


def fit_and_score(x, y, xv, yv, l2):
    mean, std = x.mean(0), x.std(0)
    inv = np.where(std > 1e-6, 1 / np.maximum(std, 1e-12), 0)
    x, xv = (x - mean) * inv, (xv - mean) * inv
    # At sklearn's default tol (1e-4): the objective bbeval's L-BFGS at the same tol must reach.
    default_tol = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-4, max_iter=5000).fit(x, y)
    print(f"sklearn tol=1e-4: objective={objective(default_tol, x, y, l2):.9f} iters={default_tol.n_iter_}")
    clf = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-8, max_iter=5000).fit(x, y)
    print(f"sklearn tol=1e-8: objective={objective(clf, x, y, l2):.9f}")
    s = clf.decision_function(xv)
    top1 = (s.argmax(1) == yv).mean()
    rank = (s > s[np.arange(len(yv)), yv][:, None]).sum(1)
    print(f"sklearn {sklearn.__version__}: n={len(x)}x{x.shape[1]} lambda={l2} C={1 / (l2 * len(x)):.6f} "
          f"top1={top1:.4f} top5={(rank < 5).mean():.4f} iters={clf.n_iter_}")


def parquet_features(path):
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    assert t.column_names == ["index", "id", "label", "feature"], t.column_names
    x = np.stack(t.column("feature").to_numpy(zero_copy_only=False)).astype(np.float32)
    return x, t.column("label").to_numpy().astype(np.int64)


def main() -> None:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", nargs=2)
    ap.add_argument("--l2", type=float, default=L2)
    args = ap.parse_args()
    if args.features:
        fit_and_score(*parquet_features(args.features[0]), *parquet_features(args.features[1]), args.l2)
        return
    x = read_idx("train-images-idx3-ubyte.gz")[:N_FIT].reshape(N_FIT, -1).astype(np.float32) / 255
    y = read_idx("train-labels-idx1-ubyte.gz")[:N_FIT].astype(np.int64)
    xv = read_idx("t10k-images-idx3-ubyte.gz")[:N_VAL].reshape(N_VAL, -1).astype(np.float32) / 255
    yv = read_idx("t10k-labels-idx1-ubyte.gz")[:N_VAL].astype(np.int64)
    fit_and_score(x, y, xv, yv, L2)


if __name__ == "__main__":
    main()
