"""Summarizes bench/he/results/*.jsonl: medians over rounds, ratios TenSEAL / privet."""
import collections
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    out = sys.argv[1]
    ops = load(f"{out}/ops.jsonl")
    groups = collections.defaultdict(list)
    for r in ops:
        key = (r["log_n"], r["impl"], r.get("threads", 1))
        groups[key].append(r)
    summary = {"ops": {}, "infer": {}}
    for log_n in sorted({k[0] for k in groups}):
        seal = groups.get((log_n, "seal-via-tenseal", 1), [])
        p1 = groups.get((log_n, "privet", 1), [])
        pm = [r for k, v in groups.items() if k[0] == log_n and k[1] == "privet" and k[2] != 1 for r in v]
        if not seal or not p1:
            continue
        print(f"\nN = 2^{log_n}, moduli {p1[0]['bits']} (microseconds, median of {len(p1)} rounds)")
        print(f"{'operation':<20}{'privet 1 thread':>16}{'privet ' + str(pm[0]['threads']) + ' threads' if pm else '':>18}{'SEAL (TenSEAL)':>16}{'SEAL/privet':>13}")
        table = {}
        # Thread CPU time (single-threaded runs), when both sides recorded it.
        cpu = all("cpu_us" in r for r in p1 + seal)
        if cpu:
            print(f"{'':<20}{'':>16}{'':>18}{'':>16}{'':>13}{'CPU: privet 1t':>16}{'SEAL':>10}{'SEAL/privet':>13}")
        for op in seal[0]["us"]:
            a = statistics.median(r["us"][op] for r in p1)
            m = statistics.median(r["us"][op] for r in pm) if pm else float("nan")
            s = statistics.median(r["us"][op] for r in seal)
            table[op] = {"privet_1t": a, "privet_mt": m, "seal": s, "ratio_1t": s / a, "ratio_mt": s / m if pm else None}
            line = f"{op:<20}{a:>16.1f}{m:>18.1f}{s:>16.1f}{s / a:>12.2f}x"
            if cpu:
                ca = statistics.median(r["cpu_us"][op] for r in p1)
                cs = statistics.median(r["cpu_us"][op] for r in seal)
                table[op].update({"privet_1t_cpu": ca, "seal_cpu": cs, "ratio_1t_cpu": cs / ca})
                line += f"{ca:>16.1f}{cs:>10.1f}{cs / ca:>12.2f}x"
            print(line)
        pb = p1[0].get("ciphertext_bytes", {})
        sb = seal[0].get("ciphertext_bytes", {})
        print(f"{'ciphertext bytes':<20} privet public {pb.get('public')}, seeded {pb.get('symmetric_seeded')};"
              f" SEAL save {sb.get('public')}, TenSEAL vector {seal[0].get('tenseal_vector_bytes')}")
        summary["ops"][f"2^{log_n}"] = {"us": table, "privet_bytes": pb, "seal_bytes": sb,
                                         "tenseal_vector_bytes": seal[0].get("tenseal_vector_bytes")}
    infer = load(f"{out}/infer.jsonl")
    groups = collections.defaultdict(list)
    for r in infer:
        params = r.get("params", "")  # privet's rows carry a dict of parameters, TenSEAL's a tag
        key = (r["model"], r["mode"], r["impl"], r.get("threads", 1), params if isinstance(params, str) else "")
        groups[key].append(r)
    print("\nEncrypted inference (median over rounds)")
    print(f"{'model':<8}{'packing':<8}{'who':<34}{'ms/sample':>11}{'samples/s':>11}{'sent B/sample':>15}{'agree':>8}{'accuracy':>10}")
    for key in sorted(groups):
        rs = groups[key]
        model, mode, impl, threads, params = key
        who = impl + (f" {'1 thread' if threads == 1 else 'all threads'}" if impl == "privet" else f" ({params} params)")
        lat = statistics.median(r["latency_ms_per_sample"]["median"] for r in rs)
        thr = statistics.median(r["throughput_samples_per_s"] for r in rs)
        sent = statistics.median(r["bytes"]["sent_per_sample"] for r in rs)
        agree = rs[0].get("agreement_with_plaintext")
        acc = rs[0].get("accuracy")
        summary["infer"]["/".join(map(str, key))] = {"ms_per_sample": lat, "samples_per_s": thr, "sent_per_sample": sent,
                                                     "agreement": agree, "accuracy": acc, "rounds": len(rs)}
        print(f"{model:<8}{mode:<8}{who:<34}{lat:>11.3f}{thr:>11.1f}{sent:>15.0f}{agree if agree is not None else float('nan'):>8.4f}{acc if acc is not None else float('nan'):>10.4f}")
    machine = load(f"{out}/machine.jsonl")
    print("\nmachine:", machine)
    summary["machine"] = machine
    with open(f"{out}/summary.json", "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
