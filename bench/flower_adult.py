#!/usr/bin/env python3
"""Flower 1.41 (and plain NumPy) counterpart of privet's Adult FedAvg job.

Runs the task described in bench/README.md on the split and client partition
that privet exported (partitions.json), so both systems train on the very same
rows:

  (a) Flower's simulation engine: ``flwr.simulation.run_simulation`` with a
      ServerApp (legacy ``FedAvg`` strategy, central ``evaluate_fn``) and a
      ClientApp whose ``NumPyClient`` trains binary logistic regression in NumPy
      on the Ray backend Flower ships;
  (b) a framework-free NumPy FedAvg loop with the same hyperparameters.

Both use the same local-SGD and evaluation code (``local_sgd``/``evaluate``
below). Results go to ``--json``.

This file is also imported by name (``import flower_adult``) so that Ray
pickles the client functions by reference instead of by value; the actors
import it via the PYTHONPATH that Flower's Ray backend forwards.
"""

from __future__ import annotations

import os

# Must be set before flwr is imported (telemetry flag is read at import time).
# Telemetry would try to reach the internet from inside the timed run.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray prints a FutureWarning about this on every start otherwise.
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import argparse
import csv
import json
import logging
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hr_per_week"]
LABEL = "income"
DTYPE = np.float32


# --------------------------------------------------------------------------
# Data


def resolve_dataset(dataset: str, partitions_path: Path, override: str | None) -> Path:
    """Find the CSV named in partitions.json (it is relative to where privet ran)."""
    if override:
        return Path(override)
    p = Path(dataset)
    if p.is_absolute():
        return p
    repo_root = Path(__file__).resolve().parent.parent
    for base in (Path.cwd(), repo_root, partitions_path.parent):
        if (base / p).is_file():
            return base / p
    return repo_root / p


