#!/usr/bin/env bash
# burn (the release binary's `model bench`) and the PyTorch reference of the
# same network, one after the other on this machine, same sizes, same thread
# count. Not part of the build or CI. Needs a release build of the server and
# a Python with torch (PYTHON=/path/to/python, default python3):
#   cargo build --release -p osteo-server
#   python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch
#   PYTHON=../torch-venv/bin/python model/reference/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${THREADS:-$(nproc)}
python=${PYTHON:-python3}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
echo "== burn (flex), RAYON_NUM_THREADS=$threads"
RAYON_NUM_THREADS=$threads ./target/release/osteo-edc model bench --data-dir "$data" "$@"
echo "== PyTorch $("$python" -c 'import torch; print(torch.__version__)'), $threads threads"
"$python" model/reference/bench.py --threads "$threads" "$@"
