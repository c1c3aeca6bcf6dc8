"""Opacus side of bench/dp/opacus_vs_privet.sh.

Reads the encoded train/test matrices that privet's dp_bench example exported (so both sides
train on byte-identical data) and privet's JSON (hyperparameters, and the noise multiplier
privet calibrated for each target epsilon), then trains the same MLP with Opacus 1.6 DP-SGD
(Poisson sampling, same q, steps, clip C, noise multiplier sigma, SGD learning rate) and, for
context, with plain PyTorch. Prints one JSON object.

Throughput counts the examples drawn into lots during the timed training loop (data loading
included, evaluation excluded), as privet's side does.
"""

import argparse
import json
import os
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

warnings.filterwarnings("ignore")


def load(dirname, n_train, n_test, d):
    x_tr = np.fromfile(os.path.join(dirname, "x_train.f32"), dtype="<f4").reshape(n_train, d)
    y_tr = np.fromfile(os.path.join(dirname, "y_train.u32"), dtype="<u4").astype(np.int64)
    x_te = np.fromfile(os.path.join(dirname, "x_test.f32"), dtype="<f4").reshape(n_test, d)
    y_te = np.fromfile(os.path.join(dirname, "y_test.u32"), dtype="<u4").astype(np.int64)
    return torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te)


def mlp(d, hidden, out):
    layers, prev = [], d
    for h in hidden:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        prev = h
    layers.append(nn.Linear(prev, out))
    return nn.Sequential(*layers)


def criterion_for(out):
    return nn.BCEWithLogitsLoss() if out == 1 else nn.CrossEntropyLoss()


def loss_of(crit, logits, y, out):
    # One logit: shape [B] for both (Opacus's ghost-clipping criterion wrapper needs a per-sample
    # loss of shape [B]; with [B, 1] it silently trains nothing).
    return crit(logits.squeeze(1), y.float()) if out == 1 else crit(logits, y)


def accuracy(model, x, y, out):
    model.eval()
    with torch.no_grad():
        z = model(x)
        pred = (z.squeeze(1) > 0).long() if out == 1 else z.argmax(1)
    model.train()
    return float((pred == y).float().mean())


def train_opacus(meta, data, sigma, seed, mode):
    from opacus import PrivacyEngine

    x_tr, y_tr, x_te, y_te = data
    out = meta["output_units"]
    torch.manual_seed(seed)
    model = mlp(meta["features"], meta["hidden"], out)
    opt = torch.optim.SGD(model.parameters(), lr=meta["lr"])
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=meta["lot_size"])
    crit = criterion_for(out)
    engine = PrivacyEngine(accountant="prv")
    kwargs = dict(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise_multiplier=sigma,
        max_grad_norm=meta["clip"],
        poisson_sampling=True,
    )
    if mode == "ghost":
        model, opt, crit, loader = engine.make_private(criterion=crit, grad_sample_mode="ghost", **kwargs)
    else:
        model, opt, loader = engine.make_private(grad_sample_mode="hooks", **kwargs)
    assert len(loader) == meta["steps_per_epoch"], (len(loader), meta["steps_per_epoch"])
    seen = 0
    t = time.perf_counter()
    for _ in range(meta["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_of(crit, model(xb), yb, out)
            loss.backward()
            opt.step()
            seen += len(yb)
    secs = time.perf_counter() - t
    eps = engine.get_epsilon(meta["delta"])
    return seen / secs, accuracy(model, x_te, y_te, out), eps


def train_plain(meta, data, seed):
    x_tr, y_tr, x_te, y_te = data
    out = meta["output_units"]
    torch.manual_seed(seed)
    model = mlp(meta["features"], meta["hidden"], out)
    opt = torch.optim.SGD(model.parameters(), lr=meta["lr"])
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=meta["lot_size"], shuffle=True)
    crit = criterion_for(out)
    seen = 0
    t = time.perf_counter()
    for _ in range(meta["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_of(crit, model(xb), yb, out)
            loss.backward()
            opt.step()
            seen += len(yb)
    return seen / (time.perf_counter() - t), accuracy(model, x_te, y_te, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--privet", required=True, help="privet dp_bench JSON")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="hooks,ghost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = json.load(open(args.privet))
    data = load(args.data, meta["train_rows"], meta["test_rows"], meta["features"])

    plain = [train_plain(meta, data, s) for s in range(args.seeds)]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "nonprivate": {
            "accuracy": [a for _, a in plain],
            "accuracy_median": statistics.median(a for _, a in plain),
            "examples_per_second": [r for r, _ in plain],
            "examples_per_second_median": statistics.median(r for r, _ in plain),
        },
    }
    import opacus

    result["opacus"] = opacus.__version__
    for mode in args.modes.split(","):
        rows, rates = [], []
        for dp in meta["dp"]:
            runs = [train_opacus(meta, data, dp["sigma"], s, mode) for s in range(args.seeds)]
            rates += [r for r, _, _ in runs]
            rows.append(
                {
                    "epsilon_target": dp["epsilon_target"],
                    "sigma": dp["sigma"],
                    "epsilon_opacus_prv": runs[0][2],
                    "accuracy": [a for _, a, _ in runs],
                    "accuracy_median": statistics.median(a for _, a, _ in runs),
                    "examples_per_second": [r for r, _, _ in runs],
                }
            )
        result[mode] = {"dp": rows, "examples_per_second_median": statistics.median(rates)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
