#!/usr/bin/env bash
# Pack what the GPU check needs on the lent GPU machine (which has torch 2.11 + CUDA in its python3, but no
# Rust toolchain and maybe no fontconfig/freetype/png) into OUT_DIR/bbeval-gpu-bundle.tar.xz (≤ 50 MiB):
#
#   gpu-bundle/bbeval                       the release binary, stripped (a copy)
#   gpu-bundle/lib/                         shared libraries it needs that are neither libtorch/CUDA nor glibc
#                                           (fontconfig, freetype, png, expat, brotli, z, ...; gpu_check.sh uses
#                                           each only where the machine lacks it)
#   gpu-bundle/fonts/                       one sans-serif font (DejaVu Sans here) for the training plots
#   gpu-bundle/tools/gpu_check.sh, gpu_bench.py, gpu_recipe.sh, gpu_env.sh
#   gpu-bundle/assets/encoders/efficientnet-lite0.{pt,toml}, assets/foolbox/imagenet/*.jpg
#   gpu-bundle/eval/bigbigan-fmnist*.toml
#   gpu-bundle/README.txt, MANIFEST.txt     the command to run; sha256 of every file, versions
#
#   tools/make_gpu_bundle.sh OUT_DIR        (BBEVAL=path overrides the binary; `make gpu-bundle` builds first)
#   tools/make_gpu_bundle.sh --recipe OUT_DIR
#                                           OUT_DIR/bbeval-gpu-recipe-bundle.tar.xz for tools/gpu_recipe.sh alone:
#                                           no EfficientNet-Lite0 or JPEGs, so the call that carries it also has
#                                           room (64 MiB) for the real Fashion-MNIST (`make gpu-recipe-bundle`)
set -euo pipefail
export LC_ALL=C
RECIPE=0
if [[ "${1:-}" == "--recipe" ]]; then RECIPE=1; shift; fi
OUT_DIR="${1:?usage: $0 [--recipe] OUT_DIR}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BBEVAL:-${CARGO_TARGET_DIR:-$HOME/.cache/bbeval/target}/release/bbeval}"
MAX_BYTES=$((50 * 1024 * 1024))
[[ -x "$BIN" ]] || { echo "no bbeval binary at $BIN (build it first: make build)" >&2; exit 1; }
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/bbeval-bundle.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
G="$STAGE/gpu-bundle"
mkdir -p "$G/lib" "$G/tools" "$G/eval"

# --- the binary
cp "$BIN" "$G/bbeval"
strip --strip-unneeded "$G/bbeval"
chmod 755 "$G/bbeval"

