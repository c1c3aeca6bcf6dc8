"""Medians of the runs under target/bench-runs/psi/ as JSON (bench/psi/results.json)."""
import json
import re
import statistics
import sys

rundir, sizes, systems = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], sys.argv[3].split()


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
            "peak_mib_median": med("peak_mib"),
            "bytes_on_wire": wire,
            "bytes_per_element_pair": wire / n,
            "intersection_size": recs[0]["intersection_size"],
        }
    om = row["openmined"]
    ratios = {}
    for k in [s for s in systems if s.startswith("privet")]:
        ratios[k] = {
            "protocol_seconds": om["seconds_protocol_median"] / row[k]["seconds_protocol_median"],
            "cpu_seconds": om["cpu_seconds_median"] / row[k]["cpu_seconds_median"],
        }
    row["openmined_over_privet"] = ratios
    row["sum_cost_over_cardinality"] = (
        row["privet-sum"]["seconds_protocol_median"] / row["privet-card"]["seconds_protocol_median"]
    )
    row["bytes_ratio_openmined_over_privet"] = (
        row["openmined"]["bytes_on_wire"] / row["privet-card"]["bytes_on_wire"]
    )
    out["sizes"].append(row)
print(json.dumps(out, indent=2))
