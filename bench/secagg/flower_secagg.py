#!/usr/bin/env python3
"""Flower 1.41 SecAgg+ round cost, measured for bench/secagg/flower_vs_privet.sh.

Runs Flower's SecAgg+ (``flwr.server.workflow.SecAggPlusWorkflow`` inside
``DefaultWorkflow(fit_workflow=...)`` on the ServerApp side, ``flwr.client.mod.secaggplus_mod``
on the ClientApp side) through Flower's simulation engine (``flwr.simulation.run_simulation``,
Ray backend, in this process), and the same harness without SecAgg ("plain": Flower's default
fit workflow, no mod), for each requested number of clients ``n``. Every client is sampled
every round; the model is one float32 vector of length ``d``; a client does no training (it
returns the parameters plus 0.01, with 100 examples, like privet's benchmark).

What is measured, per round (the first round is untimed warm-up; medians over the rest):

- **coordinator**: wall time of the round's fit workflow on the ServerApp thread
  (``SecAggPlusWorkflow.__call__`` or ``default_fit_workflow``) less the time it sleeps
  between polls for replies. The grid passed to the workflow is a thin wrapper around
  Flower's ``InMemoryGrid`` whose ``send_and_receive`` repeats Flower's own loop (push, then
  pull every ``pull_interval`` seconds until every reply is in) with timers around it, so
  Flower's behaviour is unchanged. The ServerApp thread's CPU time (``time.thread_time``) is
  reported too.
- **round wall**: wall time of the same fit workflow including the waits: what a round of
  Flower's SecAgg+ takes end to end in the simulation engine (clients run in Ray actors).
- **coordinator CPU**: the ServerApp thread's CPU time (``time.thread_time``) plus the CPU
  time of Flower's Shamir thread pool (``combine_shares`` runs ``_shamir_combine`` in a
  ``ThreadPoolExecutor``; a wrapper around ``_shamir_combine`` adds up the pool threads'
  ``thread_time``). It leaves out the simulation engine's own threads.
- **client**: a timing mod placed before ``secaggplus_mod`` in the ClientApp's mod chain
  measures the wall time of everything after it (``secaggplus_mod`` and, in the masked-input
  stage, the legacy client's ``fit``), summed over the round's four stages per client; the
  median client of the round. Its CPU time is the actor process's (``time.process_time``, so
  the Shamir thread pool is included).
- **bytes per client**: the timing mod deflates every message the client receives and sends
  with Flower's own object serialization (``InflatableObject.deflate`` over
  ``get_all_nested_objects``: the objects Flower 1.41's SuperNode pushes and pulls; the
  protobuf size from ``flwr.common.serde.message_to_proto`` is recorded as a cross-check), and
  separates out the model download (the ArrayRecords of the fit instruction).

Serialization for the byte counts happens outside the timed regions. Results go to ``--json``.

This file is imported by name (``import flower_secagg``) so that Ray pickles the ClientApp's
functions by reference; the actors import it through the PYTHONPATH Flower's Ray backend
forwards, and they append their measurements to the JSON-lines file named by the environment
variable ``FLWR_SECAGG_BENCH_LOG`` (Ray workers inherit the driver's environment).
"""

from __future__ import annotations

import os

# Must be set before flwr is imported (telemetry is read at import time and would try to
# reach the internet from inside the timed run).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

LOG_ENV = "FLWR_SECAGG_BENCH_LOG"
STEP = np.float32(0.01)  # what a client adds to every parameter
NUM_EXAMPLES = 100  # a client's reported example count (privet's benchmark uses 100 too)


# --------------------------------------------------------------------------
# Client side (runs in the Ray actors)


def _wire_bytes(msg) -> tuple[int, int, int]:
    """(deflated object bytes, protobuf bytes, deflated bytes of the ArrayRecords) of a Message."""
    from flwr.common.serde import message_to_proto
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

    deflated = sum(len(o.deflate()) for o in get_all_nested_objects(msg).values())
    proto = message_to_proto(msg).ByteSize() if msg.has_content() else 0
    arrays = 0
    if msg.has_content():
        for record in msg.content.array_records.values():
            arrays += sum(len(o.deflate()) for o in get_all_nested_objects(record).values())
    return deflated, proto, arrays


