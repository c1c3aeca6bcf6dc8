#!/usr/bin/env bash
# Runs every cargo-fuzz target of privet (see fuzz/README.md).
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   each target for SECONDS (default 60), one after another
#        fuzz/run.sh --smoke                 smoke mode (for CI): each target for 5 s starting from
#                                            its committed seeds only; nothing found is kept
# Env:   JOBS=1               targets run at once (libFuzzer processes)
#        CARGO_TARGET_DIR     build directory (default fuzz/target)
#
# cargo-fuzz needs nightly-only compiler flags (-Z...): the stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1, which this script sets for the fuzz build only. The build is instrumented
# for coverage without a sanitizer (`--sanitizer none`: the workspace forbids `unsafe`, so
# AddressSanitizer adds little and doubles the build) and with debug assertions (`-a`, so
# integer overflow panics). New corpus entries go to fuzz/work/TARGET (ignored by git); the
# committed seeds in fuzz/corpus/TARGET are read, never written. Crashes are written to
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export RUSTC_BOOTSTRAP=1
TARGETS=(csv job_toml net_config model frames secagg_wire certificate psi_wire psi_session agreement_toml audit_log he_wire)

smoke=0
seconds=60
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  seconds=5
  shift
elif [[ -n "${1:-}" ]]; then
  if ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...] | --smoke" >&2
    exit 2
  fi
  seconds="$1"
  shift
fi
if [[ $# -gt 0 ]]; then
  TARGETS=("$@")
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
FLAGS=(--sanitizer none -a)
# Each target is built with its own feature only, so only the crates it reaches are
# instrumented (csv builds privet-data, not candle or tonic).
for t in "${TARGETS[@]}"; do
  echo "== cargo fuzz build ${FLAGS[*]} --no-default-features --features $t $t"
  cargo fuzz build "${FLAGS[@]}" --no-default-features --features "$t" "$t"
done

run_one() {
  local t="$1" log
  mkdir -p "work/$t" "artifacts/$t"
  log="work/$t.log"
  local dir="work/$t"
  if [[ "$smoke" == 1 ]]; then
    # A fresh copy of the committed seeds, so nothing found in the smoke run is kept.
    dir="work/smoke/$t"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "corpus/$t"/* "$dir"/
  fi
  local rc=0
  cargo fuzz run "${FLAGS[@]}" --no-default-features --features "$t" "$t" "$dir" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 > "$log" 2>&1 || rc=$?
  local execs
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "$t: exit $rc, ${seconds} s, ${execs} executions (log fuzz/$log)"
  return $rc
}

status=0
JOBS="${JOBS:-1}"
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [[ ${#pids[@]} -ge $JOBS ]]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
if [[ $status != 0 ]]; then
  echo "== a target failed: see fuzz/artifacts/ and the logs under fuzz/work/" >&2
fi
exit $status
