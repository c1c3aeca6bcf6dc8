#!/usr/bin/env python3
"""Two privet binaries on the Flower benchmark's job, alternating, on one machine.

Usage (from the repository root):
    python3 bench/privet_ab.py OLD_PRIVET NEW_PRIVET [--runs 15] [--job bench/adult_fedavg.toml]

Used to check that a change (e.g. the core restructure) did not slow the simulation: both
binaries run `privet simulate JOB -q` in turn (A B, B A, A B, ... so neither always goes first),
each run timed as a whole process; privet's own metrics.json gives the data-load time and the
steady-state round time (median of rounds 3..), as bench/flower_vs_privet.sh reports them.
Prints one JSON object: medians per binary and new/old ratios (below 1: the new one is faster).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

STEADY_SKIP = 2  # rounds 1 and 2 warm up, as in summarize_flower.py


def one_run(binary, job, out):
    start = time.perf_counter()
    subprocess.run([binary, "simulate", job, "--out", out, "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    rounds = [r["round_seconds"] for r in metrics["rounds"]]
    return {
        "wall_s": wall,
        "load_s": metrics["summary"]["load_seconds"],
        "steady_round_s": statistics.median(rounds[STEADY_SKIP:]),
        "final_accuracy": metrics["summary"]["final_accuracy"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--job", default="bench/adult_fedavg.toml")
    args = ap.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    results = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for who in ("old", "new"):  # one untimed warm-up each (page cache, data file)
            one_run(getattr(args, who), args.job, os.path.join(tmp, f"warm-{who}"))
        for i in range(args.runs):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for who in order:
                out = os.path.join(tmp, f"{who}-{i}")
                results[who].append(one_run(getattr(args, who), args.job, out))
    med = {who: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for who, runs in results.items()}
    ratio = {k: med["new"][k] / med["old"][k] for k in ("wall_s", "load_s", "steady_round_s")}
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(json.dumps({"runs": args.runs, "job": args.job, "loadavg_after": load,
                      "median": med, "new_over_old": ratio,
                      "all": results}, indent=1))


if __name__ == "__main__":
    main()
