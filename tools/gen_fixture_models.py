#!/usr/bin/env python3
"""Tiny TorchScript encoders for the bad-input and contract tests (committed in tests/fixtures, a few KB).

* channel_means.pt: {"avepool": per-channel mean of x (N×3)} — a real, trivially checkable encoder.
* nan_encoder.pt:   {"avepool": NaN where the mean of x is > 0, else the means} — non-finite features.
* tuple_encoder.pt: returns a tuple instead of a dict — breaks the encoder contract.
* tiny_generator.pt: z [N, 16] → tanh(linear) images [N, 3, 32, 32] in [-1, 1] (weights from
  torch.manual_seed(0)) — a real generator for the sampling tests.
* tiny_z_encoder.pt: {"avepool": channel means (N×3), "z_mean": the 16 means of a 4×4 grid of cells of
  the first channel, mapped to [-1, 1]} — an encoder with a latent for the reconstruction-grid test.

    python tools/gen_fixture_models.py [name ...]    # all, or only the named fixtures

Run with the torch the project pins (tools/requirements.txt): a TorchScript file scripted by a newer torch
can name ops an older libtorch lacks (2.13 scripts `interpolate` through `_upsample_lanczos2d_aa`).
"""
import sys
import os
from typing import Dict, Tuple

import torch

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests/fixtures")


class ChannelMeans(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"avepool": x.mean(dim=(2, 3))}


class NanEncoder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        m = x.mean(dim=(2, 3))
        return {"avepool": torch.where(m.mean(dim=1, keepdim=True) > 0, torch.full_like(m, float("nan")), m)}


class TupleEncoder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return x.mean(dim=(2, 3)), x.amax(dim=(2, 3))


class TinyGenerator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.fc(z)).view(-1, 3, 8, 8)
        return torch.nn.functional.interpolate(x, size=(32, 32), mode="nearest")


class TinyZEncoder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        cells = torch.nn.functional.adaptive_avg_pool2d(x[:, :1], 4).flatten(1)
        return {"avepool": x.mean(dim=(2, 3)), "z_mean": torch.tanh(cells)}


def main() -> None:
    wanted = set(sys.argv[1:])
    for name, module in [("channel_means", ChannelMeans()), ("nan_encoder", NanEncoder()), ("tuple_encoder", TupleEncoder()),
                         ("tiny_generator", TinyGenerator()), ("tiny_z_encoder", TinyZEncoder())]:
        if not wanted or name in wanted:
            torch.jit.script(module).save(os.path.join(OUT, f"{name}.pt"))
    print("written to", OUT)


if __name__ == "__main__":
    main()
