#!/usr/bin/env bash
# Regenerates crates/privet-dp/tests/data/dp_accounting_grid.json from Google's dp_accounting.
# Creates (or reuses) a virtual environment in target/dp-venv with dp-accounting==0.6.0.
# Takes about a minute on one core.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/dp-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet dp-accounting==0.6.0
"$venv/bin/python" -c 'import importlib.metadata as m; v = m.version("dp-accounting"); assert v == "0.6.0", v'
"$venv/bin/python" "$root/bench/dp/reference_grid.py" "$root/crates/privet-dp/tests/data/dp_accounting_grid.json"
