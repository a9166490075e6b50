#!/usr/bin/env python3
"""Stage 2 of the TF Hub import (main venv + tfhub-torchside): ONNX -> onnx2torch -> traced TorchScript.

Run by import_module.py as a separate process after stage_tf.py, with bbeval's main venv python (torch) and
PYTHONPATH=~/.cache/bbeval/tfhub-torchside (onnx, onnx2torch). Reads --work (encode.onnx, generate.onnx,
the .verify.npz references, tf.json), writes <name>.pt (+ <name>-g.pt) and torch.json there.

Each file is traced at batch size 7, saved, reloaded and compared with TF's outputs at batch size 1 (first
input), 7 (first 7) and on all inputs in chunks of stage 1's --tf-batch (default 8): three batch sizes, every
input checked, and never more than one chunk's activations in memory (a whole-record batch of 64 would need
several GB for a RevNet-50x4).

onnx2torch gets the converters of extra_converters.py (SpaceToDepth, DepthToSpace in DCR mode, AveragePool
with asymmetric pads) on top of its own. The TorchScript is traced, not scripted: jit.script fails inside onnx2torch's Pad converter. Each file is
reloaded and checked as above before it counts.
"""
import argparse
import json
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
import onnx2torch
import torch
from onnx2torch.node_converters import get_converter
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.utils.safe_shape_inference import safe_shape_inference
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RANDOM_OUTPUTS, Refusal, check_all, compare, run_refusing  # noqa: E402
import extra_converters  # noqa: E402  (registers its converters with onnx2torch before any conversion)

ONNX2TORCH = version("onnx2torch")  # the package has no __version__
# Traced at 7 and checked at 1 and at the chunk size as well: a batch size baked into the trace fails the check.
TRACE_BATCH = 7


class EncoderWrapper(nn.Module):
    """bbeval's encoder contract around the converted graph: NCHW in, {name: [N, width]} out."""

    def __init__(self, net: nn.Module, names: List[str], redraw_z_sample: bool):
        super().__init__()
        self.net = net
        self.names = names
        self.redraw_z_sample = redraw_z_sample

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        # The TF graph takes NHWC; channels-last memory makes that permute free and the convs ~20% faster on CPU.
        outs = self.net(x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1))
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        d = dict(zip(self.names, outs))
        if self.redraw_z_sample:
            # The TF graph's own draw (checked on TF to follow this law) is not converted.
            d["z_sample"] = d["z_mean"] + d["z_stdev"] * torch.randn_like(d["z_mean"])
        return d