# --- its non-torch, non-CUDA, non-glibc shared libraries (real files, named by the name the loader asks for)
GLIBC_RE='^(linux-vdso|linux-gate|ld-linux.*|libc|libm|libdl|librt|libpthread|libutil|libresolv|libanl|libnsl|libmvec|libBrokenLocale|libcrypt)\.so'
# libstdc++/libgcc_s: every machine that runs torch has them (the torch wheel does not ship them), and an
# older bundled copy could shadow the newer one torch needs: left out.
SKIP_RE='^(libstdc\+\+|libgcc_s)\.so'
LIBS_NOTE=()
while read -r name arrow path _; do
  [[ "$arrow" == "=>" && -n "$path" && "$path" == /* ]] || continue
  if [[ "$name" =~ $GLIBC_RE || "$name" =~ $SKIP_RE ]]; then continue; fi
  case "$path" in
    */torch/lib/*|*/nvidia/*|*/site-packages/*|*/cuda*/*) continue ;;
  esac
  cp -L "$path" "$G/lib/$name"
  chmod 644 "$G/lib/$name"
  LIBS_NOTE+=("$name ($(readlink -f "$path"))")
done < <(ldd "$BIN")
if ldd "$BIN" | grep -q "not found"; then
  echo "warning: ldd reports missing libraries here:" >&2; ldd "$BIN" | grep "not found" >&2
fi

# --- a font for the training plots: the GPU image has no fonts and no fontconfig configuration (seen on the
# first H200 call, 2026-11-30); tools/gpu_env.sh points fontconfig at this folder only where that is so
mkdir -p "$G/fonts"
FONT="$(fc-match -f '%{file}' sans-serif 2>/dev/null || true)"
if [[ -f "$FONT" ]]; then
  cp "$FONT" "$G/fonts/"
  chmod 644 "$G/fonts/$(basename "$FONT")"
else
  echo "note: no sans-serif font found here (fc-match): the bundle's training plots need the machine's fonts" >&2
fi

# --- scripts, assets, configs
cp "$REPO/tools/gpu_recipe.sh" "$REPO/tools/gpu_env.sh" "$REPO/tools/gpu_bench.py" "$G/tools/"
chmod 755 "$G/tools/gpu_recipe.sh" "$G/tools/gpu_bench.py"
if (( ! RECIPE )); then
  mkdir -p "$G/assets/encoders" "$G/assets/foolbox/imagenet"
  cp "$REPO/tools/gpu_check.sh" "$G/tools/"
  chmod 755 "$G/tools/gpu_check.sh"
  for f in efficientnet-lite0.pt efficientnet-lite0.toml; do
    [[ -f "$REPO/assets/encoders/$f" ]] || { echo "missing assets/encoders/$f (run make setup)" >&2; exit 1; }
    cp "$REPO/assets/encoders/$f" "$G/assets/encoders/"
  done
  n_jpg=$(find "$REPO/assets/foolbox/imagenet" -maxdepth 1 -type f | wc -l)
  [[ "$n_jpg" -eq 20 ]] || { echo "expected 20 foolbox ImageNet JPEGs in assets/foolbox/imagenet, found $n_jpg" >&2; exit 1; }
  cp "$REPO"/assets/foolbox/imagenet/* "$G/assets/foolbox/imagenet/"
fi
cp "$REPO"/eval/bigbigan-fmnist*.toml "$G/eval/"
NOTES=()
if [[ ! -f "$REPO/eval/bigbigan-fmnist-gpu.toml" ]]; then
  NOTES+=("eval/bigbigan-fmnist-gpu.toml (the GPU recipe) does not exist yet: section d trains the CPU recipe only")
  echo "note: ${NOTES[-1]}" >&2
fi

VERSION="$(LD_LIBRARY_PATH="$G/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$G/bbeval" --version 2>/dev/null || echo "bbeval (version unknown: the stripped copy did not start here)")"
COMMIT="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
if (( RECIPE )); then
  RUN_TEXT="Run from the repository root, which must hold assets/fashion-mnist (carry it): trains
eval/bigbigan-fmnist-gpu.toml for TRAIN_S (270) seconds, returns gpu_recipe.md and the run as two archives:

    tar -xJf gpu-bundle/bbeval-gpu-recipe-bundle.tar.xz && gpu-bundle/tools/gpu_recipe.sh \"\$OUT\"

Without a GPU:     gpu-bundle/tools/gpu_recipe.sh --cpu-mode /tmp/recipe   (4 steps, --device cpu)"
else
  RUN_TEXT="Run (≤ 8 minutes on one H200; writes every figure to ONE Markdown file with all records as JSON lines):

    gpu-bundle/tools/gpu_check.sh \"\$OUT/gpu_check.md\"

From the archive:  tar -xJf bbeval-gpu-bundle.tar.xz && gpu-bundle/tools/gpu_check.sh \"\$OUT/gpu_check.md\"
Without a GPU:     gpu-bundle/tools/gpu_check.sh --cpu-mode /tmp/gpu_check.md   (tiny sizes, --device cpu)
Knobs (env):       PYTHON, BBEVAL, WORK, BUDGET_S (480), N_JPEG, BATCHES, DTYPES, PROBE_ROWS, PROBE_WIDTH,
                   PROBE_CLASSES, PROBE_BIG_CANDIDATES, BB_STEPS, KEEP_WORK=1 (see the script's header)
The mini BigBiGAN's GPU recipe (tools/gpu_recipe.sh) is in this bundle too; its own bundle (--recipe) leaves
room in a call for the Fashion-MNIST it trains on."
fi
cat > "$G/README.txt" <<EOF
bbeval GPU bundle — $VERSION, commit $COMMIT, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sm)

Needs: python3 with torch 2.11 (+ CUDA), PIL, numpy (torchvision optional); nvidia-smi; coreutils timeout.
No network, nothing installed. bbeval links libtorch 2.11 (tch 0.24): the scripts put python3's torch/lib
and the libraries of lib/ that the machine lacks on LD_LIBRARY_PATH (tools/gpu_env.sh).

$RUN_TEXT

Libraries in lib/: ${LIBS_NOTE[*]:-none}
${NOTES[*]:-}
EOF
( cd "$G" && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum ) > "$G/MANIFEST.txt"

# (an `if`, not `(( RECIPE )) && ...` in a substitution: its status 1 for the full bundle ended the script under set -e)
KIND=""
if (( RECIPE )); then KIND="recipe-"; fi
OUT="$OUT_DIR/bbeval-gpu-${KIND}bundle.tar.xz"
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -cf - gpu-bundle | nice xz -9 -T2 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
size=$(stat -c %s "$OUT")
echo "contents:"
tar -tvJf "$OUT" | awk '{printf "  %10s  %s\n", $3, $6}'
printf '%s: %d bytes (%.1f MiB; limit 50 MiB)\n' "$OUT" "$size" "$(awk -v s="$size" 'BEGIN{print s/1048576}')"
if (( size > MAX_BYTES )); then
  echo "error: the bundle is larger than 50 MiB" >&2
  exit 1
fi
