"""dp_accounting timings for bench/dp/accountant_speed.sh (same cases and output format as
crates/privet-dp/examples/accountant_speed.rs): median over runs of building a fresh accountant,
composing `steps` Poisson-subsampled Gaussian steps and asking for epsilon at delta 1e-5."""

import statistics
import sys
import time

from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

CASES = [(0.01, 1.0, 10_000), (0.001, 0.8, 10_000), (0.1, 2.0, 10_000)]


def main(runs):
    for q, sigma, steps in CASES:
        event = dp_event.SelfComposedDpEvent(
            dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps)
        for name, make in (("rdp", rdp_privacy_accountant.RdpAccountant),
                           ("pld", pld_privacy_accountant.PLDAccountant)):
            times, eps = [], float("nan")
            for _ in range(runs):
                t = time.perf_counter()
                acc = make()
                acc.compose(event)
                eps = acc.get_epsilon(1e-5)
                times.append((time.perf_counter() - t) * 1e3)
            print(f"dp_accounting {name} q={q} sigma={sigma} steps={steps} epsilon={eps:.6f} "
                  f"median_ms={statistics.median(times):.3f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
