#!/usr/bin/env bash
# privet's SecAgg+ against Flower 1.41's SecAgg+ workflow, side by side in one run.
# See bench/secagg/README.md ("Against Flower").
#
# Usage: bench/secagg/flower_vs_privet.sh         (from anywhere)
# Env:   NS=10,100       clients per round
#        D=100000        update length (float32 values)
#        RUNS=5          timed rounds per case and system (each after one untimed round)
#        PYTHON=python3  interpreter used to create the venv
#        SKIP_BUILD=1    do not run cargo build
#        CARGO_TARGET_DIR  where the example is built (default target/)
# Output: bench/secagg/flower_results.json, bench/secagg/flower_results.md;
#         raw files under target/bench-runs/secagg-flower/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$(pwd)"
NS="${NS:-10,100}"
D="${D:-100000}"
RUNS="${RUNS:-5}"
VENV="$REPO/target/bench-venv-flwr-secagg"
PY="$VENV/bin/python"
RUNDIR="$REPO/target/bench-runs/secagg-flower"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BENCH="$TARGET_DIR/release/examples/secagg_bench"

for v in RUNS D; do
  if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
    echo "$v must be a positive integer (got '${!v}')" >&2
    exit 2
  fi
done
if ! [[ "$NS" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
  echo "NS must be a comma-separated list of client counts (got '$NS')" >&2
  exit 2
fi

# --- Python environment -------------------------------------------------------
if [[ ! -x "$PY" ]]; then
  echo "== creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$PY" - <<'EOF' >/dev/null 2>&1
import importlib.metadata as m, sys
want = {"flwr": "1.41.0", "ray": "2.55.1", "numpy": "2.4.6"}
sys.exit(any(m.version(k) != v for k, v in want.items()))
EOF
then
  echo "== installing bench/secagg/requirements-flower.txt into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -r bench/secagg/requirements-flower.txt
fi

# --- privet -------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet-secagg --example secagg_bench"
  cargo build --release -p privet-secagg --example secagg_bench
fi
if [[ ! -x "$BENCH" ]]; then
  echo "missing $BENCH (build it or set CARGO_TARGET_DIR)" >&2
  exit 1
fi

mkdir -p "$RUNDIR"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== machine: ${CPU:-unknown CPU}, $(nproc) cores; load average before: $LOAD_BEFORE"

# privet runs before and after Flower; the summary pools both, so both systems see the same
# spread of machine load.
echo "== privet secagg_bench n=$NS d=$D ($RUNS timed rounds each), first pass"
"$BENCH" --n "$NS" --d "$D" --runs "$RUNS" > "$RUNDIR/privet-1.json" 2> "$RUNDIR/privet-1.log"

# SecAgg+ parameters for Flower, matched to the k and t privet chose for each n (its default
# SecAggConfig, params::choose: k = 9, t = 5 at n = 10; k = 22, t = 12 at n = 100). Flower
# counts a client's own share among num_shares, so num_shares = k + 1 gives every client the
# same k neighbours; reconstruction_threshold = t.
read -r SHARES THRESHOLDS < <("$PY" - "$RUNDIR/privet-1.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
print(",".join(f"{r['n']}:{r['k'] + 1}" for r in rows),
      ",".join(f"{r['n']}:{r['t']}" for r in rows))
EOF
)
echo "== Flower 1.41 SecAgg+ and plain rounds, n=$NS d=$D ($RUNS timed rounds after 1 untimed);"
echo "   num_shares $SHARES, reconstruction_threshold $THRESHOLDS"
if ! "$PY" bench/secagg/flower_secagg.py --n "$NS" --d "$D" --rounds "$((RUNS + 1))" \
  --shares "$SHARES" --thresholds "$THRESHOLDS" --json "$RUNDIR/flower.json" \
  > "$RUNDIR/flower.log" 2>&1; then
  tail -n 40 "$RUNDIR/flower.log" >&2
  echo "Flower run failed (full log: $RUNDIR/flower.log)" >&2
  exit 1
fi
grep '^flower:' "$RUNDIR/flower.log" || true

echo "== privet secagg_bench, second pass"
"$BENCH" --n "$NS" --d "$D" --runs "$RUNS" > "$RUNDIR/privet-2.json" 2> "$RUNDIR/privet-2.log"

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average after: $LOAD_AFTER"

"$PY" bench/secagg/summarize_flower_secagg.py \
  --privet "$RUNDIR/privet-1.json" "$RUNDIR/privet-2.json" \
  --flower "$RUNDIR/flower.json" \
  --json bench/secagg/flower_results.json \
  --markdown bench/secagg/flower_results.md \
  --machine "${CPU:-unknown CPU}, $(nproc) cores; load average before $LOAD_BEFORE, after $LOAD_AFTER" \
  --command "NS=$NS D=$D RUNS=$RUNS bench/secagg/flower_vs_privet.sh"
echo "== wrote bench/secagg/flower_results.json and bench/secagg/flower_results.md"
