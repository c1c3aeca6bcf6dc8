#!/usr/bin/env python3
"""Write a stand-in partitions.json for developing bench/flower_adult.py.

The real benchmark uses the partitions.json written by
`privet simulate bench/adult_fedavg.toml --out DIR --export-partitions`.
This helper only exists so the Python side can be developed and smoke-tested
before (or without) the privet binary. Same format:

    {"format_version": 1, "dataset": "<path>", "seed": S,
     "train_rows": [...], "test_rows": [...], "clients": [[...], ...]}

Indices are 0-based CSV data-row numbers (header excluded). The split is an
80/20 split of a seeded permutation; the partition is Dirichlet(alpha) label
skew over the training rows, resampled until every client has >= min_rows.
It does NOT reproduce privet's RNG stream; only the format and the scheme.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np


def dirichlet_label_skew(
    labels: np.ndarray, clients: int, alpha: float, min_rows: int, rng: np.random.Generator
) -> list[list[int]]:
    """Dirichlet(alpha) label-skew partition of positions 0..len(labels)-1."""
    classes = np.unique(labels)
    for _attempt in range(1000):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for c in classes:
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            props = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(props) * len(idx)).astype(int)[:-1]
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_rows:
            return [sorted(p) for p in parts]
    sys.exit(f"could not reach min_rows={min_rows} for {clients} clients in 1000 tries")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/adult.csv")
    ap.add_argument("--label", default="income")
    ap.add_argument("--out", required=True, help="output partitions.json path")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--min-rows", type=int, default=10)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    with open(args.data, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        li = header.index(args.label)
        y = np.array([1 if row[li].strip().startswith(">50K") else 0 for row in reader])

    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(y))
    n_test = int(round(len(y) * args.test_fraction))
    test_rows = np.sort(perm[:n_test])
    train_rows = np.sort(perm[n_test:])
    parts = dirichlet_label_skew(y[train_rows], args.clients, args.alpha, args.min_rows, rng)
    clients = [train_rows[p].tolist() for p in parts]

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(
            {
                "format_version": 1,
                "dataset": args.data,
                "seed": args.seed,
                "train_rows": train_rows.tolist(),
                "test_rows": test_rows.tolist(),
                "clients": clients,
            },
            f,
        )
    sizes = [len(c) for c in clients]
    print(
        f"wrote {args.out}: train={len(train_rows)} test={len(test_rows)} "
        f"clients={len(clients)} rows/client min={min(sizes)} max={max(sizes)}"
    )


if __name__ == "__main__":
    main()