def _stage_of(msg) -> str:
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

    if msg.has_content() and RECORD_KEY_CONFIGS in msg.content.config_records:
        stage = msg.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE)
        if isinstance(stage, str):
            return stage
    return "fit"


def timing_mod(msg, ctxt, call_next):
    """Times the rest of the mod chain and records the bytes in and out (untimed)."""
    # secaggplus_mod pops keys from the incoming message: measure it before the call.
    stage = _stage_of(msg)
    in_deflated, in_proto, in_arrays = _wire_bytes(msg)
    # Process CPU time: secaggplus_mod's Shamir code runs in a thread pool of this actor.
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = call_next(msg, ctxt)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out_deflated, out_proto, out_arrays = _wire_bytes(out)
    record = {
        "node": int(msg.metadata.dst_node_id),
        "round": msg.metadata.group_id,
        "type": msg.metadata.message_type,
        "stage": stage,
        "secs": secs,
        "cpu_secs": cpu,
        "in_bytes": in_deflated,
        "in_proto_bytes": in_proto,
        "in_array_bytes": in_arrays,
        "out_bytes": out_deflated,
        "out_proto_bytes": out_proto,
        "out_array_bytes": out_arrays,
        "pid": os.getpid(),
    }
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return out


def _make_client_class():
    from flwr.client import NumPyClient

    class EchoClient(NumPyClient):
        """No training: returns the parameters moved by a small constant."""

        def fit(self, parameters, config):
            return [p + STEP for p in parameters], NUM_EXAMPLES, {}

    return EchoClient


_CLIENT_CLASS = None


def client_fn(context):
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        _CLIENT_CLASS = _make_client_class()
    return _CLIENT_CLASS().to_client()


# --------------------------------------------------------------------------
# Server side (runs on the ServerApp thread of this process)


class TimedGrid:
    """Wraps Flower's InMemoryGrid: the same send_and_receive loop, with timers."""

    def __init__(self, grid):
        if not hasattr(grid, "pull_interval"):
            raise TypeError(f"expected Flower's InMemoryGrid, got {type(grid).__name__}")
        self._grid = grid
        self.sleep_secs = 0.0
        self.push_secs = 0.0
        self.pull_secs = 0.0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        # Same logic as flwr.superlink.grid.inmemory_grid.InMemoryGrid.send_and_receive.
        self.calls += 1
        t = time.perf_counter()
        msg_ids = set(self._grid.push_messages(messages))
        self.push_secs += time.perf_counter() - t
        del messages
        end_time = time.time() + (timeout if timeout is not None else 0.0)
        ret = []
        while timeout is None or time.time() < end_time:
            t = time.perf_counter()
            res_msgs = self._grid.pull_messages(msg_ids)
            ret.extend(res_msgs)
            msg_ids.difference_update({m.metadata.reply_to_message_id for m in res_msgs})
            self.pull_secs += time.perf_counter() - t
            if len(msg_ids) == 0:
                break
            t = time.perf_counter()
            time.sleep(self._grid.pull_interval)
            self.sleep_secs += time.perf_counter() - t
        return ret


_POOL_CPU = [0.0]
_POOL_LOCK = threading.Lock()


def _install_pool_timer() -> None:
    """Counts the CPU time of the threads that run Flower's Shamir reconstruction."""
    from flwr.common.secure_aggregation.crypto import shamir

    if getattr(shamir._shamir_combine, "_bench_timed", False):
        return
    original = shamir._shamir_combine

    def timed(shares):
        c0 = time.thread_time()
        try:
            return original(shares)
        finally:
            spent = time.thread_time() - c0
            with _POOL_LOCK:
                _POOL_CPU[0] += spent

    timed._bench_timed = True
    # combine_shares looks _shamir_combine up in its module at call time.
    shamir._shamir_combine = timed


