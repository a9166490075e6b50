#!/usr/bin/env python3
"""Stage 1 of the TF Hub import (TF venv): TF reference outputs, checks on TF, freeze, tf2onnx, onnxruntime.

Run by import_module.py as a separate process (TF and torch in one process segfault). Reads the module dir,
writes into --work: encode.onnx (+ generate.onnx), <name>.verify.npz (+ <name>-g.verify.npz) and tf.json,
the TF half of the verification record. A module that cannot be imported exits with common.REFUSED.

Memory: every TF and onnxruntime forward pass runs in chunks of --tf-batch inputs (default 8), so the peak
holds one chunk's activations, never all 64 inputs' (if BigBiGAN's RevNet-50x4 follows Kolesnikov et al.'s
code below, its 1024-channel stem output alone is 64 MB per 256x256 image: 4 GB at batch 64, 0.5 GB at 8). Batch independence is checked at three batch sizes: the chunk, a second chunk size
(chunk - 1, so every row meets different neighbours) on all inputs, and batch size 1 on the first chunk's rows.
"""
# What the real modules look like, from public sources (checked 2026-11; the modules themselves were not
# downloaded here):
#
# * Signatures of deepmind/bigbigan-resnet50/1, as hub.Module lists them (a listing pasted into
#   github.com/siavash-khodadadeh/MetaLearning-TF2.0, models/lasiummamlgan/maml_gan_miniimagenet_biggan.py):
#     encode(x [?,256,256,3]) -> avepool_feat [?,2048], bn_crelu_feat [?,4096], default, z_mean, z_sample,
#                                z_stdev [?,120]
#     default(x [?,256,256,3]) -> default [?,120]          (the encoder's z_sample, NOT the generator)
#     generate(z [?,120]) -> default [?,128,128,3], upsampled [?,256,256,3]
#     discriminate(x [?,128,128,3], z [?,120]) -> score_x, score_xz, score_z, each [?] (rank 1)
#   The BigBiGAN colab (github.com/tensorflow/hub, examples/colab/bigbigan_with_tf_hub.ipynb) reads the inputs
#   as get_input_info_dict('encode')['x'] and get_input_info_dict('generate')['z']; bigbigan-revnet50x4/1 has
#   the same signatures (its tfhub.dev page, github.com/tensorflow/tfhub.dev
#   assets/docs/deepmind/models/bigbigan-revnet50x4/1.md: 256x256 [-1,1] in, z_sample [?,120], 128x128 out).
#   The encoder's input key is read from the signature, never assumed: `x` in the real modules, and a module
#   whose encode input is called `default` (the TF1 hub convention for a single input) works the same.
# * Graph variants: hub.Module(path) is the inference variant (tags set()); the colab's commented-out
#   hub.Module(path, trainable=True, tags={'train'}) is the training one (batch statistics). hub.load() picks
#   tags=[] by itself when the folder holds tfhub_module.pb (github.com/tensorflow/hub,
#   tensorflow_hub/module_v2.py: `if tags is None and is_hub_module_v1: tags = []`), and needs saved_model.pb
#   or saved_model.pbtxt beside it.
# * Format: "<!-- format: hub -->" and "<!-- asset-path: legacy -->" on both modules' tfhub.dev pages: TF1 hub
#   format (tfhub_module.pb + saved_model.pb + variables/), stored by tfhub.dev itself. tfhub.dev now
#   redirects to Kaggle Models (github.com/tensorflow/tfhub.dev pull 156, 2024-01).
# * Archive layout (`<handle>?tf-hub-format=compressed`): tensorflow_hub's HttpCompressedFileResolver
#   (tensorflow_hub/compressed_module_resolver.py) appends that query and streams the answer into
#   file_utils.extract_tarfile_to_destination, which opens it with tarfile mode "r|*" (gzip or plain tar)
#   and writes every member relative to the module folder itself: the files sit at the archive's root
#   (members like `./saved_model.pb` or `saved_model.pb`), no top folder. A tfhub.dev reviewer states the
#   same rule for published archives: "saved_model.pb file is immediately accessible at the top level once
#   the file is uncompressed" (github.com/tensorflow/tfhub.dev pull 65). Extraction refuses links and `..`.
#   import_module.py accepts both that and an archive with one top folder, gzip or plain tar.
# * Preprocessing in the colab: centre square crop, tf.image.resize_bicubic to 256 (TF1 bicubic, not PIL's
#   antialiased one), x/(255/2) - 1. The record's inputs here only need to be the same for TF and torch.
# * Architecture of the RevNet-50x4 encoder: BigBiGAN cites Kolesnikov et al. 2019, whose public RevNet
#   (github.com/google/revisiting-self-supervised, models/resnet.py: revnet, pool_and_double_channels)
#   downsamples with tf.layers.average_pooling2d(2, 2, 'SAME') and a channel tf.pad, and pads convolutions
#   explicitly (fixed_padding + VALID). At 256x256 those average pools see even sizes (64, 32, 16): no padding;
#   an odd size would give asymmetric pads, which the converters of extra_converters.py handle. i-RevNet-style
#   models downsample with space_to_depth (also handled). Both are exercised by the synthetic modules
#   avgpool-asym and spacetodepth of tools/gen_tfhub_modules.py.
import argparse
import gc
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_hub as hub  # noqa: E402
import tf2onnx  # noqa: E402
from PIL import Image  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENCODER_OUTPUTS, RANDOM_OUTPUTS, Refusal, check_all, compare, passes, run_refusing  # noqa: E402

