#!/usr/bin/env python3
"""Python parts of tools/gpu_check.sh (the GPU check of bbeval's bundle). Needs only torch, PIL and numpy
(torchvision is used when present); no network, nothing installed.

Subcommands (each prints one JSON object on stdout, progress on stderr):

    env                                      python/torch/torchvision/PIL/numpy versions, CUDA devices
    torchlib                                 prints torch's lib directory (for LD_LIBRARY_PATH), plain text
    jpegs --root R --n N [--classes C]       seeded synthetic 500×375 JPEGs (quality 90) in R/val/<class>/*.JPEG
    export-resnet --out DIR [--size 256]     ResNet-50 (random weights, BN calibrated) → TorchScript returning
                                             {"avepool": [N, 2048]} + bbeval manifest (policy "bigbigan")
    forward --model PT --batch B --dtype f32|bf16 --device D   forward-only images/s on preloaded tensors
    dataloader --root R --model PT --batch B --workers W ...   DataLoader + PIL (bigbigan policy) → same model
    idx --out DIR [--train 60000 --test 10000]                 synthetic Fashion-MNIST-format IDX files (.gz)
    render --records R.jsonl --out OUT.md    the check's report: Markdown tables + every record as JSON lines
"""
import argparse
import gzip
import hashlib
import json
import os
import platform
import re
import struct
import sys
import time

def log(*a):
    print(*a, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


# ----------------------------------------------------------------------------------------------- env
def cmd_env(_args):
    import numpy as np
    import torch
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "cuda_available": torch.cuda.is_available(), "cuda_version": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        import PIL
        out["pil"] = PIL.__version__
    except Exception as e:  # noqa: BLE001
        out["pil"] = f"missing ({e})"
    try:
        import torchvision
        out["torchvision"] = torchvision.__version__
    except Exception as e:  # noqa: BLE001
        out["torchvision"] = f"missing ({type(e).__name__})"
    if torch.cuda.is_available():
        out["devices"] = [{"name": torch.cuda.get_device_name(i),
                           "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                          for i in range(torch.cuda.device_count())]
    emit(out)


def cmd_torchlib(_args):
    import torch
    print(os.path.join(os.path.dirname(torch.__file__), "lib"))


# ----------------------------------------------------------------------------------------------- JPEGs
def _make_jpeg(job):
    """One seeded image with varied content: a smooth random colour field, shapes, lines, texture noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter
    path, seed, w, h, quality = job
    rng = np.random.default_rng(seed)
    gh, gw = rng.integers(2, 7, size=2)
    base = Image.fromarray(rng.integers(0, 256, size=(gh, gw, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(4, 14))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            d.ellipse([x0, y0, x1, y1], fill=col)
        elif kind == 1:
            d.rectangle([x0, y0, x1, y1], fill=col)
        else:
            d.line([x0, y0, x1, y1], fill=col, width=int(rng.integers(2, 12)))
    if rng.random() < 0.5:
        base = base.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    a = np.asarray(base, dtype=np.int16)
    a = a + rng.normal(0, rng.uniform(4, 20), size=a.shape).astype(np.int16)  # sensor-like texture
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)
    return os.path.getsize(path)


def cmd_jpegs(args):
    import multiprocessing as mp
    import numpy as np
    w, h = (int(v) for v in args.size.split("x"))
    jobs = []
    for c in range(args.classes):
        os.makedirs(os.path.join(args.root, args.split, f"n{c:08d}"), exist_ok=True)
    for i in range(args.n):
        c = i % args.classes
        jobs.append((os.path.join(args.root, args.split, f"n{c:08d}", f"img_{i:06d}.JPEG"), args.seed * 1_000_003 + i,
                     w, h, args.quality))
    t = time.perf_counter()
    workers = max(1, min(args.workers or os.cpu_count() or 1, args.n))
    if workers == 1:
        sizes = [_make_jpeg(j) for j in jobs]
    else:
        with mp.Pool(workers) as pool:
            sizes = pool.map(_make_jpeg, jobs, chunksize=max(1, args.n // (workers * 8)))
    dt = time.perf_counter() - t
    emit({"root": args.root, "split": args.split, "images": args.n, "classes": args.classes, "size": [w, h],
          "quality": args.quality, "workers": workers, "seconds": dt, "mean_bytes": float(np.mean(sizes)),
          "total_mb": sum(sizes) / 1e6})


# ----------------------------------------------------------------------------------------------- ResNet-50
def _resnet50_local():
    """torchvision's ResNet-50 v1.5 (stride on the 3×3 conv), written out for when torchvision is missing."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inp, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample if downsample is not None else nn.Identity()

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + self.downsample(x))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inp = 64
            layers = []
            for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
                ds = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
                mods = [Bottleneck(inp, planes, stride, ds)]
                inp = planes * 4
                mods += [Bottleneck(inp, planes) for _ in range(blocks - 1)]
                layers.append(nn.Sequential(*mods))
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, 1000)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    return ResNet50()


def build_resnet50():
    try:
        import torchvision
        return torchvision.models.resnet50(weights=None), f"torchvision {torchvision.__version__} resnet50"
    except Exception:  # noqa: BLE001 — torchvision missing (or broken): same architecture, own code
        return _resnet50_local(), "tools/gpu_bench.py ResNet-50 v1.5 (torchvision missing)"


def _wrapper_class():
    import torch
    from torch import nn
    from typing import Dict

    class AvePool(nn.Module):
        """ResNet-50 trunk → global average pool: {"avepool": [N, 2048]} (bbeval's encoder contract)."""

        def __init__(self, net):
            super().__init__()
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
            self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)

        def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
            h = self.layers(self.stem(x))
            return {"avepool": h.mean(dim=(2, 3))}

    return AvePool


