#!/usr/bin/env python3
"""Import a BigBiGAN TF Hub module (TF1 hub format) as a verified TorchScript encoder (+ generator) for bbeval.

    python3 tools/tfhub/import_module.py --module <dir or archive> --name <name> --out <staging dir>
                                         [--images <dir of JPEGs>] [--noise N] [--seed S] [--tf-batch B]
                                         [--architecture TEXT] [--no-generator] [--keep-work]

Flags:
  --module PATH        the module: its folder (tfhub_module.pb, saved_model.pb, variables/) or the archive as
                       tfhub.dev serves it (`<handle>?tf-hub-format=compressed`: a .tar.gz with the files at
                       its root; an archive with one top folder, or a plain .tar, works too). A plain TF2
                       SavedModel folder with an `encode` signature is accepted as well.
  --name NAME          the encoder's name: the files are <name>.pt/.toml/.verify.json/.verify.npz, and
                       <name>-g.* for the generator (ASCII letters, digits, '-', '_', '.').
  --out DIR            staging folder for those files; created (and written) only when everything passed.
  --images DIR         real images for the verification record, the first 64 in name order (default:
                       assets/foolbox/imagenet from `make setup`); centre square crop, bicubic to the
                       signature's input size, x = p/127.5 - 1.
  --noise N            uniform-noise images in the record (default: 64 minus the real images).
  --seed S             seed of the noise images and of the generator's latents (default 0).
  --tf-batch B         inputs per TF and onnxruntime call in stage 1 (default 8). Bounds the TF stage's peak
                       memory to one chunk's activations; batch independence is checked at 1, B and B-1 (B+1
                       for B < 3). Recorded in the verification record as `tf_batch`.
  --architecture TEXT  the manifest's `architecture` (default: the module's folder or archive name).
  --no-generator       import only the `encode` signature, even when the module has `generate`.
  --keep-work          keep the work folder (ONNX files, stage logs) and print its path, for a report.

Stdlib only: it runs with any python3 (or bbeval's main venv python). It bootstraps the two environments
(setup_env.sh; instant once done) and runs the two stages as separate processes, because TF and torch in
one process segfault:

  stage_tf.py     TF venv      load the inference variant (tags set()), TF reference outputs on 64 inputs in
                               chunks of --tf-batch, batch-independence and z_sample checks, freeze, tf2onnx,
                               onnxruntime vs TF
  stage_torch.py  main venv    onnx2torch (+ extra_converters.py: SpaceToDepth, DepthToSpace DCR, AveragePool
                               with asymmetric pads), contract wrapper, torch.jit.trace, save, reload, vs TF at
                               batch size 1, 7 (the trace's) and on all 64 inputs in chunks of --tf-batch

It writes into --out only when everything passed: <name>.pt, <name>.toml (encoder manifest),
<name>.verify.json + .npz (the verification record), and for a module with a `generate` signature (unless
--no-generator) the same four files for <name>-g. Work happens in a temporary folder beside --out, removed
afterwards unless --keep-work. A module that cannot be imported exits 2 with one stderr line naming the file
and the fix; the last stdout line of a success is `IMPORT-OK <path of <name>.verify.json>`.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from common import REFUSAL_PREFIX, REFUSED, TOLERANCE, Refusal  # noqa: E402

DEFAULT_IMAGES = ROOT / "assets" / "foolbox" / "imagenet"
COUNT = 64
RECORD_FORMAT = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_dir(root: Path) -> str:
    """Content hash of a module folder: each file's relative path, a NUL, its bytes, in sorted path order."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def module_root(folder: Path, shown: Path) -> Path:
    """The folder holding saved_model.pb: `folder` itself or its only subfolder (archives made either way)."""
    if (folder / "saved_model.pb").is_file():
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if len(subdirs) == 1 and (subdirs[0] / "saved_model.pb").is_file():
        return subdirs[0]
    hub_only = (folder / "tfhub_module.pb").is_file()
    raise Refusal(f"{shown}: not a TF Hub module or SavedModel: "
                  f"{'tfhub_module.pb without saved_model.pb' if hub_only else 'no saved_model.pb or tfhub_module.pb'}."
                  " Fix: pass the module folder that holds saved_model.pb + variables/, or the .tar.gz from TF Hub "
                  "(?tf-hub-format=compressed)")


