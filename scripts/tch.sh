#!/usr/bin/env bash
# burn's LibTorch backend (`tch`) on the libtorch that PyTorch's wheel ships:
# the fastest CPU backend measured here (docs/build.md), and an option, not
# the default — see docs/decisions.md, "The model's CPU backend".
#
#   scripts/tch.sh build   # a virtual environment with torch (the release tch
#                          # expects), then osteo-edc and the parity check with
#                          # --features cpu-tch into target/tch/release/
#   scripts/tch.sh bench   # model bench on flex and on tch (same binary), the
#                          # PyTorch reference, and the parity check (JSON)
#   scripts/tch.sh         # both
#
# The binary finds libtorch through its run path (the virtual environment's
# torch/lib): run it as target/tch/release/osteo-edc serve --ai-backend tch.
# TORCH_VENV names the virtual environment (default .torch-venv); torch comes
# from the package registry by name (about 7 GB with its CUDA libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.9.0 # torch-sys 0.22 (tch 0.22, burn-tch 0.22) is built for this release
venv=${TORCH_VENV:-.torch-venv}
python="$venv/bin/python"

ensure_torch() {
    if ! "$python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "torch==$version"
    fi
}

case "${1:-all}" in
build | all)
    ensure_torch
    lib=$("$python" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent / "lib")')
    export PATH="$(cd "$venv/bin" && pwd):$PATH" LIBTORCH_USE_PYTORCH=1
    export RUSTFLAGS="-C link-arg=-Wl,-rpath,$lib" CARGO_TARGET_DIR=target/tch
    cargo build --release -p osteo-server --features cpu-tch
    cargo build --release -p osteo-model --features cpu-tch --example gpu_check
    ;;&
bench | all)
    data=$(mktemp -d)
    trap 'rm -rf "$data"' EXIT
    threads=${THREADS:-$(nproc)}
    for backend in flex tch; do
        echo "== burn $backend, $threads threads"
        RAYON_NUM_THREADS=$threads target/tch/release/osteo-edc model bench --backend "$backend" --data-dir "$data"
    done
    echo "== PyTorch $("$python" -c 'import torch; print(torch.__version__)'), $threads threads"
    "$python" model/reference/bench.py --threads "$threads"
    echo "== parity: the demo model's logits on flex and on tch (limit 1e-3)"
    target/tch/release/examples/gpu_check tch
    ;;
build) ;;
*)
    echo "usage: scripts/tch.sh [build|bench]" >&2
    exit 2
    ;;
esac
