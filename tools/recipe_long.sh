#!/usr/bin/env bash
# Is the CPU recipe's budget what keeps its encoder at its random initialisation (issue 12's defect 6)? Resume a
# copy of the shipped run (eval/bigbigan-fmnist.toml, seed 0, 7,000 steps = 7.5 epochs) in 3,500-step segments
# up to 28,000 steps (30 epochs), export E after each segment and probe it on the demo's protocol; then
# eval/bigbigan-fmnist-long.toml probes every segment's encoder beside the shipped one and its random init.
#   tools/recipe_long.sh                      (~13 minutes per segment on 2 idle cores, ~1 minute per probe)
#   STEPS="10500 14000" tools/recipe_long.sh  (the segments to reach; a finished one is not trained again)
# Writes results/bigbigan-fmnist-long/: train_log.csv (the shipped run's rows, then the resumed ones),
# export-N/ per segment (git-ignored, > 1 MB) and the report of the run file.
set -euo pipefail
cd "$(dirname "$0")/.."
BBEVAL=${BBEVAL:-$HOME/.cache/bbeval/target/release/bbeval}
out=results/bigbigan-fmnist-long
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/^name = "bigbigan-fmnist"$/name = "bigbigan-fmnist-long"/' eval/bigbigan-fmnist.toml > "$tmp/config.toml"
grep -q '^name = "bigbigan-fmnist-long"$' "$tmp/config.toml" || { echo "eval/bigbigan-fmnist.toml: no line name = \"bigbigan-fmnist\" to rename" >&2; exit 1; }
if [[ ! -d $out/checkpoint ]]; then
  mkdir -p "$out"
  cp -r results/bigbigan-fmnist/checkpoint "$out/"
  cp results/bigbigan-fmnist/train_log.csv "$out/"
fi
for step in ${STEPS:-10500 14000 17500 21000 24500 28000}; do
  if [[ ! -f $out/export-$step/bigbigan-fmnist-long-e.toml ]]; then
    "$BBEVAL" -q train-bigbigan --config "$tmp/config.toml" --resume --steps "$step" --device cpu ${THREADS:+--threads "$THREADS"}
    rm -rf "$out/export-$step"
    cp -r "$out/export" "$out/export-$step"
  fi
  # This segment's encoder alone, to follow the run (its features are cached for the run file below).
  cat > "$tmp/probe.toml" <<EOT
name = "bigbigan-fmnist-long-step$step"
out_dir = "$tmp/probe-$step"
[dataset]
spec = "idx:assets/fashion-mnist"
train_limit = 10000
val_limit = 2000
[[rows]]
method = "BigBiGAN-mini E, step $step"
encoder = "$out/export-$step/bigbigan-fmnist-long-e.toml"
feature = "avepool"
[[rows]]
method = "BigBiGAN-mini E, step $step"
encoder = "$out/export-$step/bigbigan-fmnist-long-e.toml"
feature = "bn_crelu"
EOT
  echo "== step $step"
  "$BBEVAL" run "$tmp/probe.toml" --device cpu --overwrite | tail -6
done
"$BBEVAL" run eval/bigbigan-fmnist-long.toml --device cpu --overwrite