OPSET = 17
CATCH_ERRORS = tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS  # "TF2ONNX_CATCH_ERRORS", read by convert._convert_common
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
PREPROCESS = "centre square crop, PIL bicubic to {size}, x = p/127.5 - 1"


# ---------------------------------------------------------------- module inspection (protos only, no load)

def graph_variants(module: Path, label: Path) -> List["meta_graph_pb2.MetaGraphDef"]:
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((module / "saved_model.pb").read_bytes())
    except Exception as e:  # a truncated or foreign file
        raise Refusal(f"{label}: its saved_model.pb is not a SavedModel proto ({e}). Fix: download the module again")
    return list(sm.meta_graphs)


def pick_variant(module: Path, label: Path, is_hub_v1: bool) -> Tuple["meta_graph_pb2.MetaGraphDef", List[str]]:
    """The inference variant: tags set() for a TF1 hub module; a plain SavedModel's only/serving graph."""
    graphs = graph_variants(module, label)
    tagsets = [sorted(g.meta_info_def.tags) for g in graphs]
    for g, tags in zip(graphs, tagsets):
        if not tags:
            return g, []
    if is_hub_v1:
        raise Refusal(f"{label}: the module has only the graph variant(s) {tagsets}, no "
                      "inference variant (tags set()); the `train` variant uses batch statistics and is never "
                      "used. Fix: pass the module as published on TF Hub, which has both variants")
    serving = [t for t in tagsets if t == ["serve"]]
    return (graphs[tagsets.index(serving[0])], serving[0]) if serving else (graphs[0], tagsets[0])


def dims(info: "meta_graph_pb2.TensorInfo") -> Optional[List[int]]:
    shape = info.tensor_shape
    return None if shape.unknown_rank else [d.size for d in shape.dim]


def describe(info: "meta_graph_pb2.TensorInfo") -> str:
    d = dims(info)
    shape = "unknown rank" if d is None else "[" + ",".join("?" if n < 0 else str(n) for n in d) + "]"
    return f"{shape} {types_pb2.DataType.Name(info.dtype)}"


def single_input(sig: "meta_graph_pb2.SignatureDef", name: str, file: Path) -> Tuple[str, List[int]]:
    if len(sig.inputs) != 1:
        raise Refusal(f"{file}: signature `{name}` has inputs {sorted(sig.inputs)}, expected exactly one. "
                      "Fix: pass a BigBiGAN module (deepmind/bigbigan-resnet50/1 or bigbigan-revnet50x4/1)")
    key, info = next(iter(sig.inputs.items()))
    d = dims(info)
    return key, ([] if d is None else d) if info.dtype == types_pb2.DT_FLOAT else []


