"""Reference epsilons from Google's dp_accounting for privet-dp's agreement test.

Run by bench/dp/make_reference_grid.sh (which pins dp-accounting==0.6.0). Writes
crates/privet-dp/tests/data/dp_accounting_grid.json:

* rdp_orders: dp_accounting's DEFAULT_RDP_ORDERS;
* rdp_poisson / rdp_fixed: one step's RDP at those orders for each (q, sigma), from
  RdpAccountant with PoissonSampledDpEvent (add/remove) and SampledWithoutReplacementDpEvent
  (replace-one);
* points: for every (q, sigma, steps, delta) of the grid, the RDP epsilon and optimal order
  (improved conversion, default orders) and the PLD epsilon (PLDAccountant, default
  value_discretization_interval 1e-4), plus the PLD delta at epsilon = 1.

For q = 1 the PLD event is SelfComposedDpEvent(GaussianDpEvent(sigma), steps), which
dp_accounting analyses as one Gaussian with sigma / sqrt(steps) (privet does the same for
Poisson sampling at q = 1). Points whose PLD would need more than ~4e7 grid points
(sigma / sqrt(steps) < 0.05 at q = 1) have pld_epsilon null.
"""

import json
import math
import sys
import time

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

QS = [0.001, 0.01, 0.1, 1.0]
SIGMAS = [0.8, 1.0, 2.0, 5.0]
STEPS = [1, 10, 100, 1000, 10000]
DELTAS = [1e-5, 1e-6]
NeighborRel = dp_accounting.NeighboringRelation


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def main(out_path):
    t0 = time.time()
    orders = list(rdp_privacy_accountant.DEFAULT_RDP_ORDERS)
    rdp_poisson, rdp_fixed = [], []
    for q in QS:
        for sigma in SIGMAS:
            acc = rdp_privacy_accountant.RdpAccountant(orders=orders)
            acc.compose(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)))
            rdp_poisson.append({"q": q, "sigma": sigma, "rdp": [finite_or_none(r) for r in acc._rdp]})
            if q < 1.0:
                # q = m / n with n = 100000.
                n = 100000
                m = int(round(q * n))
                acc = rdp_privacy_accountant.RdpAccountant(
                    orders=orders, neighboring_relation=NeighborRel.REPLACE_ONE)
                acc.compose(dp_event.SampledWithoutReplacementDpEvent(
                    n, m, dp_event.GaussianDpEvent(sigma)))
                rdp_fixed.append({"q": m / n, "sigma": sigma,
                                  "rdp": [finite_or_none(r) for r in acc._rdp]})

    points = []
    for q in QS:
        for sigma in SIGMAS:
            for steps in STEPS:
                rdp = rdp_privacy_accountant.RdpAccountant(orders=orders)
                rdp.compose(dp_event.SelfComposedDpEvent(
                    dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps))
                pld = None
                if not (q == 1.0 and sigma / math.sqrt(steps) < 0.05):
                    pld = pld_privacy_accountant.PLDAccountant()
                    if q == 1.0:
                        pld.compose(dp_event.SelfComposedDpEvent(
                            dp_event.GaussianDpEvent(sigma), steps))
                    else:
                        pld.compose(dp_event.SelfComposedDpEvent(
                            dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)),
                            steps))
                for delta in DELTAS:
                    eps, order = rdp.get_epsilon_and_optimal_order(delta)
                    points.append({
                        "q": q, "sigma": sigma, "steps": steps, "delta": delta,
                        "rdp_epsilon": finite_or_none(eps), "rdp_order": float(order),
                        "pld_epsilon": None if pld is None else finite_or_none(pld.get_epsilon(delta)),
                        "pld_delta_at_epsilon_1": None if pld is None else float(pld.get_delta(1.0)),
                    })
                print(f"q={q} sigma={sigma} steps={steps} done at {time.time() - t0:.1f} s",
                      file=sys.stderr, flush=True)

    data = {
        "generator": "bench/dp/reference_grid.py",
        "dp_accounting_version": "0.6.0",
        "rdp_orders": orders,
        "rdp_poisson": rdp_poisson,
        "rdp_fixed": rdp_fixed,
        "points": points,
    }
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {len(points)} points to {out_path} in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
