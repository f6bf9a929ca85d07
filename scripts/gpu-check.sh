#!/usr/bin/env bash
# The GPU check, in two halves, because the GPU machine has the CUDA toolkit and driver but none
# of Debian's -dev packages (no OpenBLAS, no GoogleTest) and no network:
#
#   scripts/gpu-check.sh bundle     here: builds for sm_90 with OpenBLAS linked statically and
#                                   packs the binaries and the few runtime libraries they need
#                                   beyond CUDA and libc into .gpu-bundle.tar.gz (git-ignored; 39
#                                   MiB at commit 1fac213, within the 64 MiB that may travel, where
#                                   the unpacked 144 MiB, five binaries each with the kernels and
#                                   OpenBLAS, would not; HDF5 and the libraries it loads add 8.1
#                                   MiB packed, measured alone)
#   scripts/gpu-check.sh run        on the GPU machine, from the repository root, with the bundle
#                                   carried: that every library resolves, the cuda tests, NCCL on
#                                   one rank, sae train on both backends, compute-sanitizer
#                                   memcheck and racecheck on the project's own kernels, the
#                                   throughput benchmark (sae-bench on cuda: the users' model, 1M
#                                   generated rows, mse and poisson, batch 256/1024/4096, the plain
#                                   and the captured step; mse at batch 1024 in fp32, tf32 and bf16
#                                   with the layers' forward separate and fused; streamed rows
#                                   against resident ones), the kernels' micro-benchmarks, the PCA
#                                   benchmark, and last the rest of the test suite
#   scripts/gpu-check.sh bench      on the GPU machine: the throughput benchmarks of run alone
#   scripts/gpu-check.sh run-peers  on the GPU machine, as a second call: the PyTorch peers
#                                   (bench/torch_peer.py, eager and torch.compile, fp32, and tf32
#                                   and bf16 for mse at batch 1024) beside sae-bench on the same
#                                   rows, and the PCA peers (bench/pca_peers.py); apart from run
#                                   because torch.compile's four workloads alone take minutes
#   scripts/gpu-check.sh dry-run [run|bench|run-peers]
#                                   here, without a GPU or a bundle: the same steps with each
#                                   command replaced by a pause of GPU_CHECK_FAKE_STEP_S seconds
#                                   (default 0.2) that creates the files it names under the output
#                                   folder; tests/gpu_check_dry_run_test.sh runs it to show that at
#                                   most 8 files come back and that the deadline holds
#
# What comes back from a device call is at most 8 files, so the output folder ($OUT, else
# gpu-check-out/) holds only: gpu-check-results.md (a table row per step, printed and appended as
# the step ends, so that a run cut short keeps its summary), gpu-check-logs.tar.gz (every step's
# log, packed again after each step) and the benchmarks' JSON results (3 files in each mode). The
# last row counts those files.
#
# Time: every step runs under `timeout` for its own limit or the time left before the deadline,
# GPU_CHECK_DEADLINE_S seconds after the script starts (default 500: one device call of
# timeout_s=540 less the time to pack the logs and write the details), whichever is shorter; a
# step that would start with less than GPU_CHECK_MIN_STEP_S seconds left (default 10) is recorded
# as skipped. GPU_CHECK_STEPS=name,name runs only the steps named (a second call for what the
# first skipped).
#
# With the device tool: run `scripts/gpu-check.sh bundle` here, then
#   run(command="scripts/gpu-check.sh run", carry=[".gpu-bundle.tar.gz"], timeout_s=540)
# and, as a second call, the same with run-peers; commit each results file under bench/
# (gpu-check-results.md, gpu-check-peers.md).
set -uo pipefail
cd "$(dirname "$0")/.."
self=$PWD/scripts/gpu-check.sh
archive=.gpu-bundle.tar.gz
bundle_binaries=(sparseae_tests sae sae_pca_bench sae-bench kernels_bench)

# The libraries of the binaries that the bundle carries, one path a line: the Fortran and OpenMP
# runtimes, zlib, Google Benchmark, and HDF5 (.h5ad) with every library it loads (Debian's build
# brings curl, TLS and Kerberos for its S3 driver), which a machine without Debian's packages
# lacks; not the C and C++ runtime, which the GPU machine has.
bundled_libraries() {
  local libraries
  libraries=$(for binary in "$@"; do ldd "$binary" | awk '/=> \// {print $3}'; done | sort -u)
  {
    grep -E 'libgfortran|libquadmath|libgomp|libz\.|libbenchmark|libhdf5' <<<"$libraries" || true
    grep libhdf5 <<<"$libraries" | xargs -r ldd | awk '/=> \// {print $3}' |
      grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s)\.so' || true
  } | sort -u
}

