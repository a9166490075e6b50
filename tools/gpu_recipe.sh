#!/usr/bin/env bash
# The mini BigBiGAN's GPU recipe (eval/bigbigan-fmnist-gpu.toml) in ONE call on the lent GPU machine: train
# it on the real Fashion-MNIST within a time budget (`--max-seconds`: a lent GPU's minutes are fixed, its
# speed on this recipe unknown until it runs), export E and G, and pack the run folder into two archives that
# come back; the probes and FID then run here on the CPU (eval/bigbigan-fmnist-gpu-probe.toml).
#
#   gpu-bundle/tools/gpu_recipe.sh [--cpu-mode] OUT_DIR
#
# Run it from the repository root, which must hold assets/fashion-mnist (the config reads
# idx:assets/fashion-mnist; on the device machine, name it in `carry`). Writes:
#   OUT_DIR/gpu_recipe.md           device, steps reached of the config's, steps/s, the log's rows, stderr's tail
#   OUT_DIR/<name>-export.tar.xz    results/<name>/: train_log.csv (+ .png), export/ (E, random-init E, EMA G
#                                   with their manifests)
#   OUT_DIR/<name>-checkpoint.tar.xz  results/<name>/checkpoint/ (to resume)
# Unpack both here with `for a in <name>-*.tar.xz; do tar -C results -xJf $a; done`.
# A results/<name>/checkpoint already there (an earlier call's archive, unpacked and carried) is resumed, so a
# second call continues the run instead of starting over.
#
# Before the run, a smoke run of the same config in a scratch folder: SMOKE_STEPS (default 6; 1 in CPU mode)
# steps with a checkpoint, then --resume to twice that, each with its exports. A defect that only the device
# shows (on the first H200 call: a CPU example traced through CUDA weights; a plot without fonts) then costs
# seconds, not the training budget. SMOKE_STEPS=0 skips it.
#
# Environment: TRAIN_S (seconds of training, default 270: the whole call then takes about TRAIN_S + 70 s and
# leaves a lent GPU's 15 minutes room for a second call), CONFIG (default the bundle's
# eval/bigbigan-fmnist-gpu.toml), DEVICE (default cuda), BBEVAL, PYTHON (its torch gives LD_LIBRARY_PATH).
# --cpu-mode: --device cpu and STEPS (default 4) steps, to keep the script working where there is no GPU.
set -u
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # the bundle (or the repository)
# shellcheck source=gpu_env.sh
source "$ROOT/tools/gpu_env.sh"
gpu_args 2,23p "$@"
OUT_DIR="$TARGET"
mkdir -p "$OUT_DIR" && OUT_DIR="$(cd "$OUT_DIR" && pwd)"
BBEVAL="${BBEVAL:-$ROOT/bbeval}"
PYTHON="${PYTHON:-python3}"
BENCH="$ROOT/tools/gpu_bench.py"   # its small JSON/TOML/log helpers (jget, tomlpatch, trainlog)
CONFIG="${CONFIG:-$ROOT/eval/bigbigan-fmnist-gpu.toml}"
if (( CPU_MODE )); then
  DEV=cpu; : "${TRAIN_S:=600}"; STEPS_ARG=(--steps "${STEPS:-4}"); : "${SMOKE_STEPS:=1}"
else
  DEV="${DEVICE:-cuda}"; : "${TRAIN_S:=270}"; STEPS_ARG=(); : "${SMOKE_STEPS:=6}"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bbeval-gpurecipe.XXXXXX")"
mkdir -p "$WORK/logs"
REPORT="$OUT_DIR/gpu_recipe.md"
SECONDS=0

gpu_libraries
gpu_fonts

NAME="$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$CONFIG" | head -1)"
RESULTS=results
if (( CPU_MODE )); then
  # The check must not leave a run in results/<name> that a GPU call would then resume: a scratch copy of the
  # config writes under WORK.
  RESULTS="$WORK/results"
  "$PYTHON" "$BENCH" tomlpatch "$CONFIG" "$WORK/config.toml" --set "out_dir=\"$RESULTS/$NAME\""
  CONFIG="$WORK/config.toml"
fi
RUN="$RESULTS/$NAME"
GPU_NAME="n/a"
if (( ! CPU_MODE )) && command -v nvidia-smi >/dev/null 2>&1; then
  GPU_NAME="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
fi
{
  echo "# bbeval GPU recipe: $NAME"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); mode: $([[ $CPU_MODE == 1 ]] && echo cpu || echo gpu); device: $DEV ($GPU_NAME)"
  echo "- bbeval: $(cat "$WORK/logs/version.out" 2>/dev/null); libraries: $LIBMODE; bundled ones used: ${BUNDLED_USED[*]:-none}"
  echo "- fonts for the training plot: $FONTS"
  echo "- config: $CONFIG (sha256 $(sha256sum "$CONFIG" | cut -c1-16)); training budget: ${TRAIN_S} s"
} > "$REPORT"
fail() { echo "- **failed**: $1" >> "$REPORT"; echo "gpu_recipe: $1" >&2; exit 1; }
# The last CHARS characters of a bbeval stderr log without libtorch's stack frames (gpu_bench.py's, as
# gpu_check.sh's records take them), so that the report shows the error itself.
errors_of() { "$PYTHON" "$BENCH" errtail "$1" "$2" 2>/dev/null; }