def unpack(archive: Path, into: Path) -> Path:
    """Unpacks a .tar.gz (or plain .tar, as tensorflow_hub's own extractor also reads) into `into`."""
    with open(archive, "rb") as f:
        magic = f.read(2)
    if magic != b"\x1f\x8b" and not tarfile.is_tarfile(archive):
        raise Refusal(f"{archive}: not a gzip-compressed tar archive. Fix: pass the .tar.gz as downloaded from TF Hub "
                      "(?tf-hub-format=compressed) or the unpacked module folder")
    try:
        with tarfile.open(archive, "r:gz" if magic == b"\x1f\x8b" else "r:") as tar:
            tar.extractall(into, filter="data")  # refuses absolute paths, .. and links out of the folder
    except (tarfile.TarError, OSError, EOFError) as e:
        raise Refusal(f"{archive}: corrupt or truncated .tar.gz ({e}). Fix: download it again and check its size")
    return module_root(into, archive)


def resolve_module(path: Path, work: Path) -> Dict:
    if not path.exists():
        raise Refusal(f"{path}: no such file or folder. Fix: pass the module folder or its .tar.gz")
    if path.is_file():
        return {"dir": unpack(path, work / "module"), "sha256": sha256_file(path), "sha256_of": "archive"}
    root = module_root(path, path)
    return {"dir": root, "sha256": sha256_dir(root),
            "sha256_of": "files of the module folder: relative path, NUL, bytes, in sorted path order"}


def environments() -> Dict[str, str]:
    """Runs setup_env.sh (creates the environments when missing, instant otherwise); returns its KEY=VALUE lines."""
    done = subprocess.run(["bash", str(HERE / "setup_env.sh")], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"import_module: {HERE / 'setup_env.sh'} failed (exit {done.returncode}); see its messages above")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def run_stage(cmd: List[str], env: Dict[str, str], log: Path, what: str) -> Tuple[float, float]:
    """Runs one stage, its output into `log`; passes a refusal on (exit 2), anything else fails (exit 1).

    Returns the stage's wall time (s) and peak resident memory (MB, from wait4 of that process alone).
    """
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted or terminated: take the stage down too, then clean up
            proc.kill()
            proc.wait()
            raise
        proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code == REFUSED:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith(REFUSAL_PREFIX)]
        if lines:
            raise Refusal(lines[-1][len(REFUSAL_PREFIX):])
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {code}); the end of its output:\n{tail}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for the text we write


def encoder_manifest(name: str, arch: str, src: str, module: Dict, weights_sha: str, enc: Dict) -> str:
    source = f"TF Hub module {src}, sha256 {module['sha256']}, signature encode (inference variant)"
    lines = [f"# Written by tools/tfhub/import_module.py from {src} (sha256 {module['sha256']})",
             f"name = {toml_str(name)}",
             f"architecture = {toml_str(arch)}",
             f"weights = {toml_str(name + '.pt')}",
             f"weights_sha256 = {toml_str(weights_sha)}",
             f"source = {toml_str(source)}"]
    if enc.get("latent"):
        lines.append(f"latent = {enc['latent']}")
    lines += [f"verification = {toml_str(name + '.verify.json')}",
              "[input]", 'policy = "bigbigan"', f"size = {enc['size']}", "range = [-1, 1]", "[outputs]"]
    lines += [f"{k} = {v['width']}" for k, v in enc["outputs"].items()]
    return "\n".join(lines) + "\n"


