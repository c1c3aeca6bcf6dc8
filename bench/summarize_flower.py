#!/usr/bin/env python3
"""Helpers for bench/flower_vs_privet.sh.

  summarize_flower.py time --out T.json -- CMD [ARGS...]
      Run CMD, timing the whole process with time.perf_counter(); write
      {"seconds": ..., "returncode": ..., "argv": [...]} to T.json. Exits with
      CMD's return code.

  summarize_flower.py summarize --runs-dir DIR --runs N --md OUT.md --json OUT.json
      Read DIR/privet-$i/metrics.json, DIR/privet-$i.time.json,
      DIR/flower-$i.json and DIR/flower-$i.time.json for i = 1..N and write the
      comparison table (markdown) and the raw figures (JSON).

Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEADY_SKIP = 2  # rounds 1-2 are warm-up; steady state is rounds 3..R


def cmd_time(args: argparse.Namespace) -> int:
    argv = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not argv:
        sys.exit("time: no command given")
    t0 = time.perf_counter()
    rc = subprocess.call(argv)
    seconds = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"seconds": seconds, "returncode": rc, "argv": argv}, f, indent=1)
    print(f"[time] {seconds:.3f}s rc={rc}: {' '.join(argv)}", file=sys.stderr, flush=True)
    return rc


def load(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_s(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x < 0.01:
        return f"{x * 1e3:.3f} ms"
    if x < 1.0:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def fmt_acc(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    return f"{a / b:.1f}x"


def spread(xs: list[float]) -> str:
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    return f" (min {fmt_s(min(xs))}, max {fmt_s(max(xs))})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def tool_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if out.returncode == 0 and text else None


def privet_version(repo: Path, binary: Path) -> str:
    v = tool_version([str(binary), "--version"])
    if v:
        return v
    try:
        text = (repo / "Cargo.toml").read_text()
        m = re.search(r'^\s*version\s*=\s*"([^"]+)"', text, re.M)
        if m:
            return f"privet {m.group(1)} (workspace version)"
    except OSError:
        pass
    return "unknown"


def cmd_summarize(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir)
    repo = Path(args.repo).resolve()
    rows = []
    for i in range(1, args.runs + 1):
        pm = load(runs_dir / f"privet-{i}" / "metrics.json")
        pt = load(runs_dir / f"privet-{i}.time.json")
        fr = load(runs_dir / f"flower-{i}.json")
        ft = load(runs_dir / f"flower-{i}.time.json")
        p_rounds = [r["round_seconds"] for r in pm.get("rounds", [])]
        p_summary = pm.get("summary", {})
        p_final = p_summary.get("final_accuracy")
        if p_final is None and pm.get("rounds"):
            p_final = pm["rounds"][-1].get("test_accuracy")
        fl = fr.get("flower", {})
        npy = fr.get("numpy", {})
        rows.append(
            {
                "run": i,
                "privet_wall_seconds": pt["seconds"],
                "privet_steady_round_seconds": med(p_rounds[STEADY_SKIP:]),
                "privet_total_seconds": p_summary.get("total_seconds"),
                "privet_load_seconds": p_summary.get("load_seconds"),
                "privet_peak_rss_mb": p_summary.get("peak_rss_mb"),
                "privet_final_accuracy": p_final,
                "privet_rounds": len(p_rounds),
                "flower_process_wall_seconds": ft["seconds"],
                "flower_run_simulation_seconds": fl.get("wall_seconds"),
                "flower_first_round_seconds": (fl.get("round_seconds") or [None])[0],
                "flower_teardown_seconds": fl.get("teardown_seconds"),
                "flower_steady_round_seconds": fl.get("steady_round_seconds"),
                "flower_final_accuracy": fl.get("final_accuracy"),
                "numpy_total_seconds": npy.get("total_seconds"),
                "numpy_steady_round_seconds": npy.get("steady_round_seconds"),
                "numpy_mean_round_seconds": npy.get("mean_round_seconds"),
                "numpy_final_accuracy": npy.get("final_accuracy"),
                "python_load_seconds": fr.get("load_seconds"),
            }
        )

    def col(key: str) -> list[float]:
        return [r[key] for r in rows if r.get(key) is not None]

    m = {k: med(col(k)) for k in rows[0] if k != "run"}
    first = load(runs_dir / "flower-1.json")
    versions = dict(first.get("versions", {}))
    binary = Path(args.privet) if args.privet else repo / "target" / "release" / "privet"
    versions["privet"] = privet_version(repo, binary)
    versions["rustc"] = tool_version(["rustc", "--version"]) or "unknown"
    machine = {
        "cores": os.cpu_count(),
        "nproc": tool_version(["nproc"]),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }

    gap_f = None if m["flower_final_accuracy"] is None or m["privet_final_accuracy"] is None else (
        (m["flower_final_accuracy"] - m["privet_final_accuracy"]) * 100)
    gap_n = None if m["numpy_final_accuracy"] is None or m["privet_final_accuracy"] is None else (
        (m["numpy_final_accuracy"] - m["privet_final_accuracy"]) * 100)

    def pts(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.2f} pts"

    hp = first.get("hyperparameters", {})
    md = []
    md.append("# Flower vs privet: Adult FedAvg")
    md.append("")
    md.append(
        f"Task: binary logistic regression on Adult ({first.get('train_rows')} train / "
        f"{first.get('test_rows')} test rows, {first.get('features')} features), "
        f"{first.get('num_clients')} clients with Dirichlet(0.5) label skew, FedAvg, "
        f"{hp.get('clients_per_round')} clients/round, {hp.get('rounds')} rounds, "
        f"{hp.get('epochs')} local epoch, batch {hp.get('batch_size')}, lr {hp.get('lr')}. "
        "Both systems use the split and partition exported by privet."
    )
    md.append("")
    md.append(f"Medians over {len(rows)} alternating runs (generated by `bench/flower_vs_privet.sh`).")
    md.append("")
    md.append("| metric | privet | Flower (Ray simulation) | NumPy loop | Flower / privet |")
    md.append("|---|---|---|---|---|")
    md.append(
        f"| whole-process wall time | {fmt_s(m['privet_wall_seconds'])} | "
        f"{fmt_s(m['flower_process_wall_seconds'])} | — | "
        f"{fmt_ratio(m['flower_process_wall_seconds'], m['privet_wall_seconds'])} |"
    )
    md.append(
        f"| steady-state time per round (median of rounds 3..{hp.get('rounds')}) | "
        f"{fmt_s(m['privet_steady_round_seconds'])} | {fmt_s(m['flower_steady_round_seconds'])} | "
        f"{fmt_s(m['numpy_steady_round_seconds'])} | "
        f"{fmt_ratio(m['flower_steady_round_seconds'], m['privet_steady_round_seconds'])} |"
    )
    md.append(
        f"| final test accuracy | {fmt_acc(m['privet_final_accuracy'])} | "
        f"{fmt_acc(m['flower_final_accuracy'])} | {fmt_acc(m['numpy_final_accuracy'])} | — |"
    )
    md.append(f"| accuracy gap vs privet | — | {pts(gap_f)} | {pts(gap_n)} | — |")
    md.append("")
    md.append("Details (medians):")
    md.append("")
    md.append(f"- privet whole process{spread(col('privet_wall_seconds'))}; in-process total "
              f"{fmt_s(m['privet_total_seconds'])}, data load {fmt_s(m['privet_load_seconds'])}, "
              f"peak RSS {m['privet_peak_rss_mb'] if m['privet_peak_rss_mb'] is not None else 'n/a'} MB.")
    md.append(f"- Flower whole process{spread(col('flower_process_wall_seconds'))} (includes Python "
              f"start-up, CSV load/encode {fmt_s(m['python_load_seconds'])} and the NumPy loop); "
              f"`run_simulation` alone {fmt_s(m['flower_run_simulation_seconds'])}, of which round 1 "
              f"(Ray start + actor creation) {fmt_s(m['flower_first_round_seconds'])} and teardown "
              f"after the last round (Ray shutdown) {fmt_s(m['flower_teardown_seconds'])}.")
    md.append(f"- NumPy loop: {hp.get('rounds')} rounds in {fmt_s(m['numpy_total_seconds'])} "
              f"(mean {fmt_s(m['numpy_mean_round_seconds'])}/round, data loading excluded).")
    md.append("- Round times include the central test evaluation after each round for Flower "
              "(difference between consecutive `evaluate_fn` timestamps) and for the NumPy loop; "
              "privet's are its metrics.json `round_seconds`.")
    md.append("- Flower samples clients with Python's `random` and the NumPy loop with NumPy's RNG, "
              "so the sampled clients differ from privet's: accuracies agree only statistically. "
              "Run i uses seed 42+i for every system (a new split and partition, exported by privet "
              "and reused by Flower and NumPy), so each accuracy column is a median over 5 different "
              "federations.")
    md.append("")
    md.append("Machine and versions:")
    md.append("")
    md.append(f"- {machine['nproc'] or machine['cores']} cores, {machine['cpu_model']}, Linux {machine['kernel']}")
    md.append(f"- date: {machine['date']}")
    md.append(f"- {versions.get('privet')}; {versions.get('rustc')}")
    md.append(f"- flwr {versions.get('flwr')}, ray {versions.get('ray')}, numpy {versions.get('numpy')}, "
              f"Python {versions.get('python')}")
    md.append("")
    md.append("Per run:")
    md.append("")
    md.append("| run | privet wall | privet round | privet acc | Flower wall | Flower round | Flower acc | NumPy round | NumPy acc |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        md.append(
            f"| {r['run']} | {fmt_s(r['privet_wall_seconds'])} | {fmt_s(r['privet_steady_round_seconds'])} | "
            f"{fmt_acc(r['privet_final_accuracy'])} | {fmt_s(r['flower_process_wall_seconds'])} | "
            f"{fmt_s(r['flower_steady_round_seconds'])} | {fmt_acc(r['flower_final_accuracy'])} | "
            f"{fmt_s(r['numpy_steady_round_seconds'])} | {fmt_acc(r['numpy_final_accuracy'])} |"
        )
    md.append("")
    text = "\n".join(md)

    Path(args.md).parent.mkdir(parents=True, exist_ok=True)
    Path(args.md).write_text(text)
    with open(args.json, "w") as f:
        json.dump(
            {
                "format_version": 1,
                "benchmark": "flower_adult",
                "runs": rows,
                "median": m,
                "accuracy_gap_points": {"flower_minus_privet": gap_f, "numpy_minus_privet": gap_n},
                "machine": machine,
                "versions": versions,
                "hyperparameters": hp,
            },
            f,
            indent=1,
        )
    print(text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("time", help="time a whole process")
    t.add_argument("--out", required=True)
    t.add_argument("cmd", nargs=argparse.REMAINDER)
    s = sub.add_parser("summarize", help="write the comparison table")
    s.add_argument("--runs-dir", required=True)
    s.add_argument("--runs", type=int, required=True)
    s.add_argument("--md", required=True)
    s.add_argument("--json", required=True)
    s.add_argument("--repo", default=".")
    s.add_argument("--privet", default=None, help="privet binary (for --version)")
    args = ap.parse_args()
    return cmd_time(args) if args.command == "time" else cmd_summarize(args)


if __name__ == "__main__":
    sys.exit(main())
