#!/usr/bin/env bash
# The model's GPU check: builds the check with burn's wgpu backend, then runs
# it — here, or on a GPU machine that has the NVIDIA driver but no Vulkan
# loader (copy target/gpu/ there and run `scripts/gpu-check.sh run`).
#
# It prints JSON: the largest difference between the demo model's logits on
# the CPU (flex) and on the GPU for the same weights and inputs (must be
# ≤ 1e-3), and the inference and training speed of the default network
# (384² views, two per case) on both. Exit status 1 when parity fails.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
build | all)
    cargo build --release -p osteo-model --example gpu_check --features gpu-wgpu
    mkdir -p target/gpu
    cp target/release/examples/gpu_check target/gpu/
    strip target/gpu/gpu_check || true
    # The Vulkan loader (Debian's libvulkan1) travels with the check.
    cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 target/gpu/ 2>/dev/null || true
    # Headless containers: NVIDIA's Vulkan driver through its EGL library (the
    # GLX one needs an X server and is refused with "Found no drivers").
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"libEGL_nvidia.so.0","api_version":"1.3"}}\n' \
        > target/gpu/nvidia_egl_icd.json
    ;;&
run | all)
    export LD_LIBRARY_PATH="$PWD/target/gpu:${LD_LIBRARY_PATH:-}"
    if [ -z "${VK_ICD_FILENAMES:-}" ] && ldconfig -p | grep -q libEGL_nvidia; then
        export VK_ICD_FILENAMES="$PWD/target/gpu/nvidia_egl_icd.json"
    fi
    exec target/gpu/gpu_check wgpu
    ;;
*)
    echo "usage: $0 [build|run|all]" >&2
    exit 2
    ;;
esac
