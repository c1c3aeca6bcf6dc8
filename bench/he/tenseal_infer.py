"""Encrypted inference with TenSEAL 0.3.18 on the weights and inputs exported from a privet model
(crates/privet-he-service/examples/he_export.rs), side by side with `privet he infer`.

Modes:
  single  - one sample per ciphertext, TenSEAL's documented approach (tutorial 1: enc_x.dot(w) + b;
            for the MLP, enc_x.mm(W) + b, square, mm): latency per sample.
  batch   - one ciphertext per feature holding every sample (the same layout as privet's batch
            packing), written with TenSEAL's vector API: throughput.
Prints one JSON line.
"""
import json
import statistics
import sys
import time

import numpy as np
import tenseal as ts


def make_context(n, bits, scale_bits, galois):
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, n, coeff_mod_bit_sizes=bits)
    ctx.global_scale = 2.0 ** scale_bits
    if galois:
        ctx.generate_galois_keys()
    return ctx


def argmax(v):
    return int(np.argmax(v))


def classify(scores, k):
    if k == 2:
        return int(scores[0] > 0)
    return argmax(scores)


def main():
    path, mode, n, bits, scale_bits, limit = sys.argv[1:7]
    n, scale_bits, limit = int(n), int(scale_bits), int(limit)
    bits = [int(b) for b in bits.split(",")]
    d = json.load(open(path))
    k = d["classes"]
    layers = d["layers"]
    x = np.array(d["x"], dtype=np.float64)[:limit]
    plain = d["plain_classes"][:limit]
    labels = (d["labels"] or [None] * len(x))[:limit]
    t0 = time.perf_counter()
    ctx = make_context(n, bits, scale_bits, galois=(mode == "single"))
    keygen_s = time.perf_counter() - t0
    dense = []
    for l in layers:
        if l["kind"] == "dense":
            w = np.array(l["weights"]).reshape(l["rows"], l["cols"])
            dense.append(("dense", w, np.array(l["bias"])))
        else:
            dense.append(("square", None, None))
    classes = []
    lat = []
    sent = received = 0
    start = time.perf_counter()
    if mode == "single":
        for row in x:
            t = time.perf_counter()
            enc = ts.ckks_vector(ctx, row.tolist())
            sent += len(enc.serialize())
            h = enc
            for kind, w, b in dense:
                if kind == "square":
                    h = h.square()
                elif w.shape[0] == 1:
                    h = h.dot(w[0].tolist()) + b.tolist()
                else:
                    h = h.mm(w.T.tolist()) + b.tolist()
            received += len(h.serialize())
            scores = h.decrypt()
            classes.append(classify(scores, k))
            lat.append((time.perf_counter() - t) * 1e3)
    else:
        slots = n // 2
        for s0 in range(0, len(x), slots):
            chunk = x[s0:s0 + slots]
            t = time.perf_counter()
            cols = [ts.ckks_vector(ctx, chunk[:, j].tolist()) for j in range(chunk.shape[1])]
            sent += sum(len(c.serialize()) for c in cols)
            h = cols
            for kind, w, b in dense:
                if kind == "square":
                    h = [c.square() for c in h]
                else:
                    out = []
                    for r in range(w.shape[0]):
                        acc = None
                        for j, c in enumerate(h):
                            term = c * float(w[r, j])
                            acc = term if acc is None else acc + term
                        out.append(acc + float(b[r]))
                    h = out
            received += sum(len(c.serialize()) for c in h)
            cols_out = [np.array(c.decrypt()[: len(chunk)]) for c in h]
            for i in range(len(chunk)):
                classes.append(classify([c[i] for c in cols_out], k))
            lat.append((time.perf_counter() - t) * 1e3 / len(chunk))
    seconds = time.perf_counter() - start
    agree = sum(int(a == b) for a, b in zip(classes, plain))
    correct = sum(int(a == b) for a, b in zip(classes, labels) if b is not None)
    print(json.dumps({
        "impl": "tenseal",
        "mode": mode,
        "n": n,
        "bits": bits,
        "scale_bits": scale_bits,
        "samples": len(x),
        "keygen_s": keygen_s,
        "latency_ms_per_sample": {"median": statistics.median(lat), "mean": statistics.mean(lat)},
        "throughput_samples_per_s": len(x) / seconds,
        "bytes": {"sent_per_sample": sent / len(x), "received_per_sample": received / len(x)},
        "agreement_with_plaintext": agree / len(x),
        "accuracy": correct / len(x) if labels and labels[0] is not None else None,
    }))


if __name__ == "__main__":
    main()