make_bundle() {
  set -e
  scripts/ensure-deps.sh
  # Without MPI: the GPU machine has no Open MPI, whose mpirun, daemons and plugins do not travel
  # in a bundle, and its one GPU could not hold two NCCL ranks anyway. NCCL is linked (PyTorch's
  # wheels bring libnccl where the machine lacks it) and runs as one rank (the nccl step);
  # `ctest -L mpi` runs the data-parallel tests on cpu in CI.
  SPARSEAE_BUILD_DIR=build-gpu scripts/build.sh -DSPARSEAE_ENABLE_CUDA=ON -DSPARSEAE_WITH_MPI=OFF \
    -DSPARSEAE_OPENBLAS_STATIC=ON -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}"
  local bundle
  bundle=$(mktemp -d)
  mkdir -p "$bundle/bin" "$bundle/lib"
  cp build-gpu/tests/sparseae_tests build-gpu/src/cli/sae build-gpu/bench/sae_pca_bench \
    build-gpu/bench/sae-bench build-gpu/bench/kernels_bench "$bundle/bin/"
  # Everything the binaries load that is neither CUDA nor the C/C++ runtime the GPU machine has.
  bundled_libraries "$bundle"/bin/* | xargs -r cp -L -t "$bundle/lib"
  strip --strip-unneeded "$bundle"/bin/*
  git rev-parse HEAD >"$bundle/commit"
  tar -czf "$archive" -C "$bundle" .
  rm -rf "$bundle"
  ls -la "$archive"
}

# Each binary's libraries that the loader cannot find, one "binary: library" a line; fails if any.
unresolved_libraries() {
  local binary missing=0
  for binary in "$@"; do
    while read -r library; do
      echo "$(basename "$binary"): $library"
      missing=1
    done < <(ldd "$binary" 2>&1 | awk '/not found/ {print $1}')
  done
  return $missing
}

# The library folders of the CUDA wheels that PyTorch depends on (nvidia/cublas/lib, or
# nvidia/cu13/lib from CUDA 13 on), joined by ':'.
pytorch_cuda_library_path() {
  local site folder path=""
  while read -r site; do
    for folder in "$site"/nvidia/*/lib; do
      [[ -d $folder ]] && path+="${path:+:}$folder"
    done
  done < <(python3 -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null)
  echo "$path"
}

# Runs one mode's steps. Globals for the step functions: dry_run, out, work, bin, results,
# deadline, min_step_s and failed (set by any step that fails).
run_checks() {
  local mode=$1
  dry_run=${2:-0}
  out=${OUT:-$PWD/gpu-check-out}
  work=$(mktemp -d -t sparseae-gpu-check.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  results=$out/gpu-check-results.md
  deadline=${GPU_CHECK_DEADLINE_S:-500}
  min_step_s=${GPU_CHECK_MIN_STEP_S:-10}
  failed=0
  mkdir -p "$out" "$work/logs"
  if ((dry_run)); then
    # Stand-ins that ldd can read, so that the library check runs for real: copies, which a
    # fake step naming them cannot harm the original through.
    bin=$work/bin
    mkdir -p "$bin"
    for name in "${bundle_binaries[@]}"; do cp "$(command -v bash)" "$bin/$name"; done
    echo "dry run" >"$work/commit"
  else
    bin=$work/bundle/bin
    mkdir -p "$work/bundle"
    tar -xzf "$archive" -C "$work/bundle" || {
      echo "gpu-check: no $archive (run scripts/gpu-check.sh bundle first)" >&2
      return 1
    }
    cp "$work/bundle/commit" "$work/commit"
    export LD_LIBRARY_PATH="$work/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  export SAE_BINARY="$bin/sae" # the CLI tests run this copy, not the build path
  {
    echo "# GPU check results ($mode$( ((dry_run)) && echo ', dry run'))"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- commit: $(cat "$work/commit")"
    echo "- device: $(device_name)"
    echo "- deadline: ${deadline}s after the start; the logs are in gpu-check-logs.tar.gz"
    echo
    echo "| step | result | time |"
    echo "| --- | --- | --- |"
  } >"$results"
  cat "$results"
  check_libraries
  case $mode in
    run) plan_run ;;
    bench) plan_bench ;;
    run-peers) plan_peers ;;
  esac
  # Counted before the details and the last packing, which add no file.
  local files
  files=$(find "$out" -type f | wc -l)
  if ((files <= 8)); then
    record returned-files "pass ($files files in $out, at most 8 come back)" 0
  else
    record returned-files "FAIL ($files files in $out; only 8 come back)" 0
    failed=1
  fi
  write_details
  pack_logs
  return $failed
}