class TimedFit:
    """Wraps a fit workflow; records its wall time, sleeps and thread CPU time per round."""

    def __init__(self, inner, records: list, d: int):
        self.inner = inner
        self.records = records
        self.d = d

    def __call__(self, grid, context):
        from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD

        rnd = int(context.state.config_records[MAIN_CONFIGS_RECORD]["current_round"])
        before = _params(context.state.array_records[MAIN_PARAMS_RECORD])
        timed = TimedGrid(grid)
        with _POOL_LOCK:
            pool0 = _POOL_CPU[0]
        c0 = time.thread_time()
        t0 = time.perf_counter()
        self.inner(timed, context)
        wall = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        with _POOL_LOCK:
            pool = _POOL_CPU[0] - pool0
        after = _params(context.state.array_records[MAIN_PARAMS_RECORD])
        # Every client returns params + 0.01, so FedAvg of them is before + 0.01.
        err = float(np.max(np.abs(after - (before + STEP)))) if after.shape == before.shape else None
        self.records.append(
            {
                "round": rnd,
                "wall_secs": wall,
                "sleep_secs": timed.sleep_secs,
                "push_secs": timed.push_secs,
                "pull_secs": timed.pull_secs,
                "coordinator_secs": wall - timed.sleep_secs,
                "thread_cpu_secs": cpu,
                "shamir_pool_cpu_secs": pool,
                "coordinator_cpu_secs": cpu + pool,
                "send_and_receive_calls": timed.calls,
                "max_abs_error": err,
            }
        )


def _params(record) -> np.ndarray:
    import flwr.compat.common.recorddict_compat as compat
    from flwr.common import parameters_to_ndarrays

    arrays = parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, keep_input=True))
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64)


def run_one(module, *, n: int, d: int, rounds: int, secagg: bool, num_shares: int,
            threshold: int, clipping_range: float, quantization_range: int,
            modulus_range: int, max_weight: float, client_cpus: float, verbose: bool) -> dict:
    from flwr.client import ClientApp
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.server.workflow.default_workflows import default_fit_workflow
    from flwr.simulation import run_simulation

    _install_pool_timer()
    server_records: list[dict] = []
    log_path = Path(tempfile.mkstemp(prefix="flwr_secagg_", suffix=".jsonl")[1])
    os.environ[LOG_ENV] = str(log_path)

    app = ServerApp()

    @app.main()
    def main(grid, context):
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=n,
            min_evaluate_clients=0,
            min_available_clients=n,
            initial_parameters=ndarrays_to_parameters([np.zeros(d, dtype=np.float32)]),
        )
        ctx = LegacyContext(
            context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy
        )
        if secagg:
            inner = SecAggPlusWorkflow(
                num_shares=num_shares,
                reconstruction_threshold=threshold,
                max_weight=max_weight,
                clipping_range=clipping_range,
                quantization_range=quantization_range,
                modulus_range=modulus_range,
            )
        else:
            inner = default_fit_workflow
        DefaultWorkflow(fit_workflow=TimedFit(inner, server_records, d))(grid, ctx)

    mods = [module.timing_mod, secaggplus_mod] if secagg else [module.timing_mod]
    client_app = ClientApp(client_fn=module.client_fn, mods=mods)
    ncpu = os.cpu_count() or 1
    backend_config = {
        "client_resources": {"num_cpus": client_cpus, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": ncpu,
            "num_gpus": 0,
            "logging_level": "DEBUG" if verbose else "ERROR",
            "log_to_driver": verbose,
            "include_dashboard": False,
        },
    }
    t0 = time.perf_counter()
    try:
        run_simulation(
            server_app=app,
            client_app=client_app,
            num_supernodes=n,
            backend_config=backend_config,
            verbose_logging=verbose,
        )
    finally:
        wall = time.perf_counter() - t0
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except Exception:  # pragma: no cover - best effort
            pass
    client_records = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    log_path.unlink(missing_ok=True)
    return summarize(n, d, rounds, secagg, server_records, client_records, wall,
                     num_shares if secagg else None, threshold if secagg else None)