def cmd_export_resnet(args):
    import torch
    torch.manual_seed(args.seed)
    net, source = build_resnet50()
    model = _wrapper_class()(net)
    # Random weights with BN running statistics calibrated on random inputs in [-1, 1], so activations stay
    # in a sane range (untouched running stats would let them grow block after block).
    t = time.perf_counter()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(args.calib_batches):
            model(torch.rand(args.calib_batch, 3, args.size, args.size) * 2 - 1)
    model.eval()
    scripted = torch.jit.script(model)
    os.makedirs(args.out, exist_ok=True)
    name = f"resnet50-random-{args.size}"
    pt = os.path.join(args.out, name + ".pt")
    scripted.save(pt)
    sha = hashlib.sha256(open(pt, "rb").read()).hexdigest()
    with torch.no_grad():
        probe = scripted(torch.rand(2, 3, args.size, args.size) * 2 - 1)["avepool"]
    manifest = os.path.join(args.out, name + ".toml")
    with open(manifest, "w") as f:
        f.write(f'# written by tools/gpu_bench.py export-resnet: {source}, random weights (seed {args.seed}),\n'
                f'# BN statistics calibrated on random inputs; a ResNet-50-size encoder for speed checks only\n'
                f'name = "{name}"\narchitecture = "ResNet-50 (random weights)"\nweights = "{name}.pt"\n'
                f'weights_sha256 = "{sha}"\n\n[input]\npolicy = "bigbigan"\nsize = {args.size}\n\n'
                f'[outputs]\navepool = 2048\n')
    emit({"manifest": manifest, "weights": pt, "sha256": sha, "source": source, "seconds": time.perf_counter() - t,
          "avepool_shape": list(probe.shape), "avepool_abs_mean": float(probe.abs().mean()),
          "finite": bool(torch.isfinite(probe).all())})


# ----------------------------------------------------------------------------------------------- benchmarks
def _dtype(name):
    import torch
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


def _sync(device):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _load_model(path, device, dtype):
    import torch
    m = torch.jit.load(path, map_location=device).eval()
    if dtype != torch.float32:
        m = m.to(dtype)  # as bbeval does: module and input in the precision (no autocast)
    return m