def load_encoded(csv_path: Path, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read adult.csv and encode every row with statistics fitted on train_rows.

    Numeric columns: standardised with the training mean and population std.
    Other non-label columns: one-hot over the categories seen in the training
    rows (sorted); unseen categories encode as all zeros. Label: 1 for '>50K'.
    Returns X (n_rows, d) float32, y (n_rows,) float32, feature names.
    """
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = [[v.strip() for v in r] for r in reader if r]
    n = len(rows)
    col = {name: i for i, name in enumerate(header)}
    categorical = [h for h in header if h != LABEL and h not in NUMERIC]

    y = np.fromiter((r[col[LABEL]].startswith(">50K") for r in rows), dtype=DTYPE, count=n)

    blocks: list[np.ndarray] = []
    names: list[str] = []
    train_set = train_rows.tolist()
    for name in NUMERIC:
        v = np.fromiter((float(r[col[name]]) for r in rows), dtype=np.float64, count=n)
        tr = v[train_rows]
        mean = tr.mean()
        std = tr.std()  # population std (ddof=0)
        if std == 0.0:
            std = 1.0
        blocks.append(((v - mean) / std)[:, None])
        names.append(name)
    for name in categorical:
        j = col[name]
        cats = sorted({rows[i][j] for i in train_set})
        index = {c: k for k, c in enumerate(cats)}
        codes = np.fromiter((index.get(r[j], -1) for r in rows), dtype=np.int64, count=n)
        onehot = np.zeros((n, len(cats)), dtype=np.float64)
        seen = codes >= 0
        onehot[np.flatnonzero(seen), codes[seen]] = 1.0
        blocks.append(onehot)
        names.extend(f"{name}={c}" for c in cats)
    X = np.hstack(blocks).astype(DTYPE)
    return X, y, names


# --------------------------------------------------------------------------
# Model: binary logistic regression, plain minibatch SGD (shared by Flower and NumPy)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def bce_with_logits(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def local_sgd(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Minibatch SGD on mean BCE; reshuffles each epoch. Returns w, b, mean batch loss."""
    w = np.array(w, dtype=DTYPE, copy=True)
    b = np.array(b, dtype=DTYPE, copy=True)
    n = len(y)
    lr32 = DTYPE(lr)
    loss_sum, batches = 0.0, 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            xb, yb = X[idx], y[idx]
            z = xb @ w + b[0]
            g = (sigmoid(z) - yb) / DTYPE(len(idx))
            w -= lr32 * (xb.T @ g)
            b -= lr32 * g.sum(dtype=DTYPE)
            loss_sum += bce_with_logits(z, yb)
            batches += 1
    return w, b, loss_sum / max(batches, 1)


def evaluate(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Return (loss, accuracy) on X, y."""
    z = X @ np.asarray(w, dtype=DTYPE) + DTYPE(np.asarray(b).reshape(-1)[0])
    acc = float(np.mean((z >= 0) == (y >= 0.5)))
    return bce_with_logits(z, y), acc


def client_rng(seed: int, rnd: int, client: int) -> np.random.Generator:
    """Per (round, client) shuffling stream, identical for Flower and NumPy."""
    return np.random.default_rng([seed, rnd, client])


def steady_median(round_seconds: list[float], skip: int = 2) -> float | None:
    tail = round_seconds[skip:]
    return statistics.median(tail) if tail else None


# --------------------------------------------------------------------------
# (b) Plain NumPy FedAvg


def run_numpy(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    clients: list[np.ndarray],
    Xte: np.ndarray,
    yte: np.ndarray,
    *,
    rounds: int,
    per_round: int,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    selection: list[list[int]] | None = None,
) -> dict:
    """selection: the clients of each round as privet sampled them (partitions.json "rounds");
    when given, the loop trains exactly those clients, so its accuracy is comparable run by run."""
    d = Xtr.shape[1]
    w = np.zeros(d, dtype=DTYPE)
    b = np.zeros(1, dtype=DTYPE)
    rng = np.random.default_rng(seed)
    # Materialise client shards up front (that is "data loading", not training).
    shards = [(Xtr[c], ytr[c]) for c in clients]
    per_round_s, train_s, accs, losses, train_losses = [], [], [], [], []
    t0 = time.perf_counter()
    for rnd in range(1, rounds + 1):
        r0 = time.perf_counter()
        if selection is not None:
            picked = np.asarray(selection[rnd - 1], dtype=np.int64)
        else:
            picked = rng.choice(len(shards), size=per_round, replace=False)
        acc_w = np.zeros(d, dtype=np.float64)
        acc_b = np.zeros(1, dtype=np.float64)
        total, tl = 0, 0.0
        for k in picked:
            Xc, yc = shards[k]
            wk, bk, lk = local_sgd(
                Xc, yc, w, b, epochs=epochs, batch_size=batch_size, lr=lr,
                rng=client_rng(seed, rnd, int(k)),
            )
            n = len(yc)
            acc_w += n * wk
            acc_b += n * bk
            total += n
            tl += n * lk
        w = (acc_w / total).astype(DTYPE)
        b = (acc_b / total).astype(DTYPE)
        r1 = time.perf_counter()
        loss, acc = evaluate(Xte, yte, w, b)
        r2 = time.perf_counter()
        per_round_s.append(r2 - r0)
        train_s.append(r1 - r0)
        accs.append(acc)
        losses.append(loss)
        train_losses.append(tl / total)
    total_s = time.perf_counter() - t0
    return {
        "total_seconds": total_s,
        "round_seconds": per_round_s,
        "train_aggregate_seconds": train_s,
        "steady_round_seconds": steady_median(per_round_s),
        "mean_round_seconds": total_s / rounds,
        "test_accuracy": accs,
        "test_loss": losses,
        "train_loss": train_losses,
        "final_accuracy": accs[-1],
        "final_loss": losses[-1],
    }


# --------------------------------------------------------------------------
# (a) Flower. Everything below `client_fn` runs inside Ray actor processes.

_ACTOR_CACHE: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _actor_data(npz_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load the encoded training matrix once per actor process."""
    hit = _ACTOR_CACHE.get(npz_path)
    if hit is None:
        with np.load(npz_path) as z:
            hit = (z["X"], z["y"], z["offsets"])
        _ACTOR_CACHE[npz_path] = hit
    return hit


def _make_numpy_client_class():
    from flwr.client import NumPyClient

    class LogRegClient(NumPyClient):
        def __init__(self, X: np.ndarray, y: np.ndarray, pid: int, seed: int) -> None:
            self.X, self.y, self.pid, self.seed = X, y, pid, seed

        def get_parameters(self, config):
            return [np.zeros(self.X.shape[1], dtype=DTYPE), np.zeros(1, dtype=DTYPE)]

        def fit(self, parameters, config):
            w, b = parameters
            rnd = int(config["server_round"])
            w, b, loss = local_sgd(
                self.X, self.y, w, b,
                epochs=int(config["epochs"]),
                batch_size=int(config["batch_size"]),
                lr=float(config["lr"]),
                rng=client_rng(self.seed, rnd, self.pid),
            )
            return [w, b], len(self.y), {"train_loss": loss}

    return LogRegClient


_CLIENT_CLASS = None


def client_fn(cfg: dict, context):
    """ClientApp factory (bound to cfg with functools.partial)."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        _CLIENT_CLASS = _make_numpy_client_class()
    pid = int(context.node_config["partition-id"])
    X, y, off = _actor_data(cfg["npz"])
    lo, hi = int(off[pid]), int(off[pid + 1])
    return _CLIENT_CLASS(X[lo:hi], y[lo:hi], pid, int(cfg["seed"])).to_client()


def run_flower(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    clients: list[np.ndarray],
    Xte: np.ndarray,
    yte: np.ndarray,
    *,
    rounds: int,
    per_round: int,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    cpus_per_client: float,
    verbose: bool,
    module,
) -> dict:
    import flwr
    from flwr.client import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    if not verbose:
        logging.getLogger("flwr").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")

    num_clients = len(clients)
    d = Xtr.shape[1]

    # Client shards, laid out contiguously so an actor slices them without copies.
    tmp = tempfile.mkdtemp(prefix="flower_adult_")
    npz = os.path.join(tmp, "clients.npz")
    order = np.concatenate(clients)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clients])]).astype(np.int64)
    np.savez(npz, X=Xtr[order], y=ytr[order], offsets=offsets)

    evals: list[tuple[int, float, float, float]] = []  # (round, t, loss, acc)

    def evaluate_fn(server_round, parameters, config):
        loss, acc = evaluate(Xte, yte, parameters[0], parameters[1])
        evals.append((server_round, time.perf_counter(), loss, acc))
        return loss, {"accuracy": acc}

    def fit_config(server_round: int):
        return {"server_round": server_round, "epochs": epochs, "batch_size": batch_size, "lr": lr}

    def fit_metrics(results):
        total = sum(n for n, _ in results)
        return {"train_loss": sum(n * m["train_loss"] for n, m in results) / max(total, 1)}

    def server_fn(context):
        strategy = FedAvg(
            fraction_fit=per_round / num_clients,
            fraction_evaluate=0.0,
            min_fit_clients=per_round,
            min_evaluate_clients=0,
            min_available_clients=num_clients,
            evaluate_fn=evaluate_fn,
            on_fit_config_fn=fit_config,
            fit_metrics_aggregation_fn=fit_metrics,
            initial_parameters=ndarrays_to_parameters(
                [np.zeros(d, dtype=DTYPE), np.zeros(1, dtype=DTYPE)]
            ),
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    server_app = ServerApp(server_fn=server_fn)
    # Reference the function through the importable module so Ray pickles it by
    # reference (by value it would drag this module's globals along).
    client_app = ClientApp(client_fn=partial(module.client_fn, {"npz": npz, "seed": seed}))

    ncpu = os.cpu_count() or 1
    backend_config = {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": ncpu,
            "num_gpus": 0,
            "logging_level": "DEBUG" if verbose else "ERROR",
            "log_to_driver": verbose,
            "include_dashboard": False,
        },
    }
    random.seed(seed)  # Flower's SimpleClientManager samples with `random`
    t0 = time.perf_counter()
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_clients,
            backend_config=backend_config,
            verbose_logging=verbose,
        )
    finally:
        t1 = time.perf_counter()
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except Exception:  # pragma: no cover - best effort
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    t2 = time.perf_counter()

    evals.sort(key=lambda e: e[0])
    rounds_seen = [e[0] for e in evals]
    if rounds_seen != list(range(0, rounds + 1)):
        raise RuntimeError(f"Flower run incomplete: central evaluations for rounds {rounds_seen}")
    ts = [e[1] for e in evals]
    round_s = [ts[i] - ts[i - 1] for i in range(1, len(ts))]
    return {
        "wall_seconds": t1 - t0,
        "wall_seconds_incl_shutdown": t2 - t0,
        # Flower evaluates the initial parameters (round 0) before the Ray backend
        # is up, so Ray start + actor creation land in round 1.
        "round0_eval_at_seconds": ts[0] - t0,
        "first_round_seconds": round_s[0] if round_s else None,
        "rounds_seconds": ts[-1] - ts[0],  # round-0 evaluation -> last evaluation
        "teardown_seconds": t1 - ts[-1],  # last evaluation -> run_simulation returns
        "round_timestamps": [t - t0 for t in ts],
        "round_seconds": round_s,
        "steady_round_seconds": steady_median(round_s),
        "test_accuracy": [e[3] for e in evals[1:]],
        "test_loss": [e[2] for e in evals[1:]],
        "initial_accuracy": evals[0][3],
        "final_accuracy": evals[-1][3],
        "final_loss": evals[-1][2],
        "cpus_per_client": cpus_per_client,
        "ray_num_cpus": ncpu,
        "flwr_version": flwr.__version__ if hasattr(flwr, "__version__") else None,
    }


# --------------------------------------------------------------------------


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "numpy": np.__version__}
    for pkg in ("flwr", "ray"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Flower 1.41 / NumPy FedAvg on Adult (privet benchmark)")
    ap.add_argument("--partitions", required=True, help="partitions.json exported by privet")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients-per-round", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--data", default=None, help="override the CSV path named in partitions.json")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--cpus-per-client", type=float, default=1.0,
                    help="Ray num_cpus per ClientApp actor (1 => one actor per core)")
    ap.add_argument("--skip-flower", action="store_true")
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="show Flower/Ray logs")
    args = ap.parse_args()

    t_start = time.perf_counter()
    part_path = Path(args.partitions)
    with open(part_path) as f:
        part = json.load(f)
    if part.get("format_version") != 1:
        sys.exit(f"unsupported partitions format_version {part.get('format_version')!r}")
    csv_path = resolve_dataset(part["dataset"], part_path, args.data)
    train_rows = np.asarray(part["train_rows"], dtype=np.int64)
    test_rows = np.asarray(part["test_rows"], dtype=np.int64)

    X, y, names = load_encoded(csv_path, train_rows)
    # Client shards as positions into the training matrix.
    pos = np.full(len(y), -1, dtype=np.int64)
    pos[train_rows] = np.arange(len(train_rows))
    clients = [pos[np.asarray(c, dtype=np.int64)] for c in part["clients"]]
    if any((c < 0).any() for c in clients):
        sys.exit("partitions.json: a client row is not in train_rows")
    Xtr, ytr = X[train_rows], y[train_rows]
    Xte, yte = X[test_rows], y[test_rows]
    load_s = time.perf_counter() - t_start

    hp = dict(rounds=args.rounds, per_round=args.clients_per_round, seed=args.seed,
              epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    result: dict = {
        "format_version": 1,
        "partitions": str(part_path),
        "dataset": str(csv_path),
        "partition_seed": part.get("seed"),
        "seed": args.seed,
        "num_clients": len(clients),
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "features": len(names),
        "hyperparameters": {
            "rounds": args.rounds, "clients_per_round": args.clients_per_round,
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        },
        "load_seconds": load_s,
        "versions": versions(),
        "cpu_count": os.cpu_count(),
    }

    # NumPy first: it must not share the machine with Ray's processes.
    if not args.skip_numpy:
        result["numpy"] = run_numpy(Xtr, ytr, clients, Xte, yte, **hp, selection=part.get("rounds"))
        result["numpy"]["same_clients_as_privet"] = part.get("rounds") is not None
        r = result["numpy"]
        print(f"numpy : {args.rounds} rounds in {r['total_seconds']:.4f}s "
              f"(steady {r['steady_round_seconds'] * 1e3:.2f} ms/round), "
              f"final accuracy {r['final_accuracy']:.4f}", flush=True)

    if not args.skip_flower:
        if __name__ == "__main__":
            import flower_adult as module  # self, by name: see run_flower
        else:
            module = sys.modules[__name__]
        result["flower"] = run_flower(
            Xtr, ytr, clients, Xte, yte, **hp,
            cpus_per_client=args.cpus_per_client, verbose=args.verbose, module=module,
        )
        r = result["flower"]
        print(f"flower: run_simulation {r['wall_seconds']:.2f}s "
              f"(round 1 incl. Ray start {r['first_round_seconds']:.2f}s, teardown "
              f"{r['teardown_seconds']:.2f}s, steady {r['steady_round_seconds'] * 1e3:.1f} ms/round), "
              f"final accuracy {r['final_accuracy']:.4f}", flush=True)

    result["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result["script_seconds"] = time.perf_counter() - t_start
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
