#!/usr/bin/env bash
# The whole test suite: installs missing Debian packages, builds (cuda backend too when nvcc is
# found), and runs every test with ctest. The cuda instantiations skip, saying why, where no
# device answers. Then the sanitized checks (scripts/sanitizers.sh): the cpu tests again under
# AddressSanitizer and UBSan, and each file parser's fuzzer for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/build.sh "$@"
ctest --test-dir "${SPARSEAE_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
scripts/sanitizers.sh
