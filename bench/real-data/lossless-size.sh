#!/usr/bin/env bash
# Lossless sizes on the real sets (README "Lossless size"): per set a model trained 5 epochs with
# sae train's defaults, then sae compress --stats, which prints gzip/zstd/xz, order-0, PCA and the
# model. Usage: lossless-size.sh SAE SETS_DIR WORK_DIR; WORK_DIR gets the logs and checkpoints.
set -u
B=$(realpath "$1")
S=$(realpath "$2")
mkdir -p "$3" && cd "$3" || exit 1
export OMP_WAIT_POLICY=passive
for set in code-tokens image-rgb text-words protein-kmer3 dna-kmer5; do
  start=$(date +%s)
  nice -n 19 "$B" train --data "$S/$set.mtx" --epochs 5 -o "$set.ckpt" --backend cpu \
    --quiet > "$set.train.log" 2>&1
  nice -n 19 "$B" compress --model "$set.ckpt" --data "$S/$set.mtx" -o "$set.sae" --backend cpu \
    --stats > "$set.stats.log" 2>&1
  echo "$set $(( $(date +%s) - start )) s" >> times.log
done