(( BB_OK )) || fail "bbeval does not start here: $(tail -c 600 "$WORK/logs/version.err" | tr '\n' ' ')"
[[ -n "$NAME" ]] || fail "no name = \"...\" line in $CONFIG"
[[ -f assets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  fail "no assets/fashion-mnist/train-images-idx3-ubyte.gz under $(pwd): run from the repository root and carry assets/fashion-mnist"

if (( SMOKE_STEPS > 0 )); then
  SMOKE="$WORK/smoke"
  "$PYTHON" "$BENCH" tomlpatch "$CONFIG" "$WORK/smoke.toml" --set "out_dir=\"$SMOKE\"" --set "steps=$(( 2 * SMOKE_STEPS ))" \
    --set "checkpoint_every=$SMOKE_STEPS" --set "log_every=$SMOKE_STEPS"
  for smoke_args in "--steps $SMOKE_STEPS" "--resume"; do
    # shellcheck disable=SC2086  # the two words of --steps N
    "$BBEVAL" train-bigbigan --config "$WORK/smoke.toml" --device "$DEV" $smoke_args -q > "$WORK/logs/smoke.out" 2> "$WORK/logs/smoke.err" ||
      fail "the smoke run (train-bigbigan $smoke_args, scratch folder) failed, before the run: $(errors_of "$WORK/logs/smoke.err" 1500 | tr '\n' ' ')"
  done
  echo "- smoke run: $SMOKE_STEPS step(s), then --resume to $(( 2 * SMOKE_STEPS )), each exported: ok after ${SECONDS} s" >> "$REPORT"
fi

RESUME_ARG=()
if [[ -f "$RUN/checkpoint/state.json" ]]; then
  RESUME_ARG=(--resume)
  echo "- resumed from the checkpoint at step $("$PYTHON" "$BENCH" jget "$RUN/checkpoint/state.json" step)" >> "$REPORT"
fi

SMI_PID=""
if [[ "$GPU_NAME" != "n/a" ]]; then
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$WORK/smi.csv" 2>/dev/null &
  SMI_PID=$!
fi
echo "[$(date +%T)] training $NAME on $DEV for at most ${TRAIN_S}s" >&2
# The export after the budget (BN calibration, TorchScript) takes seconds; the margin covers a slow start.
timeout -k 10 $(( ${TRAIN_S%.*} + 240 )) "$BBEVAL" --json train-bigbigan --config "$CONFIG" --device "$DEV" \
  --max-seconds "$TRAIN_S" "${RESUME_ARG[@]}" "${STEPS_ARG[@]}" > "$WORK/train.json" 2> "$WORK/logs/train.err"
RC=$?
[[ -n "$SMI_PID" ]] && { kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null; }
echo "- bbeval train-bigbigan: exit status $RC after ${SECONDS} s in all" >> "$REPORT"

# Whatever the exit status: the run folder holds its last checkpoint and log, and comes back, in two archives
# (a file that comes back from the device machine is at most 16 MiB; the whole folder is ≈ 15 MiB compressed).
pack() {  # ARCHIVE PATHS... (relative to the results folder; missing ones skipped)
  local archive="$1" paths=() p; shift
  for p in "$@"; do [[ -e "$RESULTS/$p" ]] && paths+=("$p"); done
  (( ${#paths[@]} )) || return 0
  tar -C "$RESULTS" --owner=0 --group=0 --numeric-owner -cf - "${paths[@]}" | xz -3 -T0 > "$OUT_DIR/$archive"
  echo "- archive: $archive, $(stat -c %s "$OUT_DIR/$archive") bytes" >> "$REPORT"
}
pack "$NAME-export.tar.xz" "$NAME/train_log.csv" "$NAME/train_log.png" "$NAME/export"
pack "$NAME-checkpoint.tar.xz" "$NAME/checkpoint"

jget() { "$PYTHON" "$BENCH" jget "$1" "$2" 2>/dev/null; }
if [[ -s "$WORK/train.json" ]]; then
  by_budget=""
  [[ "$(jget "$WORK/train.json" stopped_by_time_budget)" == true ]] && by_budget=" (stopped by the time budget; a second call resumes)"
  echo "- reached step $(jget "$WORK/train.json" step) of $(jget "$WORK/train.json" steps)$by_budget;" \
    "$(jget "$WORK/train.json" seconds | cut -d. -f1) s training + export" >> "$REPORT"
fi
if [[ -s "$WORK/smi.csv" ]]; then
  grep -E '^[0-9.]+, *[0-9.]+$' "$WORK/smi.csv" | awk -F, '{u += $1; if ($2 > m) m = $2; n++}
    END {if (n) printf "- GPU utilisation: mean %.0f%%, memory used up to %.0f MiB (%d samples)\n", u / n, m, n}' >> "$REPORT"
fi
if [[ -f "$RUN/train_log.csv" ]]; then
  "$PYTHON" "$BENCH" trainlog "$RUN/train_log.csv" > "$WORK/trainlog.json"
  rate="$(jget "$WORK/trainlog.json" steps_per_s)"
  [[ -n "$rate" ]] && printf -- "- training: **%.2f steps/s** (train_log.csv's clock, between its first and last rows)\n" "$rate" >> "$REPORT"
  { echo; echo "train_log.csv (header and last 12 rows):"; echo '```'; head -1 "$RUN/train_log.csv"
    tail -n +2 "$RUN/train_log.csv" | tail -12; echo '```'; } >> "$REPORT"
fi
{
  echo
  echo "stderr (tail, without libtorch's stack frames):"
  echo '```'
  errors_of "$WORK/logs/train.err" 2000
  echo '```'
} >> "$REPORT"
cat "$REPORT" >&2
exit "$RC"
