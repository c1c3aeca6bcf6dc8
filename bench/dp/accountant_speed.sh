#!/usr/bin/env bash
# Times privet-dp's RDP and PLD accountants against Google's dp_accounting 0.6.0 on the same
# cases (10,000 Poisson-subsampled Gaussian steps), medians of RUNS runs each (default 7), and
# prints dp_accounting's time divided by privet's. Single-threaded on both sides.
#
#   bench/dp/accountant_speed.sh [RUNS]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-7}"
venv="$root/target/dp-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet dp-accounting==0.6.0
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --quiet --release -p privet-dp --example accountant_speed --manifest-path "$root/Cargo.toml"
ours="$(cargo run --quiet --release -p privet-dp --example accountant_speed --manifest-path "$root/Cargo.toml" -- "$runs")"
# numpy/scipy may start BLAS threads; pin them to one for a like-for-like comparison.
theirs="$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "$venv/bin/python" "$root/bench/dp/accountant_speed.py" "$runs")"
printf '%s\n%s\n' "$ours" "$theirs"
echo
printf '%-40s %12s %16s %8s %14s\n' "case" "privet ms" "dp_accounting ms" "ratio" "eps rel diff"
printf '%s\n%s\n' "$ours" "$theirs" | awk '
    {
        key = $2 " " $3 " " $4 " " $5
        split($7, m, "=")
        split($6, e, "=")
        if ($1 == "privet") { p[key] = m[2]; pe[key] = e[2] } else { d[key] = m[2]; de[key] = e[2] }
    }
    END {
        for (k in p) if (k in d)
            printf "%-40s %12.3f %16.3f %7.1fx %14.2e\n", k, p[k], d[k], d[k] / p[k], (pe[k] - de[k]) / de[k]
    }' | sort
