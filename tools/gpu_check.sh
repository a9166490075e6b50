#!/usr/bin/env bash
# bbeval's GPU check: runs inside the unpacked GPU bundle (tools/make_gpu_bundle.sh) on the lent GPU machine
# and writes every figure to ONE file (Markdown tables + all records as JSON lines), re-written after each
# step, so a run cut short still leaves what it measured.
#
#   tools/gpu_check.sh [--cpu-mode] OUT_FILE
#
#   a. agreement: EfficientNet-Lite0 features of the 20 foolbox JPEGs, CUDA vs CPU (f32) and f32 vs bf16
#   b. extraction speed: synthetic 500×375 JPEGs, a ResNet-50-size TorchScript at 256²; bbeval extract
#      (f32/bf16 × batch 64/256) beside PyTorch forward-only and DataLoader(num_workers) + PIL, bbeval's
#      decode-only rate (raw:32), and their ratios
#   c. probe on CUDA of synthetic 200,000 × 2048 × 1000 features; then the largest of PROBE_BIG_CANDIDATES
#      that the remaining time allows (predicted from the first)
#   d. BigBiGAN training steps/s (eval/bigbigan-fmnist*.toml recipes) on synthetic Fashion-MNIST IDX files
#
# Every step has a timeout, is capped by the whole run's budget (BUDGET_S, default 480 s: ≤ 8 min on one
# H200) and never stops the script: failures are recorded and the next step runs.
#
# --cpu-mode: the same steps with tiny sizes and --device cpu (for a machine without a GPU).
# Environment: BBEVAL (default: ./bbeval of the bundle), PYTHON (default python3; its torch gives
# LD_LIBRARY_PATH), WORK (scratch dir, default mktemp under TMPDIR), BUDGET_S, LOGS_OUT (copy the steps'
# commands/stdout/stderr there), KEEP_WORK=1 (keep JPEGs/IDX), DEVICE (default cuda), and every size below.
set -u
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # the bundle (or the repository)
# shellcheck source=gpu_env.sh
source "$ROOT/tools/gpu_env.sh"
gpu_args 2,24p "$@"
OUT_FILE="$TARGET"
mkdir -p "$(dirname "$OUT_FILE")" && OUT_FILE="$(cd "$(dirname "$OUT_FILE")" && pwd)/$(basename "$OUT_FILE")"
cd "$ROOT" || exit 2
BENCH="$ROOT/tools/gpu_bench.py"
BBEVAL="${BBEVAL:-$ROOT/bbeval}"
PYTHON="${PYTHON:-python3}"
NPROC="$(nproc 2>/dev/null || echo 4)"
if ! "$PYTHON" -c 'import json' >/dev/null 2>&1; then
  for c in python3 python; do
    if "$c" -c 'import json' >/dev/null 2>&1; then echo "PYTHON=$PYTHON does not run; using $c" >&2; PYTHON="$c"; break; fi
  done
fi
if ! "$PYTHON" -c 'import json' >/dev/null 2>&1; then  # the records need python: say so in the output file
  printf '# bbeval GPU check\n\n**Failed at start**: no runnable python (PYTHON=%s), %s\n' "$PYTHON" "$(date -u)" > "$OUT_FILE"
  exit 1
fi

# ------------------------------------------------------------------------------------------------ sizes
if (( CPU_MODE )); then
  DEV=cpu
  : "${BUDGET_S:=900}"
  : "${N_JPEG:=32}" "${JPEG_CLASSES:=4}" "${BATCHES:=8 16}" "${DTYPES:=f32}" "${DL_WORKERS:=2}"
  : "${FWD_IMAGES:=16}" "${FWD_ITERS:=1}" "${FWD_WARMUP:=1}" "${CALIB_BATCHES:=1}" "${CALIB_BATCH:=4}"
  : "${PROBE_ROWS:=5000}" "${PROBE_VAL:=1000}" "${PROBE_WIDTH:=256}" "${PROBE_CLASSES:=10}"
  : "${PROBE_BIG_CANDIDATES:=20000,10000}" "${PROBE_BIG_VAL:=1000}"
  : "${BB_STEPS:=10}" "${IDX_TRAIN:=6000}" "${IDX_TEST:=1000}"
