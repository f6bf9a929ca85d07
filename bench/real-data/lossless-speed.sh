#!/usr/bin/env bash
# Lossless speed (README "Lossless size and speed", issue 16): MB/s of the .mtx text through
# sae compress / decompress (cpu backend, the rate-aware model rate-size.sh trained) beside
# xz -9 and zstd -19 and their decompressors, on one held-out set; the median wall time of RUNS
# runs after one warm-up, each timed by bash's time.
# Run on a quiet machine. Usage: lossless-speed.sh SAE WORK_DIR SET [RUNS]
# WORK_DIR is rate-size.sh's: it holds SET-test.mtx and SET-rate1.ckpt.
set -eu
B=$(realpath "$1")
cd "$2"
set_name=$3
RUNS=${4:-5}
mtx="$set_name-test.mtx"
model="$set_name-rate1.ckpt"
export OMP_WAIT_POLICY=passive
bytes=$(stat -c %s "$mtx")
"$B" compress --model "$model" --data "$mtx" -o speed.sae --backend cpu --quiet > /dev/null
xz -9 -k -c "$mtx" > speed.mtx.xz
zstd -19 -q -c "$mtx" > speed.mtx.zst
TIMEFORMAT=%R
median_wall() {  # the median wall seconds of RUNS runs of the command in "$@", after a warm-up
  "$@" > /dev/null
  for _ in $(seq "$RUNS"); do
    { time "$@" > /dev/null 2>&1; } 2>&1
  done | sort -g | awk '{ t[NR] = $1 } END { print NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2 }'
}
row() {  # name, seconds
  awk -v name="$1" -v s="$2" -v b="$bytes" 'BEGIN { printf "%-22s %8.2f s %8.2f MB/s\n", name, s, b / s / 1e6 }'
}
echo "$mtx: $bytes bytes of .mtx text, medians of $RUNS runs"
row "sae compress" "$(median_wall "$B" compress --model "$model" --data "$mtx" -o speed2.sae --backend cpu --quiet)"
row "sae decompress" "$(median_wall "$B" decompress --in speed.sae --model "$model" -o speed.mtx --backend cpu --quiet)"
row "xz -9" "$(median_wall sh -c "xz -9 -c $mtx > speed2.mtx.xz")"
row "xz -d" "$(median_wall sh -c "xz -d -c speed.mtx.xz > /dev/null")"
row "zstd -19" "$(median_wall sh -c "zstd -19 -q -c $mtx > speed2.mtx.zst")"
row "zstd -d" "$(median_wall sh -c "zstd -d -q -c speed.mtx.zst > /dev/null")"
rm -f speed.sae speed2.sae speed.mtx speed.mtx.xz speed2.mtx.xz speed.mtx.zst speed2.mtx.zst
