#!/usr/bin/env bash
# privet's PJC (`privet pjc local`) against OpenMined PSI 2.0.6 (cardinality mode), side by side.
# See bench/psi/README.md.
#
# Usage: bench/psi/run.sh                 (from anywhere)
# Env:   SIZES=10000,100000,1000000  rows per side (half of them shared)
#        RUNS=3                      timed runs per size and system, alternating
#        RUNS_1M=1                   runs at sizes of a million or more
#        OPENMINED_MAX=100000        largest size OpenMined PSI runs at (10^6 takes it ~6 minutes)
#        CLI=1                       time the default build through the `privet` CLI
#                                    (`cargo build -p privet`); CLI=0 times privet-psi's pjc_bench
#                                    example built with the default flags instead (same library
#                                    call, no need to build the whole CLI)
#        AVX2=1                      also time pjc_bench built without the repository's
#                                    --cfg curve25519_dalek_backend="avx512" (.cargo/config.toml),
#                                    i.e. dalek's AVX2 backend only; the default build has the
#                                    AVX-512 IFMA backend, chosen at run time where the CPU has
#                                    IFMA and VL (AVX2 or serial elsewhere)
#        NATIVE=0                    also time pjc_bench built with -C target-cpu=native
#        RESULTS=bench/psi/results.json  where the summary goes
#        PYTHON=python3              interpreter used to create the venv
#        SKIP_BUILD=1                do not run cargo build
#        CARGO_TARGET_DIR            where the default build goes (default target/); the AVX2
#                                    and native builds go to AVX2_TARGET_DIR
#                                    (target/bench-avx2) and NATIVE_TARGET_DIR
#                                    (target/bench-native)
# Output: $RESULTS; raw files under target/bench-runs/psi/.
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
PJC_DEFAULT="$TARGET_DIR/release/examples/pjc_bench"
AVX2_DIR="${AVX2_TARGET_DIR:-$REPO/target/bench-avx2}"
PJC_AVX2="$AVX2_DIR/release/examples/pjc_bench"
NATIVE_DIR="${NATIVE_TARGET_DIR:-$REPO/target/bench-native}"
PJC_NATIVE="$NATIVE_DIR/release/examples/pjc_bench"
RUNS_1M="${RUNS_1M:-1}"
OPENMINED_MAX="${OPENMINED_MAX:-100000}"
CLI="${CLI:-1}"
RESULTS="${RESULTS:-bench/psi/results.json}"
BUILD=$([[ "${SKIP_BUILD:-0}" == 0 ]] && echo 1 || echo 0)

if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then echo "RUNS must be a positive integer" >&2; exit 2; fi
if ! [[ "$SIZES" =~ ^[0-9]+(,[0-9]+)*$ ]]; then echo "SIZES must be a list of sizes" >&2; exit 2; fi
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

if [[ ! -x "$PY" ]]; then
  echo "== creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
need_openmined=0
IFS=',' read -r -a sizes <<< "$SIZES"
for n in "${sizes[@]}"; do (( n <= OPENMINED_MAX )) && need_openmined=1; done
if [[ "$need_openmined" == 1 ]] &&
  ! "$PY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openmined.psi") != "2.0.6")' 2>/dev/null; then
  echo "== installing openmined.psi==2.0.6 into $VENV"
  "$PY" -m pip install --quiet openmined.psi==2.0.6
fi
if [[ "$CLI" == 1 ]]; then
  if [[ "$BUILD" == 1 ]]; then
    echo "== cargo build --release -p privet"
    cargo build --release -p privet
  fi
  [[ -x "$PRIVET" ]] || { echo "missing $PRIVET (build it or set CARGO_TARGET_DIR)" >&2; exit 2; }
else
  if [[ "$BUILD" == 1 ]]; then
    echo "== cargo build --release -p privet-psi --example pjc_bench"
    cargo build --release -p privet-psi --example pjc_bench
  fi
  [[ -x "$PJC_DEFAULT" ]] || { echo "missing $PJC_DEFAULT" >&2; exit 2; }
fi
SYSTEMS="privet-card privet-sum"
if [[ "${AVX2:-1}" == 1 ]]; then
  if [[ "$BUILD" == 1 ]]; then
    # An empty RUSTFLAGS replaces .cargo/config.toml's flags: dalek's AVX2 backend only.
    echo "== RUSTFLAGS='' cargo build --release -p privet-psi --example pjc_bench"
    RUSTFLAGS='' CARGO_TARGET_DIR="$AVX2_DIR" \
      cargo build --release -p privet-psi --example pjc_bench
  fi
  SYSTEMS="$SYSTEMS privet-card-avx2 privet-sum-avx2"
fi
if [[ "${NATIVE:-0}" == 1 ]]; then
  if [[ "$BUILD" == 1 ]]; then
    echo "== RUSTFLAGS=-Ctarget-cpu=native cargo build --release -p privet-psi --example pjc_bench"
    RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_DIR" \
      cargo build --release -p privet-psi --example pjc_bench
  fi
  SYSTEMS="$SYSTEMS privet-card-native privet-sum-native"
fi
SYSTEMS="$SYSTEMS openmined"

mkdir -p "$RUNDIR"
echo "loadavg before: $(cat /proc/loadavg)" | tee "$RUNDIR/load.txt"
for n in "${sizes[@]}"; do
  d="$RUNDIR/n$n"
  mkdir -p "$d"
  [[ -f "$d/B.csv" ]] || "$PY" bench/psi/make_data.py "$n" "$d"
  runs="$RUNS"
  (( n >= 1000000 )) && runs="$RUNS_1M"
  echo "$runs" > "$d/runs"
  systems="$SYSTEMS"
  (( n > OPENMINED_MAX )) && systems="${SYSTEMS% openmined}"
  echo "$systems" > "$d/systems"
  for r in $(seq 1 "$runs"); do
    # Alternate the systems so that load changes hit both.
    for sys in $systems; do
      out="$d/$sys-$r"
      sum=()
      [[ "$sys" == *-sum* ]] && sum=(--sum)
      case "$sys" in
        privet-card|privet-sum)
          if [[ "$CLI" == 1 ]]; then
            cmd=("$PRIVET" pjc local "$d/A.csv" "$d/B.csv" --id email --json)
            [[ "$sys" == privet-sum ]] && cmd+=(--value spend)
          else
            cmd=("$PJC_DEFAULT" "$d/A.csv" "$d/B.csv" "${sum[@]}")
          fi ;;
        privet-*-avx2) cmd=("$PJC_AVX2" "$d/A.csv" "$d/B.csv" "${sum[@]}") ;;
        privet-*-native) cmd=("$PJC_NATIVE" "$d/A.csv" "$d/B.csv" "${sum[@]}") ;;
        openmined) cmd=("$PY" bench/psi/openmined_bench.py "$d/A.csv" "$d/B.csv") ;;
      esac
      echo "== n=$n run $r $sys (load $(cut -d' ' -f1 /proc/loadavg))"
      echo "$(cat /proc/loadavg)" > "$out.load"
      /usr/bin/time -v -o "$out.time" "${cmd[@]}" > "$out.json"
    done
  done
done
echo "loadavg after: $(cat /proc/loadavg)" | tee -a "$RUNDIR/load.txt"
"$PY" bench/psi/summarize.py "$RUNDIR" "$SIZES" > "$RESULTS"
cat "$RESULTS"