def generator_manifest(name: str, src: str, module: Dict, weights_sha: str, gen: Dict) -> str:
    source = (f"TF Hub module {src}, sha256 {module['sha256']}, signature generate (inference variant), "
              "output default")
    return "\n".join([
        f"# Written by tools/tfhub/import_module.py from {src} (sha256 {module['sha256']})",
        f"name = {toml_str(name)}",
        f"weights = {toml_str(name + '.pt')}",
        f"weights_sha256 = {toml_str(weights_sha)}",
        f"latent = {gen['latent']}",
        "range = [-1, 1]",
        f"source = {toml_str(source)}",
        f"verification = {toml_str(name + '.verify.json')}"]) + "\n"


def record(kind: str, name: str, src: str, module: Dict, tf_report: Dict, part: Dict, torch_part: Dict,
           weights_sha: str, versions: Dict, timings: Dict, peak_rss_mb: Dict) -> Dict:
    return {
        "format": RECORD_FORMAT, "kind": kind, "name": name,
        "module": {"path": src, "sha256": module["sha256"], "sha256_of": module["sha256_of"],
                   "format": tf_report["format"], "signature": part["signature"], "variant": part["variant"],
                   "input_key": part["input_key"]},
        "weights": f"{name}.pt", "weights_sha256": weights_sha,
        "versions": versions,
        "inputs": part["inputs"],
        "tf_batch": part["tf_batch"],
        "tolerance": TOLERANCE,
        "outputs": part["outputs"],
        "checks": part["checks"],
        "stages": {"onnx_vs_tf": part["stages"]["onnx_vs_tf"], "torchscript_vs_tf": torch_part["stage"]},
        "timings_s": timings,
        "peak_rss_mb": peak_rss_mb,
        "passed": True,
    }


def summary(rec: Dict) -> List[str]:
    lines = [f"{rec['name']} ({rec['kind']}): verified against TF on {rec['inputs']['count']} inputs"]
    for stage, s in rec["stages"].items():
        errs = ", ".join(f"{k} rel {v['rel']:.2e} cos {v['min_row_cosine']:.7f}" for k, v in s["outputs"].items())
        lines.append(f"  {stage} (batch {'/'.join(map(str, s['batch_sizes']))}): {errs}")
    ind = rec["checks"].get("batch_independent")
    if ind:
        lines.append(f"  batch independence on TF (batch sizes {'/'.join(map(str, ind['batch_sizes']))}, reference "
                     f"in chunks of {rec['tf_batch']}): passed")
    law = rec["checks"].get("z_sample_law")
    if law:
        lines.append(f"  z_sample law on TF: mean {law['mean']:+.4f}, std {law['std']:.4f} (redrawn in the wrapper)")
    return lines


