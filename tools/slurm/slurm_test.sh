#!/bin/bash
# End-to-end test of tools/slurm/ on a throw-away one-node Slurm cluster on this machine (needs root):
#   1. 4-shard extraction arrays (train, val) → merge → probe, through submit.sh, must give the same Parquet
#      values and the same probe top-1 as one un-sharded process;
#   2. a merge after shards 0, 1 and 3 of 4 only must fail, naming the missing part and shard 2/4.
# Everything (munged, slurmctld, slurmd, config, caches) lives in one temp dir and is removed on exit.
#
#   tools/slurm/slurm_test.sh        (BBEVAL=… PY=… override the binary and the pyarrow Python)
set -euo pipefail

start=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export BBEVAL=${BBEVAL:-$HOME/.cache/bbeval/target/release/bbeval}
PY=${PY:-$HOME/.cache/bbeval/venv/bin/python}
DATASET=idx:$repo/assets/fashion-mnist
TRAIN_LIMIT=12000   # 6 parts of 2,048: every one of the 4 train shards has work
VAL_LIMIT=3000      # 2 parts: two val shards are empty, which must work too
# The default probe grid is slow on CPU; a small fixed one is enough to compare two pipelines.
export PROBE_ARGS=${PROBE_ARGS:-"--backend sgd --l2 1e-4,1e-2 --lr 0.03 --epochs 5"}
PORT=${SLURM_TEST_PORT:-16817}   # not 6817, so a real Slurm on this host is left alone

