#!/usr/bin/env bash
# End-to-end check of the TF Hub import on the synthetic modules of tools/gen_tfhub_modules.py:
# every good module must print IMPORT-OK, every bad one must exit 2 with its refusal line and leave no --out.
# First check_extra_converters.py (the added onnx2torch converters vs onnxruntime); for spacetodepth and
# avgpool-asym it also checks that the kept ONNX graphs hold SpaceToDepth/DepthToSpace(DCR) and AveragePool
# with asymmetric pads, so those modules keep testing what they are there for. `big` runs if DIR has it
# (gen_tfhub_modules.py --big). Takes ~10 min on 2 cores, ~3 more with big.
#   tools/tfhub/run_synthetic.sh [DIR]   (DIR: where the modules are written; default a new temp folder)
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${1:-$(mktemp -d)}
eval "$(bash "$HERE/setup_env.sh" | sed 's/^/export /')"
for m in resnet-small widths-odd revnet-small spacetodepth avgpool-asym unsupported-op tf2-no-encode not-a-module; do
  # A folder written by an older gen_tfhub_modules.py lacks the newer modules: write them all again.
  [[ -e "$DIR/$m" ]] || { "$TF_PYTHON" "$ROOT/tools/gen_tfhub_modules.py" --out "$DIR" >/dev/null || exit 1; break; }
done

failed=0
good() {  # good NAME MODULE-PATH [ONNX-CHECK]: ONNX-CHECK (python, TF venv) asserts on the kept ONNX files
  local start=$SECONDS keep=() work
  [[ $# -ge 3 ]] && keep=(--keep-work)
  if python3 "$HERE/import_module.py" --module "$2" --name "$1" --out "$DIR/out/$1" "${keep[@]}" > "$DIR/$1.log" 2>&1 \
     && grep -q '^IMPORT-OK ' "$DIR/$1.log"; then
    echo "ok   $1 imported in $((SECONDS - start)) s"
    if [[ $# -ge 3 ]]; then
      work=$(sed -n 's/^import_module: work folder kept: //p' "$DIR/$1.log")
      if (cd "$work" && "$TF_PYTHON" -c "$3"); then :; else echo "FAIL $1: ONNX graph check failed"; failed=1; fi
      rm -rf "$work"
    fi
  else
    echo "FAIL $1 did not import:"; tail -5 "$DIR/$1.log"; failed=1
  fi
}
# The ONNX graphs must really hold the ops the converters of extra_converters.py are there for.
ONNX_OPS='import onnx
def nodes(f, op):
    return [(n.name, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
            for n in onnx.load(f).graph.node if n.op_type == op]
'
AVGPOOL_ASYM="$ONNX_OPS
pools = nodes('encode.onnx', 'AveragePool')
asym = [(n, a['pads']) for n, a in pools if a.get('pads') and a['pads'][:2] != a['pads'][2:]]
assert len(asym) == 2, pools
print('     encode.onnx AveragePool with asymmetric pads:', asym)"
SPACETODEPTH="$ONNX_OPS
s2d = nodes('encode.onnx', 'SpaceToDepth')
d2s = nodes('generate.onnx', 'DepthToSpace')
assert len(s2d) == 2 and d2s and all(a.get('mode', b'DCR') in (b'DCR', 'DCR') for _, a in d2s), (s2d, d2s)
print(f'     encode.onnx: {len(s2d)} SpaceToDepth; generate.onnx: {len(d2s)} DepthToSpace, mode DCR')"
bad() {  # bad NAME MODULE-PATH EXPECTED-TEXT
  python3 "$HERE/import_module.py" --module "$2" --name "$1" --out "$DIR/out/$1" > "$DIR/$1.log" 2> "$DIR/$1.err"
  local code=$?
  if [[ $code == 2 && $(wc -l < "$DIR/$1.err") == 1 ]] && grep -qF "$3" "$DIR/$1.err" && [[ ! -e "$DIR/out/$1" ]]; then
    echo "ok   $1 refused: $(cat "$DIR/$1.err")"
  else
    echo "FAIL $1: exit $code, stderr:"; cat "$DIR/$1.err"; failed=1
  fi
}

rm -rf "$DIR/out"
# The converters of extra_converters.py against onnxruntime, op by op.
if python3 "$HERE/check_extra_converters.py" > "$DIR/extra-converters.log" 2>&1; then
  echo "ok   extra converters: $(tail -1 "$DIR/extra-converters.log")"
else
  echo "FAIL extra converters:"; grep -v '^ok ' "$DIR/extra-converters.log" | tail -8; failed=1
fi
good resnet-small "$DIR/resnet-small"
good resnet-small-archive "$DIR/resnet-small.tar.gz"
good widths-odd "$DIR/widths-odd"
good revnet-small "$DIR/revnet-small"
good spacetodepth "$DIR/spacetodepth" "$SPACETODEPTH"
good avgpool-asym "$DIR/avgpool-asym" "$AVGPOOL_ASYM"
[[ -d "$DIR/big" ]] && good big "$DIR/big"
bad not-a-module "$DIR/not-a-module" "no saved_model.pb or tfhub_module.pb"
bad corrupt "$DIR/corrupt.tar.gz" "corrupt or truncated .tar.gz"
bad tf2-no-encode "$DIR/tf2-no-encode" "no \`encode\` signature"
bad train-only "$DIR/train-only" "no inference variant"
bad batch-dependent "$DIR/batch-dependent" "features depend on the rest of the batch (batch statistics?)"
bad wrong-input "$DIR/wrong-input" "expected [?,H,H,3] DT_FLOAT"
bad no-avepool "$DIR/no-avepool" "no \`avepool_feat\` output"
bad unsupported-op "$DIR/unsupported-op" "has no converter for Asinh (node encoder/Asinh)"
bad tf2onnx-unsupported-op "$DIR/tf2onnx-unsupported-op" "Tensorflow op [encoder/Lgamma: Lgamma] is not supported"
if [[ $failed == 0 ]]; then echo "synthetic TF Hub imports: all passed"
else echo "synthetic TF Hub imports: FAILED"; fi
exit $failed
