#!/usr/bin/env python3
"""Write synthetic TF1-format TF Hub modules with BigBiGAN's signatures, for the TF Hub import's tests.

The real deepmind/bigbigan-* modules are TF1 hub modules: tfhub_module.pb + saved_model.pb (one MetaGraphDef
per graph variant: tags set() = inference, {"train"} = batch statistics) + variables/. tensorflow-hub 0.16 can
no longer write that format (hub.create_module_spec is gone), so this builds the same files directly: each
variant is a tf.compat.v1 graph with ref variables of the same names, exported with SavedModelBuilder, plus
the ModuleDef proto tfhub_module.pb (format V3). hub.load reads the result exactly as it reads the real ones.

Signatures, laid out as the real modules' (see the comment block atop tools/tfhub/stage_tf.py; widths are
parameters, the real ResNet-50 has avepool 2048, bn_crelu 4096, latent 120, H 256):
  encode(x [?,H,H,3] float32 in [-1,1]) -> avepool_feat, bn_crelu_feat, z_mean, z_stdev, z_sample, default
  default(x [?,H,H,3])                  -> default (= encode's z_sample)
  generate(z [?,latent])                -> default [?,H/2,H/2,3], upsampled [?,H,H,3]   (tanh, in [-1,1])
  discriminate(x [?,H/2,H/2,3], z)      -> score_x, score_z, score_xz, each [?]

    ~/.cache/bbeval/tfhub-venv/bin/python tools/gen_tfhub_modules.py --out DIR [--only a,b] [--big]

Run it with the TF venv of tools/tfhub/setup_env.sh. Good modules: resnet-small (+ resnet-small.tar.gz, the
`?tf-hub-format=compressed` form: files at the archive root), widths-odd, revnet-small (encode's input named
`default`), spacetodepth (RevNet blocks downsampling with tf.nn.space_to_depth -> ONNX SpaceToDepth; its
generator upsamples with tf.nn.depth_to_space -> DepthToSpace mode DCR), avgpool-asym (TF SAME average pools
that tf2onnx writes with asymmetric pads: kernel 3 stride 2 on an even size, and Kolesnikov et al.'s RevNet
downsampling, avg pool 2/2 SAME + channel tf.pad, on an odd size), and big (--big: 2048/4096, ~13M
parameters). Modules the import must refuse: train-only, batch-dependent, wrong-input, no-avepool,
unsupported-op (tf.math.asinh: tf2onnx writes ONNX Asinh, which onnx2torch cannot convert),
tf2onnx-unsupported-op (Lgamma), tf2-no-encode, plus not-a-module/ and corrupt.tar.gz. Seeded and
byte-for-byte reproducible: the same command writes the same files.
"""
import argparse
import gzip
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1

# tensorflow_hub's ModuleDef proto {format: FORMAT_V3}; hub.load treats a dir holding it as a TF1 hub module.
MODULE_DEF_V3 = b"\x08\x03"
BN_EPS = 1e-3


@dataclass(frozen=True)
class Spec:
    """One synthetic module. `stages` are (channels, stride, kind): "res" (ResNet block), "rev" (RevNet coupling,
    channels and size kept), "s2d" (tf.nn.space_to_depth by `stride`; channels x stride^2), "pool2" (Kolesnikov et
    al.'s pool_and_double_channels: avg pool stride x stride SAME, channels doubled by a zero tf.pad)."""
    size: int = 256
    stem: int = 16
    stages: Tuple[Tuple[int, int, str], ...] = ((16, 1, "res"), (32, 2, "res"), (64, 2, "res"))
    avepool: int = 64             # a 1x1 conv maps the last stage to this width when they differ
    latent: int = 120
    gen_width: int = 32
    seed: int = 0
    variants: Tuple[str, ...] = ("default", "train")   # "default" is tags set(), "train" is {"train"}
    default_uses_batch_stats: bool = False
    input_channels: int = 3
    outputs: Tuple[str, ...] = ("avepool_feat", "bn_crelu_feat", "z_mean", "z_stdev", "z_sample", "default")
    stem_pool: str = "max"        # after the stride-2 stem: "max" or "avg" pooling, 3x3 stride 2 SAME
    asinh: bool = False           # tf.math.asinh -> ONNX Asinh, which onnx2torch cannot convert
    lgamma: bool = False          # TF Lgamma, which tf2onnx cannot convert
    generator: bool = True
    gen_upsample: str = "nearest"  # generator upsampling: "nearest" resize or "depth_to_space" (ONNX DCR)
    input_key: str = "x"          # encode's (and default's) input name; the real modules use `x`