else
  DEV="${DEVICE:-cuda}"
  : "${BUDGET_S:=480}"
  : "${N_JPEG:=8000}" "${JPEG_CLASSES:=8}" "${BATCHES:=64 256}" "${DTYPES:=f32 bf16}"
  : "${DL_WORKERS:=$(( NPROC < 16 ? NPROC : 16 ))}"
  : "${FWD_IMAGES:=8192}" "${FWD_ITERS:=0}" "${FWD_WARMUP:=5}" "${CALIB_BATCHES:=2}" "${CALIB_BATCH:=32}"
  : "${PROBE_ROWS:=200000}" "${PROBE_VAL:=10000}" "${PROBE_WIDTH:=2048}" "${PROBE_CLASSES:=1000}"
  : "${PROBE_BIG_CANDIDATES:=1000000,600000,400000}" "${PROBE_BIG_VAL:=10000}"
  : "${BB_STEPS:=200}" "${IDX_TRAIN:=60000}" "${IDX_TEST:=10000}"
fi
RESERVE_S=${RESERVE_S:-10}     # kept back at the end of the budget for the final render
MIN_STEP_S=${MIN_STEP_S:-8}    # a step with less time than this left is skipped

WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/bbeval-gpucheck.XXXXXX")}"
mkdir -p "$WORK/logs"
REC="$WORK/records.jsonl"
: > "$REC"
SECONDS=0
STEP_N=0
SMI_PID=""
HAVE_SMI=0
if (( ! CPU_MODE )) && command -v nvidia-smi >/dev/null 2>&1; then HAVE_SMI=1; fi

py() { "$PYTHON" "$BENCH" "$@"; }
jget() { py jget "$1" "$2" 2>/dev/null; }
now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
left() { echo $(( BUDGET_S - SECONDS - RESERVE_S )); }

