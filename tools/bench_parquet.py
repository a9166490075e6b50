#!/usr/bin/env python3
"""Parquet read speed side by side on the same files: bbeval's reader against pyarrow (and numpy .npy of the
same matrix as the memory-speed anchor).

    ~/.cache/bbeval/venv/bin/python tools/bench_parquet.py [--rows 20000 --width 4096 --repeat 6]

Writes a seeded synthetic 20,000 × 4096 feature file with `bbeval cache synthetic` (f32, and the f16 storage),
then times, warm (the file in the page cache), the median of --repeat full reads to an f32 matrix:
* bbeval: `bbeval cache read FILE --repeat N --checksum-share` (checksums checked, as every read does; then
  again without them, for the checksums' share of a read);
* pyarrow: pq.read_table(FILE, columns=["label", "feature"]) → one contiguous float32 matrix;
* numpy: np.load of the same matrix saved as .npy.
Throughput counts the f32 matrix delivered (rows × width × 4 bytes), for every storage.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BBEVAL = os.environ.get("BBEVAL", os.path.expanduser("~/.cache/bbeval/target/release/bbeval"))


def median_seconds(fn, repeat):
    fn()  # warm the page cache
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def pyarrow_matrix(path):
    t = pq.read_table(path, columns=["label", "feature"])
    col = t.column("feature").combine_chunks()
    if hasattr(col.type, "list_size"):
        return col.flatten().to_numpy().reshape(len(t), col.type.list_size)
    # f16 storage: binary rows of little-endian halves, back to back in the array's data buffer (every row has
    # the same length), read without a Python-level loop.
    if pa.types.is_binary_view(col.type):
        col = col.cast(pa.large_binary())
    offsets = np.frombuffer(col.buffers()[1], np.int64 if pa.types.is_large_binary(col.type) else np.int32)[col.offset:col.offset + len(col) + 1]
    halves = np.frombuffer(col.buffers()[2], "<f2")[offsets[0] // 2:offsets[-1] // 2]
    return halves.reshape(len(t), -1).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=6)
    args = ap.parse_args()
    mb = args.rows * args.width * 4 / 1e6
    with tempfile.TemporaryDirectory() as d:
        results = {}
        for storage in ["f32", "f16"]:
            out = subprocess.run([BBEVAL, "--json", "-q", "cache", "synthetic", "--cache-dir", os.path.join(d, storage), "--rows", str(args.rows),
                                  "--val-rows", "16", "--width", str(args.width), "--storage", storage], capture_output=True, text=True, check=True)
            path = json.loads(out.stdout)["train"]
            ours = json.loads(subprocess.run([BBEVAL, "--json", "cache", "read", path, "--repeat", str(args.repeat), "--checksum-share"], capture_output=True, text=True, check=True).stdout)
            x = pyarrow_matrix(path)
            assert x.shape == (args.rows, args.width)
            theirs = median_seconds(lambda: pyarrow_matrix(path), args.repeat)
            results[storage] = (mb / ours["median_seconds"], mb / theirs)
            print(f"{storage}: bbeval {mb / ours['median_seconds']:.0f} MB/s, pyarrow {mb / theirs:.0f} MB/s, "
                  f"ratio {theirs / ours['median_seconds']:.2f}x ({os.path.getsize(path) / 1e6:.0f} MB file); "
                  f"checksums {100 * ours['checksum_share']:.1f}% of bbeval's read")
        npy = os.path.join(d, "x.npy")
        np.save(npy, x)
        t = median_seconds(lambda: np.load(npy).sum(), args.repeat)
        print(f"numpy .npy of the same matrix: {mb / t:.0f} MB/s")


if __name__ == "__main__":
    main()
