#!/usr/bin/env bash
# Scaling benchmark: privet on FedProx Synthetic(1,1) (60 features, 10 classes,
# 50 rows per client, multiclass logistic regression) with 1,000 / 10,000 /
# 100,000 virtual clients, 1% of them per round (at least 10), 5 rounds.
# Reports time per round and peak memory. See bench/README.md.
#
# Usage: bench/scaling.sh                      (from anywhere)
# Env:   CLIENTS="1000 10000 100000"   client counts to run
#        SKIP_BUILD=1                  do not run cargo build
#        PRIVET=path                   privet binary (default target/release/privet)
# Output: bench/results/scaling.md, bench/results/scaling.json;
#         job files and raw outputs under target/bench-runs/scaling-*/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"
CLIENTS="${CLIENTS:-1000 10000 100000}"
RUNDIR="$REPO/target/bench-runs"
PRIVET="${PRIVET:-$REPO/target/release/privet}"
GNU_TIME=/usr/bin/time

if [[ ! -x "$GNU_TIME" ]]; then
  echo "$GNU_TIME (GNU time) is required for the RSS cross-check (apt-get install time)" >&2
  exit 1
fi
if [[ "${SKIP_BUILD:-0}" == 0 ]]; then
  echo "== cargo build --release -p privet"
  cargo build --release -p privet
fi
mkdir -p "$RUNDIR" bench/results

# Job template: @CLIENTS@ and @PER_ROUND@ are substituted per run.
TEMPLATE='[data]
source = "synthetic"
alpha = 1.0
beta = 1.0
rows_per_client = 50

[partition]
clients = @CLIENTS@          # the number of virtual devices

[model]
kind = "logreg"

[train]
epochs = 1
batch_size = 10
lr = 0.01
optimizer = "sgd"

[strategy]
kind = "fedavg"

[federation]
rounds = 5
clients_per_round = @PER_ROUND@
seed = 1
'

DONE=()
for n in $CLIENTS; do
  per_round=$((n / 100))
  if ((per_round < 10)); then per_round=10; fi
  dir="$RUNDIR/scaling-$n"
  rm -rf "$dir"
  mkdir -p "$dir"
  job="$RUNDIR/scaling-$n.toml"
  printf '%s' "$TEMPLATE" | sed -e "s/@CLIENTS@/$n/" -e "s/@PER_ROUND@/$per_round/" >"$job"
  echo "== $n clients, $per_round per round"
  if "$GNU_TIME" -v -o "$dir/gnu-time.txt" \
      "$PRIVET" simulate "$job" --out "$dir/out" >"$dir/stdout.txt" 2>"$dir/stderr.txt"; then
    echo ok >"$dir/status"
  else
    echo "failed (exit $?)" >"$dir/status"
    echo "   privet failed for $n clients; see $dir/stderr.txt" >&2
  fi
  DONE+=("$n:$per_round")
done

PRIVET="$PRIVET" python3 - "$RUNDIR" "${DONE[@]}" <<'EOF'
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

rundir = Path(sys.argv[1])
rows = []
for spec in sys.argv[2:]:
    n, per_round = (int(x) for x in spec.split(":"))
    d = rundir / f"scaling-{n}"
    row = {"clients": n, "clients_per_round": per_round, "rows_total": 50 * n,
           "status": (d / "status").read_text().strip()}
    gt = (d / "gnu-time.txt").read_text() if (d / "gnu-time.txt").exists() else ""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", gt)
    row["gnu_time_max_rss_mb"] = int(m.group(1)) / 1024 if m else None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", gt)
    if m:
        secs = 0.0
        for part in m.group(1).split(":"):
            secs = secs * 60 + float(part)
        row["wall_seconds"] = secs
    metrics = d / "out" / "metrics.json"
    if metrics.exists():
        mj = json.loads(metrics.read_text())
        rs = [r["round_seconds"] for r in mj.get("rounds", [])]
        s = mj.get("summary", {})
        row.update(
            round_seconds=rs,
            median_round_seconds=statistics.median(rs) if rs else None,
            peak_rss_mb=s.get("peak_rss_mb"),
            total_seconds=s.get("total_seconds"),
            load_seconds=s.get("load_seconds"),
            final_accuracy=s.get("final_accuracy"),
        )
    rows.append(row)

def fs(x):
    if x is None:
        return "n/a"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"

def fm(x):
    return "n/a" if x is None else f"{x:.1f} MB"

def fa(x):
    return "n/a" if x is None else f"{x:.4f}"

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.lower().startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
machine = {
    "cores": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "privet": first_line([os.environ["PRIVET"], "--version"]) or "unknown",
    "rustc": first_line(["rustc", "--version"]) or "unknown",
}

md = [
    "# privet scaling: FedProx Synthetic(1,1)",
    "",
    "Multiclass logistic regression (60 features, 10 classes), 50 rows per virtual client, "
    "1% of clients per round (at least 10), 5 rounds, 1 local epoch, batch 10, lr 0.01, FedAvg. "
    "Generated by `bench/scaling.sh`.",
    "",
    "| clients | clients/round | rows | median round time | whole process | data setup | peak RSS (metrics.json) | max RSS (/usr/bin/time) | final accuracy | status |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
for r in rows:
    md.append(
        f"| {r['clients']:,} | {r['clients_per_round']:,} | {r['rows_total']:,} | "
        f"{fs(r.get('median_round_seconds'))} | {fs(r.get('wall_seconds'))} | {fs(r.get('load_seconds'))} | "
        f"{fm(r.get('peak_rss_mb'))} | {fm(r.get('gnu_time_max_rss_mb'))} | "
        f"{fa(r.get('final_accuracy'))} | {r['status']} |"
    )
md += [
    "",
    "Median round time is the median of metrics.json `round_seconds` over the 5 rounds; "
    "data setup is metrics.json `summary.load_seconds`; whole process is /usr/bin/time's elapsed wall clock.",
    "",
    f"Machine: {machine['cores']} cores, {machine['cpu_model']}, Linux {machine['kernel']}; "
    f"{machine['date']}; {machine['privet']}; {machine['rustc']}.",
    "",
]
text = "\n".join(md)
Path("bench/results/scaling.md").write_text(text)
Path("bench/results/scaling.json").write_text(
    json.dumps({"format_version": 1, "benchmark": "scaling", "runs": rows, "machine": machine}, indent=1))
print(text)
EOF
echo "wrote bench/results/scaling.md and bench/results/scaling.json"