device_name() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1
  else
    echo "none (no nvidia-smi)"
  fi
}

# record NAME RESULT SECONDS: one row of the table, printed and appended at once.
record() {
  printf '| %s | %s | %ss |\n' "$1" "$2" "$3" | tee -a "$results"
}

pack_logs() {
  cp "$results" "$work/logs/"
  # Written beside and then renamed, so that a run cut during the packing keeps the last archive.
  tar -czf "$work/logs.tar.gz" -C "$work" logs && mv -f "$work/logs.tar.gz" "$out/gpu-check-logs.tar.gz"
}

asked_for() {
  [[ -z ${GPU_CHECK_STEPS:-} || ",$GPU_CHECK_STEPS," == *",$1,"* ]]
}

# step NAME LIMIT_S COMMAND...: runs the command under timeout, its output in logs/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  asked_for "$name" || return 0
  local left=$((deadline - SECONDS))
  if ((left < min_step_s)); then
    record "$name" "skipped (${left}s left before the deadline)" 0
    return 0
  fi
  ((limit <= left)) || limit=$left
  local start=$SECONDS rc result
  if ((dry_run)); then
    timeout --kill-after=5 "$limit" "$self" fake-step "$out" "$work" "$@" >"$work/logs/$name.log" 2>&1
  else
    timeout --kill-after=5 "$limit" "$@" >"$work/logs/$name.log" 2>&1
  fi
  rc=$?
  case $rc in
    0) result=pass ;;
    124 | 137) result="TIMEOUT (stopped after its limit of ${limit}s)" ;;
    *) result="FAIL (rc $rc)" ;;
  esac
  ((rc == 0)) || failed=1
  record "$name" "$result" $((SECONDS - start))
  pack_logs
}

# The first step, in this shell since it sets LD_LIBRARY_PATH for the others: every library that
# the binaries need must resolve, else the CUDA libraries of PyTorch's wheels are tried.
check_libraries() {
  asked_for libraries || return 0
  local log=$work/logs/libraries.log result=pass
  if ! unresolved_libraries "$bin"/* >"$log" 2>&1; then
    local fallback
    fallback=$(pytorch_cuda_library_path)
    echo "not found above; trying PyTorch's CUDA libraries: ${fallback:-none found}" >>"$log"
    if [[ -n $fallback ]]; then
      export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$fallback"
      unresolved_libraries "$bin"/* >>"$log" 2>&1 && result="pass (with PyTorch's CUDA libraries)"
    fi
    if [[ $result == pass ]]; then
      result="FAIL (not found: $(awk '/: / && !/trying/ {print $2}' "$log" | sort -u | tr '\n' ' '))"
      failed=1
    fi
  fi
  record libraries "$result" 0
  pack_logs
}

# The cases ctest labels gpu, read from tests/CMakeLists.txt so that the two lists stay one.
gpu_test_filter() {
  sed -n '/^set(SPARSEAE_GPU_TESTS/{n;s/^ *"\(.*\)")$/\1/p}' tests/CMakeLists.txt
}

# The cuda cases that run only the project's kernels (kernels/), for compute-sanitizer: no
# cuBLAS, cuSOLVER or cuSPARSE, whose kernels are not ours to fix, and whose SpMM racecheck
# reports as races by design (the cuSPARSE documentation says so). The captured spmm runs
# kernels/csr_spmm.cu.
own_kernel_filter() {
  local suite filter=""
  for suite in Accumulate Forward Backward ColumnSums Gather CsrToDense Optimizer Penalty \
    SumOfSquares Permutation Loss HeadLoss LatentQuantize LatentRate TopK BatchTopK \
    LatentThreshold AuxK UnitNorm ScaleValues; do
    filter+="Backends/${suite}Conformance.*/cuda:"
  done
  echo "${filter}Backends/LibrarySizeOps.*/cuda:Backends/CapturedOps.*/cuda:Backends/SpmmConformance.CapturedReplays*/cuda"
}

