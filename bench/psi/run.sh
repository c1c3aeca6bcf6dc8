#!/usr/bin/env bash
# privet's PJC (`privet pjc local`) against OpenMined PSI 2.0.6 (cardinality mode), side by side.
# See bench/psi/README.md.
#
# Usage: bench/psi/run.sh                 (from anywhere)
# Env:   SIZES=10000,100000,1000000  rows per side (half of them shared)
#        RUNS=3                      timed runs per size and system, alternating
#        RUNS_1M=1                   runs at sizes of a million or more (OpenMined takes minutes)
#        NATIVE=1                    also time privet-psi's pjc_bench example built with
#                                    -C target-cpu=native (dalek's AVX-512 IFMA backend)
#        PYTHON=python3              interpreter used to create the venv
#        SKIP_BUILD=1                do not run cargo build
#        CARGO_TARGET_DIR            where privet is built (default target/)
# Output: bench/psi/results.json; raw files under target/bench-runs/psi/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$(pwd)"
SIZES="${SIZES:-10000,100000,1000000}"
RUNS="${RUNS:-3}"
VENV="$REPO/target/bench-venv-psi"
PY="$VENV/bin/python"
RUNDIR="$REPO/target/bench-runs/psi"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
PRIVET="$TARGET_DIR/release/privet"
NATIVE_DIR="${NATIVE_TARGET_DIR:-$REPO/target/bench-native}"
PJC_NATIVE="$NATIVE_DIR/release/examples/pjc_bench"
RUNS_1M="${RUNS_1M:-1}"

if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then echo "RUNS must be a positive integer" >&2; exit 2; fi
if ! [[ "$SIZES" =~ ^[0-9]+(,[0-9]+)*$ ]]; then echo "SIZES must be a list of sizes" >&2; exit 2; fi
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

if [[ ! -x "$PY" ]]; then
  echo "== creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$PY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openmined.psi") != "2.0.6")' 2>/dev/null; then
  echo "== installing openmined.psi==2.0.6 into $VENV"
  "$PY" -m pip install --quiet openmined.psi==2.0.6
fi
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet"
  cargo build --release -p privet
fi
[[ -x "$PRIVET" ]] || { echo "missing $PRIVET (build it or set CARGO_TARGET_DIR)" >&2; exit 2; }
SYSTEMS="privet-card privet-sum openmined"
if [[ "${NATIVE:-1}" == 1 ]]; then
  if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
    echo "== RUSTFLAGS=-Ctarget-cpu=native cargo build --release -p privet-psi --example pjc_bench"
    RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_DIR" \
      cargo build --release -p privet-psi --example pjc_bench
  fi
  SYSTEMS="privet-card privet-sum privet-card-native privet-sum-native openmined"
fi

mkdir -p "$RUNDIR"
echo "loadavg before: $(cat /proc/loadavg)" | tee "$RUNDIR/load.txt"
IFS=',' read -r -a sizes <<< "$SIZES"
for n in "${sizes[@]}"; do
  d="$RUNDIR/n$n"
  mkdir -p "$d"
  [[ -f "$d/B.csv" ]] || "$PY" bench/psi/make_data.py "$n" "$d"
  runs="$RUNS"
  (( n >= 1000000 )) && runs="$RUNS_1M"
  echo "$runs" > "$d/runs"
  for r in $(seq 1 "$runs"); do
    # Alternate the systems so that load changes hit both.
    for sys in $SYSTEMS; do
      out="$d/$sys-$r"
      case "$sys" in
        privet-card) cmd=("$PRIVET" pjc local "$d/A.csv" "$d/B.csv" --id email --json) ;;
        privet-card-native) cmd=("$PJC_NATIVE" "$d/A.csv" "$d/B.csv") ;;
        privet-sum-native) cmd=("$PJC_NATIVE" "$d/A.csv" "$d/B.csv" --sum) ;;
        privet-sum) cmd=("$PRIVET" pjc local "$d/A.csv" "$d/B.csv" --id email --value spend --json) ;;
        openmined) cmd=("$PY" bench/psi/openmined_bench.py "$d/A.csv" "$d/B.csv") ;;
      esac
      echo "== n=$n run $r $sys"
      /usr/bin/time -v -o "$out.time" "${cmd[@]}" > "$out.json"
    done
  done
done
echo "loadavg after: $(cat /proc/loadavg)" | tee -a "$RUNDIR/load.txt"
"$PY" bench/psi/summarize.py "$RUNDIR" "$SIZES" "$SYSTEMS" > bench/psi/results.json
cat bench/psi/results.json