def summarize(n, d, rounds, secagg, server, clients, wall, num_shares, threshold) -> dict:
    server.sort(key=lambda r: r["round"])
    if [r["round"] for r in server] != list(range(1, rounds + 1)):
        raise RuntimeError(f"Flower run incomplete: rounds {[r['round'] for r in server]}")
    bad = [r for r in server if r["max_abs_error"] is None or r["max_abs_error"] > 1e-3]
    if bad:
        raise RuntimeError(f"aggregate differs from the expected mean: {bad}")
    timed = [r for r in server if r["round"] > 1]  # round 1: Ray actors start, untimed
    if not timed:
        raise RuntimeError("need at least two rounds (the first is untimed)")
    per_round: dict[int, dict[int, list[dict]]] = {}
    for c in clients:
        per_round.setdefault(int(c["round"]), {}).setdefault(c["node"], []).append(c)
    client_ms_runs, clients_sum_ms_runs, client_cpu_ms_runs, clients_sum_cpu_ms_runs = [], [], [], []
    up, down, down_model, up_proto, down_proto = [], [], [], [], []
    stage_ms: dict[str, list[float]] = {}
    expected_msgs = 4 if secagg else 1
    for r in timed:
        nodes = per_round.get(r["round"], {})
        if len(nodes) != n or any(len(v) != expected_msgs for v in nodes.values()):
            raise RuntimeError(
                f"round {r['round']}: expected {expected_msgs} messages from each of {n} "
                f"clients, got {sorted(len(v) for v in nodes.values())}"
            )
        per_client = [sum(m["secs"] for m in v) for v in nodes.values()]
        client_ms_runs.append(statistics.median(per_client) * 1e3)
        clients_sum_ms_runs.append(sum(per_client) * 1e3)
        per_client_cpu = [sum(m["cpu_secs"] for m in v) for v in nodes.values()]
        client_cpu_ms_runs.append(statistics.median(per_client_cpu) * 1e3)
        clients_sum_cpu_ms_runs.append(sum(per_client_cpu) * 1e3)
        for v in nodes.values():
            up.append(sum(m["out_bytes"] for m in v))
            down.append(sum(m["in_bytes"] for m in v))
            down_model.append(sum(m["in_array_bytes"] for m in v))
            up_proto.append(sum(m["out_proto_bytes"] for m in v))
            down_proto.append(sum(m["in_proto_bytes"] for m in v))
            for m in v:
                stage_ms.setdefault(m["stage"], []).append(m["secs"] * 1e3)
    med = statistics.median
    return {
        "n": n,
        "d": d,
        "secagg": secagg,
        "num_shares": num_shares,
        "reconstruction_threshold": threshold,
        "rounds": rounds,
        "timed_rounds": len(timed),
        "coordinator_ms_median": med(r["coordinator_secs"] for r in timed) * 1e3,
        "coordinator_ms_runs": [r["coordinator_secs"] * 1e3 for r in timed],
        "coordinator_thread_cpu_ms_median": med(r["thread_cpu_secs"] for r in timed) * 1e3,
        "coordinator_cpu_ms_median": med(r["coordinator_cpu_secs"] for r in timed) * 1e3,
        "coordinator_cpu_ms_runs": [r["coordinator_cpu_secs"] * 1e3 for r in timed],
        "round_wall_ms_median": med(r["wall_secs"] for r in timed) * 1e3,
        "round_wall_ms_runs": [r["wall_secs"] * 1e3 for r in timed],
        "round_sleep_ms_median": med(r["sleep_secs"] for r in timed) * 1e3,
        "client_ms_median": med(client_ms_runs),
        "client_ms_runs": client_ms_runs,
        "client_cpu_ms_median": med(client_cpu_ms_runs),
        "client_cpu_ms_runs": client_cpu_ms_runs,
        "busy_round_cpu_ms_median": med(
            r["coordinator_cpu_secs"] * 1e3 + c for r, c in zip(timed, clients_sum_cpu_ms_runs)
        ),
        # Every client's time in the mod chain, summed: with one Ray actor the clients run
        # one after another, so this plus the coordinator is the round's busy time.
        "clients_sum_ms_median": med(clients_sum_ms_runs),
        "busy_round_ms_median": med(
            r["coordinator_secs"] * 1e3 + c for r, c in zip(timed, clients_sum_ms_runs)
        ),
        "client_stage_ms_median": {k: med(v) for k, v in sorted(stage_ms.items())},
        "client_upload_bytes": med(up),
        "client_download_bytes": med(down),
        "client_model_download_bytes": med(down_model),
        "client_protocol_download_bytes": med(down) - med(down_model),
        "client_upload_proto_bytes": med(up_proto),
        "client_download_proto_bytes": med(down_proto),
        "max_abs_error": max(r["max_abs_error"] for r in server),
        "first_round_wall_ms": server[0]["wall_secs"] * 1e3,
        "simulation_wall_s": wall,
        "server_rounds": server,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="10,100", help="comma-separated client counts")
    ap.add_argument("--d", type=int, default=100_000, help="model length (float32)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds per run; the first is untimed")
    ap.add_argument("--modes", default="secagg,plain", help="secagg and/or plain")
    ap.add_argument("--shares", default="10:10,100:23",
                    help="num_shares per n (n:shares,...); Flower counts the client's own share")
    ap.add_argument("--thresholds", default="10:5,100:12",
                    help="reconstruction_threshold per n (n:t,...)")
    ap.add_argument("--clipping-range", type=float, default=8.0)
    ap.add_argument("--quantization-range", type=int, default=1 << 22)
    ap.add_argument("--modulus-range", type=int, default=1 << 32)
    ap.add_argument("--max-weight", type=float, default=1000.0)
    ap.add_argument("--client-cpus", type=float, default=2.0,
                    help="Ray num_cpus per ClientApp actor (Flower's default 2)")
    ap.add_argument("--json", required=True, help="output file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2 (the first round is untimed)")

    def per_n(spec: str) -> dict[int, int]:
        return {int(a): int(b) for a, b in (p.split(":") for p in spec.split(",") if p)}

    shares, thresholds = per_n(args.shares), per_n(args.thresholds)
    ns = [int(x) for x in args.n.split(",") if x]
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("secagg", "plain"):
            ap.error(f"unknown mode {m!r}")
    for n in ns:
        if "secagg" in modes and (n not in shares or n not in thresholds):
            ap.error(f"no --shares/--thresholds for n={n}")

    if not args.verbose:
        logging.getLogger("flwr").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import flower_secagg as module  # by reference, see the module docstring
    import flwr

    results = []
    for n in ns:
        for mode in modes:
            print(f"flower: n={n} d={args.d} {mode} ({args.rounds} rounds)", file=sys.stderr, flush=True)
            r = run_one(
                module, n=n, d=args.d, rounds=args.rounds, secagg=mode == "secagg",
                num_shares=shares.get(n, 0), threshold=thresholds.get(n, 0),
                clipping_range=args.clipping_range, quantization_range=args.quantization_range,
                modulus_range=args.modulus_range, max_weight=args.max_weight,
                client_cpus=args.client_cpus, verbose=args.verbose,
            )
            print(
                f"flower: n={n} {mode}: client {r['client_ms_median']:.1f} ms, coordinator "
                f"{r['coordinator_ms_median']:.1f} ms, round wall {r['round_wall_ms_median']:.1f} ms, "
                f"up {r['client_upload_bytes']:.0f} B, down {r['client_download_bytes']:.0f} B",
                file=sys.stderr, flush=True,
            )
            results.append(r)
    out = {
        "flwr_version": getattr(flwr, "__version__", None),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "client_cpus": args.client_cpus,
        "clipping_range": args.clipping_range,
        "quantization_range": args.quantization_range,
        "modulus_range": args.modulus_range,
        "max_weight": args.max_weight,
        "results": results,
    }
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