sanitizer() {
  local candidate
  for candidate in "$(command -v compute-sanitizer)" /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [[ -x $candidate ]] && echo "$candidate" && return
  done
  echo compute-sanitizer # not found: the step fails, saying so
}

# True where python3 has the modules (always in a dry run, which has no such steps to run).
have_python() {
  ((dry_run)) && return 0
  python3 -c "import $1" 2>/dev/null
}

# Correctness first, then the sanitizers and the throughput numbers, then the slower rest: a run
# stopped at the deadline keeps what matters most.
plan_run() {
  local gpu_filter
  gpu_filter=$(gpu_test_filter)
  [[ -n $gpu_filter ]] || echo "gpu-check: no SPARSEAE_GPU_TESTS in tests/CMakeLists.txt" >&2
  step sae-info 30 "$bin/sae" info --backend cuda
  # The out-of-memory case fills the device, which the other shards share: it runs alone.
  local alone=TrainingFaults.DeviceOutOfMemoryNamesTheLargestBatchThatFits
  # NCCL on one rank, apart, so that its result stands on its own row.
  local nccl=NcclOneRank.*
  step tests-gpu 150 "$self" test-shards "$bin/sparseae_tests" "${gpu_filter}-$alone:$nccl"
  step tests-out-of-memory 30 "$bin/sparseae_tests" --gtest_filter="$alone" --gtest_brief=1
  step nccl 30 "$bin/sparseae_tests" --gtest_filter="$nccl" --gtest_brief=1
  step train-cuda 60 "$bin/sae" train --backend cuda --epochs 5 -o "$work/cuda.ckpt" \
    --json
  step train-cuda-captured 60 "$bin/sae" train --backend cuda --epochs 5 --step-graph on \
    -o "" --json
  local sanitizer_binary own_filter
  sanitizer_binary=$(sanitizer)
  own_filter=$(own_kernel_filter)
  step memcheck 90 "$sanitizer_binary" --tool memcheck --error-exitcode 1 \
    "$bin/sparseae_tests" --gtest_filter="$own_filter" --gtest_brief=1
  step racecheck 90 "$sanitizer_binary" --tool racecheck --error-exitcode 1 \
    "$bin/sparseae_tests" --gtest_filter="$own_filter" --gtest_brief=1
  plan_bench
  # PCA fit on 1M generated rows, cuda; its peers run in run-peers.
  step pca-bench 60 "$bin/sae_pca_bench" --rows 1000000 --k 32 --repeats 3 --backend cuda
  step train-cpu 60 "$bin/sae" train --backend cpu --epochs 1 -o "" --json
  # The cpu cases run in CI too; here they show that the bundle's OpenBLAS works on this machine.
  # LossEvidence (14 cpu trainings) is left to CI.
  step tests-rest 120 "$self" test-shards "$bin/sparseae_tests" "-${gpu_filter}:LossEvidence.*"
}

# Medians of 3 timed epochs after one warm-up.
plan_bench() {
  step sae-bench 120 "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse,poisson --batches 256,1024,4096 --steps plain,captured \
    --json "$out/sae-bench-cuda.json"
  # The products' precision (fp32, tf32, bf16) and the dense layers' forward (separate kernels or
  # cublasLt's epilogue) on one workload.
  step sae-bench-precision 90 "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 \
    --warmup 1 --losses mse --batches 1024 --precisions fp32,tf32,bf16 --steps plain,captured \
    --layer-forwards separate,fused --json "$out/sae-bench-precision.json"
  # Streamed rows (copied from page-locked host memory while the batch before computes) against
  # resident ones.
  step sae-bench-stream 60 "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse --batches 1024 --placements resident,stream --json "$out/sae-bench-stream.json"
  step kernels-bench 60 "$bin/kernels_bench" --backend=cuda --benchmark_min_time=0.2
}