def encoder_spec(sig: "meta_graph_pb2.SignatureDef", file: Path) -> Tuple[str, int, Dict[str, Tuple[str, int]]]:
    """Input key, image size H and {contract name: (TF output name, width)}, all read from the signature."""
    key, d = single_input(sig, "encode", file)
    if len(d) != 4 or d[0] >= 0 or d[1] <= 0 or d[1] != d[2] or d[3] != 3:
        raise Refusal(f"{file}: signature `encode` input `{key}` is {describe(sig.inputs[key])}, expected "
                      "[?,H,H,3] DT_FLOAT (square RGB images in [-1,1], any batch size). Fix: pass a BigBiGAN "
                      "encoder module; bbeval does not guess another input layout")
    if "avepool_feat" not in sig.outputs:
        raise Refusal(f"{file}: signature `encode` has no `avepool_feat` output (outputs: {sorted(sig.outputs)}). "
                      "Fix: pass a BigBiGAN encoder module, whose encode signature returns avepool_feat")
    outputs = {}
    for tf_name, name in ENCODER_OUTPUTS.items():
        if tf_name not in sig.outputs:
            continue
        od = dims(sig.outputs[tf_name])
        if od is None or len(od) != 2 or od[1] <= 0 or sig.outputs[tf_name].dtype != types_pb2.DT_FLOAT:
            raise Refusal(f"{file}: signature `encode` output `{tf_name}` is {describe(sig.outputs[tf_name])}, "
                          "expected [?,width] DT_FLOAT with a known width. Fix: pass a BigBiGAN encoder module")
        outputs[name] = (tf_name, od[1])
    # z_sample is recomputed from z_mean and z_stdev; without both it cannot be, so it is left out.
    if not {"z_mean", "z_stdev"} <= set(outputs):
        outputs.pop("z_sample", None)
    return key, d[1], outputs


def generator_spec(sig: "meta_graph_pb2.SignatureDef", file: Path) -> Tuple[str, int, int]:
    """Input key, latent width and output size of `generate` (its `default` output)."""
    key, d = single_input(sig, "generate", file)
    out = dims(sig.outputs["default"]) if "default" in sig.outputs else None
    if (len(d) != 2 or d[0] >= 0 or d[1] <= 0 or out is None or len(out) != 4 or out[1] <= 0 or out[1] != out[2]
            or out[3] != 3):
        got = describe(sig.outputs["default"]) if "default" in sig.outputs else "missing"
        raise Refusal(f"{file}: signature `generate` maps {describe(sig.inputs[key])} to {got}, expected "
                      "[?,latent] DT_FLOAT -> default [?,H,H,3]. Fix: pass --no-generator to import only the encoder")
    return key, d[1], out[1]


# ---------------------------------------------------------------- inputs

