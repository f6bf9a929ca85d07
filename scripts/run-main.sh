#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds, and runs sae on the built-in dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/build.sh >/dev/null
"${SPARSEAE_BUILD_DIR:-build}/src/cli/sae" info
