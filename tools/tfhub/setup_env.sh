#!/usr/bin/env bash
# Bootstrap the two Python environments of the TF Hub import, on demand (never needed by `make demo`).
#
#   TF side     ~/.cache/bbeval/tfhub-venv        own venv: tensorflow-cpu, tensorflow-hub, tf2onnx, onnxruntime
#   torch side  ~/.cache/bbeval/venv/bin/python   bbeval's main venv (torch, already installed by `make setup`)
#               + PYTHONPATH ~/.cache/bbeval/tfhub-torchside   onnx, onnx2torch & co., `pip --target --no-deps`,
#               so the main venv is never modified and torch is never downloaded a second time.
#
# Idempotent: each environment has a marker holding the sha256 of the requirements file it was built from;
# a rerun with the same pins returns at once, a changed pin rebuilds that environment from scratch.
# Prints KEY=VALUE lines (TF_PYTHON, TORCH_PYTHON, TORCH_PYTHONPATH) that import_module.py reads.
# Override the cache root with BBEVAL_CACHE and the main venv's python with BBEVAL_MAIN_PY.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BBEVAL_CACHE:-$HOME/.cache/bbeval}
MAIN_PY=${BBEVAL_MAIN_PY:-$CACHE/venv/bin/python}
TF_VENV=$CACHE/tfhub-venv
TORCHSIDE=$CACHE/tfhub-torchside
TF_REQ=$HERE/requirements-tf.txt
TORCH_REQ=$HERE/requirements-torchside.txt

say() { echo "setup_env: $*" >&2; }
fail() { echo "setup_env: $*" >&2; exit 1; }
digest() { sha256sum "$1" | cut -d' ' -f1; }
up_to_date() { [[ -f "$1" && "$(cat "$1")" == "$(digest "$2")" ]]; }

[[ -x "$MAIN_PY" ]] || fail "$MAIN_PY not found: run \`make setup\` first (it installs torch into the main venv)"

if ! up_to_date "$TF_VENV/.bbeval-tfhub-ok" "$TF_REQ"; then
  say "creating TF venv $TF_VENV (tensorflow-cpu etc., ~1 GB; a few minutes)"
  start=$SECONDS
  rm -rf "$TF_VENV"
  python3 -m venv "$TF_VENV"
  "$TF_VENV/bin/python" -m pip install -q --upgrade pip
  "$TF_VENV/bin/python" -m pip install -q -r "$TF_REQ"
  # Import check here, so a broken install fails now rather than half-way through an import.
  TF_CPP_MIN_LOG_LEVEL=3 "$TF_VENV/bin/python" -c 'import tensorflow, tensorflow_hub, tf2onnx, onnxruntime' \
    || fail "the TF venv $TF_VENV does not import; delete it and rerun"
  digest "$TF_REQ" > "$TF_VENV/.bbeval-tfhub-ok"
  say "TF venv ready in $((SECONDS - start)) s"
fi

if ! up_to_date "$TORCHSIDE/.bbeval-tfhub-ok" "$TORCH_REQ"; then
  say "installing onnx/onnx2torch into $TORCHSIDE (for the main venv's python)"
  start=$SECONDS
  "$MAIN_PY" -c 'import torch' 2>/dev/null \
    || fail "$MAIN_PY cannot import torch: rerun \`make setup\` (the main venv is incomplete)"
  rm -rf "$TORCHSIDE"
  # --no-deps: every dependency is pinned in the requirements file; torch itself comes from the main venv.
  "$MAIN_PY" -m pip install -q --no-deps --target "$TORCHSIDE" -r "$TORCH_REQ"
  PYTHONPATH=$TORCHSIDE "$MAIN_PY" -c 'import onnx, onnx2torch' \
    || fail "onnx2torch does not import with $MAIN_PY and PYTHONPATH=$TORCHSIDE; delete it and rerun"
  digest "$TORCH_REQ" > "$TORCHSIDE/.bbeval-tfhub-ok"
  say "torch side ready in $((SECONDS - start)) s"
fi

echo "TF_PYTHON=$TF_VENV/bin/python"
echo "TORCH_PYTHON=$MAIN_PY"
echo "TORCH_PYTHONPATH=$TORCHSIDE"