def load_images(folder: Path, size: int, limit: int) -> Tuple[np.ndarray, List[str]]:
    """Centre square crop of the short side, PIL bicubic to size×size, kept as uint8 (the BigBiGAN colab)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    images = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
            images.append(np.asarray(im, dtype=np.uint8))
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8), [p.name for p in files]


def encoder_inputs(folder: Optional[Path], size: int, count: int, noise: Optional[int], seed: int
                   ) -> Tuple[np.ndarray, Dict]:
    images, names = load_images(folder, size, count) if folder else (np.zeros((0, size, size, 3), np.uint8), [])
    n_noise = count - len(images) if noise is None else noise
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([images, rng.integers(0, 256, (n_noise, size, size, 3), dtype=np.uint8)])
    info = {"count": len(pixels), "images": len(images), "noise": n_noise, "seed": seed,
            "images_from": str(folder) if folder else None, "image_files": names,
            "preprocess": PREPROCESS.format(size=size)}
    return pixels, info


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


# ---------------------------------------------------------------- TF

def run_tf(fn, key: str, x: np.ndarray, batch: int) -> Dict[str, np.ndarray]:
    """The signature on x in chunks of `batch` rows, outputs concatenated (one chunk's activations at a time)."""
    outs: Dict[str, List[np.ndarray]] = {}
    for i in range(0, len(x), batch):
        for k, v in fn(**{key: tf.constant(x[i:i + batch])}).items():
            outs.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def second_chunk(tf_batch: int) -> int:
    """The other batch size of the independence check: one less than the chunk (never more, for memory), so
    that chunk boundaries move and every row meets different neighbours; 2 and 1 compare against one more."""
    return tf_batch - 1 if tf_batch >= 3 else tf_batch + 1


def reference(fn, key: str, x: np.ndarray, names: Dict[str, str], tf_batch: int, file: Path, what: str
              ) -> Tuple[Dict[str, np.ndarray], Dict]:
    """TF's outputs on x in chunks of tf_batch, and the batch-independence check of the deterministic `names`
    ({contract: TF output}): the same rows at a second chunk size (all rows) and at batch size 1 (the first
    chunk's rows) must agree with the chunked run, else the variant uses batch statistics."""
    whole = run_tf(fn, key, x, tf_batch)
    other = second_chunk(tf_batch)
    rows_single = min(len(x), tf_batch)
    runs = [(other, run_tf(fn, key, x, other), len(x)), (1, run_tf(fn, key, x[:rows_single], 1), rows_single)]
    comparisons = {}
    for size, got, rows in runs:
        stats = {name: compare(whole[tf_name][:rows], got[tf_name]) for name, tf_name in names.items()}
        bad = [n for n, st in stats.items() if not passes(st)]
        if bad:
            raise Refusal(f"{file}: {what}: features depend on the rest of the batch (batch statistics?): output "
                          f"`{bad[0]}` at batch size {size} vs {tf_batch} differs by rel {stats[bad[0]]['rel']:.3g}. "
                          "Fix: use the module's inference variant (tags set()); a module without one cannot be "
                          "evaluated")
        comparisons[f"batch {size} vs {tf_batch}"] = {"rows": rows, "outputs": stats}
    check = {"batch_sizes": [1, tf_batch, other], "reference_batch_size": tf_batch,
             "rows_at_batch_size_1": rows_single, "comparisons": comparisons, "passed": True}
    return whole, check


def z_sample_law(out: Dict[str, np.ndarray], file: Path) -> Dict:
    """TF's z_sample must be z_mean + z_stdev * N(0, 1), so that the wrapper may redraw it with torch."""
    z, mean, std = (out[k].astype(np.float64) for k in ("z_sample", "z_mean", "z_stdev"))
    # Where z_stdev is below float32's resolution of z_mean, z_sample - z_mean is rounding noise: skip those.
    usable = np.finfo(np.float32).eps * np.maximum(np.abs(mean), np.abs(z)) < 1e-2 * std
    r = ((z - mean) / np.where(usable, std, 1.0))[usable]
    # A loose band: it tells N(0,1) from "no noise", uniform noise or a variance taken for a deviation, and
    # never trips on sampling error (five standard errors are below 0.1 from ~2,500 entries on).
    n = max(r.size, 1)
    mean_tol, std_tol = max(0.1, 5 / np.sqrt(n)), max(0.1, 5 / np.sqrt(2 * n))
    res = {"mean": float(r.mean()) if r.size else float("nan"), "std": float(r.std()) if r.size else float("nan"),
           "entries": int(r.size), "skipped_below_float32_resolution": int(usable.size - r.size),
           "tolerance": {"mean": mean_tol, "std": std_tol}}
    res["passed"] = bool(r.size >= 100 and abs(res["mean"]) <= mean_tol and abs(res["std"] - 1) <= std_tol)
    if not res["passed"]:
        raise Refusal(f"{file}: encode: (z_sample - z_mean)/z_stdev over {r.size} entries has mean {res['mean']:.3f} "
                      f"and std {res['std']:.3f}, not ~N(0,1), so z_sample cannot be redrawn as z_mean + "
                      "z_stdev*eps. Fix: none in bbeval; use z_mean")
    return res


# ---------------------------------------------------------------- TF -> ONNX

class OpLog(logging.Handler):
    """Collects tf2onnx's log lines about ops it cannot convert, to name them in the refusal."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def to_onnx(fn, tf_names: Dict[str, str], path: Path, file: Path, sig_name: str) -> Tuple[float, float]:
    """Freezes the signature and converts the outputs in tf_names ({contract: TF output}) to ONNX at `path`.

    Graph outputs are renamed to the contract names through Identity nodes: that also keeps onnx2torch from
    returning the whole tuple of a multi-output node (Split) when one of its outputs is a graph output.
    Returns the seconds spent freezing and converting.
    """
    t0 = time.perf_counter()
    # tf2onnx cannot read TF1 ref variables: fold every variable into a constant first.
    # (The _as_graph variant hands back the GraphDef it built, sparing one more copy of the weights.)
    frozen, graph_def = convert_variables_to_constants_v2_as_graph(fn)
    t1 = time.perf_counter()
    inputs = [t.name for t in frozen.inputs]
    # Freezing keeps the outputs' order but flattens the output dict: map through the original's positions.
    position = [t.name for t in fn.outputs]
    tensors = {name: frozen.outputs[position.index(fn.structured_outputs[tf_name].name)].name
               for name, tf_name in tf_names.items()}
    del frozen
    log = OpLog()
    logging.getLogger("tf2onnx").addHandler(log)
    saved = os.environ.get(CATCH_ERRORS)
    try:
        # tf2onnx's default "catch errors" mode deep-copies the whole graph, weights included, before each of its
        # ~15 optimizers per pass, so that a failing one can be skipped: for `big` (52 MB of weights) that took
        # the stage from 1.6 to 3.9 GB. Without it the peak is ~2 GB; the slow mode is the fallback only.
        try:
            os.environ[CATCH_ERRORS] = "FALSE"
            model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs,
                                                      output_names=list(tensors.values()), opset=OPSET)
        except Exception:  # noqa: BLE001  an optimizer that fails, or an op tf2onnx cannot convert
            gc.collect()
            log.lines.clear()
            os.environ[CATCH_ERRORS] = "TRUE"
            model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs,
                                                      output_names=list(tensors.values()), opset=OPSET)
    except Exception as e:
        ops = "; ".join(log.lines[-3:]) or str(e).splitlines()[0]
        raise Refusal(f"{file}: tf2onnx cannot convert signature `{sig_name}`: {ops}. Fix: none for this module "
                      f"with tf2onnx {tf2onnx.__version__} at opset {OPSET}; report the op")
    finally:
        logging.getLogger("tf2onnx").removeHandler(log)
        if saved is None:
            os.environ.pop(CATCH_ERRORS, None)
        else:
            os.environ[CATCH_ERRORS] = saved
        del graph_def
        gc.collect()  # tf2onnx's graphs hold reference cycles: free them before onnxruntime loads the model
    unsupported = [line for line in log.lines if "not supported" in line or "Unsupported" in line]
    if unsupported:
        raise Refusal(f"{file}: tf2onnx cannot convert signature `{sig_name}`: {unsupported[0]}. Fix: none for "
                      f"this module with tf2onnx {tf2onnx.__version__}; report the op")
    g = model.graph
    by_tensor = {o.name: o for o in g.output}
    new_outputs = []
    for name, tensor in tensors.items():
        g.node.append(onnx.helper.make_node("Identity", [tensor], [name], name=f"bbeval_output_{name}"))
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(by_tensor[tensor])
        vi.name = name
        new_outputs.append(vi)
    del g.output[:]
    g.output.extend(new_outputs)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return t1 - t0, time.perf_counter() - t1


def run_onnx(path: Path, x: np.ndarray, batch: int) -> Dict[str, np.ndarray]:
    """onnxruntime on x in chunks of `batch` rows, as TF ran."""
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = sess.get_inputs()[0].name
    chunks = [sess.run(names, {feed: x[i:i + batch]}) for i in range(0, len(x), batch)]
    return {n: np.concatenate([c[j] for c in chunks]) for j, n in enumerate(names)}


# ---------------------------------------------------------------- the two signatures

def import_encoder(fn, sig, args, file: Path, work: Path, report: Dict) -> None:
    key, size, outputs = encoder_spec(sig, file)
    t = report["timings_s"]
    pixels, info = encoder_inputs(args.images, size, args.count, args.noise, args.seed)
    x = to_model_input(pixels)
    t0 = time.perf_counter()
    deterministic = {n: tf_name for n, (tf_name, _) in outputs.items() if n not in RANDOM_OUTPUTS}
    whole, independent = reference(fn, key, x, deterministic, args.tf_batch, file, "encode")
    checks = {"batch_independent": independent}
    if "z_sample" in outputs:
        checks["z_sample_law"] = z_sample_law(whole, file)
    t["tf_reference"] = time.perf_counter() - t0
    refs = {n: whole[tf_name] for n, (tf_name, _) in outputs.items()}

    onnx_path = work / "encode.onnx"
    t["freeze"], t["tf2onnx"] = to_onnx(fn, deterministic, onnx_path, file, "encode")
    t0 = time.perf_counter()
    got = run_onnx(onnx_path, x, args.tf_batch)
    onnx_stats = check_all({n: refs[n] for n in deterministic}, got, "ONNX (tf2onnx) vs TF", str(file))
    t["onnxruntime"] = time.perf_counter() - t0

    np.savez(work / f"{args.name}.verify.npz", inputs=pixels, **{f"tf_{n}": v for n, v in refs.items()})
    report.update(
        size=size, input_key=key, tf_batch=args.tf_batch,
        latent=outputs["z_mean"][1] if "z_mean" in outputs else None,
        inputs=info,
        outputs={n: {"width": w, "tf_name": tf_name} for n, (tf_name, w) in outputs.items()},
        checks=checks,
        stages={"onnx_vs_tf": {"passed": True, "batch_sizes": [args.tf_batch], "outputs": onnx_stats}})


def import_generator(fn, sig, args, file: Path, work: Path, report: Dict) -> None:
    key, latent, out_size = generator_spec(sig, file)
    z = np.random.default_rng(args.seed).standard_normal((args.count, latent)).astype(np.float32)
    t0 = time.perf_counter()
    whole, independent = reference(fn, key, z, {"image": "default"}, args.tf_batch, file, "generate")
    checks = {"batch_independent": independent}
    t1 = time.perf_counter()
    onnx_path = work / "generate.onnx"
    freeze_s, tf2onnx_s = to_onnx(fn, {"image": "default"}, onnx_path, file, "generate")
    onnx_stats = check_all({"image": whole["default"]}, run_onnx(onnx_path, z, args.tf_batch), "ONNX (tf2onnx) vs TF", str(file))
    # NCHW, as the TorchScript generator returns it, so the record compares directly.
    np.savez(work / f"{args.name}-g.verify.npz", inputs=z,
             tf_image=np.ascontiguousarray(whole["default"].transpose(0, 3, 1, 2)))
    report.update(
        latent=latent, size=out_size, input_key=key, tf_batch=args.tf_batch,
        inputs={"count": len(z), "seed": args.seed, "distribution": "standard normal (numpy default_rng(seed))"},
        outputs={"image": {"shape": [3, out_size, out_size], "tf_name": "default"}},
        checks=checks,
        stages={"onnx_vs_tf": {"passed": True, "batch_sizes": [args.tf_batch], "outputs": onnx_stats}},
        timings_s={"tf_reference": t1 - t0, "freeze": freeze_s, "tf2onnx": tf2onnx_s})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--module", type=Path, required=True, help="module directory (already unpacked)")
    ap.add_argument("--module-label", type=Path, required=True, help="the module as the user named it, for messages")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--images", type=Path)
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--noise", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-generator", action="store_true")
    ap.add_argument("--tf-batch", type=int, default=8, help="inputs per TF/onnxruntime call (bounds peak memory)")
    args = ap.parse_args()
    if args.tf_batch < 1:
        ap.error("--tf-batch must be >= 1")
    tf.get_logger().setLevel("ERROR")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)

    file = args.module_label  # what refusals name: the folder or archive the user passed
    is_hub_v1 = (args.module / "tfhub_module.pb").exists()
    graph, tags = pick_variant(args.module, file, is_hub_v1)
    sigs = graph.signature_def
    if "encode" not in sigs:
        kind = "TF1 hub module" if is_hub_v1 else "SavedModel"
        names = sorted(n for n in sigs if not n.startswith("__"))  # __saved_model_init_op is no signature to call
        raise Refusal(f"{file}: this {kind} has no `encode` signature (signatures: {names}). Fix: pass a "
                      "BigBiGAN module (deepmind/bigbigan-resnet50/1 or bigbigan-revnet50x4/1)")
    t0 = time.perf_counter()
    # hub.load picks tags set() for a TF1 hub module, as the BigBiGAN colab's hub.Module did.
    loaded = hub.load(str(args.module)) if is_hub_v1 else tf.saved_model.load(str(args.module), tags=tags)
    variant = f"inference (tags={tags})"
    enc: Dict = {"signature": "encode", "variant": variant, "timings_s": {"tf_load": time.perf_counter() - t0}}
    import_encoder(loaded.signatures["encode"], sigs["encode"], args, file, args.work, enc)
    report = {"format": "hub-tf1" if is_hub_v1 else "saved_model", "encoder": enc,
              "versions": {"tensorflow": tf.__version__, "tensorflow_hub": hub.__version__,
                           "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                           "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}}
    if "generate" in sigs and not args.no_generator:
        gen: Dict = {"signature": "generate", "variant": variant}
        import_generator(loaded.signatures["generate"], sigs["generate"], args, file, args.work, gen)
        report["generator"] = gen
    (args.work / "tf.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    run_refusing(main)