def _lists(args):
    return [(d, int(b)) for d in args.dtype.split(",") for b in str(args.batch).split(",")]


def cmd_forward(args):
    """One JSON line per (dtype, batch), printed as each finishes (a timeout keeps the finished ones)."""
    import torch
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    for dname, batch in _lists(args):
        try:
            _forward_one(args, dname, batch)
        except Exception as e:  # noqa: BLE001 — record it and go on with the next configuration
            emit({"batch": batch, "dtype": dname, "device": args.device, "error": f"{type(e).__name__}: {e}"[-1500:]})
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()


def _forward_one(args, dname, batch):
    import torch
    dt = _dtype(dname)
    model = _load_model(args.model, args.device, dt)
    iters = args.iters or max(3, -(-args.images // batch))
    x = (torch.rand(batch, 3, args.size, args.size, device=args.device) * 2 - 1).to(dt)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)["avepool"].float().cpu()
        _sync(args.device)
        t = time.perf_counter()
        for _ in range(iters):
            out = model(x)["avepool"].float().cpu()  # features to host, as an extraction does
        _sync(args.device)
        sec = time.perf_counter() - t
    emit({"batch": batch, "dtype": dname, "device": args.device, "iters": iters, "images": batch * iters,
          "seconds": sec, "images_per_s": batch * iters / sec, "finite": bool(torch.isfinite(out).all()),
          "cudnn_benchmark": args.cudnn_benchmark})


class _Files:
    """Same preprocessing as bbeval's `bigbigan` policy: centre square crop of the short side, bicubic to
    `size`, x/127.5 − 1 (PIL's bicubic on uint8, so values differ from bbeval's f32 kernels by rounding)."""

    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import numpy as np
        import torch
        from PIL import Image
        im = Image.open(self.files[i]).convert("RGB")
        w, h = im.size
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        a = np.asarray(im.resize((self.size, self.size), Image.BICUBIC, box=box), np.float32)
        return torch.from_numpy((a / 127.5 - 1.0).transpose(2, 0, 1).copy())


def _list_images(root):
    out = []
    for d, _, fs in os.walk(root):
        out += [os.path.join(d, f) for f in fs if f.lower().endswith((".jpeg", ".jpg", ".png"))]
    return sorted(out)


def cmd_dataloader(args):
    """DataLoader(num_workers) + PIL → the same TorchScript; one JSON line per (dtype, batch). Timed from the
    loader's creation (worker start-up included, as bbeval's process start-up is in its wall time) to the
    last features on the host."""
    import torch
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    files = _list_images(args.root)
    if args.limit:
        files = files[: args.limit]
    pin = args.device.startswith("cuda")
    for dname, batch in _lists(args):
        try:
            _dataloader_one(args, files, pin, dname, batch)
        except Exception as e:  # noqa: BLE001 — record it and go on with the next configuration
            emit({"batch": batch, "dtype": dname, "device": args.device, "workers": args.workers,
                  "error": f"{type(e).__name__}: {e}"[-1500:]})
        if pin:
            torch.cuda.empty_cache()


def _dataloader_one(args, files, pin, dname, batch):
    import torch
    dt = _dtype(dname)
    model = _load_model(args.model, args.device, dt)
    with torch.inference_mode():  # warm the model (CUDA context, kernels) outside the timed loop
        model(torch.zeros(batch, 3, args.size, args.size, device=args.device, dtype=dt))["avepool"].cpu()
    _sync(args.device)
    n, n_first, t_first, finite = 0, 0, None, True
    t = time.perf_counter()
    loader = torch.utils.data.DataLoader(_Files(files, args.size), batch_size=batch, num_workers=args.workers,
                                         pin_memory=pin, shuffle=False)
    with torch.inference_mode():
        for x in loader:
            x = x.to(args.device, non_blocking=pin).to(dt)
            f = model(x)["avepool"].float().cpu()
            finite = finite and bool(torch.isfinite(f).all())
            n += x.shape[0]
            if t_first is None:
                t_first, n_first = time.perf_counter(), n
    _sync(args.device)
    end = time.perf_counter()
    sec = end - t
    steady = (n - n_first) / (end - t_first) if t_first is not None and end > t_first and n > n_first else None
    emit({"images": n, "seconds": sec, "images_per_s": n / sec, "batch": batch, "workers": args.workers,
          "dtype": dname, "device": args.device, "pin_memory": pin, "finite": finite,
          "first_batch_s": (t_first - t) if t_first is not None else None, "images_per_s_steady": steady})


# ----------------------------------------------------------------------------------------------- IDX
def _write_idx(path, arr):
    import numpy as np
    magic = {1: 0x00000801, 3: 0x00000803}[arr.ndim]
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def cmd_idx(args):
    import numpy as np
    t = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for prefix, n in (("train", args.train), ("t10k", args.test)):
        _write_idx(os.path.join(args.out, f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(os.path.join(args.out, f"{prefix}-labels-idx1-ubyte.gz"), rng.integers(0, 10, n, dtype=np.uint8))
    emit({"dir": args.out, "train": args.train, "test": args.test, "seconds": time.perf_counter() - t})


# ----------------------------------------------------------------------------------------------- records
# gpu_check.sh keeps one JSON object per line in records.jsonl and re-renders OUT_FILE after every step, so
# the output file is complete up to the last finished step even if the run is cut short.
BIG_KEYS = ("val_top1_hits", "val_top5_hits", "per_class_top1")


def _json_lines(path):
    """Every JSON value in a file: the whole file if it parses, else each line that does."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return []
    try:
        return [json.loads(text)] if text.strip() else []
    except json.JSONDecodeError:
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out


def _get(obj, path):
    for k in path.split("."):
        if k == "len" and isinstance(obj, (list, dict, str)):
            obj = len(obj)
        elif isinstance(obj, dict) and k in obj:
            obj = obj[k]
        elif isinstance(obj, list) and k.isdigit() and int(k) < len(obj):
            obj = obj[int(k)]
        else:
            return None
    return obj


def _parse_value(v):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _tail(path, n):
    try:
        t = open(path, errors="replace").read()
    except OSError:
        return ""
    t = t.replace("\r", "\n")
    # libtorch's stack frames, as lines and inline in a panic's message (after an escaped newline), would
    # fill the tail and push the error itself out of it.
    t = re.sub(r"\\n(Exception raised from|frame #).*", "", t)
    lines = [l for l in t.splitlines() if l.strip() and not l.startswith("frame #")]
    return "\n".join(lines)[-n:]


def _smi_stats(path):
    util, mem = [], []
    try:
        for line in open(path):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 2:
                try:
                    util.append(float(parts[0]))
                    mem.append(float(parts[1]))
                except ValueError:
                    pass
    except OSError:
        return {}
    if not mem:
        return {}
    busy = [u for u in util if u > 0]
    return {"gpu_mem_max_mib": max(mem), "gpu_util_mean": sum(util) / len(util),
            "gpu_util_mean_busy": (sum(busy) / len(busy)) if busy else 0.0, "gpu_samples": len(mem)}


def _append(records, rec):
    with open(records, "a") as f:
        f.write(json.dumps(rec) + "\n")


def cmd_record(args):
    """Append the record(s) of one step; with --each, one record per JSON line of --json (step name formatted
    with its fields, e.g. "forward {dtype} b{batch}")."""
    values = _json_lines(args.json) if args.json else []
    base = {"section": args.section, "status": args.status, "seconds": args.seconds}
    if args.timeout is not None:
        base["timeout_s"] = args.timeout
    sets = {}
    for kv in args.set or []:
        k, _, v = kv.partition("=")
        sets[k] = _parse_value(v)
    notes = [args.note] if args.note else []
    picks = [p for p in (args.pick or "").split(",") if p]
    smi = _smi_stats(args.smi) if args.smi else {}

    def figures_of(v):
        figs = {}
        for p in picks:
            name, _, path = p.partition("=")
            val = _get(v, path or name)
            if val is not None:
                figs[name] = val
        if "images" in figs and "seconds" in figs and isinstance(figs["seconds"], (int, float)) and figs["seconds"] > 0:
            figs.setdefault("images_per_s", figs["images"] / figs["seconds"])
        if "images" in figs and not args.each and args.seconds and isinstance(figs["images"], (int, float)):
            figs["images_per_s_wall"] = figs["images"] / args.seconds  # process start-up included
        figs.update(sets)
        return figs

    def raw_of(v):
        return {k: val for k, val in v.items() if k not in BIG_KEYS} if isinstance(v, dict) else v

    recs = []
    if args.each:
        for v in values:
            try:
                name = args.step.format(**v) if isinstance(v, dict) else args.step
            except (KeyError, IndexError, ValueError):
                name = args.step
            r = dict(base, step=name, figures=figures_of(v), raw=raw_of(v))
            if isinstance(v, dict) and v.get("error"):
                r["status"] = "fail"
                r["note"] = str(v["error"])
            if args.seconds_from_json and isinstance(v, dict) and "seconds" in v:
                r["seconds"] = v["seconds"]
            recs.append(r)
        if args.status != "ok" or not recs:
            # the process failed or printed nothing: one record for the failure itself
            r = dict(base, step=re.sub(r"\s*\{[^}]*\}", "", args.step) + " (process)", figures=dict(sets))
            if args.status == "ok":
                r["status"] = "fail"
                notes.append("no JSON output")
            recs.append(r)
    else:
        v = values[-1] if values else None
        r = dict(base, step=args.step, figures=figures_of(v) if v is not None else dict(sets))
        if v is not None:
            r["raw"] = raw_of(v)
        elif args.json and args.status == "ok":
            r["status"] = "fail"
            notes.append("no JSON output")
        recs.append(r)
    for r in recs:
        if smi:
            r["figures"].update(smi)
        n = ([r.pop("note")] if r.get("note") else []) + list(notes)
        if r["status"] == "fail" and args.err:
            t = _tail(args.err, 1200)
            if t:
                n.append("stderr: " + t)
        if n:
            r["note"] = " | ".join(n)
        _append(args.records, r)
    if args.out:
        render(args.records, args.out)


def cmd_meta(args):
    """The run's header record: --field k=v, --file k=PATH (its text, or its JSON when it parses)."""
    rec = {"section": "meta"}
    for kv in args.field:
        k, _, v = kv.partition("=")
        rec[k] = v
    for kv in args.file:
        k, _, path = kv.partition("=")
        vals = _json_lines(path)
        rec[k] = vals[-1] if len(vals) == 1 else _tail(path, 2000)
    _append(args.records, rec)
    render(args.records, args.out)


def cmd_finish(args):
    recs = _recs(args.records)
    steps = [r for r in recs if r.get("section") not in ("meta", "end")]
    count = {s: sum(1 for r in steps if r.get("status") == s) for s in ("ok", "fail", "skip")}
    _append(args.records, {"section": "end", "elapsed_s": args.elapsed, "budget_s": args.budget, "ok": count["ok"],
                           "failed": count["fail"], "skipped": count["skip"]})
    render(args.records, args.out)


def cmd_jget(args):
    """Print one value of a JSON file (dotted path); empty when absent."""
    vals = _json_lines(args.json)
    v = _get(vals[-1], args.path) if vals else None
    print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))


def cmd_tomlpatch(args):
    """Copy a TOML config, setting top-level keys (replaced in place, or inserted before the first table)."""
    lines = open(args.input).read().splitlines()
    sets = [kv.partition("=") for kv in args.set]
    sets = [(k.strip(), v.strip()) for k, _, v in sets]
    first_table = next((i for i, l in enumerate(lines) if l.strip().startswith("[")), len(lines))
    done = set()
    for i in range(first_table):
        key = lines[i].split("=")[0].strip()
        for k, v in sets:
            if key == k and not lines[i].lstrip().startswith("#"):
                lines[i] = f"{k} = {v}"
                done.add(k)
    extra = [f"{k} = {v}" for k, v in sets if k not in done]
    lines = lines[:first_table] + extra + lines[first_table:]
    open(args.output, "w").write("\n".join(lines) + "\n")


def cmd_errtail(args):
    """The last CHARS characters of a stderr log without libtorch's stack frames (see _tail)."""
    print(_tail(args.path, args.chars))


def cmd_trainlog(args):
    """Steps/s of a train_log.csv (step, …, seconds since the loop started): between its first and last line,
    so start-up, data loading and exports are left out."""
    rows = []
    try:
        for line in open(args.log).read().splitlines()[1:]:
            parts = line.split(",")
            try:
                rows.append((int(parts[0]), float(parts[-1])))
            except (ValueError, IndexError):
                pass
    except OSError as e:
        emit({"error": str(e)})
        return
    out = {"log_lines": len(rows)}
    if len(rows) >= 2 and rows[-1][1] > rows[0][1]:
        out["steps_per_s"] = (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])
    elif rows and rows[-1][1] > 0:
        out["steps_per_s"] = rows[-1][0] / rows[-1][1]
    if rows:
        out["last_step"], out["loop_seconds"] = rows[-1]
    emit(out)


