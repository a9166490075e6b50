#!/usr/bin/env python3
"""Forward speed of an imported encoder: the TorchScript file vs the TF module's `encode`, on the CPU.

    python3 tools/tfhub/bench_forward.py --module DIR --verify OUT/<name>.verify.json [--batch 16]
                                         [--threads 2] [--repeats 5]

Both run on the record's 64 inputs (<name>.verify.npz), in batches of --batch, with the same intra-op thread
count, each in its own process (TF and torch in one process segfault): TF with the TF venv, TorchScript with
bbeval's main venv. One warm-up pass, then the median of --repeats passes over the 64 inputs, in images/s.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict

HERE = Path(__file__).resolve().parent


def timed(run: Callable[[object], None], batches: list, repeats: int) -> Dict[str, float]:
    for b in batches:  # warm-up: first-call graph building and allocations are not throughput
        run(b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            run(b)
        times.append(time.perf_counter() - t0)
    n = sum(len(b) for b in batches)
    return {"images_per_s": n / statistics.median(times), "median_pass_s": statistics.median(times), "images": n}


def worker_tf(args: argparse.Namespace, x) -> Dict[str, float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tensorflow_hub as hub
    tf.get_logger().setLevel("ERROR")  # notices about the module's TF1 ref variables
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    encode = hub.load(str(args.module)).signatures["encode"]
    key = next(iter(encode.structured_input_signature[1]))
    batches = [tf.constant(x[i:i + args.batch]) for i in range(0, len(x), args.batch)]
    return {**timed(lambda b: encode(**{key: b}), batches, args.repeats), "framework": f"tensorflow {tf.__version__}"}


def worker_torch(args: argparse.Namespace, x) -> Dict[str, float]:
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = torch.jit.load(str(args.pt)).eval()
    nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    batches = [nchw[i:i + args.batch] for i in range(0, len(nchw), args.batch)]

    def run(b):
        with torch.no_grad():
            model(b)

    return {**timed(run, batches, args.repeats), "framework": f"torch {torch.__version__} (TorchScript)"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", type=Path, required=True, help="the unpacked module folder that was imported")
    ap.add_argument("--verify", type=Path, required=True, help="<name>.verify.json written by import_module.py")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", choices=["tf", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--pt", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    rec = json.loads(args.verify.read_text())
    npz = args.verify.with_name(args.verify.name.replace(".verify.json", ".verify.npz"))

    if args.worker:
        import numpy as np
        x = (np.load(npz)["inputs"].astype(np.float32) / np.float32(127.5) - np.float32(1.0))
        result = (worker_tf if args.worker == "tf" else worker_torch)(args, x)
        print(json.dumps(result))
        return 0

    env = dict(line.split("=", 1) for line in subprocess.run(
        ["bash", str(HERE / "setup_env.sh")], stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()
        if "=" in line)
    pt = args.verify.with_name(rec["weights"])
    common = [str(Path(__file__).resolve()), "--module", str(args.module), "--verify", str(args.verify),
              "--batch", str(args.batch), "--threads", str(args.threads), "--repeats", str(args.repeats)]
    results = {}
    for name, python, extra in (("tf", env["TF_PYTHON"], {}),
                                ("torchscript", env["TORCH_PYTHON"], {"PYTHONPATH": env["TORCH_PYTHONPATH"]})):
        worker = "tf" if name == "tf" else "torch"
        out = subprocess.run([python, *common, "--worker", worker, "--pt", str(pt)], env={**os.environ, **extra},
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    print(f"{rec['name']}: batch {args.batch}, {args.threads} threads, {results['tf']['images']} inputs, "
          f"median of {args.repeats} passes")
    for name, r in results.items():
        print(f"  {name:12s} {r['images_per_s']:8.1f} images/s  ({r['framework']})")
    print(f"  TorchScript / TF: {results['torchscript']['images_per_s'] / results['tf']['images_per_s']:.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
