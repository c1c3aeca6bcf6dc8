#!/usr/bin/env bash
# DP-SGD throughput and accuracy: privet against Opacus 1.6 (CPU PyTorch from PyPI), side by side
# on the same MLP, data, lot size, epochs, clip norm, noise multiplier and learning rate.
#
#   bench/dp/opacus_vs_privet.sh [SEEDS]        (default 7; run from the repository root)
#
# SEEDS runs per configuration on adult and 3 x SEEDS on digits (359 test rows, where one run's
# accuracy at epsilon 1 varies by several points from seed to seed).
#
# For digits (data/digits.csv) and adult (../shared/data/adult.csv):
#   1. privet's dp_bench example encodes the CSV exactly as `privet train` does (seeded 80/20
#      split, standardisation and one-hot fitted on the training rows), exports the matrices,
#      calibrates sigma by PLD for epsilon 1, 3, 8 at delta 1e-5, and times privet's non-private
#      training and DP-SGD (SEEDS runs each);
#   2. opacus_bench.py trains the same MLP on the exported matrices with Opacus (hooks and ghost
#      clipping) and plain PyTorch, with the same sigma, q and steps, torch threads = 2.
# Results: bench/dp/opacus_results.json (and a table on stdout). Creates target/bench-venv-opacus.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS="${1:-7}"
VENV=target/bench-venv-opacus
ADULT=../shared/data/adult.csv
OUTDIR=target/dp-bench
mkdir -p "$OUTDIR"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import opacus, torch' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # PyPI's torch wheel (the CPU-only index is not reachable here); only its CPU kernels are used.
  "$VENV/bin/pip" install -q torch==2.8.0 opacus==1.6.0 numpy==2.2.6 scipy==1.15.3
fi

cargo build --release -q -p privet-ml --example dp_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/dp_bench"
[ -f "$ADULT" ] || { echo "missing $ADULT (see ../shared/data/README.md)" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

run_case() { # name, seeds, then dp_bench arguments
  local name="$1" seeds="$2"; shift 2
  local dir="$OUTDIR/$name"
  mkdir -p "$dir"
  echo "== $name: privet" >&2
  RAYON_NUM_THREADS=2 "$BIN" "$@" --seeds "$seeds" --export "$dir" > "$dir/privet.json"
  echo "== $name: opacus" >&2
  "$VENV/bin/python" bench/dp/opacus_bench.py --data "$dir" --privet "$dir/privet.json" \
    --seeds "$seeds" --threads 2 > "$dir/opacus.json"
}

# Same hyperparameters on both sides; plain SGD, C = 1, delta = 1e-5.
run_case digits $((3 * SEEDS)) --csv data/digits.csv --label digit --hidden 64 --lot 64 --epochs 30 \
  --lr 1.0 --clip 1.0 --delta 1e-5 --epsilons 1,3,8
run_case adult "$SEEDS" --csv "$ADULT" --label income \
  --categorical type_employer,education,marital,occupation,relationship,race,sex,country \
  --hidden 64 --lot 256 --epochs 10 --lr 1.0 --clip 1.0 --delta 1e-5 --epsilons 1,3,8

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$VENV/bin/python" - "$OUTDIR" "$SEEDS" <<'EOF'
import json, os, statistics, sys, platform
outdir, seeds = sys.argv[1], int(sys.argv[2])
res = {"command": "bench/dp/opacus_vs_privet.sh %d" % seeds, "cores": os.cpu_count(),
       "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
       "loadavg_after": open("/proc/loadavg").read().split()[:3], "cases": {}}
for name in ("digits", "adult"):
    p = json.load(open(f"{outdir}/{name}/privet.json"))
    o = json.load(open(f"{outdir}/{name}/opacus.json"))
    dp_rate = p["dp_examples_per_second_median"]
    np_rate = p["nonprivate"]["examples_per_second_median"]
    case = {"privet": p, "opacus": o,
            "ratio_dp_throughput_vs_opacus_hooks": dp_rate / o["hooks"]["examples_per_second_median"],
            "ratio_dp_throughput_vs_opacus_ghost": dp_rate / o["ghost"]["examples_per_second_median"],
            "ratio_dp_time_vs_nonprivate_privet": np_rate / dp_rate,
            "accuracy": []}
    for i, d in enumerate(p["dp"]):
        row = {"epsilon": d["epsilon_target"], "sigma": d["sigma"],
               "privet": d["accuracy_median"],
               "opacus_hooks": o["hooks"]["dp"][i]["accuracy_median"],
               "opacus_ghost": o["ghost"]["dp"][i]["accuracy_median"],
               "epsilon_privet_pld": d["epsilon_pld"], "epsilon_opacus_prv": o["hooks"]["dp"][i]["epsilon_opacus_prv"]}
        row["privet_minus_opacus_hooks_points"] = 100 * (row["privet"] - row["opacus_hooks"])
        case["accuracy"].append(row)
    res["cases"][name] = case
json.dump(res, open("bench/dp/opacus_results.json", "w"), indent=1)
print(f"\n{'case':8} {'privet DP ex/s':>15} {'Opacus hooks':>13} {'Opacus ghost':>13} {'x hooks':>8} {'x ghost':>8} {'privet np ex/s':>15} {'DP/np time':>10}")
for name, c in res["cases"].items():
    p, o = c["privet"], c["opacus"]
    print(f"{name:8} {p['dp_examples_per_second_median']:15.0f} {o['hooks']['examples_per_second_median']:13.0f} "
          f"{o['ghost']['examples_per_second_median']:13.0f} {c['ratio_dp_throughput_vs_opacus_hooks']:8.2f} "
          f"{c['ratio_dp_throughput_vs_opacus_ghost']:8.2f} {p['nonprivate']['examples_per_second_median']:15.0f} "
          f"{c['ratio_dp_time_vs_nonprivate_privet']:10.2f}")
print(f"\n{'case':8} {'eps':>4} {'sigma':>7} {'privet':>7} {'hooks':>7} {'ghost':>7} {'diff pts':>8} {'eps PLD':>8} {'eps PRV':>8}")
for name, c in res["cases"].items():
    for r in c["accuracy"]:
        print(f"{name:8} {r['epsilon']:4.0f} {r['sigma']:7.3f} {r['privet']:7.4f} {r['opacus_hooks']:7.4f} "
              f"{r['opacus_ghost']:7.4f} {r['privet_minus_opacus_hooks_points']:8.2f} {r['epsilon_privet_pld']:8.3f} {r['epsilon_opacus_prv']:8.3f}")
    print(f"{name:8}  non-private: privet {c['privet']['nonprivate']['accuracy_median']:.4f}, torch {c['opacus']['nonprivate']['accuracy_median']:.4f}")
EOF