def import_module(args: argparse.Namespace, work: Path) -> Path:
    t_start = time.perf_counter()
    module = resolve_module(args.module, work)
    src = str(args.module.resolve())
    env = environments()
    stage_tf = [env["TF_PYTHON"], str(HERE / "stage_tf.py"), "--module", str(module["dir"]),
                "--module-label", str(args.module), "--work", str(work), "--name", args.name,
                "--count", str(COUNT), "--seed", str(args.seed), "--tf-batch", str(args.tf_batch)]
    if args.images:
        stage_tf += ["--images", str(args.images)]
    if args.noise is not None:
        stage_tf += ["--noise", str(args.noise)]
    if args.no_generator:
        stage_tf.append("--no-generator")
    tf_s, tf_rss = run_stage(stage_tf, {"TF_CPP_MIN_LOG_LEVEL": "3"}, work / "stage_tf.log", "stage_tf.py")
    pythonpath = os.pathsep.join(filter(None, [env["TORCH_PYTHONPATH"], os.environ.get("PYTHONPATH")]))
    stage_torch = [env["TORCH_PYTHON"], str(HERE / "stage_torch.py"), "--work", str(work), "--name", args.name,
                   "--module-label", str(args.module)]
    torch_s, torch_rss = run_stage(stage_torch, {"PYTHONPATH": pythonpath}, work / "stage_torch.log", "stage_torch.py")
    tf_report = json.loads((work / "tf.json").read_text())
    torch_report = json.loads((work / "torch.json").read_text())
    versions = {**tf_report["versions"], **torch_report["versions"]}
    total = time.perf_counter() - t_start
    processes = {"stage_tf_process": tf_s, "stage_torch_process": torch_s, "total": total}
    rss = {"stage_tf": round(tf_rss), "stage_torch": round(torch_rss)}

    files: List[str] = []
    enc, name = tf_report["encoder"], args.name
    sha = sha256_file(work / f"{name}.pt")
    timings = {**enc["timings_s"], **torch_report["encoder"]["timings_s"], **processes}
    enc_rec = record("encoder", name, src, module, tf_report, enc, torch_report["encoder"], sha, versions, timings,
                     rss)
    (work / f"{name}.verify.json").write_text(json.dumps(enc_rec, indent=1) + "\n")
    arch = args.architecture or re.sub(r"\.(tar\.gz|tgz|tar)$", "", args.module.resolve().name)
    (work / f"{name}.toml").write_text(encoder_manifest(name, arch, src, module, sha, enc))
    files += [f"{name}.pt", f"{name}.toml", f"{name}.verify.json", f"{name}.verify.npz"]
    out_lines = summary(enc_rec)

    if "generator" in tf_report:
        gen, gname = tf_report["generator"], f"{name}-g"
        gsha = sha256_file(work / f"{gname}.pt")
        # One TF load and one process per stage serve both signatures: those figures are shared.
        gtimings = {"tf_load": enc["timings_s"]["tf_load"], **gen["timings_s"],
                    **torch_report["generator"]["timings_s"], **processes}
        grec = record("generator", gname, src, module, tf_report, gen, torch_report["generator"], gsha, versions,
                      gtimings, rss)
        (work / f"{gname}.verify.json").write_text(json.dumps(grec, indent=1) + "\n")
        (work / f"{gname}.toml").write_text(generator_manifest(gname, src, module, gsha, gen))
        files += [f"{gname}.pt", f"{gname}.toml", f"{gname}.verify.json", f"{gname}.verify.npz"]
        out_lines += summary(grec)

    # Only now does --out see anything; os.replace within one file system (work is beside --out).
    args.out.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.replace(work / f, args.out / f)
    print("\n".join(out_lines))
    print(f"import: {total:.1f} s; files in {args.out}: {', '.join(files)}")
    return args.out / f"{name}.verify.json"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", type=Path, required=True, help="module folder (saved_model.pb, ...) or its .tar.gz")
    ap.add_argument("--name", required=True, help="encoder name (letters, digits, - _ .)")
    ap.add_argument("--out", type=Path, required=True, help="staging folder for the files (created at the end)")
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="real images for the record (first 64)")
    ap.add_argument("--noise", type=int, help="noise images in the record (default: 64 minus the real images)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise images and generator latents")
    ap.add_argument("--tf-batch", type=int, default=8,
                    help="inputs per TF/onnxruntime call in stage 1 (bounds its peak memory; default 8)")
    ap.add_argument("--architecture", help="manifest `architecture` (default: the module's folder name)")
    ap.add_argument("--no-generator", action="store_true", help="import only the encode signature")
    ap.add_argument("--keep-work", action="store_true", help="keep the work folder (ONNX files, logs) for a report")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        ap.error(f"--name {args.name!r} may hold only ASCII letters, digits, '-', '_' and '.' (it becomes file names)")
    if args.images and not args.images.is_dir():
        ap.error(f"--images {args.images}: no such folder (the default comes from `make setup`'s foolbox samples)")
    if args.noise is not None and args.noise < 0:
        ap.error("--noise must be >= 0")
    if args.tf_batch < 1:
        ap.error("--tf-batch must be >= 1")

    # SIGTERM (a caller's timeout) unwinds like Ctrl-C, so the work folder and a running stage go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    parent = args.out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{args.name}.import-", dir=parent))
    try:
        verify = import_module(args, work)
    except Refusal as e:
        print(REFUSAL_PREFIX + " ".join(str(e).split()), file=sys.stderr)
        return REFUSED
    except RuntimeError as e:
        print(f"import_module: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep_work:
            print(f"import_module: work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"IMPORT-OK {verify}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
