#!/usr/bin/env bash
# The sanitized checks, CPU only; scripts/run-tests.sh runs both after the main suite.
#   scripts/sanitizers.sh tests   the test suite built with AddressSanitizer and UBSan (gcc) in
#                                 build-asan and run there, but for LossEvidence.* (10 losses
#                                 trained to compare their outcomes: by far the slowest test
#                                 under ASan, and no code the other training tests do not run)
#                                 and the package consumer (which links without the sanitizer
#                                 runtimes); the main build runs both
#   scripts/sanitizers.sh fuzz    each file parser's libFuzzer harness (clang, ASan + UBSan) built
#                                 in build-fuzz and run for SPARSEAE_FUZZ_SECONDS (default 20)
#                                 seconds from its seed corpus in tests/fuzz/corpus/<parser>,
#                                 with libFuzzer's seed SPARSEAE_FUZZ_SEED (default 1, so that CI
#                                 mutates alike on every run; 0 draws one, to explore further)
# With no argument, both. Any finding fails the script. A fuzzer keeps the input that broke it in
# build-fuzz/crashes/: make it a case of tests/bad_input_test.cpp and a seed of its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

# UBSan stops at the first finding, with a stack trace. LeakSanitizer (part of ASan) needs no
# suppressions: OpenBLAS and libgomp keep their buffers reachable until exit.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1

sanitized_tests() {
  # -O1: the sanitizers find the same faults, and the instrumented build compiles in about half
  # the time of -O3's: 6.4 min against 11.5 in two fresh-clone runs of the README's test command
  # on a 2-core machine (2026-12-05), where it was the longest step.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEAE_ENABLE_CUDA=OFF \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DSPARSEAE_SANITIZE=address,undefined >/dev/null
  cmake --build build-asan -j "$(nproc)" --target sparseae_tests  # and sae, which it runs
  # The tests run one at a time, most on one core: a shard per core. Idle OpenMP threads would
  # spin against the other shards' (see the README), so they wait passively.
  local shards pids=() status=0
  shards=$(nproc)
  for ((shard = 0; shard < shards; ++shard)); do
    OMP_WAIT_POLICY=passive GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$shard \
      build-asan/tests/sparseae_tests --gtest_filter='-LossEvidence.*' --gtest_brief=1 \
      --gtest_color=no >"build-asan/shard-$shard.log" 2>&1 &
    pids+=($!)
  done
  for shard in "${!pids[@]}"; do
    local log=build-asan/shard-$shard.log
    if wait "${pids[$shard]}"; then
      echo "sanitized tests, shard $shard of $shards: $(grep -E '^\[  PASSED' "$log")"
    else
      status=1
      cat "$log"
    fi
  done
  return $status
}

fuzz() {
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSPARSEAE_ENABLE_CUDA=OFF -DSPARSEAE_BUILD_TESTS=OFF -DSPARSEAE_SANITIZE=address,undefined \
    -DSPARSEAE_BUILD_FUZZERS=ON >/dev/null
  local parsers=(mtx npy npz csv checkpoint)
  cmake --build build-fuzz -j "$(nproc)" --target "${parsers[@]/#/fuzz_}"
  local seconds=${SPARSEAE_FUZZ_SECONDS:-20} seed=${SPARSEAE_FUZZ_SEED:-1}
  local crashes=$PWD/build-fuzz/crashes status=0
  mkdir -p "$crashes"
  for parser in "${parsers[@]}"; do
    # New inputs go to a scratch corpus (the first directory), not among the seeds; in memory
    # where there is a tmpfs, since every input is written to a file.
    local scratch log=build-fuzz/fuzz-$parser.log
    scratch=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
    mkdir "$scratch/corpus" "$scratch/tmp"
    if TMPDIR=$scratch/tmp "build-fuzz/tests/fuzz/fuzz_$parser" -max_total_time="$seconds" \
      -seed="$seed" -print_final_stats=1 -artifact_prefix="$crashes/$parser-" "$scratch/corpus" \
      "tests/fuzz/corpus/$parser" >"$log" 2>&1; then
      echo "fuzz_$parser: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), no finding"
    else
      status=1
      echo "fuzz_$parser: FINDING (input kept in $crashes/):"
      tail -n 40 "$log"
    fi
    rm -rf "$scratch"
  done
  return $status
}

case "${1:-all}" in
  tests) sanitized_tests ;;
  fuzz) fuzz ;;
  all)
    sanitized_tests
    fuzz
    ;;
  *)
    echo "usage: scripts/sanitizers.sh [tests|fuzz]" >&2
    exit 2
    ;;
esac