[[ $(id -u) == 0 ]] || { echo "slurm_test: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 1; }
[[ -x $BBEVAL ]] || { echo "slurm_test: no binary at $BBEVAL (make build)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y slurm-wlm munge || { apt-get update && apt-get install -y slurm-wlm munge; }
fi

T=$(mktemp -d /tmp/bbeval-slurm-test.XXXXXX)
pids=()
finish() {
    local rc=$?
    set +e   # clean up everything, whatever fails on the way
    trap - EXIT INT TERM
    if ((${#pids[@]} >= 2)); then   # slurmctld was started: stop the jobs before the daemons
        timeout 20 scancel --user=root 2>/dev/null || true
        sleep 1
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((rc != 0)) && [[ -d $T/log ]]; then
        for f in "$T"/log/* "$T"/jobs/*; do [[ -f $f ]] && { echo "--- $f"; tail -n 20 "$f"; }; done >&2
    fi
    rm -rf "$T"
    if ((rc == 0)); then echo "PASS ($(($(date +%s) - start)) s)"; else echo "FAIL ($(($(date +%s) - start)) s)"; fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
fail() { echo "slurm_test: $*" >&2; exit 1; }

mkdir -p "$T"/{log,state,spool,jobs}
chmod 711 "$T"   # munged wants its socket's directory searchable by all
# Its own key and socket: the system's munge (/etc/munge, /run/munge), if any, is neither used nor touched.
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge.key"
munged --foreground --key-file="$T/munge.key" --socket="$T/munge.sock" --pid-file="$T/munged.pid" \
    --log-file="$T/log/munged.log" --seed-file="$T/munge.seed" > "$T/log/munged.out" 2>&1 &
pids+=($!)

host=$(hostname)
export SLURM_CONF=$T/slurm.conf   # daemons and clients (sbatch, squeue, …) all read this one
cat > "$SLURM_CONF" <<EOF
ClusterName=bbevaltest
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
# No cgroups, no accounting daemon: nothing outside the temp dir is touched.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Keep finished jobs in scontrol for their states (there is no sacct without accounting).
MinJobAge=3600
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

for _ in $(seq 50); do [[ -S $T/munge.sock ]] && break; sleep 0.1; done
[[ -S $T/munge.sock ]] || fail "munged did not start"
slurmctld -D -c > "$T/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N "$host" > "$T/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
    [[ $(sinfo -h -N -o %T 2>/dev/null) == idle ]] && break
    sleep 1
done
[[ $(sinfo -h -N -o %T 2>/dev/null) == idle ]] || fail "node never became idle: $(sinfo -N 2>&1)"
echo "slurm $(sinfo -V | awk '{print $2}') up on $host" >&2

cd "$T/jobs"   # jobs run in the submission directory; keep their stray files in the temp dir
# 1. The sharded pipeline, exactly as a user submits it.
ids=$(ENCODER=raw DATASET=$DATASET TRAIN_LIMIT=$TRAIN_LIMIT VAL_LIMIT=$VAL_LIMIT SHARDS=4 \
      CACHE_DIR=$T/cache-slurm OUT=$T/probe-slurm.json LOG_DIR=$T/jobs "$here/submit.sh")
echo "$ids" >&2
# 2. Shard 2/4 "lost": SHARDS=4 keeps the slicing of a 4-task array; afterany, since the merge must run.
lost=$(ENCODER=raw DATASET=$DATASET SPLIT=train LIMIT=$TRAIN_LIMIT SHARDS=4 CACHE_DIR=$T/cache-lost \
       sbatch --parsable --array=0,1,3 --output="$T/jobs/lost-%A_%a.out" "$here/extract_array.sbatch")
lost_merge=$(CACHE_DIR=$T/cache-lost sbatch --parsable --dependency="afterany:$lost" \
             --output="$T/jobs/lost-merge.out" "$here/merge.sbatch")

# Meanwhile, the reference: one process per split, no Slurm.
ref=$T/cache-ref
"$BBEVAL" -q extract --encoder raw --dataset "$DATASET" --split train --limit $TRAIN_LIMIT --cache-dir "$ref"
"$BBEVAL" -q extract --encoder raw --dataset "$DATASET" --split val --limit $VAL_LIMIT --cache-dir "$ref"
# shellcheck disable=SC2086
"$BBEVAL" -q --json probe "$ref"/*__train__*.parquet "$ref"/*__val__*.parquet $PROBE_ARGS > "$T/probe-ref.json"

for _ in $(seq 600); do
    [[ -z $(squeue -h -o %i) ]] && break
    sleep 1
done
[[ -z $(squeue -h -o %i) ]] || fail "jobs still queued after 10 min: $(squeue)"
echo "all jobs left the queue after $(($(date +%s) - start)) s" >&2

state() { scontrol -o show job "$1" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' \n' ' '; }
while read -r what id; do
    s=$(state "$id")
    echo "$what $id:$s" >&2
    [[ $s =~ ^\ [0-9]+\ JobState=COMPLETED\ $ ]] || fail "$what ($id) did not complete: $s"
done <<< "$ids"

s=$(state "$lost_merge")
[[ $s == *JobState=FAILED* ]] || fail "merge with shard 2/4 missing should fail, got:$s"
grep -q 'part 3 (images 6144–8191, shard 2/4)' "$T/jobs/lost-merge.out" ||
    fail "merge error does not name part 3 / shard 2/4: $(cat "$T/jobs/lost-merge.out")"
echo "missing shard: $(grep -m1 'missing' "$T/jobs/lost-merge.out")" >&2

"$PY" - "$T/cache-slurm" "$ref" "$T/probe-slurm.json" "$T/probe-ref.json" <<'EOF'
import filecmp, json, pathlib, sys
import numpy as np, pyarrow.parquet as pq
slurm, ref = map(pathlib.Path, sys.argv[1:3])
names = sorted(p.name for p in slurm.glob("*.parquet"))
# The names hold the key hash, so equal names mean the merged files claim the very same cache keys.
assert names == sorted(p.name for p in ref.glob("*.parquet")) and len(names) == 2, (names, list(ref.iterdir()))
for n in names:
    a, b = pq.read_table(slurm / n), pq.read_table(ref / n)
    assert a.schema.equals(b.schema), n
    ka, kb = (pq.ParquetFile(d / n).metadata.metadata for d in (slurm, ref))   # bbeval.key, .skipped, …
    assert ka == kb, (n, ka, kb)
    for col in ("index", "id", "label"):
        assert a.column(col).equals(b.column(col)), (n, col)
    fa, fb = (np.stack(t.column("feature").to_numpy(zero_copy_only=False)) for t in (a, b))
    assert fa.shape == fb.shape and np.array_equal(fa, fb), n
    print(f"{n}: {a.num_rows} rows × {fa.shape[1]} equal values, bytes {'identical' if filecmp.cmp(slurm / n, ref / n, shallow=False) else 'differ'}", file=sys.stderr)
p, q = (json.load(open(f)) for f in sys.argv[3:5])
assert (p["top1"], p["chosen"]) == (q["top1"], q["chosen"]), (p["top1"], q["top1"])
print(f"probe top-1 {p['top1']} (Slurm) == {q['top1']} (one process)", file=sys.stderr)
EOF
