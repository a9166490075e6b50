#!/bin/bash
# Submit the whole sharded pipeline: one extraction array per split, then merge (after both arrays
# succeeded), then probe (after the merge succeeded). Prints the job ids; returns at once.
#
#   ENCODER=raw DATASET=idx:/data/fashion-mnist TRAIN_LIMIT=12000 VAL_LIMIT=3000 SHARDS=4 \
#       tools/slurm/submit.sh [sbatch options for every job, e.g. --partition=short]
#
# Environment: everything extract_array.sbatch and probe.sbatch read (BBEVAL, ENCODER, DATASET, SEED,
# CACHE_DIR, DEVICE, EXTRACT_ARGS, PROBE_ARGS, FEATURE, OUT), plus
#   SHARDS [4]  TRAIN_LIMIT, VAL_LIMIT [all images]  LOG_DIR [.]
#   EXTRACT_SBATCH  sbatch options for the extraction tasks only, e.g. "--gres=gpu:1 --cpus-per-task=8"
#   PROBE_SBATCH    sbatch options for the probe job only
# The jobs get this environment through sbatch's default --export=ALL (not --export=VAR=...: sbatch splits
# that on commas, which PROBE_ARGS="--l2 1e-4,1e-2" contains).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SHARDS=${SHARDS:-4}
LOG_DIR=${LOG_DIR:-.}
export BBEVAL=${BBEVAL:-bbeval} ENCODER=${ENCODER:-raw} DATASET=${DATASET:-idx:assets/fashion-mnist}
export SEED=${SEED:-0} CACHE_DIR=${CACHE_DIR:-.bbeval-cache} TRAIN_LIMIT=${TRAIN_LIMIT:-} VAL_LIMIT=${VAL_LIMIT:-}
mkdir -p "$LOG_DIR"

submit() {  # sbatch args...; prints the job id (--parsable may append ";cluster")
    local id
    id=$(sbatch --parsable "$@")
    echo "${id%%;*}"
}
# shellcheck disable=SC2086  # *_SBATCH are word lists on purpose
train=$(SPLIT=train LIMIT=$TRAIN_LIMIT submit --array="0-$((SHARDS - 1))" --job-name=bbeval-extract-train \
        --output="$LOG_DIR/extract-train-%A_%a.out" ${EXTRACT_SBATCH:-} "$@" "$here/extract_array.sbatch")
# shellcheck disable=SC2086
val=$(SPLIT=val LIMIT=$VAL_LIMIT submit --array="0-$((SHARDS - 1))" --job-name=bbeval-extract-val \
      --output="$LOG_DIR/extract-val-%A_%a.out" ${EXTRACT_SBATCH:-} "$@" "$here/extract_array.sbatch")
# A failed dependency would otherwise leave the next job pending forever (DependencyNeverSatisfied).
merge=$(submit --dependency="afterok:$train:$val" --kill-on-invalid-dep=yes \
        --output="$LOG_DIR/merge-%j.out" "$@" "$here/merge.sbatch")
# shellcheck disable=SC2086
probe=$(submit --dependency="afterok:$merge" --kill-on-invalid-dep=yes \
        --output="$LOG_DIR/probe-%j.out" ${PROBE_SBATCH:-} "$@" "$here/probe.sbatch")

echo "extract-train $train"
echo "extract-val $val"
echo "merge $merge"
echo "probe $probe"