# sae-bench on cuda writes the rows it trained on; the PyTorch peer trains the users' model on
# them, eager and torch.compile, and prints the ratios against sae-bench.
plan_peers() {
  if ! have_python "numpy, torch"; then
    record torch-peer "skipped (python3 lacks numpy or torch)" 0
    return 0
  fi
  local rows=$work/sae-bench-rows.npy
  step sae-bench-peer 90 "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 --warmup 1 \
    --losses mse,poisson --batches 1024 --steps plain,captured \
    --json "$out/sae-bench-peer.json" --write-dense "$rows"
  step torch-peer 150 python3 bench/torch_peer.py --data "$rows" --device cuda --epochs 3 \
    --warmup 1 --losses mse,poisson --batches 1024 --modes eager,compile \
    --json "$out/torch-peer-cuda.jsonl" --compare "$out/sae-bench-peer.json"
  step sae-bench-precision-peer 90 "$bin/sae-bench" --backend cuda --rows 1000000 --epochs 3 \
    --warmup 1 --losses mse --batches 1024 --precisions tf32,bf16 --steps plain,captured \
    --layer-forwards separate,fused --json "$work/sae-bench-precision.json"
  step torch-peer-precision 150 python3 bench/torch_peer.py --data "$rows" --device cuda \
    --epochs 3 --warmup 1 --losses mse --batches 1024 --modes eager,compile \
    --precisions tf32,bf16 --json "$out/torch-peer-cuda-precision.jsonl" \
    --compare "$work/sae-bench-precision.json"
  rm -f "$rows"
  if have_python "numpy, sklearn"; then
    step pca-peers 120 python3 bench/pca_peers.py --bench "$bin/sae_pca_bench" --rows 1000000 \
      --k 32 --repeats 3 --backends cuda,cpu
  else
    record pca-peers "skipped (python3 lacks numpy or scikit-learn)" 0
  fi
}

# The part of each log worth reading without the archive, after the table.
write_details() {
  local name log
  {
    echo
    echo "## Details (the whole logs are in gpu-check-logs.tar.gz)"
    for log in "$work"/logs/*.log; do
      [[ -e $log ]] || continue
      name=$(basename "$log" .log)
      echo
      echo "### $name"
      echo '```'
      case $name in
        tests-*) grep -E '^\[  (PASSED|FAILED|SKIPPED) |tests? ran|^shard' "$log" | head -40 ;;
        memcheck | racecheck) grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED)' "$log" ;;
        train-*) tail -n 1 "$log" ;;
        *) tail -n 60 "$log" ;;
      esac
      echo '```'
    done
  } >>"$results"
}

# test-shards BINARY FILTER: the filter's cases in one shard per core (8 at most), their logs one
# after the other; fails if any shard fails.
test_shards() {
  local binary=$1 filter=$2 shards pids=() status=0 shard
  shards=$(nproc)
  ((shards <= 8)) || shards=8
  local logs
  logs=$(mktemp -d)
  for ((shard = 0; shard < shards; ++shard)); do
    OMP_WAIT_POLICY=passive GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$shard \
      "$binary" --gtest_filter="$filter" --gtest_brief=1 --gtest_color=no \
      >"$logs/$shard.log" 2>&1 &
    pids+=($!)
  done
  for shard in "${!pids[@]}"; do
    wait "${pids[$shard]}" || status=1
    echo "shard $shard of $shards:"
    cat "$logs/$shard.log"
  done
  rm -rf "$logs"
  return $status
}

# fake-step OUT WORK COMMAND...: what a dry run does for a step: creates the files that the
# command names under OUT or WORK and that do not exist yet (its JSON results), then pauses.
fake_step() {
  local out=$1 work=$2 arg
  shift 2
  echo "dry run of: $*"
  for arg in "$@"; do
    [[ ($arg == "$out"/* || $arg == "$work"/*) && ! -e $arg ]] && echo '{}' >"$arg"
  done
  sleep "${GPU_CHECK_FAKE_STEP_S:-0.2}"
}

case "${1:-}" in
  bundle) make_bundle ;;
  run | bench | run-peers) run_checks "$1" ;;
  dry-run) run_checks "${2:-run}" 1 ;;
  test-shards) test_shards "$2" "$3" ;;
  fake-step)
    shift
    fake_step "$@"
    ;;
  *)
    echo "usage: scripts/gpu-check.sh bundle|run|bench|run-peers|dry-run [run|bench|run-peers]" >&2
    exit 2
    ;;
esac
