#!/usr/bin/env bash
# Train the Table 1 variants for three seeds each and evaluate them (eval/bigbigan-fmnist-table1.toml).
#   tools/table1_seeds.sh [STEPS]        (default 1200 steps per run; ~4.5 minutes each on 2 cores, 9 runs)
#   THREADS=1 tools/table1_seeds.sh      (libtorch threads per run, e.g. beside another job)
# The evaluation takes about 70 minutes on 2 idle cores (9 FID/IS entries of ~7 minutes); stopped, it goes on
# where it stopped when run again with the same build (finished probes and entries are kept in the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
BBEVAL=${BBEVAL:-$HOME/.cache/bbeval/target/release/bbeval}
STEPS=${1:-1200}
for cfg in bigan-fmnist bigbigan-fmnist bigbigan-fmnist-high-lr-e; do
  for seed in 1 2 3; do
    if [[ -f results/$cfg-seed$seed/export/$cfg-seed$seed-g.toml ]]; then continue; fi
    "$BBEVAL" -q train-bigbigan --config "eval/$cfg.toml" --steps "$STEPS" --seed "$seed" --device cpu ${THREADS:+--threads "$THREADS"}
  done
done
"$BBEVAL" run eval/bigbigan-fmnist-table1.toml --device cpu --overwrite
