#!/usr/bin/env bash
# Installs the Debian packages sparseae builds and tests with, when any is missing. Safe to run
# again: it does nothing when everything is there. The CUDA toolkit is not a Debian package; when
# nvcc is on the PATH (or in /usr/local/cuda/bin) the cuda backend is built too.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libopenblas-openmp-dev liblapacke-dev libopenblas0-pthread
          googletest libgtest-dev libbenchmark-dev zlib1g-dev python3
          libcli11-dev  # sae's command-line parser
          clang libclang-rt-dev libomp-dev  # the fuzzers: libFuzzer, and clang's OpenMP
          gzip zstd xz-utils  # sae compress --stats sets the model beside gzip -9, zstd -19, xz -9
          chromium python3-pil  # the report rendered and its screenshot checked
          python3-dev pybind11-dev python3-numpy python3-scipy python3-pytest  # the Python package
          libhdf5-dev python3-h5py python3-anndata  # .h5ad files; h5py and anndata test them
          python3-tqdm python3-ipykernel python3-ipywidgets python3-nbclient python3-nbformat  # notebooks
          libopenmpi-dev openmpi-bin)  # data-parallel training: mpirun -np N sae train
missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  echo "ensure-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
