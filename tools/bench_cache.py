#!/usr/bin/env python3
"""Figures of the feature cache's robustness, measured with the bbeval binary.

    ~/.cache/bbeval/venv/bin/python tools/bench_cache.py hash [--files 50000]
    ~/.cache/bbeval/venv/bin/python tools/bench_cache.py resume [--images 40000]

`hash`: the cost of identifying an image folder by its files' contents. Writes --files valid JPEGs of ~66 KB
each (8×8 pixels plus a 64 KB comment: the size of a typical ImageNet JPEG's bytes, without its decoding cost)
into a class-folder tree, then times `bbeval extract --encoder raw:1` three times: the first lists and hashes
every file (blake3, in parallel) and extracts; the second finds the files unchanged in the stat cache (a cache
hit); the third is `--rehash` (every file read again). Listing + hashing time = wall time − the extraction's
own seconds (from --json).

`resume`: the time a kill at 90% of an extraction costs. Extracts --images Fashion-MNIST images (raw 32×32
pixels, fast) once uninterrupted, once killed (BBEVAL_ABORT_AT, as kill -9) at 90% of its batches and then
resumed; the time lost is the killed run's wall time plus the resumed run's, minus the uninterrupted one's.
Before resumable parts, the resumed run started from zero: the time lost was the whole killed run.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BBEVAL = os.environ.get("BBEVAL", os.path.expanduser("~/.cache/bbeval/target/release/bbeval"))


def run(args, env=None):
    t = time.perf_counter()
    p = subprocess.run([BBEVAL] + args, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    return time.perf_counter() - t, p


def bench_hash(n):
    from PIL import Image
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        root = os.path.join(d, "data")
        img = Image.new("RGB", (8, 8), (120, 30, 200))
        t = time.perf_counter()
        for i in range(n):
            cls = os.path.join(root, "train", f"c{i % 10}")
            os.makedirs(cls, exist_ok=True)
            img.save(os.path.join(cls, f"{i:06d}.jpg"), quality=90, comment=os.urandom(32 * 1024).hex()[:65000].encode())
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs)
        print(f"wrote {n} JPEGs, {size / 1e9:.2f} GB, in {time.perf_counter() - t:.0f} s")
        cache = os.path.join(d, "cache")
        base = ["--json", "-q", "extract", "--encoder", "raw:1", "--dataset", f"folder:{root}", "--split", "train", "--cache-dir", cache]
        for label, extra in [("first run: hash every file + extract", []), ("unchanged files (stat cache), cache hit", []), ("--rehash: read every file again", ["--rehash"])]:
            wall, p = run(base + extra)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
            extraction = json.loads(p.stdout)["seconds"]
            listing = wall - extraction
            print(f"{label}: wall {wall:.1f} s, listing + identifying {listing:.1f} s = {10_000 * listing / n:.2f} s per 10k files")


def bench_resume(images):
    fm = f"idx:{os.path.join(ROOT, 'assets/fashion-mnist')}"
    batch = 64
    with tempfile.TemporaryDirectory() as d:
        def extract(cache, env=None):
            return run(["--json", "-q", "extract", "--encoder", "raw:32", "--dataset", fm, "--split", "train", "--limit", str(images),
                        "--batch-size", str(batch), "--cache-dir", os.path.join(d, cache)], env)
        full, p = extract("full")
        assert p.returncode == 0, p.stderr
        io = json.loads(p.stdout)["io_seconds"]
        at = int(0.9 * images / batch)
        killed, p = extract("killed", {"BBEVAL_ABORT_AT": f"batch:{at}"})
        assert p.returncode != 0
        resumed, p = extract("killed")
        assert p.returncode == 0, p.stderr
        done = json.loads(p.stdout)["resumed"]
        print(f"{images} images, batch {batch}: uninterrupted {full:.1f} s (of which writing parts and assembling {io:.2f} s = {100 * io / full:.1f}%)")
        print(f"killed at 90% ({killed:.1f} s), resumed in {resumed:.1f} s with {done[0]} of {done[1]} parts done: "
              f"{killed + resumed - full:.1f} s lost = {100 * (killed + resumed - full) / full:.0f}% of the extraction "
              f"(restarting from zero: {killed:.1f} s lost = {100 * killed / full:.0f}%)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["hash", "resume"])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--images", type=int, default=40_000)
    args = ap.parse_args()
    bench_hash(args.files) if args.what == "hash" else bench_resume(args.images)


if __name__ == "__main__":
    main()
