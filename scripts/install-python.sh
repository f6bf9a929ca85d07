#!/usr/bin/env bash
# Builds the Python package (the module over the library and the pure-Python sparseae around it)
# and installs it into the user's site-packages of Debian's python3 (python3 -m site
# --user-site), without network: numpy, scipy and pybind11 come from Debian packages
# (scripts/ensure-deps.sh). Then `python3 -c "import sparseae"` works from any directory.
# Arguments go to scripts/build.sh (e.g. -DSPARSEAE_ENABLE_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
python=${PYTHON:-/usr/bin/python3}
build=${SPARSEAE_BUILD_DIR:-build}
scripts/build.sh -DSPARSEAE_BUILD_PYTHON=ON "-DPython3_EXECUTABLE=$python" "$@"
site=$("$python" -m site --user-site)
mkdir -p "$site"
# Into a fresh folder beside the old one, then renamed: an interrupted install leaves the
# previous package whole.
rm -rf "$site/sparseae.new"
cp -r "$build/python/sparseae" "$site/sparseae.new"
rm -rf "$site/sparseae"
mv "$site/sparseae.new" "$site/sparseae"
(cd / && "$python" -c "import sparseae; print('sparseae installed in', sparseae.__path__[0])")
