#!/usr/bin/env bash
# Configures and builds sparseae into ${SPARSEAE_BUILD_DIR:-build}. The cuda backend is built when
# nvcc is found (architecture 90 unless CMAKE_CUDA_ARCHITECTURES is set in the environment);
# extra CMake arguments pass through, e.g. scripts/build.sh -DSPARSEAE_ENABLE_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
build_dir=${SPARSEAE_BUILD_DIR:-build}
arch_args=()
[[ -z "${CMAKE_CUDA_ARCHITECTURES:-}" ]] || arch_args=("-DCMAKE_CUDA_ARCHITECTURES=$CMAKE_CUDA_ARCHITECTURES")
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${arch_args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
