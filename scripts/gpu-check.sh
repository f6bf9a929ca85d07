#!/usr/bin/env bash
# The GPU check, in two halves, because the GPU machine has the CUDA toolkit and driver but none
# of Debian's -dev packages (no OpenBLAS, no GoogleTest) and no network:
#
#   scripts/gpu-check.sh bundle   here: builds for sm_90 with OpenBLAS linked statically and packs
#                                 the binaries and the few runtime libraries they need beyond
#                                 CUDA and libc into .gpu-bundle.tar.gz (git-ignored; about
#                                 15 MiB, where the unpacked 57 MiB would nearly fill the 64 MiB
#                                 that may travel)
#   scripts/gpu-check.sh run      on the GPU machine, from the repository root, with the bundle
#                                 carried: unpacks it, runs the whole test suite (cuda
#                                 instantiations included), compute-sanitizer memcheck and
#                                 racecheck over the cuda tests, sae train on both backends, and
#                                 writes $OUT/gpu-check-results.md with the logs beside it
#
# With the device tool: run `scripts/gpu-check.sh bundle` here, then
#   run(command="scripts/gpu-check.sh run", carry=[".gpu-bundle.tar.gz"], timeout_s=540)
# and commit the returned results file as bench/gpu-check-results.md.
set -uo pipefail
cd "$(dirname "$0")/.."
archive=.gpu-bundle.tar.gz

make_bundle() {
  set -e
  scripts/ensure-deps.sh
  SPARSEAE_BUILD_DIR=build-gpu scripts/build.sh -DSPARSEAE_ENABLE_CUDA=ON \
    -DSPARSEAE_OPENBLAS_STATIC=ON -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}"
  local bundle
  bundle=$(mktemp -d)
  mkdir -p "$bundle/bin" "$bundle/lib"
  cp build-gpu/tests/sparseae_tests build-gpu/src/cli/sae "$bundle/bin/"
  # Everything the binaries load that is neither CUDA nor the C/C++ runtime the GPU machine has.
  for binary in "$bundle"/bin/*; do
    ldd "$binary" | awk '/=> \// {print $3}'
  done | sort -u | grep -E 'libgfortran|libquadmath|libgomp|libz\.' | xargs -r cp -L -t "$bundle/lib"
  strip --strip-unneeded "$bundle"/bin/*
  git rev-parse HEAD >"$bundle/commit"
  tar -czf "$archive" -C "$bundle" .
  rm -rf "$bundle"
  ls -la "$archive"
}

run_checks() {
  local out=${OUT:-$PWD/gpu-check-out} bundle=/tmp/sparseae-gpu-bundle
  mkdir -p "$out" "$bundle"
  tar -xzf "$archive" -C "$bundle" || { echo "gpu-check: no $archive (run bundle first)" >&2; return 1; }
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export SAE_BINARY="$bundle/bin/sae"  # the CLI tests run this copy, not the build path
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)
  local bin=$bundle/bin results=$out/gpu-check-results.md status=0
  local cuda_filter='*cuda*:*Cuda*'
  step() {  # step NAME COMMAND...: runs it, logs to $out/NAME.log, records pass/fail
    local name=$1
    shift
    local start=$SECONDS
    "$@" >"$out/$name.log" 2>&1
    local rc=$?
    ((rc == 0)) || status=1
    printf '| %s | %s | %ss |\n' "$name" "$([[ $rc == 0 ]] && echo pass || echo "FAIL (rc $rc)")" \
      $((SECONDS - start)) >>"$results"
    return 0
  }
  {
    echo "# GPU check results"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- commit: $(cat "$bundle/commit" 2>/dev/null || echo unknown)"
    echo "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    echo
    echo "| step | result | time |"
    echo "| --- | --- | --- |"
  } >"$results"
  step sae-info "$bin/sae" info --backend cuda
  step tests-all "$bin/sparseae_tests" --gtest_brief=1
  step memcheck "${sanitizer:-compute-sanitizer}" --tool memcheck --error-exitcode 1 \
    "$bin/sparseae_tests" --gtest_filter="$cuda_filter" --gtest_brief=1
  step racecheck "${sanitizer:-compute-sanitizer}" --tool racecheck --error-exitcode 1 \
    "$bin/sparseae_tests" --gtest_filter="$cuda_filter" --gtest_brief=1
  step train-cuda "$bin/sae" train --backend cuda --epochs 5 --checkpoint /tmp/cuda.ckpt --json
  step train-cpu "$bin/sae" train --backend cpu --epochs 1 --checkpoint "" --json
  {
    echo
    echo "## Test summary"
    echo '```'
    grep -E '^\[  (PASSED|FAILED|SKIPPED) |tests? ran|^\[  FAILED' "$out/tests-all.log" | head -40
    echo '```'
    echo
    echo "## sae info --backend cuda"
    echo '```'
    cat "$out/sae-info.log"
    echo '```'
    echo
    echo "## sae train on the embedded dataset (cuda, 5 epochs; cpu, 1 epoch)"
    echo '```'
    tail -n 1 "$out/train-cuda.log" "$out/train-cpu.log"
    echo '```'
    echo
    echo "## Sanitizer summaries"
    echo '```'
    grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/memcheck.log" "$out/racecheck.log"
    echo '```'
  } >>"$results"
  cat "$results"
  return $status
}

case "${1:-}" in
  bundle) make_bundle ;;
  run) run_checks ;;
  *)
    echo "usage: scripts/gpu-check.sh bundle|run" >&2
    exit 2
    ;;
esac
