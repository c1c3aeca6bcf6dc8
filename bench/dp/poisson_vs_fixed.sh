#!/usr/bin/env bash
# DP-FedAvg on UCI Adult: Poisson client sampling against fixed-size sampling at the same noise.
# See bench/dp/README.md ("Poisson against fixed-size client sampling").
#
# Usage: bench/dp/poisson_vs_fixed.sh            (from anywhere)
# Env:   SEEDS=3            seeds per sampling scheme
#        Z=1.0              noise multiplier (noise std / clip on the sum)
#        SKIP_BUILD=1       do not run cargo build
#        CARGO_TARGET_DIR   where privet is built (default target/)
# Needs: ../shared/data/adult.csv beside the repository, python3 (standard library only).
# Output: bench/dp/poisson_results.json; raw runs under target/bench-runs/dp-poisson/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SEEDS="${SEEDS:-3}"
Z="${Z:-1.0}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
PRIVET="$TARGET_DIR/release/privet"
RUNDIR="target/bench-runs/dp-poisson"
DATA="../shared/data/adult.csv"

if ! [[ "$SEEDS" =~ ^[1-9][0-9]*$ ]]; then
  echo "SEEDS must be a positive integer (got '$SEEDS')" >&2
  exit 2
fi
if [[ ! -f "$DATA" ]]; then
  echo "missing $DATA (the shared data folder beside the repository)" >&2
  exit 1
fi
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet"
  cargo build --release -p privet
fi
mkdir -p "$RUNDIR"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(nproc) cores; load average before: $LOAD_BEFORE"

# The federation of crates/privet-sim/tests/privacy.rs: 3,000 clients (IID, about 8 training
# rows each), 30 rounds, 300 clients per round on average (q = 0.1), clip 1.0, z = $Z.
job() { # $1 = sampling lines, $2 = seed
  cat <<TOML
[data]
path = "$DATA"
label = "income"
categorical = ["type_employer", "education", "marital", "occupation", "relationship", "race", "sex", "country"]
[partition]
scheme = "iid"
clients = 3000
[model]
kind = "logreg"
[train]
epochs = 2
batch_size = 4
lr = 0.5
[federation]
rounds = 30
seed = $2
$1
[privacy]
mode = "central"
clip = 1.0
noise_multiplier = $Z
delta = 1e-5
TOML
}

for seed in $(seq 1 "$SEEDS"); do
  for scheme in fixed poisson; do
    if [[ "$scheme" == fixed ]]; then
      lines=$'sampling = "fixed"\nclients_per_round = 300'
    else
      lines=$'sampling = "poisson"\nfraction = 0.1'
    fi
    out="$RUNDIR/$scheme-$seed"
    job "$lines" "$seed" > "$RUNDIR/$scheme-$seed.toml"
    rm -rf "$out"
    echo "== $scheme seed $seed"
    "$PRIVET" simulate "$RUNDIR/$scheme-$seed.toml" --out "$out" > "$out.log" 2>&1 || {
      tail -n 20 "$out.log" >&2
      exit 1
    }
  done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load average after: $LOAD_AFTER"

python3 - "$RUNDIR" "$SEEDS" "$Z" "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF2'
import json, statistics, sys
rundir, seeds, z, before, after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = {}
for scheme in ("fixed", "poisson"):
    runs = []
    for seed in range(1, seeds + 1):
        m = json.load(open(f"{rundir}/{scheme}-{seed}/metrics.json"))
        rounds = m["rounds"]
        last = rounds[-1]
        p = last["privacy"]
        runs.append({
            "seed": seed,
            "test_accuracy": last["test_accuracy"],
            "epsilon_rdp": p["cumulative_epsilon"],
            "epsilon_pld": p.get("cumulative_epsilon_pld"),
            "skip_delta": p.get("skip_delta", 0.0),
            "rounds_run": len(rounds),
            "rounds_skipped": sum(1 for r in rounds if (r.get("privacy") or {}).get("skipped")),
            "mean_contributors": statistics.mean(
                (r.get("privacy") or {}).get("contributors", 0) for r in rounds
                if not (r.get("privacy") or {}).get("skipped")),
        })
    rows[scheme] = {
        "runs": runs,
        "accuracy_mean": statistics.mean(r["test_accuracy"] for r in runs),
        "epsilon_rdp": statistics.median(r["epsilon_rdp"] for r in runs),
        "epsilon_pld": (statistics.median(r["epsilon_pld"] for r in runs)
                        if all(r["epsilon_pld"] is not None for r in runs) else None),
    }
f, p = rows["fixed"], rows["poisson"]
best = p["epsilon_pld"] if p["epsilon_pld"] is not None else p["epsilon_rdp"]
report = {
    "benchmark": "DP-FedAvg on Adult: Poisson vs fixed-size client sampling at equal noise",
    "command": f"SEEDS={seeds} Z={z} bench/dp/poisson_vs_fixed.sh",
    "task": "adult.csv, 3000 IID clients, 30 rounds, 300 clients per round (fixed) or q = 0.1 "
            "(Poisson), logreg, clip 1.0, central noise, delta 1e-5",
    "noise_multiplier": z,
    "machine": f"load average before {before}, after {after}",
    "fixed": f, "poisson": p,
    "epsilon_ratio_fixed_over_poisson_rdp": f["epsilon_rdp"] / p["epsilon_rdp"],
    "epsilon_ratio_fixed_over_poisson_best": f["epsilon_rdp"] / best,
    "accuracy_difference_poisson_minus_fixed": p["accuracy_mean"] - f["accuracy_mean"],
}
json.dump(report, open("bench/dp/poisson_results.json", "w"), indent=2)
print(f"fixed:   accuracy {f['accuracy_mean']:.4f}, epsilon {f['epsilon_rdp']:.3f} (RDP, replace-one)")
print(f"poisson: accuracy {p['accuracy_mean']:.4f}, epsilon {p['epsilon_rdp']:.3f} (RDP), "
      f"{p['epsilon_pld']} (PLD)")
print(f"epsilon saved: {f['epsilon_rdp'] / best:.2f}x at an accuracy difference of "
      f"{p['accuracy_mean'] - f['accuracy_mean']:+.4f}")
EOF2
echo "== wrote bench/dp/poisson_results.json"