def cmd_pickbig(args):
    """The largest row count of --candidates whose predicted time (linear in rows from the measured run,
    × --margin) fits in --seconds-left; prints nothing when none does."""
    for r in sorted((int(c) for c in args.candidates.split(",")), reverse=True):
        if args.measured_seconds * r / args.measured_rows * args.margin <= args.seconds_left:
            print(r)
            return
    print("")


def _recs(records):
    out = []
    if os.path.exists(records):
        for line in open(records):
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    out.append({"section": "?", "step": "unparsable record", "status": "fail", "note": line[:300]})
    return out


def cmd_summarize(args):
    """Ratio records of section b: bbeval extract vs forward-only and vs DataLoader, per (dtype, batch)."""
    recs = _recs(args.records)
    by = {}
    decode = None
    for r in recs:
        f = r.get("figures", {})
        kind = f.get("kind")
        if r.get("status") != "ok" or not kind:
            continue
        if kind == "decode":
            decode = f.get("images_per_s")
        elif kind in ("bbeval", "forward", "dataloader"):
            by.setdefault((f.get("dtype"), f.get("batch")), {})[kind] = f.get("images_per_s")
            if kind == "dataloader" and f.get("images_per_s_steady"):
                by[(f.get("dtype"), f.get("batch"))]["dataloader_steady"] = f["images_per_s_steady"]
    for (dt, b), d in sorted(by.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        figs = {"dtype": dt, "batch": b, "kind": "ratio"}
        figs.update({f"{k}_ips": v for k, v in d.items() if k != "dataloader_steady"})
        notes = []
        bb, fw, dl = d.get("bbeval"), d.get("forward"), d.get("dataloader")
        if bb and fw:
            figs["bbeval_over_forward"] = bb / fw
            notes.append(f"bbeval/forward-only {bb / fw:.2f} (target ≥ 0.9: {'met' if bb / fw >= 0.9 else 'NOT met'})")
        if bb and dl:
            figs["bbeval_over_dataloader"] = bb / dl
            if d.get("dataloader_steady"):
                figs["dataloader_steady_ips"] = d["dataloader_steady"]
                figs["bbeval_over_dataloader_steady"] = bb / d["dataloader_steady"]
            notes.append(f"bbeval/DataLoader {bb / dl:.2f} (target ≥ 1.5: {'met' if bb / dl >= 1.5 else 'NOT met'})")
        if decode:
            figs["decode_only_ips"] = decode
            if bb:
                figs["bbeval_over_decode"] = bb / decode
            if bb and fw and bb / fw < 0.9:
                bound = "decode-bound" if fw > decode else "not decode-bound (forward slower than decode)"
                notes.append(f"decode-only {decode:.0f} img/s vs forward {fw:.0f}: {bound}; bbeval at "
                             f"{bb / decode:.2f} of the decode rate")
        _append(args.records, {"section": "b", "step": f"ratios {dt} b{b}", "status": "ok", "figures": figs,
                               "note": "; ".join(notes)})
    if args.out:
        render(args.records, args.out)


# ----------------------------------------------------------------------------------------------- report
def _fmt(v, nd=3):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.{nd}f}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


