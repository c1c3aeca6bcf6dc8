#!/usr/bin/env bash
# privet's networked federation (net_bench) against Flower 1.41's deployment engine
# (one SuperLink, N SuperNodes, `flwr run`) on the same task: FedAvg over N clients,
# 1,024,001 f32 parameters, every client returns the parameters + 0.001 without
# training, 6 rounds of which rounds 2-6 are timed. See bench/net/README.md.
#
# Usage: bench/net/flower_vs_privet.sh [N ...]      (default: 10)
# Env:   RUNS=3            runs of each side per N (privet and Flower alternate)
#        FLOWER_TLS=1      Flower over TLS (server certificate, as flwr supports);
#                          0 runs SuperLink and SuperNodes with --insecure
#        FLOWER_TIMEOUT=3600  seconds allowed for one `flwr run`
#        MIN_AVAILABLE_MIB=4096  a Flower run is aborted when MemAvailable falls below
#        SPAWN_INTERVAL=0.25  seconds between SuperNode starts (raise it for large N,
#                          so the memory guard sees each SuperNode's memory in time)
#        PYTHON=python3    interpreter used to create the venv
#        SKIP_BUILD=1      do not run cargo build (use the existing net_bench binary)
#        OUT=bench/net/flower_results.json
# Raw per-run files: target/bench-runs/net-flower/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$(pwd)"
RUNS="${RUNS:-3}"
FLOWER_TLS="${FLOWER_TLS:-1}"
FLOWER_TIMEOUT="${FLOWER_TIMEOUT:-3600}"
MIN_AVAILABLE_MIB="${MIN_AVAILABLE_MIB:-4096}"
SPAWN_INTERVAL="${SPAWN_INTERVAL:-0.25}"
OUT="${OUT:-bench/net/flower_results.json}"
VENV="$REPO/target/bench-venv-flwr-deploy"
PY="$VENV/bin/python"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
NET_BENCH="$TARGET/release/examples/net_bench"
RUNDIR="$REPO/target/bench-runs/net-flower"
ROUNDS=6 # net_bench's ROUNDS; the Flower app gets the same number
SIZES=("$@")
[[ ${#SIZES[@]} -eq 0 ]] && SIZES=(10)

for n in "${SIZES[@]}"; do
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "node counts must be positive integers (got '$n')" >&2
    exit 2
  fi
done
if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then
  echo "RUNS must be a positive integer (got '$RUNS')" >&2
  exit 2
fi

# --- Python environment -------------------------------------------------------
if [[ ! -x "$PY" ]]; then
  echo "== creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$PY" - <<'EOF' >/dev/null 2>&1; then
import importlib.metadata as m, sys
want = {"flwr": "1.41.0", "numpy": "2.4.6"}
sys.exit(any(m.version(k) != v for k, v in want.items()))
EOF
  echo "== installing bench/net/requirements-flwr-deploy.txt into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -r bench/net/requirements-flwr-deploy.txt
fi

# --- privet -------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet-coordinator --example net_bench"
  CARGO_TARGET_DIR="$TARGET" cargo build --release -p privet-coordinator --example net_bench
fi
if [[ ! -x "$NET_BENCH" ]]; then
  echo "missing $NET_BENCH (build it, or unset SKIP_BUILD)" >&2
  exit 1
fi

# --- runs ---------------------------------------------------------------------
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUNDIR/$STAMP"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average at start: $LOAD_START ($(nproc) cores)"
TLS_ARG=()
[[ "$FLOWER_TLS" == 0 ]] && TLS_ARG=(--insecure)

PRIVET_FILES=()
FLOWER_FILES=()
for n in "${SIZES[@]}"; do
  for r in $(seq 1 "$RUNS"); do
    d="$RUNDIR/$STAMP/n$n-run$r"
    mkdir -p "$d"
    echo "== N=$n run $r/$RUNS: privet net_bench"
    "$NET_BENCH" "$n" >"$d/privet.json"
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; print("   privet round median %.3f s" % r["round_seconds_median"])' "$d/privet.json"
    PRIVET_FILES+=("$d/privet.json")

    echo "== N=$n run $r/$RUNS: Flower SuperLink + $n SuperNodes"
    # A failed Flower run is recorded in its result.json and reported, not fatal.
    "$PY" bench/net/flower_deploy.py run --nodes "$n" --rounds "$ROUNDS" \
      --workdir "$d/flower" --timeout "$FLOWER_TIMEOUT" \
      --min-available-mib "$MIN_AVAILABLE_MIB" --spawn-interval "$SPAWN_INTERVAL" \
      "${TLS_ARG[@]}" >"$d/flower.out" || true
    if [[ -f "$d/flower/result.json" ]]; then
      "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   Flower", r["status"], "round median %.3f s" % r["round_seconds_median"] if r["status"] == "ok" else r.get("error", ""), "| peak PSS %.0f MiB" % r["peak_pss_mib"])' "$d/flower/result.json"
      FLOWER_FILES+=("$d/flower/result.json")
    else
      echo "   Flower run left no result.json (see $d)" >&2
    fi
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average at end: $LOAD_END"

META="$("$PY" - "$STAMP" "$LOAD_START" "$LOAD_END" "$RUNS" "$FLOWER_TLS" "$SPAWN_INTERVAL" "${SIZES[*]}" <<'EOF'
import importlib.metadata as m, json, os, platform, sys
stamp, l0, l1, runs, tls, spawn, sizes = sys.argv[1:]
print(json.dumps({
    "command": f"RUNS={runs} FLOWER_TLS={tls} SPAWN_INTERVAL={spawn} "
               f"bench/net/flower_vs_privet.sh {sizes}",
    "date_utc": stamp,
    "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                "python": platform.python_version()},
    "load_average_start": l0, "load_average_end": l1,
    "runs_per_side": int(runs),
    "rounds": 6, "timed_rounds": "2-6",
    "flower": {"flwr": m.version("flwr"), "numpy": m.version("numpy"),
               "tls": tls != "0", "isolation": "subprocess (default)",
               "superlink_state": "in-memory (default)"},
    "privet": {"tls": "mutual TLS 1.3", "nodes": "tasks in the net_bench process",
               "state": "SQLite with checkpoint per round"},
}))
EOF
)"
"$PY" bench/net/flower_deploy.py summarize --out "$OUT" \
  --privet "${PRIVET_FILES[@]}" --flower "${FLOWER_FILES[@]}" --meta "$META"
echo "== wrote $OUT"