sampler_start() {
  SMI_PID=""
  if (( HAVE_SMI )); then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 250 >"$1" 2>/dev/null &
    SMI_PID=$!
  fi
}
sampler_stop() {
  if [[ -n "$SMI_PID" ]]; then kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null; SMI_PID=""; fi
}
on_exit() {
  sampler_stop
  if [[ -z "${FINISHED:-}" ]]; then
    py finish --records "$REC" --out "$OUT_FILE" --elapsed "$SECONDS" --budget "$BUDGET_S" 2>/dev/null
  fi
  # optional: every step's command, stdout and stderr (small) beside the output file
  if [[ -n "${LOGS_OUT:-}" ]]; then mkdir -p "$LOGS_OUT" && cp -r "$WORK/logs/." "$LOGS_OUT/" 2>/dev/null; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

skip() {  # skip SECTION STEP NOTE
  py record --records "$REC" --out "$OUT_FILE" --section "$1" --step "$2" --status skip --note "$3"
}

# step SECTION NAME TIMEOUT [record options ...] -- COMMAND ...
# Runs COMMAND with min(TIMEOUT, budget left) seconds, stdout → $LAST_OUT, stderr → $LAST_ERR, and records it
# (record options: --pick, --set, --each, ...). Returns the command's exit status (99: skipped).
step() {
  local section="$1" name="$2" tmo="$3"; shift 3
  local ropts=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do ropts+=("$1"); shift; done
  shift
  local l; l=$(left)
  STEP_N=$((STEP_N + 1))
  local base; base="$WORK/logs/$(printf %02d "$STEP_N")"
  LAST_OUT="$base.out"; LAST_ERR="$base.err"
  : > "$LAST_OUT"; : > "$LAST_ERR"
  if (( l < MIN_STEP_S )); then
    skip "$section" "$name" "out of time budget (${l}s left of ${BUDGET_S}s)"
    return 99
  fi
  (( tmo > l )) && tmo=$l
  echo "[$(date +%T) +${SECONDS}s] $section: $name (timeout ${tmo}s)" >&2
  printf '%q ' "$@" > "$base.cmd"
  sampler_start "$base.smi"
  local t0 t1 rc
  t0=$(now)
  timeout -k 5 "$tmo" "$@" >"$LAST_OUT" 2>"$LAST_ERR"
  rc=$?
  t1=$(now)
  sampler_stop
  local secs status=ok note=""
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  if (( rc == 124 || rc == 137 )); then status=fail; note="timed out after ${tmo}s"
  elif (( rc != 0 )); then status=fail; note="exit status $rc"; fi
  py record --records "$REC" --out "$OUT_FILE" --section "$section" --step "$name" --status "$status" \
    --seconds "$secs" --timeout "$tmo" --json "$LAST_OUT" --err "$LAST_ERR" --smi "$base.smi" --note "$note" \
    "${ropts[@]}" || echo "record failed for $name" >&2
  echo "    -> $status in ${secs}s" >&2
  return "$rc"
}

# ------------------------------------------------------------------------------------------------ set-up
echo "bbeval GPU check: mode $([[ $CPU_MODE == 1 ]] && echo cpu || echo gpu), work dir $WORK, output $OUT_FILE" >&2
gpu_libraries
gpu_fonts

if (( HAVE_SMI )); then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$WORK/logs/smi.csv" 2>&1
else
  echo "n/a (cpu mode or no nvidia-smi)" > "$WORK/logs/smi.csv"
fi
py env > "$WORK/logs/env.json" 2>"$WORK/logs/env.err" || cp "$WORK/logs/env.err" "$WORK/logs/env.json"
{ uname -a; ldd --version 2>&1 | head -1; echo "cpus: $NPROC"; free -g 2>/dev/null | head -2; df -h "$WORK" 2>/dev/null | tail -1; } > "$WORK/logs/system.txt"
SIZES="dev=$DEV budget_s=$BUDGET_S n_jpeg=$N_JPEG batches=[$BATCHES] dtypes=[$DTYPES] dl_workers=$DL_WORKERS fwd_images=$FWD_IMAGES fwd_iters=$FWD_ITERS fwd_warmup=$FWD_WARMUP probe=${PROBE_ROWS}x${PROBE_WIDTH}x${PROBE_CLASSES} (val $PROBE_VAL) probe_big_candidates=$PROBE_BIG_CANDIDATES bb_steps=$BB_STEPS idx=$IDX_TRAIN/$IDX_TEST"
py meta --records "$REC" --out "$OUT_FILE" \
  --field "mode=$([[ $CPU_MODE == 1 ]] && echo cpu || echo gpu)" \
  --field "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --field "host=$(hostname 2>/dev/null)" \
  --file "bbeval_version=$WORK/logs/version.out" --file "nvidia_smi=$WORK/logs/smi.csv" \
  --file "python_env=$WORK/logs/env.json" --file "system=$WORK/logs/system.txt" \
  --field "bbeval=$BBEVAL" --field "python=$PYTHON" --field "ld_library_path=$LD_LIBRARY_PATH" \
  --field "libraries=$LIBMODE; bundled ones used: ${BUNDLED_USED[*]:-none}" --field "sizes=$SIZES" \
  --field "work=$WORK"
if (( ! BB_OK )); then
  py record --records "$REC" --out "$OUT_FILE" --section setup --step "bbeval --version" --status fail \
    --err "$WORK/logs/ldd.out" --note "bbeval does not start; every bbeval step will fail. $(tail -c 600 "$WORK/logs/version.err")"
fi
[[ -n "$TORCHLIB" ]] || py record --records "$REC" --out "$OUT_FILE" --section setup --step "torch lib dir" \
  --status fail --err "$WORK/logs/torchlib.err" --note "$PYTHON cannot import torch"

BB=("$BBEVAL" -q --json)
EXTRACT_PICK="images,seconds,device,cache_hit,skipped=skipped.len"
DIFF_PICK="rows,width,max_abs_diff,rel,min_row_cosine,mean_row_cosine,same_argmax"

# ------------------------------------------------------------------------------------------------ a. agreement
EFF="$ROOT/assets/encoders/efficientnet-lite0.toml"
FOOL="samples:$ROOT/assets/foolbox/imagenet"
A="$WORK/a"
declare -A AFILE
agree_extract() {  # TAG TIMEOUT extra-args...
  local tag="$1" tmo="$2"; shift 2
  if step a "extract efficientnet-lite0 $tag" "$tmo" --pick "$EXTRACT_PICK" -- \
      "${BB[@]}" extract --encoder "$EFF" --dataset "$FOOL" --split val --cache-dir "$A/$tag" "$@"; then
    AFILE[$tag.avepool]="$(jget "$LAST_OUT" files.avepool)"
    AFILE[$tag.logits]="$(jget "$LAST_OUT" files.logits)"
  fi
}
agree_diff() {  # TAG1 TAG2 WHAT
  local f
  for f in avepool logits; do
    if [[ -n "${AFILE[$1.$f]:-}" && -n "${AFILE[$2.$f]:-}" ]]; then
      step a "diff $f: $3" 60 --pick "$DIFF_PICK" --set "feature=\"$f\"" -- \
        "${BB[@]}" cache diff "${AFILE[$1.$f]}" "${AFILE[$2.$f]}"
    else
      skip a "diff $f: $3" "a feature file is missing (its extraction failed)"
    fi
  done
}
agree_extract cpu-f32 120 --device cpu --dtype f32
if (( CPU_MODE )); then
  # no CUDA here: a second CPU extraction (other batch size, one thread) stands in for it
  agree_extract alt-f32 120 --device cpu --dtype f32 --batch-size 8 --threads 1
  agree_diff cpu-f32 alt-f32 "CPU batch 4 vs CPU batch 8 1 thread (stand-in for CPU vs CUDA)"
  skip a "extract efficientnet-lite0 bf16" "bf16 needs CUDA (cpu mode)"
else
  agree_extract "$DEV-f32" 120 --device "$DEV" --dtype f32
  agree_extract "$DEV-bf16" 120 --device "$DEV" --dtype bf16
  agree_diff cpu-f32 "$DEV-f32" "CPU f32 vs $DEV f32"
  agree_diff "$DEV-f32" "$DEV-bf16" "$DEV f32 vs $DEV bf16"
fi

# ------------------------------------------------------------------------------------------------ b. speed
B="$WORK/b"
JROOT="$B/jpegs"
ENC="$B/encoder"
step b "make $N_JPEG JPEGs 500x375 q90" 180 --pick "images,classes,seconds_gen=seconds,workers,mean_bytes,total_mb" -- \
  "$PYTHON" "$BENCH" jpegs --root "$JROOT" --n "$N_JPEG" --classes "$JPEG_CLASSES" --workers "$NPROC"
JPEG_OK=$?
step b "export ResNet-50 TorchScript 256" 180 --pick "source,sha256,seconds_export=seconds,avepool_abs_mean,finite" -- \
  "$PYTHON" "$BENCH" export-resnet --out "$ENC" --size 256 --calib-batches "$CALIB_BATCHES" --calib-batch "$CALIB_BATCH"
RES_OK=$?
RTOML="$ENC/resnet50-random-256.toml"
RPT="$ENC/resnet50-random-256.pt"
BIGB=256; for b in $BATCHES; do BIGB=$b; done
if (( JPEG_OK == 0 )); then
  step b "bbeval decode-only (raw:32) b$BIGB" 180 --pick "$EXTRACT_PICK" \
    --set 'kind="decode"' --set "batch=$BIGB" --set 'note="decode + centre crop + bicubic to 32, no network"' -- \
    "${BB[@]}" extract --encoder raw:32 --dataset "folder:$JROOT" --split val --device cpu --batch-size "$BIGB" \
      --cache-dir "$B/cache-raw32"
  if (( RES_OK == 0 )); then
    for d in $DTYPES; do
      for b in $BATCHES; do
        step b "bbeval extract resnet50 $d b$b" 180 --pick "$EXTRACT_PICK" \
          --set 'kind="bbeval"' --set "dtype=\"$d\"" --set "batch=$b" -- \
          "${BB[@]}" extract --encoder "$RTOML" --dataset "folder:$JROOT" --split val --device "$DEV" \
            --dtype "$d" --batch-size "$b" --cache-dir "$B/cache-$d-$b"
      done
    done
  else
    skip b "bbeval extract resnet50" "no TorchScript (export failed)"
  fi
else
  skip b "bbeval extract" "no JPEGs (generation failed)"
fi
DT_CSV="$(tr ' ' ',' <<<"$DTYPES")"; B_CSV="$(tr ' ' ',' <<<"$BATCHES")"
if (( RES_OK == 0 )); then
  step b "forward-only {dtype} b{batch}" 240 --each --seconds-from-json \
    --pick "images,seconds,images_per_s,iters,finite,dtype,batch" --set 'kind="forward"' -- \
    "$PYTHON" "$BENCH" forward --model "$RPT" --device "$DEV" --dtype "$DT_CSV" --batch "$B_CSV" --images "$FWD_IMAGES" --iters "$FWD_ITERS" --warmup "$FWD_WARMUP"
  if (( JPEG_OK == 0 )); then
    step b "DataLoader({workers}) {dtype} b{batch}" 300 --each --seconds-from-json \
      --pick "images,seconds,images_per_s,first_batch_s,images_per_s_steady,workers,finite,dtype,batch" --set 'kind="dataloader"' -- \
      "$PYTHON" "$BENCH" dataloader --root "$JROOT/val" --model "$RPT" --device "$DEV" --dtype "$DT_CSV" \
        --batch "$B_CSV" --workers "$DL_WORKERS"
  fi
fi
py summarize --records "$REC" --out "$OUT_FILE"
rm -rf "$B"/cache-* 2>/dev/null

# ------------------------------------------------------------------------------------------------ d. BigBiGAN
D="$WORK/d"
if step d "synthetic Fashion-MNIST IDX ${IDX_TRAIN}/${IDX_TEST}" 90 --pick "train,test,seconds" -- \
    "$PYTHON" "$BENCH" idx --out "$D/idx" --train "$IDX_TRAIN" --test "$IDX_TEST"; then
  found=0
  for cfg in "$ROOT"/eval/bigbigan-fmnist.toml "$ROOT"/eval/bigbigan-fmnist-gpu.toml; do
    [[ -f "$cfg" ]] || { skip d "train $(basename "$cfg" .toml)" "recipe not in the bundle"; continue; }
    found=1
    nm="$(basename "$cfg" .toml)"
    py tomlpatch "$cfg" "$D/$nm.toml" --set "dataset=\"idx:$D/idx\"" --set "out_dir=\"$D/out-$nm\""
    if step d "train $nm $BB_STEPS steps on $DEV" 240 --pick "step,train_seconds=seconds,device" -- \
        "${BB[@]}" train-bigbigan --config "$D/$nm.toml" --steps "$BB_STEPS" --device "$DEV"; then
      step d "steps/s of $nm (train_log.csv)" 30 --pick "steps_per_s,last_step,loop_seconds,log_lines" -- \
        "$PYTHON" "$BENCH" trainlog "$D/out-$nm/train_log.csv"
    fi
  done
fi

# ------------------------------------------------------------------------------------------------ c. probe
PROBE_PICK="backend,top1,top5,train_val_top1,chosen_l2=chosen.l2,n_train,n_val,num_classes,probe_seconds=seconds"
C="$WORK/c"
probe_size() {  # ROWS VAL TAG TIMEOUT → sets PROBE_WALL (synthetic + probe seconds) when both succeed
  local rows="$1" val="$2" tag="$3" tmo="$4" t0=$SECONDS
  PROBE_WALL=""
  if step c "synthetic ${rows}x${PROBE_WIDTH}x${PROBE_CLASSES} ($tag)" "$tmo" --set "rows=$rows" --set "val_rows=$val" -- \
      "${BB[@]}" cache synthetic --rows "$rows" --val-rows "$val" --width "$PROBE_WIDTH" --classes "$PROBE_CLASSES" \
        --cache-dir "$C/$tag"; then
    local tr va; tr="$(jget "$LAST_OUT" train)"; va="$(jget "$LAST_OUT" val)"
    [[ "$tr" = /* ]] || tr="$ROOT/$tr"; [[ "$va" = /* ]] || va="$ROOT/$va"
    if step c "probe ${rows}x${PROBE_WIDTH}x${PROBE_CLASSES} on $DEV ($tag)" "$tmo" --pick "$PROBE_PICK" -- \
        "${BB[@]}" probe "$tr" "$va" --device "$DEV"; then
      PROBE_WALL=$(( SECONDS - t0 ))
    fi
  fi
  rm -rf "${C:?}/$tag"
}
probe_size "$PROBE_ROWS" "$PROBE_VAL" main 300
MAIN_WALL="$PROBE_WALL"

# ------------------------------------------------------------------------------------------------ c'. big probe
if [[ -n "$MAIN_WALL" ]]; then
  l=$(left)
  BIG="$(py pickbig --candidates "$PROBE_BIG_CANDIDATES" --measured-rows "$PROBE_ROWS" \
    --measured-seconds "$MAIN_WALL" --seconds-left "$l")"
  if [[ -n "$BIG" ]]; then
    probe_size "$BIG" "$PROBE_BIG_VAL" big "$l"
  else
    skip c "probe at the largest size" "none of $PROBE_BIG_CANDIDATES rows fits the ${l}s left (${PROBE_ROWS} rows took ${MAIN_WALL}s)"
  fi
else
  skip c "probe at the largest size" "the first probe did not succeed"
fi

# ------------------------------------------------------------------------------------------------ end
FINISHED=1
py finish --records "$REC" --out "$OUT_FILE" --elapsed "$SECONDS" --budget "$BUDGET_S"
echo "done in ${SECONDS}s: $OUT_FILE (work dir $WORK)" >&2
if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$B/jpegs" "$C" "$D/idx" 2>/dev/null; fi
exit 0