SECTIONS = {"a": "a. CPU/CUDA agreement (EfficientNet-Lite0, foolbox JPEGs)", "b": "b. Extraction speed",
            "c": "c. Probe", "d": "d. BigBiGAN training", "setup": "Set-up"}


def render(records, out):
    recs = _recs(records)
    meta = next((r for r in recs if r.get("section") == "meta"), {})
    end = next((r for r in recs if r.get("section") == "end"), None)
    L = [f"# bbeval GPU check ({meta.get('mode', '?')} mode)", ""]
    for k, v in meta.items():
        if k in ("section", "mode"):
            continue
        v = v if isinstance(v, str) else json.dumps(v)
        L.append(f"- **{k}**: " + (f"`{v}`" if "\n" not in v else "\n\n```\n" + v.strip() + "\n```"))
    L.append("")
    if end:
        L.append(f"**Finished** in {_fmt(end.get('elapsed_s'), 1)} s (budget {end.get('budget_s')} s): "
                 f"{end.get('ok')} ok, {end.get('failed')} failed, {end.get('skipped')} skipped.")
    else:
        L.append("**Not finished** (stopped, or still running): the records below are all there is.")
    ratios = [r for r in recs if r.get("figures", {}).get("kind") == "ratio"]
    if ratios:
        L += ["", "## Ratios (section b)", "",
              "| dtype | batch | bbeval img/s | forward-only img/s | bbeval/forward (≥ 0.9) | DataLoader img/s | "
              "bbeval/DataLoader (≥ 1.5) | bbeval/DataLoader steady | decode-only img/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in ratios:
            f = r["figures"]
            L.append(f"| {f.get('dtype')} | {f.get('batch')} | {_fmt(f.get('bbeval_ips'), 1)} | "
                     f"{_fmt(f.get('forward_ips'), 1)} | {_fmt(f.get('bbeval_over_forward'), 2)} | "
                     f"{_fmt(f.get('dataloader_ips'), 1)} | {_fmt(f.get('bbeval_over_dataloader'), 2)} | "
                     f"{_fmt(f.get('bbeval_over_dataloader_steady'), 2)} | "
                     f"{_fmt(f.get('decode_only_ips'), 1)} |")
    for sec in ("setup", "a", "b", "c", "d"):
        rows = [r for r in recs if r.get("section") == sec and r.get("figures", {}).get("kind") != "ratio"]
        if not rows:
            continue
        L += ["", f"## {SECTIONS[sec]}", "", "| step | status | wall s | figures | note |", "|---|---|---:|---|---|"]
        for r in rows:
            figs = {k: v for k, v in r.get("figures", {}).items() if k != "kind"}
            fig_s = ", ".join(f"{k}={_fmt(v)}" for k, v in figs.items())
            note = (r.get("note") or "").replace("|", "/").replace("\n", " ⏎ ")
            if len(note) > 600:
                note = note[:300] + " … " + note[-300:]
            L.append(f"| {r.get('step')} | {r.get('status')} | {_fmt(r.get('seconds'), 1)} | {fig_s} | {note} |")
    L += ["", "## All records (JSON lines)", "", "```jsonl"] + [json.dumps(r) for r in recs] + ["```", ""]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L))
    os.replace(tmp, out)


