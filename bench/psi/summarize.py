"""Medians of the runs under target/bench-runs/psi/ as JSON (bench/psi/results.json)."""
import json
import re
import statistics
import sys

rundir, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]


def peak_mib(path):
    """Peak resident memory (MiB), wall seconds and CPU seconds (user + system) of a run."""
    text = open(path).read()
    cpu = sum(
        float(re.search(rf"{k} time \(seconds\): ([\d.]+)", text).group(1)) for k in ("User", "System")
    )
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return kb / 1024, secs, cpu


out = {"load": open(f"{rundir}/load.txt").read().strip().splitlines(), "sizes": []}
for n in sizes:
    runs = int(open(f"{rundir}/n{n}/runs").read())
    systems = open(f"{rundir}/n{n}/systems").read().split()
    row = {"rows_per_side": n, "runs": runs}
    for sysname in systems:
        recs = []
        for r in range(1, runs + 1):
            base = f"{rundir}/n{n}/{sysname}-{r}"
            j = json.loads(open(base + ".json").read())
            mem, wall, cpu = peak_mib(base + ".time")
            j["peak_mib"] = mem
            j["wall_seconds"] = wall
            j["cpu_seconds"] = cpu
            try:
                j["load"] = open(base + ".load").read().split()[0]
            except OSError:
                j["load"] = None
            recs.append(j)
        med = lambda k: statistics.median(x[k] for x in recs)
        if sysname == "openmined":
            wire = recs[0]["bytes_setup"] + recs[0]["bytes_request"] + recs[0]["bytes_response"]
        else:
            wire = recs[0]["bytes_client_to_server"] + recs[0]["bytes_server_to_client"]
        row[sysname] = {
            "seconds_protocol_median": med("seconds_protocol"),
            "seconds_protocol_all": [x["seconds_protocol"] for x in recs],
            "wall_seconds_median": med("wall_seconds"),
            "cpu_seconds_median": med("cpu_seconds"),
            "cpu_seconds_all": [x["cpu_seconds"] for x in recs],
            "load_1min_before_each_run": [x["load"] for x in recs],
            "peak_mib_median": med("peak_mib"),
            "bytes_on_wire": wire,
            "bytes_per_element_pair": wire / n,
            "intersection_size": recs[0]["intersection_size"],
        }
    for base in ("privet-sum", "privet-sum-avx2", "privet-sum-native"):
        card = base.replace("-sum", "-card")
        if base in row and card in row:
            row[f"{base}_over_{card}"] = (
                row[base]["seconds_protocol_median"] / row[card]["seconds_protocol_median"]
            )
    if "openmined" in row:
        om = row["openmined"]
        ratios = {}
        for k in [s for s in systems if s.startswith("privet")]:
            ratios[k] = {
                "protocol_seconds": om["seconds_protocol_median"]
                / row[k]["seconds_protocol_median"],
                "cpu_seconds": om["cpu_seconds_median"] / row[k]["cpu_seconds_median"],
            }
        row["openmined_over_privet"] = ratios
        row["bytes_ratio_openmined_over_privet"] = (
            om["bytes_on_wire"] / row["privet-card"]["bytes_on_wire"]
        )
    out["sizes"].append(row)
print(json.dumps(out, indent=2))
