#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds, and trains the users' model
# (512-256-128-32, mirrored decoder, relu, mse) on the embedded dataset, on the GPU when one
# answers, then prints the report: backend, throughput, losses and the exact-reconstruction
# metrics on the validation rows. Extra arguments go to `sae train`. Each run writes (over the
# last one's) sae-model.ckpt here, named so that sae train does not refuse to replace its default
# file; a -o among the arguments comes later and wins.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/build.sh >/dev/null
exec "${SPARSEAE_BUILD_DIR:-build}/src/cli/sae" train -o sae-model.ckpt "$@"
