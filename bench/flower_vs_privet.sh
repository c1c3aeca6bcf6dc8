#!/usr/bin/env bash
# Benchmark privet against Flower 1.41 (Ray simulation) and a plain NumPy loop
# on the Adult FedAvg task (bench/adult_fedavg.toml). See bench/README.md.
#
# Usage: bench/flower_vs_privet.sh            (from anywhere)
# Env:   RUNS=5          timed iterations (privet and Flower alternate)
#        FLOWER_WARMUP=1 one untimed Flower run first (0 to skip)
#        PYTHON=python3  interpreter used to create the venv
#        SKIP_BUILD=1    do not run cargo build
#        PRIVET=path     privet binary (default target/release/privet)
# Output: bench/results/flower_adult.md, bench/results/flower_adult.json;
#         raw per-run files under target/bench-runs/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"
RUNS="${RUNS:-5}"
FLOWER_WARMUP="${FLOWER_WARMUP:-1}"
VENV="$REPO/target/bench-venv"
PY="$VENV/bin/python"
RUNDIR="$REPO/target/bench-runs"
JOB="bench/adult_fedavg.toml"
PRIVET="${PRIVET:-$REPO/target/release/privet}"
SEED=42
ROUNDS=20
PER_ROUND=10

if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then
  echo "RUNS must be a positive integer (got '$RUNS')" >&2
  exit 2
fi
if [[ ! -f ../shared/data/adult.csv ]]; then
  echo "missing ../shared/data/adult.csv (relative to $REPO)" >&2
  exit 1
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
  echo "== installing bench/requirements-flower.txt into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -r bench/requirements-flower.txt
fi

# --- privet -------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet"
  cargo build --release -p privet
fi

mkdir -p "$RUNDIR" bench/results
TIMER=("$PY" bench/summarize_flower.py time)

# Export the split/partition once (this run is also privet's warm-up).
# Each run i uses seed SEED+i for both systems: privet's job (split, partition, sampling,
# shuffles) and Flower's/NumPy's client sampling. privet exports that run's split and partition
# (in an untimed run) and Flower and the NumPy loop train on exactly those rows. Final accuracy
# on a Dirichlet(0.5) task swings by +-3 points with the last round's clients, so accuracies are
# compared as medians over runs with different seeds, never as one run each.
job_for_seed() {
  sed "s/^seed = .*/seed = $1/" "$JOB" > "$RUNDIR/adult_fedavg-$1.toml"
  echo "$RUNDIR/adult_fedavg-$1.toml"
}

if [[ "$FLOWER_WARMUP" != 0 ]]; then
  echo "== Flower warm-up (untimed)"
  WJOB=$(job_for_seed "$SEED")
  rm -rf "$RUNDIR/privet-export"
  "$PRIVET" simulate "$WJOB" --out "$RUNDIR/privet-export" --export-partitions -q >/dev/null
  "$PY" bench/flower_adult.py --partitions "$RUNDIR/privet-export/partitions.json" --rounds "$ROUNDS" \
    --clients-per-round "$PER_ROUND" --seed "$SEED" --json "$RUNDIR/flower-warmup.json" >/dev/null
fi

for ((i = 1; i <= RUNS; i++)); do
  RSEED=$((SEED + i))
  RJOB=$(job_for_seed "$RSEED")
  rm -rf "$RUNDIR/privet-export-$i"
  "$PRIVET" simulate "$RJOB" --out "$RUNDIR/privet-export-$i" --export-partitions -q >/dev/null
  PARTS="$RUNDIR/privet-export-$i/partitions.json"
  [[ -f "$PARTS" ]] || { echo "privet did not write $PARTS" >&2; exit 1; }
  echo "== run $i/$RUNS (seed $RSEED): privet"
  rm -rf "$RUNDIR/privet-$i"
  "${TIMER[@]}" --out "$RUNDIR/privet-$i.time.json" -- \
    "$PRIVET" simulate "$RJOB" --out "$RUNDIR/privet-$i" -q >/dev/null
  echo "== run $i/$RUNS (seed $RSEED): Flower"
  "${TIMER[@]}" --out "$RUNDIR/flower-$i.time.json" -- \
    "$PY" bench/flower_adult.py --partitions "$PARTS" --rounds "$ROUNDS" \
    --clients-per-round "$PER_ROUND" --seed "$RSEED" --json "$RUNDIR/flower-$i.json"
done

echo
"$PY" bench/summarize_flower.py summarize --runs-dir "$RUNDIR" --runs "$RUNS" \
  --repo "$REPO" --privet "$PRIVET" --md bench/results/flower_adult.md --json bench/results/flower_adult.json
echo
echo "wrote bench/results/flower_adult.md and bench/results/flower_adult.json"
