"""Fashion-MNIST's IDX files (as `make setup` installs them into assets/fashion-mnist) as numpy arrays, for the
tools/ scripts: reference cross-checks and golden generators. bbeval itself reads them in src/data/idx.rs."""
import gzip
import os

import numpy as np

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets/fashion-mnist")


def read_idx(name: str, folder: str = FOLDER) -> np.ndarray:
    """One gzipped IDX file as uint8 in the shape its header gives ([N, 28, 28] images, [N] labels)."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run `make setup` (it installs Fashion-MNIST into assets/)")
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
