"""Medians of the runs under target/bench-runs/psi/ as JSON (bench/psi/results.json)."""
import json
import re
import statistics
import sys

rundir, sizes, runs = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])


def peak_mib(path):
    text = open(path).read()
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return kb / 1024, secs


out = {"load": open(f"{rundir}/load.txt").read().strip().splitlines(), "sizes": []}
for n in sizes:
    row = {"rows_per_side": n, "runs": runs}
    for sysname in ["privet-card", "privet-sum", "privet-card-1core", "openmined"]:
        recs = []
        for r in range(1, runs + 1):
            base = f"{rundir}/n{n}/{sysname}-{r}"
            j = json.loads(open(base + ".json").read())
            mem, wall = peak_mib(base + ".time")
            j["peak_mib"] = mem
            j["wall_seconds"] = wall
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
            "peak_mib_median": med("peak_mib"),
            "bytes_on_wire": wire,
            "bytes_per_element_pair": wire / n,
            "intersection_size": recs[0]["intersection_size"],
        }
    om = row["openmined"]["seconds_protocol_median"]
    row["throughput_ratio_cardinality"] = om / row["privet-card"]["seconds_protocol_median"]
    row["throughput_ratio_cardinality_1core"] = om / row["privet-card-1core"]["seconds_protocol_median"]
    row["sum_cost_over_cardinality"] = (
        row["privet-sum"]["seconds_protocol_median"] / row["privet-card"]["seconds_protocol_median"]
    )
    row["bytes_ratio_openmined_over_privet"] = (
        row["openmined"]["bytes_on_wire"] / row["privet-card"]["bytes_on_wire"]
    )
    out["sizes"].append(row)
print(json.dumps(out, indent=2))