GOOD: Dict[str, Spec] = {
    "resnet-small": Spec(),
    # Widths nobody would guess, and a 128 input: the import must read every number from the signature.
    "widths-odd": Spec(size=128, stem=12, stages=((12, 2, "res"), (24, 2, "res")), avepool=48, latent=17,
                       gen_width=16, seed=1, generator=False),
    "revnet-small": Spec(size=128, stem=16, stages=((16, 1, "rev"), (32, 2, "res"), (32, 1, "rev")),
                         avepool=40, seed=2, generator=False, input_key="default"),
    # 128 -> stem 64 -> pool 32 -> rev -> s2d 16x16x64 -> rev -> s2d 8x8x256 -> rev.
    "spacetodepth": Spec(size=128, stem=16, stages=((16, 1, "rev"), (0, 2, "s2d"), (64, 1, "rev"), (0, 2, "s2d"),
                                                    (256, 1, "rev")),
                         avepool=48, latent=24, gen_width=16, seed=4, gen_upsample="depth_to_space"),
    # 100 -> stem 50 -> avg 3/2 SAME: 25 (pads 0,1) -> rev -> avg 2/2 SAME: 13 (pads 0,1), channels 16->32 -> rev.
    "avgpool-asym": Spec(size=100, stem=16, stem_pool="avg", stages=((16, 1, "rev"), (32, 2, "pool2"),
                                                                     (32, 1, "rev")),
                         avepool=40, latent=20, seed=5, generator=False),
}
BIG = Spec(stem=64, stages=((64, 1, "res"), (64, 1, "res"), (128, 2, "res"), (128, 1, "res"), (256, 2, "res"),
                            (256, 1, "res"), (512, 2, "res"), (512, 1, "res")),
           avepool=2048, seed=3, gen_width=64)
BAD: Dict[str, Spec] = {
    "train-only": replace(GOOD["widths-odd"], variants=("train",)),
    "batch-dependent": replace(GOOD["widths-odd"], default_uses_batch_stats=True),
    "wrong-input": replace(GOOD["widths-odd"], size=64, input_channels=1),
    "no-avepool": replace(GOOD["widths-odd"], outputs=("bn_crelu_feat", "z_mean", "z_stdev", "z_sample", "default")),
    "unsupported-op": replace(GOOD["widths-odd"], asinh=True),
    "tf2onnx-unsupported-op": replace(GOOD["widths-odd"], lgamma=True),
}


