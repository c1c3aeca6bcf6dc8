#!/usr/bin/env bash
# privet's CKKS against TenSEAL 0.3.18 (SEAL underneath), side by side on this machine.
# Not run in CI. Writes bench/he/results/*.jsonl and prints a summary (summarize.py).
#
#   bench/he/run.sh            # ROUNDS=3 REPS=20 by default; SKIP_BUILD=1 uses the binaries already built
#   OPS_ONLY=1 LOG_NS="13 14" VENV=/path/to/venv nice -n 19 bench/he/run.sh
#                              # operations only (results/infer.jsonl is left as it is), at some N,
#                              # with a TenSEAL venv made elsewhere
#   INFER_ONLY=1 TENSEAL_LIMIT=200 bench/he/run.sh
#                              # inference only (results/ops.jsonl is left as it is); TenSEAL's
#                              # single packing on the first 200 samples of each data set (its
#                              # digits MLP takes over 0.5 s a sample); batch packing always
#                              # runs on every sample, so throughputs stay comparable
#
# Each round runs privet (1 thread, then all threads) and TenSEAL (single-threaded) one after
# the other, so their figures share the machine's load; the summary takes medians over rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=bench/he
OUT=${OUT:-$HERE/results}
WORK=$HERE/.work
VENV=${VENV:-$HERE/.venv}
mkdir -p "$OUT" "$WORK"
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-20}
OPS_ONLY=${OPS_ONLY:-0}
INFER_ONLY=${INFER_ONLY:-0}
TENSEAL_LIMIT=${TENSEAL_LIMIT:-100000}
LOG_NS=${LOG_NS:-13 14 15}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q tenseal==0.3.18 numpy
fi
PY="$VENV/bin/python"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  if [ "$OPS_ONLY" = 1 ]; then
    cargo build --release -p privet-he --example he_ops
  elif [ "$INFER_ONLY" = 1 ]; then
    cargo build --release -p privet --bin privet -p privet-he-service --example he_export
  else
    cargo build --release -p privet --bin privet -p privet-he --example he_ops -p privet-he-service --example he_export
  fi
fi
BIN="$CARGO_TARGET_DIR/release"
[ "$INFER_ONLY" = 1 ] || : > "$OUT/ops.jsonl"
[ "$OPS_ONLY" = 1 ] || : > "$OUT/infer.jsonl"
if [ "$INFER_ONLY" = 1 ]; then
  echo "{\"when\":\"before inference\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cores\":$(nproc),\"tenseal_single_limit\":$TENSEAL_LIMIT}" >> "$OUT/machine.jsonl"
else
  echo "{\"when\":\"before\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cores\":$(nproc)}" > "$OUT/machine.jsonl"
fi

# 1. Operations at equal parameters (SEAL's CoeffModulus::Create primes on both sides).
CONFIGS=("13 60,40,40,60 $REPS" "14 60,40,40,40,40,40,40,60 $REPS" "15 60,40,40,40,40,40,40,40,40,40,40,40,40,40,40,40,40,40,40,60 5")
for round in $(seq "$ROUNDS"); do
  [ "$INFER_ONLY" = 1 ] && break
  echo "{\"when\":\"ops round $round\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT/machine.jsonl"
  for cfg in "${CONFIGS[@]}"; do
    set -- $cfg
    case " $LOG_NS " in *" $1 "*) ;; *) continue ;; esac
    RAYON_NUM_THREADS=1 "$BIN/examples/he_ops" "$1" "$2" "$3" >> "$OUT/ops.jsonl"
    "$BIN/examples/he_ops" "$1" "$2" "$3" >> "$OUT/ops.jsonl"
    "$PY" "$HERE/tenseal_ops.py" "$1" "$2" "$3" >> "$OUT/ops.jsonl"
  done
done

if [ "$OPS_ONLY" = 1 ]; then
  echo "{\"when\":\"after\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT/machine.jsonl"
  "$PY" "$HERE/summarize.py" "$OUT"
  exit 0
fi

# 2. Encrypted inference with privet-trained models.
"$BIN/privet" train "$HERE/breast_cancer_lr.toml" --out "$WORK/bc" -q
"$BIN/privet" train "$HERE/digits_mlp_square.toml" --out "$WORK/digits" -q
for m in bc:breast_cancer digits:digits; do
  name=${m%%:*}; data=data/${m##*:}.csv
  "$BIN/examples/he_export" "$WORK/$name/model.safetensors" "$data" "$WORK/$name.json"
done
tag() { "$PY" -c "import json,sys; d=json.load(sys.stdin); d.update(json.loads(sys.argv[1])); print(json.dumps(d))" "$1"; }
for round in $(seq "$ROUNDS"); do
  for m in bc:breast_cancer digits:digits; do
    name=${m%%:*}; data=data/${m##*:}.csv
    for packing in single batch; do
      for threads in 1 0; do
        env_threads=()
        [ "$threads" = 1 ] && env_threads=(RAYON_NUM_THREADS=1)
        env "${env_threads[@]}" "$BIN/privet" he infer "$WORK/$name/model.safetensors" "$data" --packing "$packing" --json \
          | tag "{\"impl\":\"privet\",\"model\":\"$name\",\"mode\":\"$packing\",\"threads\":$threads}" >> "$OUT/infer.jsonl"
      done
      # TenSEAL at privet's parameters (equal N, moduli, scale).
      params=$(tail -n 1 "$OUT/infer.jsonl" | "$PY" -c "import json,sys; p=json.load(sys.stdin)['params']; print(p['n'], ','.join(map(str, p['q_bits'] + p['p_bits'])), p['scale_bits'])")
      set -- $params
      limit=100000
      [ "$packing" = single ] && limit=$TENSEAL_LIMIT
      "$PY" "$HERE/tenseal_infer.py" "$WORK/$name.json" "$packing" "$1" "$2" "$3" "$limit" \
        | tag "{\"model\":\"$name\",\"params\":\"privet\"}" >> "$OUT/infer.jsonl"
    done
    # TenSEAL's documented context (tutorial 1: 8192, [40, 21 x 6, 40], scale 2^21) for the
    # logistic regression, single packing.
    if [ "$name" = bc ]; then
      "$PY" "$HERE/tenseal_infer.py" "$WORK/$name.json" single 8192 40,21,21,21,21,21,21,40 21 "$TENSEAL_LIMIT" \
        | tag "{\"model\":\"$name\",\"params\":\"tenseal-tutorial\"}" >> "$OUT/infer.jsonl"
    fi
  done
done
echo "{\"when\":\"after\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT/machine.jsonl"
"$PY" "$HERE/summarize.py" "$OUT"
