"""ServerApp: stock FedAvg over every SuperNode, with per-round wall times.

A round is timed from the entry of `configure_train` (node sampling, message
construction) to the return of `aggregate_train` (all replies received and
averaged), with `time.perf_counter`, the same way for every round. Evaluation is
off (fraction_evaluate = 0), so nothing else happens between rounds.
"""

import json
import time

import numpy as np
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

# privet's net_bench model: MLP 30 -> 32000 -> 1, 1,024,001 f32 parameters.
SHAPES = [(30, 32000), (32000,), (32000, 1), (1,)]


class TimedFedAvg(FedAvg):
    """FedAvg that records the wall time of each training round."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.round_seconds: list[float] = []
        self.round_nodes: list[int] = []
        self._t0 = 0.0

    def configure_train(self, server_round, arrays, config, grid):
        self._t0 = time.perf_counter()
        msgs = list(super().configure_train(server_round, arrays, config, grid))
        self.round_nodes.append(len(msgs))
        return msgs

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        out = super().aggregate_train(server_round, replies)
        self.round_seconds.append(time.perf_counter() - self._t0)
        errors = sum(1 for m in replies if m.has_error())
        if errors or len(replies) != self.round_nodes[-1]:
            raise RuntimeError(
                f"round {server_round}: {len(replies)} replies, {errors} errors, "
                f"{self.round_nodes[-1]} nodes sampled"
            )
        return out


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    rounds = int(cfg["num-server-rounds"])
    nodes = int(cfg["num-nodes"])
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s, dtype=np.float32) * 0.01 for s in SHAPES]
    params = sum(a.size for a in init)

    strategy = TimedFedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=nodes,
        min_available_nodes=nodes,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(init),
        num_rounds=rounds,
        timeout=3600,
    )

    # Check the task was done: after R rounds every parameter moved by R * step.
    final = result.arrays.to_numpy_ndarrays()
    drift = max(float(np.max(np.abs(f - i))) for f, i in zip(final, init))
    expected = rounds * float(cfg["step"])
    if abs(drift - expected) > 1e-4:
        raise RuntimeError(f"final drift {drift}, expected {expected}")

    out = {
        "nodes": nodes,
        "params": int(params),
        "rounds": rounds,
        "round_nodes": strategy.round_nodes,
        "round_seconds_all": strategy.round_seconds,
        "max_param_drift": drift,
    }
    path = str(cfg["timing-file"])
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    print("PRIVETBENCH", json.dumps(out))
