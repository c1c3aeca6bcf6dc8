#!/usr/bin/env python3
"""Combines privet's and Flower's SecAgg+ measurements into bench/secagg/flower_results.json
and a Markdown table (bench/secagg/flower_vs_privet.sh calls this; standard library only).

privet's runs may come from several invocations of secagg_bench (before and after Flower, so
that both see the same spread of machine load): their per-round runs are pooled and the
median taken again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# Issue 11: the client and the whole round at least 20x Flower's (wall clock) at n = 10 and 100.
TARGET = 20.0
KEYS = ("client_ms", "coordinator_ms", "round_ms")


def pool_privet(files: list[str]) -> dict[int, dict]:
    """n -> privet's case at dropout 0, with the runs of every file pooled."""
    out: dict[int, dict] = {}
    meta = None
    for f in files:
        report = json.loads(Path(f).read_text())
        meta = meta or {k: report.get(k) for k in ("benchmark", "config", "threads")}
        for r in report["results"]:
            if r["dropout"] != 0:
                continue
            n = int(r["n"])
            if n not in out:
                out[n] = {k: r[k] for k in ("n", "d", "k", "t", "client_upload_bytes",
                                            "client_protocol_download_bytes",
                                            "model_download_bytes")}
                out[n].update({f"{key}_runs": [] for key in KEYS})
            for key in KEYS:
                out[n][f"{key}_runs"] += r[f"{key}_runs"]
    for r in out.values():
        for key in KEYS:
            r[f"{key}_median"] = statistics.median(r[f"{key}_runs"])
    if meta is not None:
        for r in out.values():
            r["meta"] = meta
    return out


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def fmt(x, digits=1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--privet", nargs="+", required=True, help="secagg_bench JSON files")
    ap.add_argument("--flower", required=True, help="flower_secagg.py JSON")
    ap.add_argument("--json", required=True, help="combined output")
    ap.add_argument("--markdown", required=True, help="table output")
    ap.add_argument("--machine", default="", help="free text: CPU, cores, load")
    ap.add_argument("--command", default="bench/secagg/flower_vs_privet.sh")
    args = ap.parse_args()

    privet = pool_privet(args.privet)
    flower = json.loads(Path(args.flower).read_text())
    fsec = {r["n"]: r for r in flower["results"] if r["secagg"]}
    fplain = {r["n"]: r for r in flower["results"] if not r["secagg"]}

    rows = []
    for n in sorted(set(privet) & set(fsec)):
        p, f = privet[n], fsec[n]
        plain = fplain.get(n)
        if p["d"] != f["d"]:
            raise SystemExit(f"n={n}: privet d={p['d']} but Flower d={f['d']}")
        row = {
            "n": n,
            "d": p["d"],
            "privet_k": p["k"],
            "privet_t": p["t"],
            "flower_num_shares": f["num_shares"],
            "flower_reconstruction_threshold": f["reconstruction_threshold"],
            "privet_client_ms": p["client_ms_median"],
            "flower_client_ms": f["client_ms_median"],
            "client_ratio": ratio(f["client_ms_median"], p["client_ms_median"]),
            "privet_coordinator_ms": p["coordinator_ms_median"],
            "flower_coordinator_ms": f["coordinator_ms_median"],
            "coordinator_ratio": ratio(f["coordinator_ms_median"], p["coordinator_ms_median"]),
            "privet_round_ms": p["round_ms_median"],
            "flower_round_wall_ms": f["round_wall_ms_median"],
            "round_ratio": ratio(f["round_wall_ms_median"], p["round_ms_median"]),
            "flower_busy_round_ms": f["busy_round_ms_median"],
            "round_ratio_busy": ratio(f["busy_round_ms_median"], p["round_ms_median"]),
            # Flower's CPU times (privet's benchmark has wall time only: reading a thread's
            # CPU clock needs libc or unsafe code, which the workspace forbids).
            "flower_client_cpu_ms": f["client_cpu_ms_median"],
            "flower_coordinator_cpu_ms": f["coordinator_cpu_ms_median"],
            "flower_coordinator_thread_cpu_ms": f["coordinator_thread_cpu_ms_median"],
            "flower_busy_round_cpu_ms": f["busy_round_cpu_ms_median"],
            "coordinator_ratio_flower_cpu": ratio(
                f["coordinator_cpu_ms_median"], p["coordinator_ms_median"]
            ),
            "flower_round_sleep_ms": f["round_sleep_ms_median"],
            "privet_upload_bytes": p["client_upload_bytes"],
            "flower_upload_bytes": f["client_upload_bytes"],
            "privet_protocol_download_bytes": p["client_protocol_download_bytes"],
            "flower_protocol_download_bytes": f["client_protocol_download_bytes"],
            "privet_model_download_bytes": p["model_download_bytes"],
            "flower_model_download_bytes": f["client_model_download_bytes"],
            "flower_plain_client_ms": plain["client_ms_median"] if plain else None,
            "flower_plain_coordinator_ms": plain["coordinator_ms_median"] if plain else None,
            "flower_plain_round_wall_ms": plain["round_wall_ms_median"] if plain else None,
            "flower_plain_upload_bytes": plain["client_upload_bytes"] if plain else None,
            "flower_secagg_overhead_round_wall_ms": (
                f["round_wall_ms_median"] - plain["round_wall_ms_median"] if plain else None
            ),
            "privet_runs": len(p["client_ms_runs"]),
            "flower_timed_rounds": f["timed_rounds"],
        }
        # The target is judged on the wall-clock ratios the issue asks for (client and
        # round); the coordinator's and the CPU-time ratios are reported beside them.
        checked = [row["client_ratio"], row["round_ratio"]]
        row["meets_target"] = all(r is not None and r >= TARGET for r in checked)

        rows.append(row)

    md = []
    md.append("Wall-clock time per round (median):")
    md.append("")
    md.append("| n | d | privet client ms | Flower client ms | ratio | privet coordinator ms "
              "| Flower coordinator ms | ratio | privet round ms | Flower round ms | ratio "
              f"| client and round {TARGET:.0f}x? |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        md.append(
            f"| {r['n']} | {r['d']:,} | {fmt(r['privet_client_ms'])} | "
            f"{fmt(r['flower_client_ms'])} | **{fmt(r['client_ratio'])}x** | "
            f"{fmt(r['privet_coordinator_ms'])} | {fmt(r['flower_coordinator_ms'])} | "
            f"**{fmt(r['coordinator_ratio'])}x** | {fmt(r['privet_round_ms'])} | "
            f"{fmt(r['flower_round_wall_ms'])} | **{fmt(r['round_ratio'])}x** | "
            f"{'yes' if r['meets_target'] else 'no'} |"
        )
    md.append("")
    md.append("Flower's CPU time per round (median; Flower's wall time above includes its "
              "waits for CPU on a loaded machine, as privet's does):")
    md.append("")
    md.append("| n | Flower client CPU ms | Flower coordinator CPU ms "
              "| coordinator ratio (Flower CPU / privet wall) "
              "| Flower round CPU ms (coordinator + all clients) |")
    md.append("|---|---|---|---|---|")
    for r in rows:
        md.append(
            f"| {r['n']} | {fmt(r['flower_client_cpu_ms'])} | "
            f"{fmt(r['flower_coordinator_cpu_ms'])} | {fmt(r['coordinator_ratio_flower_cpu'])}x | "
            f"{fmt(r['flower_busy_round_cpu_ms'])} |"
        )
    md.append("")
    md.append("Bytes per client per round, and Flower's round without SecAgg (same harness):")
    md.append("")
    md.append("| n | privet up | Flower up | privet protocol down | Flower protocol down "
              "| model down (privet / Flower) | Flower plain round ms | Flower SecAgg+ adds ms "
              "| Flower round ms, busy (no polling waits) |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        md.append(
            f"| {r['n']} | {fmt(int(r['privet_upload_bytes']))} | "
            f"{fmt(int(r['flower_upload_bytes']))} | "
            f"{fmt(int(r['privet_protocol_download_bytes']))} | "
            f"{fmt(int(r['flower_protocol_download_bytes']))} | "
            f"{fmt(int(r['privet_model_download_bytes']))} / "
            f"{fmt(int(r['flower_model_download_bytes']))} | "
            f"{fmt(r['flower_plain_round_wall_ms'])} | "
            f"{fmt(r['flower_secagg_overhead_round_wall_ms'])} | {fmt(r['flower_busy_round_ms'])} |"
        )
    table = "\n".join(md) + "\n"
    Path(args.markdown).write_text(table)
    print(table)

    out = {
        "benchmark": "privet-secagg vs Flower 1.41 SecAggPlusWorkflow + secaggplus_mod, one round",
        "command": args.command,
        "machine": args.machine,
        "target_ratio": TARGET,
        "meets_target_at_every_size": bool(rows) and all(r["meets_target"] for r in rows),
        "rows": rows,
        "privet": {str(n): {k: v for k, v in p.items() if k != "meta"} for n, p in privet.items()},
        "privet_meta": next(iter(privet.values()))["meta"] if privet else None,
        "flower": flower,
    }
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