class GeneratorWrapper(nn.Module):
    """z [N, latent] -> image [N, 3, H, W] in [-1, 1]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).permute(0, 3, 1, 2)


def unconvertible(model: onnx.ModelProto) -> str:
    """Why onnx2torch cannot convert the first node it cannot, naming op and node; "" if it can convert all.

    convert() itself says only which op failed; this walks the nodes the way it does, to name the node too.
    """
    model = safe_shape_inference(model)
    opsets = {o.domain: o.version for o in model.opset_import}
    graph = OnnxGraph(model.graph)
    for name, node in graph.nodes.items():
        try:
            converter = get_converter(domain=node.domain, operation_type=node.operation_type,
                                      version=opsets[node.domain])
        except NotImplementedError:
            return (f"onnx2torch {ONNX2TORCH} (with tools/tfhub/extra_converters.py) has no converter for "
                    f"{node.operation_type} (node {name})")
        try:
            converter(node, graph)
        except Exception as e:  # a converter that rejects these attributes (e.g. asymmetric pads)
            return f"onnx2torch's {node.operation_type} converter rejects node {name}: {e}"
    return ""


def to_torch(onnx_path: Path, module: str, signature: str) -> nn.Module:
    model = onnx.load(str(onnx_path))
    why = unconvertible(model)
    if why:
        raise Refusal(f"{module}: signature `{signature}` (as ONNX from tf2onnx): {why}. Fix: none for this module "
                      "until onnx2torch converts that op or tools/tfhub/extra_converters.py gets a converter for it; "
                      "report the op and node")
    return onnx2torch.convert(model).eval()


def run_chunks(net, x: np.ndarray, batch: int) -> Dict[str, np.ndarray]:
    """The TorchScript on x in chunks of `batch` rows, outputs concatenated."""
    parts: Dict[str, List[np.ndarray]] = {}
    for i in range(0, len(x), batch):
        with torch.no_grad():
            out = net(torch.from_numpy(x[i:i + batch]))
        for k, v in (out.items() if isinstance(out, dict) else [("image", out)]):
            parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def trace_and_check(wrapper: nn.Module, x: np.ndarray, refs: Dict[str, np.ndarray], pt: Path, what: str,
                    module: str, chunk: int) -> Tuple[Dict, Dict[str, np.ndarray]]:
    """Traces, saves, reloads and checks the reloaded file against TF: at batch size 1 (first input), at the
    trace's batch size (first TRACE_BATCH inputs) and on all inputs in chunks of `chunk`.

    Returns the statistics over all checks together, and the outputs on all inputs.
    """
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, torch.from_numpy(x[:TRACE_BATCH]), strict=False, check_trace=False)
    traced.save(str(pt))
    loaded = torch.jit.load(str(pt))
    # (rows, batch size); a record of fewer inputs checks fewer.
    plan = sorted({(min(1, len(x)), 1), (min(TRACE_BATCH, len(x)), min(TRACE_BATCH, len(x))),
                   (len(x), min(chunk, len(x)))})
    seen: Dict[str, List[np.ndarray]] = {}
    for rows, batch in plan:
        got = run_chunks(loaded, x[:rows], batch)
        label = f"batch size {batch}" + (f" ({rows} inputs)" if rows > batch else "")
        check_all({k: r[:rows] for k, r in refs.items()}, got, f"{what} at {label}", module)
        for k, v in got.items():
            seen.setdefault(k, []).append(v)
    stats = {k: compare(np.concatenate([r[:rows] for rows, _ in plan]), np.concatenate(seen[k]))
             for k, r in refs.items()}
    return ({"batch_sizes": sorted({b for _, b in plan}), "checks": [{"inputs": r, "batch_size": b} for r, b in plan],
             "outputs": stats}, {k: v[-1] for k, v in seen.items()})


def z_sample_law(out: Dict[str, np.ndarray]) -> Dict:
    r = ((out["z_sample"] - out["z_mean"]) / out["z_stdev"]).astype(np.float64).ravel()
    return {"mean": float(r.mean()), "std": float(r.std()), "entries": int(r.size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--module-label", required=True, help="the module as the user named it, for messages")
    args = ap.parse_args()
    tf_report = json.loads((args.work / "tf.json").read_text())
    report: Dict = {"versions": {"onnx2torch": ONNX2TORCH, "torch": torch.__version__,
                                 "python_torch_side": platform.python_version(),
                                 "extra_converters": sorted({op for op, _ in extra_converters.registered()})}}

    enc = tf_report["encoder"]
    rec = np.load(args.work / f"{args.name}.verify.npz")
    x = (rec["inputs"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)).transpose(0, 3, 1, 2).copy()
    converted = [n for n in enc["outputs"] if n not in RANDOM_OUTPUTS]
    t0 = time.perf_counter()
    net = to_torch(args.work / "encode.onnx", args.module_label, "encode")
    wrapper = EncoderWrapper(net, converted, "z_sample" in enc["outputs"]).eval()
    checked, got = trace_and_check(wrapper, x, {n: rec[f"tf_{n}"] for n in converted}, args.work / f"{args.name}.pt",
                                 "TorchScript vs TF", args.module_label, enc["tf_batch"])
    stage = {"passed": True, **checked, "trace_batch_size": TRACE_BATCH}
    if "z_sample" in got:
        stage["z_sample_law"] = z_sample_law(got)
    report["encoder"] = {"stage": stage, "timings_s": {"onnx2torch_trace": time.perf_counter() - t0}}

    if "generator" in tf_report:
        rec = np.load(args.work / f"{args.name}-g.verify.npz")
        t0 = time.perf_counter()
        net = to_torch(args.work / "generate.onnx", args.module_label, "generate")
        checked, _ = trace_and_check(GeneratorWrapper(net).eval(), rec["inputs"], {"image": rec["tf_image"]},
                                   args.work / f"{args.name}-g.pt", "TorchScript generator vs TF",
                                   args.module_label, tf_report["generator"]["tf_batch"])
        report["generator"] = {
            "stage": {"passed": True, **checked, "trace_batch_size": TRACE_BATCH},
            "timings_s": {"onnx2torch_trace": time.perf_counter() - t0}}
    (args.work / "torch.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    run_refusing(main)