def cmd_render(args):
    render(args.records, args.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("env")
    sub.add_parser("torchlib")
    s = sub.add_parser("jpegs")
    s.add_argument("--root", required=True)
    s.add_argument("--split", default="val")
    s.add_argument("--n", type=int, default=8000)
    s.add_argument("--classes", type=int, default=8)
    s.add_argument("--size", default="500x375")
    s.add_argument("--quality", type=int, default=90)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=0)
    s = sub.add_parser("export-resnet")
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--calib-batches", type=int, default=2)
    s.add_argument("--calib-batch", type=int, default=16)
    for name in ("forward", "dataloader"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--batch", default="64", help="comma-separated batch sizes")
        s.add_argument("--dtype", default="f32", help="comma-separated: f32, bf16, f16")
        s.add_argument("--device", default="cuda")
        s.add_argument("--size", type=int, default=256)
        s.add_argument("--cudnn-benchmark", action="store_true")
        if name == "forward":
            s.add_argument("--images", type=int, default=8192, help="images per (dtype, batch): iters = ceil(images/batch)")
            s.add_argument("--iters", type=int, default=0, help="fixed iterations instead of --images")
            s.add_argument("--warmup", type=int, default=5)
        else:
            s.add_argument("--root", required=True)
            s.add_argument("--workers", type=int, default=16)
            s.add_argument("--limit", type=int, default=0)
    s = sub.add_parser("idx")
    s.add_argument("--out", required=True)
    s.add_argument("--train", type=int, default=60000)
    s.add_argument("--test", type=int, default=10000)
    s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("render")
    s.add_argument("--records", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("record")
    s.add_argument("--records", required=True)
    s.add_argument("--out")
    s.add_argument("--section", required=True)
    s.add_argument("--step", required=True)
    s.add_argument("--status", default="ok", choices=["ok", "fail", "skip"])
    s.add_argument("--seconds", type=float)
    s.add_argument("--timeout", type=float)
    s.add_argument("--json")
    s.add_argument("--err")
    s.add_argument("--smi")
    s.add_argument("--note", default="")
    s.add_argument("--pick", default="", help="comma-separated name[=dotted.path] of the JSON to keep as figures")
    s.add_argument("--set", action="append", help="name=value added to the figures (value parsed as JSON if it can)")
    s.add_argument("--each", action="store_true", help="one record per JSON line of --json")
    s.add_argument("--seconds-from-json", action="store_true")
    s = sub.add_parser("meta")
    s.add_argument("--records", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--field", action="append", default=[])
    s.add_argument("--file", action="append", default=[])
    s = sub.add_parser("finish")
    s.add_argument("--records", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--elapsed", type=float)
    s.add_argument("--budget", type=float)
    s = sub.add_parser("jget")
    s.add_argument("json")
    s.add_argument("path")
    s = sub.add_parser("tomlpatch")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--set", action="append", default=[], help='key=<TOML value>, e.g. dataset="idx:/tmp/x"')
    s = sub.add_parser("errtail")
    s.add_argument("path")
    s.add_argument("chars", type=int)
    s = sub.add_parser("trainlog")
    s.add_argument("log")
    s = sub.add_parser("pickbig")
    s.add_argument("--candidates", required=True)
    s.add_argument("--measured-rows", type=float, required=True)
    s.add_argument("--measured-seconds", type=float, required=True)
    s.add_argument("--seconds-left", type=float, required=True)
    s.add_argument("--margin", type=float, default=1.3)
    s = sub.add_parser("summarize")
    s.add_argument("--records", required=True)
    s.add_argument("--out")
    args = p.parse_args()
    {"env": cmd_env, "torchlib": cmd_torchlib, "jpegs": cmd_jpegs, "export-resnet": cmd_export_resnet,
     "forward": cmd_forward, "dataloader": cmd_dataloader, "idx": cmd_idx, "render": cmd_render,
     "record": cmd_record, "jget": cmd_jget, "tomlpatch": cmd_tomlpatch, "errtail": cmd_errtail, "trainlog": cmd_trainlog,
     "pickbig": cmd_pickbig, "summarize": cmd_summarize,
     "meta": cmd_meta, "finish": cmd_finish}[args.cmd](args)


if __name__ == "__main__":
    main()
