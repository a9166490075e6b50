#!/usr/bin/env python3
"""Checks the converters of extra_converters.py against onnxruntime, op by op, on small random inputs.

    python3 tools/tfhub/check_extra_converters.py          (any python3; runs both halves below)

  --make DIR    TF venv (onnx + onnxruntime): writes DIR/<case>.onnx and DIR/cases.npz (inputs, ORT outputs)
  --check DIR   main venv + tfhub-torchside: onnx2torch (with extra_converters) on each model, eager and traced
                at two batch sizes, against ORT; prints one line per case, exits 1 if any differs

Cases: SpaceToDepth and DepthToSpace (DCR, CRD) at block sizes 2 and 3; AveragePool with asymmetric pads
(both count_include_pad values, 1-D/2-D/3-D, pads larger than half the kernel, begin > end), auto_pad
SAME_UPPER/SAME_LOWER, symmetric pads (onnx2torch's own path), at opsets 17 (schema 11) and 22 (schema 22).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-5  # max abs error relative to the max abs ORT output


def cases():
    """(name, op, attributes, input shape, opset)."""
    c = []
    for b in (2, 3):
        c.append((f"space_to_depth_b{b}", "SpaceToDepth", {"blocksize": b}, [2, 5, 4 * b, 3 * b], 17))
        for mode in ("DCR", "CRD"):
            c.append((f"depth_to_space_{mode}_b{b}", "DepthToSpace", {"blocksize": b, "mode": mode},
                      [2, 3 * b * b, 5, 4], 17))
    c.append(("space_to_depth_opset11", "SpaceToDepth", {"blocksize": 2}, [1, 3, 8, 6], 11))
    for cip in (0, 1):
        c += [
            (f"avgpool_k3s2_even_pads0011_cip{cip}", "AveragePool",
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1], "count_include_pad": cip},
             [2, 4, 8, 8], 17),
            (f"avgpool_k2s2_odd_pads0011_cip{cip}", "AveragePool",
             {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "count_include_pad": cip},
             [2, 4, 7, 7], 17),
            (f"avgpool_k32s21_pads1001_cip{cip}", "AveragePool",
             {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 0, 1], "count_include_pad": cip},
             [2, 3, 9, 6], 17),
            (f"avgpool_k3_pads2_0_begin_heavy_cip{cip}", "AveragePool",
             {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [2, 2, 0, 0], "count_include_pad": cip},
             [1, 2, 5, 5], 17),
            (f"avgpool_1d_pads01_cip{cip}", "AveragePool",
             {"kernel_shape": [3], "strides": [2], "pads": [0, 1], "count_include_pad": cip}, [2, 3, 10], 17),
            (f"avgpool_3d_pads_cip{cip}", "AveragePool",
             {"kernel_shape": [2, 3, 2], "strides": [2, 2, 2], "pads": [0, 1, 0, 1, 0, 1], "count_include_pad": cip},
             [1, 2, 5, 6, 7], 17),
            (f"avgpool_symmetric_cip{cip}", "AveragePool",
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": cip},
             [2, 4, 9, 9], 17),
            (f"avgpool_opset22_pads0011_cip{cip}", "AveragePool",
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1], "count_include_pad": cip},
             [2, 4, 8, 8], 22),
        ]
    for auto in ("SAME_UPPER", "SAME_LOWER"):
        c.append((f"avgpool_{auto.lower()}_k3s2_even", "AveragePool",
                  {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": auto}, [2, 4, 8, 8], 17))
    return c


def make(out: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    arrays = {}
    for name, op, attrs, shape, opset in cases():
        node = helper.make_node(op, ["x"], ["y"], name=f"{name}_node", **attrs)
        x = rng.standard_normal(shape).astype(np.float32)
        y = None
        for _ in range(2):  # first without the output's shape, to learn it from onnxruntime; then checked
            out_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, None if y is None else y.shape)
            graph = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                      [out_info])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
            model.ir_version = 8
            sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            y = sess.run(["y"], {"x": x})[0]
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(out / f"{name}.onnx"))
        arrays[f"{name}.x"], arrays[f"{name}.y"] = x, y
    np.savez(out / "cases.npz", **arrays)


def check(folder: Path) -> int:
    import numpy as np
    import onnx
    import onnx2torch
    import torch

    sys.path.insert(0, str(HERE))
    import extra_converters  # noqa: F401  (registers the converters)

    data = np.load(folder / "cases.npz")
    failed = 0
    for name, op, attrs, shape, opset in cases():
        x, ref = data[f"{name}.x"], data[f"{name}.y"]
        net = onnx2torch.convert(onnx.load(str(folder / f"{name}.onnx"))).eval()
        with torch.no_grad():
            xt = torch.from_numpy(x)
            # Traced on the first row, checked on all rows: the batch size must not be baked in.
            traced = torch.jit.trace(net, xt[:1], check_trace=False)
            outs = {"eager": net(xt).numpy(), "traced": traced(xt).numpy()}
        worst = 0.0
        for how, got in outs.items():
            if got.shape != ref.shape:
                print(f"FAIL {name} ({how}): shape {got.shape}, onnxruntime {ref.shape}")
                failed += 1
                worst = float("inf")
                continue
            worst = max(worst, float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30)))
        if worst <= TOLERANCE:
            print(f"ok   {name}: {op} {attrs} on {shape}, opset {opset}: rel err {worst:.1e} (eager and traced)")
        elif worst != float("inf"):
            print(f"FAIL {name}: rel err {worst:.3g} > {TOLERANCE:g}")
            failed += 1
    print(f"extra converters vs onnxruntime: {'all passed' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make", type=Path)
    ap.add_argument("--check", type=Path)
    args = ap.parse_args()
    if args.make:
        make(args.make)
        return 0
    if args.check:
        return check(args.check)
    done = subprocess.run(["bash", str(HERE / "setup_env.sh")], stdout=subprocess.PIPE, text=True, check=True)
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    with tempfile.TemporaryDirectory(prefix="bbeval-extra-conv-") as tmp:
        subprocess.run([env["TF_PYTHON"], __file__, "--make", tmp], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        pythonpath = os.pathsep.join(filter(None, [env["TORCH_PYTHONPATH"], os.environ.get("PYTHONPATH")]))
        return subprocess.run([env["TORCH_PYTHON"], __file__, "--check", tmp],
                              env={**os.environ, "PYTHONPATH": pythonpath}).returncode


if __name__ == "__main__":
    sys.exit(main())