class Net:
    """Builds one graph variant. Variables are created by name only; their values are loaded afterwards."""

    def __init__(self, training: bool):
        self.training = training

    def var(self, name: str, shape: List[int]) -> tf.Variable:
        # use_resource=False: TF1-era modules (BigBiGAN's included) hold ref variables (VariableV2).
        return v1.get_variable(name, shape=shape, dtype=tf.float32, initializer=v1.zeros_initializer(),
                               use_resource=False)

    def conv(self, x: tf.Tensor, cout: int, k: int, stride: int, name: str) -> tf.Tensor:
        w = self.var(f"{name}/w", [k, k, int(x.shape[-1]), cout])
        # SAME with an even input and stride 2 pads asymmetrically (more at the bottom/right), unlike torch.
        return tf.nn.conv2d(x, w, strides=stride, padding="SAME")

    def bn(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """Fused BN: moving statistics in inference, batch statistics in training."""
        c = int(x.shape[-1])
        gamma, beta = self.var(f"{name}/gamma", [c]), self.var(f"{name}/beta", [c])
        mean, var = self.var(f"{name}/moving_mean", [c]), self.var(f"{name}/moving_variance", [c])
        if self.training:
            y, _, _ = v1.nn.fused_batch_norm(x, gamma, beta, epsilon=BN_EPS, is_training=True)
        else:
            y, _, _ = v1.nn.fused_batch_norm(x, gamma, beta, mean, var, epsilon=BN_EPS, is_training=False)
        return y

    def bn_plain(self, h: tf.Tensor, name: str) -> tf.Tensor:
        """BN without affine from math ops (as Sonnet writes it), on [N, C] features."""
        c = int(h.shape[-1])
        mean, var = self.var(f"{name}/moving_mean", [c]), self.var(f"{name}/moving_variance", [c])
        if self.training:
            mean, var = tf.nn.moments(h, axes=[0])
        return tf.nn.batch_normalization(h, mean, var, None, None, BN_EPS)

    def dense(self, h: tf.Tensor, cout: int, name: str) -> tf.Tensor:
        w, b = self.var(f"{name}/w", [int(h.shape[-1]), cout]), self.var(f"{name}/b", [cout])
        return tf.matmul(h, w) + b

    def res_block(self, x: tf.Tensor, cout: int, stride: int, name: str) -> tf.Tensor:
        h = tf.nn.relu(self.bn(self.conv(x, cout, 3, stride, f"{name}/conv1"), f"{name}/bn1"))
        h = self.bn(self.conv(h, cout, 3, 1, f"{name}/conv2"), f"{name}/bn2")
        if stride != 1 or int(x.shape[-1]) != cout:
            x = self.bn(self.conv(x, cout, 1, stride, f"{name}/proj"), f"{name}/bn_proj")
        return tf.nn.relu(x + h)

    def rev_block(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """RevNet additive coupling: y1 = x1 + F(x2), y2 = x2 + G(y1)."""
        x1, x2 = tf.split(x, 2, axis=-1)
        half = int(x1.shape[-1])

        def residual(h: tf.Tensor, n: str) -> tf.Tensor:
            return self.conv(tf.nn.relu(self.bn(h, f"{n}/bn")), half, 3, 1, f"{n}/conv")

        y1 = x1 + residual(x2, f"{name}/f")
        y2 = x2 + residual(y1, f"{name}/g")
        return tf.concat([y1, y2], axis=-1)

    @staticmethod
    def pool_and_double_channels(x: tf.Tensor, stride: int) -> tf.Tensor:
        """Kolesnikov et al.'s RevNet downsampling (github.com/google/revisiting-self-supervised, models/resnet.py):
        average pool stride x stride SAME (TF leaves the padding out of the count), then zero channels on both
        sides, doubling the width."""
        x = tf.nn.avg_pool2d(x, stride, stride, "SAME")
        c = int(x.shape[-1])
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [c // 2, c - c // 2]])

    def encoder(self, x: tf.Tensor, s: Spec) -> Dict[str, tf.Tensor]:
        with v1.variable_scope("encoder"):
            h = tf.nn.relu(self.bn(self.conv(x, s.stem, 3, 2, "stem"), "stem_bn"))
            pool = tf.nn.max_pool2d if s.stem_pool == "max" else tf.nn.avg_pool2d
            h = pool(h, 3, 2, "SAME")
            for i, (c, stride, kind) in enumerate(s.stages):
                if kind == "rev":
                    h = self.rev_block(h, f"block{i}")
                elif kind == "s2d":
                    h = tf.nn.space_to_depth(h, stride)
                elif kind == "pool2":
                    h = self.pool_and_double_channels(h, stride)
                else:
                    h = self.res_block(h, c, stride, f"block{i}")
            if s.asinh:
                h = h + 1e-3 * tf.math.asinh(h)
            if s.lgamma:
                h = h + 1e-3 * tf.math.lgamma(tf.abs(h) + 1.0)
            if int(h.shape[-1]) != s.avepool:
                h = tf.nn.relu(self.bn(self.conv(h, s.avepool, 1, 1, "to_avepool"), "to_avepool_bn"))
            avepool = tf.reduce_mean(h, axis=[1, 2])
            b = self.bn_plain(avepool, "bn_crelu")
            bn_crelu = tf.concat([tf.nn.relu(b), tf.nn.relu(-b)], axis=-1)
            z_mean = self.dense(avepool, s.latent, "z_mean")
            z_stdev = tf.nn.softplus(self.dense(avepool, s.latent, "z_stdev"))
            z_sample = z_mean + z_stdev * tf.random.normal(tf.shape(z_mean))
        out = {"avepool_feat": avepool, "bn_crelu_feat": bn_crelu, "z_mean": z_mean, "z_stdev": z_stdev,
               "z_sample": z_sample, "default": tf.identity(z_sample)}
        return {k: out[k] for k in s.outputs}

    def generator(self, z: tf.Tensor, s: Spec) -> Dict[str, tf.Tensor]:
        with v1.variable_scope("generator"):
            h = tf.reshape(self.dense(z, 4 * 4 * s.gen_width, "fc"), [-1, 4, 4, s.gen_width])
            side, i = 4, 0
            while side < s.size // 2:
                if s.gen_upsample == "depth_to_space":
                    h = tf.nn.depth_to_space(self.conv(h, 4 * s.gen_width, 3, 1, f"up{i}_d2s"), 2)
                else:
                    h = v1.image.resize_nearest_neighbor(h, [2 * side, 2 * side])
                h = tf.nn.relu(self.bn(self.conv(h, s.gen_width, 3, 1, f"up{i}"), f"up{i}_bn"))
                side, i = 2 * side, i + 1
            image = tf.tanh(self.conv(h, 3, 3, 1, "to_rgb"))
            upsampled = v1.image.resize_bilinear(image, [s.size, s.size])
        return {"default": image, "upsampled": upsampled}

    def discriminator(self, x: tf.Tensor, z: tf.Tensor, s: Spec) -> Dict[str, tf.Tensor]:
        with v1.variable_scope("discriminator"):
            h = tf.nn.relu(self.conv(x, 16, 3, 2, "conv0"))
            h = tf.reduce_mean(tf.nn.relu(self.conv(h, 32, 3, 2, "conv1")), axis=[1, 2])
            hz = tf.nn.relu(self.dense(z, 32, "fc_z"))
            # Rank 1, [?], as the real module's scores.
            score_x = tf.reshape(self.dense(h, 1, "score_x"), [-1])
            score_z = tf.reshape(self.dense(hz, 1, "score_z"), [-1])
            score_xz = tf.reshape(self.dense(tf.concat([h, hz], -1), 1, "score_xz"), [-1])
        return {"score_x": score_x, "score_z": score_z, "score_xz": score_xz}


def signature(inputs: Dict[str, tf.Tensor], outputs: Dict[str, tf.Tensor]) -> "v1.SignatureDef":
    info = v1.saved_model.utils.build_tensor_info
    return v1.saved_model.signature_def_utils.build_signature_def(
        inputs={k: info(t) for k, t in inputs.items()}, outputs={k: info(t) for k, t in outputs.items()})


def build_variant(s: Spec, training: bool) -> Dict[str, "v1.SignatureDef"]:
    """The whole module's graph in the current default graph; returns its signatures."""
    net = Net(training)
    x = v1.placeholder(tf.float32, [None, s.size, s.size, s.input_channels], name="encode_x")
    enc = net.encoder(x, s)
    sigs = {"encode": signature({s.input_key: x}, enc)}
    if "default" in enc:  # the real modules' default signature is the encoder's z_sample
        sigs["default"] = signature({s.input_key: x}, {"default": enc["default"]})
    if s.generator:
        z = v1.placeholder(tf.float32, [None, s.latent], name="generate_z")
        xd = v1.placeholder(tf.float32, [None, s.size // 2, s.size // 2, 3], name="discriminate_x")
        zd = v1.placeholder(tf.float32, [None, s.latent], name="discriminate_z")
        sigs.update(generate=signature({"z": z}, net.generator(z, s)),
                    discriminate=signature({"x": xd, "z": zd}, net.discriminator(xd, zd, s)))
    return sigs


def weight_value(name: str, shape: Tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Non-trivial seeded values: He-scaled weights, BN statistics far from (0, 1) so a wrong BN shows."""
    leaf = name.rsplit("/", 1)[-1].split(":")[0]
    if leaf == "gamma":
        return rng.uniform(0.5, 1.5, shape)
    if leaf in ("beta", "b"):
        return rng.normal(0.0, 0.1, shape)
    if leaf == "moving_mean":
        return rng.normal(0.0, 0.2, shape)
    if leaf == "moving_variance":
        return rng.uniform(0.5, 2.0, shape)
    fan_in = int(np.prod(shape[:-1]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


def export_tf1_module(s: Spec, out: Path) -> int:
    """Writes the TF1 hub module; returns its parameter count."""
    builder = v1.saved_model.Builder(str(out))
    first, params = True, 0
    for variant in s.variants:
        training = variant == "train" or s.default_uses_batch_stats
        graph = tf.Graph()
        with graph.as_default(), v1.Session(graph=graph) as sess:
            sigs = build_variant(s, training)
            tags = ["train"] if variant == "train" else []
            if first:
                rng = np.random.default_rng(s.seed)
                sess.run(v1.global_variables_initializer())
                for v in sorted(v1.global_variables(), key=lambda v: v.name):
                    v.load(weight_value(v.name, tuple(v.shape.as_list()), rng).astype(np.float32), sess)
                    params += int(np.prod(v.shape.as_list()))
                builder.add_meta_graph_and_variables(sess, tags, signature_def_map=sigs, strip_default_attrs=True)
                first = False
            else:
                # Same variable names, so this variant restores from the one variables/ checkpoint.
                builder.add_meta_graph(tags, signature_def_map=sigs, strip_default_attrs=True)
    builder.save()
    (out / "tfhub_module.pb").write_bytes(MODULE_DEF_V3)
    return params


def export_tf2_without_encode(out: Path) -> None:
    """A plain TF2 SavedModel: hub.load reads it, but it has only serving_default."""
    class Classifier(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(9).normal(size=(3, 10)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> Dict[str, tf.Tensor]:
            return {"logits": tf.matmul(tf.reduce_mean(x, [1, 2]), self.w)}

    m = Classifier()
    tf.saved_model.save(m, str(out), signatures={"serving_default": m.__call__})


def write_archive(module: Path, archive: Path) -> None:
    """The tfhub.dev compressed form: a .tar.gz of the module's files at the archive root, as ./name."""
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for path in [module, *sorted(module.rglob("*"))]:
            rel = path.relative_to(module).as_posix()
            info = tar.gettarinfo(str(path), arcname="." if rel == "." else f"./{rel}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_not_modules(out: Path) -> None:
    (out / "not-a-module").mkdir()
    (out / "not-a-module" / "README.txt").write_text("A folder without saved_model.pb or tfhub_module.pb.\n")
    # Starts like a gzip stream, then garbage: a truncated or corrupt download.
    (out / "corrupt.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + np.random.default_rng(7).bytes(4096))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", help="comma-separated module names (default: all but big)")
    ap.add_argument("--big", action="store_true", help="also write `big` (2048/4096 outputs, ~13M parameters)")
    args = ap.parse_args()
    tf.get_logger().setLevel("ERROR")  # TF1 API deprecation notices: this file writes TF1 on purpose

    tf1: Dict[str, Spec] = {**GOOD, **BAD, **({"big": BIG} if args.big else {})}
    others: Dict[str, Callable[[Path], None]] = {"tf2-no-encode": export_tf2_without_encode}
    names = list(tf1) + list(others) + ["not-modules"]
    chosen = args.only.split(",") if args.only else names
    unknown = sorted(set(chosen) - set(names) - {"big"})
    if unknown:
        print(f"gen_tfhub_modules: unknown module(s) {unknown}; known: {names + ['big']}", file=sys.stderr)
        return 2
    if "big" in chosen:
        tf1["big"] = BIG
    args.out.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        target = args.out / name
        remove(target)
        if name in tf1:
            params = export_tf1_module(tf1[name], target)
            print(f"{name}: TF1 hub module, {params:,} parameters -> {target}")
            if name == "resnet-small":
                remove(args.out / "resnet-small.tar.gz")
                write_archive(target, args.out / "resnet-small.tar.gz")
                print(f"resnet-small.tar.gz -> {args.out / 'resnet-small.tar.gz'}")
        elif name in others:
            others[name](target)
            print(f"{name} -> {target}")
        else:
            remove(args.out / "not-a-module")
            remove(args.out / "corrupt.tar.gz")
            write_not_modules(args.out)
            print(f"not-a-module/, corrupt.tar.gz -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
