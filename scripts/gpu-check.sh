#!/usr/bin/env bash
# The GPU check, in two halves, because the GPU machine has the CUDA toolkit and driver but none
# of Debian's -dev packages (no OpenBLAS, no GoogleTest) and no network:
#
#   scripts/gpu-check.sh bundle   here: builds for sm_90 with OpenBLAS linked statically and packs
#                                 the binaries and the few runtime libraries they need beyond
#                                 CUDA and libc into .gpu-bundle.tar.gz (git-ignored; 39 MiB at
#                                 commit 1fac213, within the 64 MiB that may travel, where the
#                                 unpacked 144 MiB, five binaries each with the kernels and
#                                 OpenBLAS, would not)
#   scripts/gpu-check.sh run      on the GPU machine, from the repository root, with the bundle
#                                 carried: unpacks it, runs the whole test suite (cuda
#                                 instantiations included) and sae train on both backends, then
#                                 the throughput benchmark (below), then compute-sanitizer memcheck
#                                 and racecheck over the cuda tests and the PCA benchmark (slowest
#                                 last, so a run cut short keeps the rest), and writes
#                                 $OUT/gpu-check-results.md with the logs beside it
#   scripts/gpu-check.sh bench    on the GPU machine: the throughput benchmark alone, into the same
#                                 results file: sae-bench on cuda (the users' model, 1M generated
#                                 rows, mse and poisson, batch 256/1024/4096, the plain and the
#                                 captured step; and mse at batch 1024 in fp32, tf32 and bf16,
#                                 with the layers' forward separate and fused), the PyTorch peer
#                                 (bench/torch_peer.py, eager and torch.compile, fp32, and tf32
#                                 and bf16 for mse at batch 1024) on the same rows, streamed rows
#                                 against resident ones (mse, batch 1024), and the kernels'
#                                 micro-benchmarks (bench/kernels_bench.cpp)
#
# With the device tool: run `scripts/gpu-check.sh bundle` here, then
#   run(command="scripts/gpu-check.sh run", carry=[".gpu-bundle.tar.gz"], timeout_s=540)
# (or "scripts/gpu-check.sh bench" where the device time left is short) and commit the returned
# results file as bench/gpu-check-results.md.
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
  cp build-gpu/tests/sparseae_tests build-gpu/src/cli/sae build-gpu/bench/sae_pca_bench \
    build-gpu/bench/sae-bench build-gpu/bench/kernels_bench "$bundle/bin/"
  # Everything the binaries load that is neither CUDA nor the C/C++ runtime the GPU machine has.
  for binary in "$bundle"/bin/*; do
    ldd "$binary" | awk '/=> \// {print $3}'
  done | sort -u | grep -E 'libgfortran|libquadmath|libgomp|libz\.|libbenchmark' | xargs -r cp -L -t "$bundle/lib"
  strip --strip-unneeded "$bundle"/bin/*
  git rev-parse HEAD >"$bundle/commit"
  tar -czf "$archive" -C "$bundle" .
  rm -rf "$bundle"
  ls -la "$archive"
}

run_checks() {
  local mode=$1 out=${OUT:-$PWD/gpu-check-out} bundle=/tmp/sparseae-gpu-bundle
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
  # Correctness first, then the throughput numbers, then the slow sanitizer runs and the PCA
  # benchmark: a run cut short by the device time keeps what matters most.
  if [[ $mode == all ]]; then
    step tests-all "$bin/sparseae_tests" --gtest_brief=1
    step train-cuda "$bin/sae" train --backend cuda --epochs 5 --checkpoint /tmp/cuda.ckpt --json
    step train-cuda-captured "$bin/sae" train --backend cuda --epochs 5 --step-graph on \
      --checkpoint "" --json
    step train-cpu "$bin/sae" train --backend cpu --epochs 1 --checkpoint "" --json
  fi
  # Training throughput: sae-bench on cuda writes the rows it trained on; the PyTorch peer trains
  # the users' model on them, eager and torch.compile, and prints the ratios against sae-bench.
  local rows=/tmp/sae-bench-rows.npy
  # Medians of 3 timed epochs: 26 workloads and their peers must fit one 540 s device call beside
  # the tests.
  step sae-bench "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse,poisson --batches 256,1024,4096 --steps plain,captured \
    --json "$out/sae-bench-cuda.json" --write-dense "$rows"
  # The products' precision (fp32, tf32, bf16) and the dense layers' forward (separate kernels or
  # cublasLt's epilogue) on one workload, on the same generated rows.
  step sae-bench-precision "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse --batches 1024 --precisions fp32,tf32,bf16 --steps plain,captured \
    --layer-forwards separate,fused --json "$out/sae-bench-precision.json"
  if python3 -c "import numpy, torch" 2>/dev/null; then
    step torch-peer python3 bench/torch_peer.py --data "$rows" --device cuda --epochs 3 \
      --warmup 1 --losses mse,poisson --batches 1024 --modes eager,compile \
      --json "$out/torch-peer-cuda.jsonl" --compare "$out/sae-bench-cuda.json"
    step torch-peer-precision python3 bench/torch_peer.py --data "$rows" --device cuda \
      --epochs 3 --warmup 1 --losses mse --batches 1024 --modes eager,compile \
      --precisions tf32,bf16 --json "$out/torch-peer-cuda-precision.jsonl" \
      --compare "$out/sae-bench-precision.json"
  fi
  rm -f "$rows"
  # Streamed rows (copied from page-locked host memory while the batch before computes) against
  # resident ones, side by side.
  step sae-bench-stream "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse --batches 1024 --placements resident,stream --json "$out/sae-bench-stream.json"
  step kernels-bench "$bin/kernels_bench" --backend=cuda --benchmark_min_time=0.2
  if [[ $mode == all ]]; then
    step memcheck "${sanitizer:-compute-sanitizer}" --tool memcheck --error-exitcode 1 \
      "$bin/sparseae_tests" --gtest_filter="$cuda_filter" --gtest_brief=1
    step racecheck "${sanitizer:-compute-sanitizer}" --tool racecheck --error-exitcode 1 \
      "$bin/sparseae_tests" --gtest_filter="$cuda_filter" --gtest_brief=1
    # PCA fit on 1M generated rows, cuda and cpu; the peers (scikit-learn, torch) where python has
    # them (bench/pca_peers.py skips torch without a CUDA device, and fails without numpy).
    step pca-bench "$bin/sae_pca_bench" --rows 1000000 --k 32 --repeats 3 --backend cuda
    if python3 -c "import numpy, sklearn" 2>/dev/null; then
      step pca-peers python3 bench/pca_peers.py --bench "$bin/sae_pca_bench" --rows 1000000 --k 32 \
        --repeats 3 --backends cuda,cpu
    fi
  fi
  if [[ $mode == all ]]; then
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
      echo "## sae train on the embedded dataset (cuda, 5 epochs, plain and captured; cpu, 1 epoch)"
      echo '```'
      tail -n 1 "$out/train-cuda.log" "$out/train-cuda-captured.log" "$out/train-cpu.log"
      echo '```'
      echo
      echo "## PCA fit, 1M generated rows (bench/pca_bench.cpp, bench/pca_peers.py)"
      echo '```'
      cat "$out/pca-bench.log" "$out/pca-peers.log" 2>/dev/null
      echo '```'
      echo
      echo "## Sanitizer summaries"
      echo '```'
      grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/memcheck.log" "$out/racecheck.log"
      echo '```'
    } >>"$results"
  fi
  {
    echo
    echo "## Training throughput, 1M generated rows (bench/sae_bench.cpp, bench/torch_peer.py)"
    echo '```'
    cat "$out/sae-bench.log" "$out/torch-peer.log" 2>/dev/null
    echo
    echo "Precision and layer forward (mse, batch 1024):"
    cat "$out/sae-bench-precision.log" "$out/torch-peer-precision.log" 2>/dev/null
    echo
    echo "Streamed rows against resident ones (mse, batch 1024):"
    cat "$out/sae-bench-stream.log" 2>/dev/null
    echo '```'
    echo
    echo "## Kernel micro-benchmarks (bench/kernels_bench.cpp)"
    echo '```'
    cat "$out/kernels-bench.log" 2>/dev/null
    echo '```'
  } >>"$results"
  cat "$results"
  return $status
}

case "${1:-}" in
  bundle) make_bundle ;;
  run) run_checks all ;;
  bench) run_checks bench ;;
  *)
    echo "usage: scripts/gpu-check.sh bundle|run|bench" >&2
    exit 2
    ;;
esac
