#!/usr/bin/env python3
"""Golden top-1/top-5 of scikit-learn's LogisticRegression for the probe agreement tests.

Data: Fashion-MNIST (assets/fashion-mnist, Debian dataset-fashion-mnist): the first 3000 train images fit,
the first 1000 t10k images are scored; raw pixels /255, standardised with the fit rows' mean and std
(constant pixels map to 0, as bbeval's Standardiser does). Objective: mean CE + λ/2 ‖W‖² with λ = 1e-2,
i.e. sklearn C = 1/(λ n). lbfgs, tol 1e-8, max_iter 5000 (converged). Prints the numbers that
tests/probe_agreement.rs asserts.
"""
import gzip
import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_FIT, N_VAL, L2 = 3000, 1000, 1e-2


def idx(name: str) -> np.ndarray:
    with gzip.open(os.path.join(ROOT, "assets/fashion-mnist", name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> None:
    x = idx("train-images-idx3-ubyte.gz")[:N_FIT].reshape(N_FIT, -1).astype(np.float32) / 255
    y = idx("train-labels-idx1-ubyte.gz")[:N_FIT].astype(np.int64)
    xv = idx("t10k-images-idx3-ubyte.gz")[:N_VAL].reshape(N_VAL, -1).astype(np.float32) / 255
    yv = idx("t10k-labels-idx1-ubyte.gz")[:N_VAL].astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    inv = np.where(std > 1e-6, 1 / np.maximum(std, 1e-12), 0)
    x, xv = (x - mean) * inv, (xv - mean) * inv
    clf = LogisticRegression(C=1 / (L2 * N_FIT), tol=1e-8, max_iter=5000).fit(x, y)
    s = clf.decision_function(xv)
    top1 = (s.argmax(1) == yv).mean()
    rank = (s > s[np.arange(N_VAL), yv][:, None]).sum(1)
    top5 = (rank < 5).mean()
    print(f"sklearn {sklearn.__version__}: lambda={L2} C={1 / (L2 * N_FIT):.6f} top1={top1:.4f} top5={top5:.4f} iters={clf.n_iter_}")


if __name__ == "__main__":
    main()
