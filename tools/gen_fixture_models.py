#!/usr/bin/env python3
"""Tiny TorchScript encoders for the bad-input and contract tests (committed in tests/fixtures, a few KB).

* channel_means.pt: {"avepool": per-channel mean of x (N×3)} — a real, trivially checkable encoder.
* nan_encoder.pt:   {"avepool": NaN where the mean of x is > 0, else the means} — non-finite features.
* tuple_encoder.pt: returns a tuple instead of a dict — breaks the encoder contract.
"""
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


def main() -> None:
    for name, module in [("channel_means", ChannelMeans()), ("nan_encoder", NanEncoder()), ("tuple_encoder", TupleEncoder())]:
        torch.jit.script(module).save(os.path.join(OUT, f"{name}.pt"))
    print("written to", OUT)


if __name__ == "__main__":
    main()
