#!/usr/bin/env bash
# scripts/gpu-check.sh dry-run, without a GPU: every mode leaves at most the 8 files that a device
# call returns; a deadline skips the steps past it and stops the one that runs into it; a run cut
# short keeps the table of the steps it finished and their logs.
set -uo pipefail
script=$(cd "$(dirname "$0")/.." && pwd)/scripts/gpu-check.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The script's work folders too, which a cut run leaves.
export TMPDIR=$scratch
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# Every step runs (no deadline near): the files of a whole run.
for mode in run bench run-peers; do
  out=$scratch/$mode
  if ! OUT=$out GPU_CHECK_FAKE_STEP_S=0 "$script" dry-run "$mode" >"$scratch/$mode.log" 2>&1; then
    fail "dry-run $mode failed"
    cat "$scratch/$mode.log"
  fi
  files=$(find "$out" -type f | wc -l)
  echo "dry-run $mode: $files files returned"
  ((files <= 8)) || fail "dry-run $mode leaves $files files in \$OUT, more than 8"
  grep -q 'skipped\|TIMEOUT' "$out/gpu-check-results.md" && fail "dry-run $mode skipped a step"
  # Listed into a file: grep -q leaving a pipe early would fail tar under pipefail.
  tar -tzf "$out/gpu-check-logs.tar.gz" >"$scratch/$mode.list"
  grep -q 'logs/libraries.log' "$scratch/$mode.list" || fail "dry-run $mode: the archive lacks the logs"
done

# A 6 s deadline with 3.5 s steps: the first passes, the second is stopped at the deadline (it
# starts with 2 to 3 s left, whole seconds being the clock's), the rest are skipped, and the
# script ends soon after the deadline.
out=$scratch/deadline
start=$SECONDS
OUT=$out GPU_CHECK_DEADLINE_S=6 GPU_CHECK_MIN_STEP_S=1 GPU_CHECK_FAKE_STEP_S=3.5 \
  "$script" dry-run run >"$scratch/deadline.log" 2>&1
elapsed=$((SECONDS - start))
results=$out/gpu-check-results.md
grep -q '^| libraries | pass' "$results" || fail "deadline: the library check did not pass"
grep -q '^| sae-info | pass' "$results" || fail "deadline: the first step did not pass"
grep -q '^| tests-gpu | TIMEOUT' "$results" || fail "deadline: the second step was not stopped"
skipped=$(grep -c '^| [a-z-]* | skipped' "$results")
echo "deadline 6 s: $skipped steps skipped, $elapsed s in all"
((skipped >= 10)) || fail "deadline: $skipped steps skipped, expected every step after the second"
((elapsed <= 10)) || fail "deadline: the run took $elapsed s, past the 6 s deadline"
files=$(find "$out" -type f | wc -l)
((files <= 8)) || fail "deadline: $files files in \$OUT"

# Cut during its third step: the table holds the two steps before it, the archive their logs.
out=$scratch/cut
OUT=$out GPU_CHECK_FAKE_STEP_S=1 timeout 2.5 "$script" dry-run run >"$scratch/cut.log" 2>&1
grep -q '^| sae-info | pass' "$out/gpu-check-results.md" ||
  fail "cut run: the results file lost the steps before the cut"
tar -tzf "$out/gpu-check-logs.tar.gz" >"$scratch/cut.list"
grep -q 'logs/sae-info.log' "$scratch/cut.list" || fail "cut run: the archive lacks the log of a finished step"

if ((failures > 0)); then
  cat "$scratch/deadline.log"
  exit 1
fi
echo "gpu-check dry run: all checks hold"
