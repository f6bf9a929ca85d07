#!/usr/bin/env bash
# Two builds of sae side by side on lossless speed: compress and decompress of one held-out set
# with one model, the builds alternating run by run (A, B, A, B, ...) so that whatever else the
# machine does falls on both alike. Prints each build's median wall seconds and B's over A's.
# Usage: lossless-speed-ab.sh SAE_A SAE_B WORK_DIR SET MODEL [RUNS]
# WORK_DIR holds SET-test.mtx (rate-size.sh's split) and MODEL (a checkpoint there).
set -eu
A=$(realpath "$1")
B=$(realpath "$2")
cd "$3"
mtx="$4-test.mtx"
model=$5
RUNS=${6:-5}
export OMP_WAIT_POLICY=passive
TIMEFORMAT=%R
"$A" compress --model "$model" --data "$mtx" -o ab-a.sae --backend cpu --quiet > /dev/null
"$B" compress --model "$model" --data "$mtx" -o ab-b.sae --backend cpu --quiet > /dev/null
cmp ab-a.sae ab-b.sae || { echo "the builds wrote different files"; exit 1; }
seconds() { { time "$@" > /dev/null 2>&1; } 2>&1; }
for _ in $(seq "$RUNS"); do
  for build in a b; do
    sae=$A; [ "$build" = b ] && sae=$B
    echo "$build compress $(seconds "$sae" compress --model "$model" --data "$mtx" -o ab-$build-2.sae --backend cpu --quiet)"
    echo "$build decompress $(seconds "$sae" decompress --in ab-a.sae --model "$model" -o ab-$build.mtx --backend cpu --quiet)"
  done
done | awk -v set="$4" -v runs="$RUNS" '
  { t[$1 " " $2] = t[$1 " " $2] " " $3 }
  function median(list,   n, v, i, j, x) {
    n = split(list, v, " ")
    for (i = 2; i <= n; ++i) for (j = i; j > 1 && v[j - 1] > v[j]; --j) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  END {
    printf "%s, medians of %d runs each (wall s): A, B, B/A\n", set, runs
    for (k = 0; k < 2; ++k) {
      op = k == 0 ? "compress" : "decompress"
      a = median(t["a " op]); b = median(t["b " op])
      printf "  %-11s %7.2f %7.2f %6.3f\n", op, a, b, b / a
    }
  }'
cmp ab-a.mtx ab-b.mtx || { echo "the builds decoded different counts"; exit 1; }
rm -f ab-a.sae ab-b.sae ab-a-2.sae ab-b-2.sae ab-a.mtx ab-b.mtx
