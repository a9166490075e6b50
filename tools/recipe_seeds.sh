#!/usr/bin/env bash
# Train the CPU recipe (eval/bigbigan-fmnist.toml, 7,000 steps) for seeds 1–3 beside the shipped seed 0, then
# probe every encoder against its own random initialisation (eval/bigbigan-fmnist-recipe-seeds.toml).
#   tools/recipe_seeds.sh            (~30 minutes per run on 2 idle cores, then ~5 minutes of probes)
#   THREADS=1 tools/recipe_seeds.sh  (libtorch threads per run, e.g. beside another job)
# The runs are named bigbigan-fmnist-recipe-seedN (results/bigbigan-fmnist-recipe-seedN/), apart from the
# 1,200-step bigbigan-fmnist-seedN runs of tools/table1_seeds.sh; a finished run is not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
BBEVAL=${BBEVAL:-$HOME/.cache/bbeval/target/release/bbeval}
config=$(mktemp --suffix=.toml)
trap 'rm -f "$config"' EXIT
sed 's/^name = "bigbigan-fmnist"$/name = "bigbigan-fmnist-recipe"/' eval/bigbigan-fmnist.toml > "$config"
grep -q '^name = "bigbigan-fmnist-recipe"$' "$config" || { echo "eval/bigbigan-fmnist.toml: no line name = \"bigbigan-fmnist\" to rename" >&2; exit 1; }
for seed in 1 2 3; do
  if [[ -f results/bigbigan-fmnist-recipe-seed$seed/export/bigbigan-fmnist-recipe-seed$seed-e.toml ]]; then continue; fi
  "$BBEVAL" -q train-bigbigan --config "$config" --seed "$seed" --device cpu ${THREADS:+--threads "$THREADS"}
done
"$BBEVAL" run eval/bigbigan-fmnist-recipe-seeds.toml --device cpu --overwrite
