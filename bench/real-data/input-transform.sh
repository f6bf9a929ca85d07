#!/usr/bin/env bash
# The exact-entry F1 of sae train with --input-transform none and log1p, for poisson, hurdle and
# mse, on every set of the real-data benchmark (README.md beside this script, "What the first
# layer reads"). Prints one line per run: set, loss, transform, F1, the last epoch's training loss
# and the run's wall seconds.
# Usage: bench/real-data/input-transform.sh SAE_BINARY [SETS_DIR] [EPOCHS]
set -euo pipefail
sae=${1:?usage: input-transform.sh SAE_BINARY [SETS_DIR] [EPOCHS]}
sets=${2:-$(dirname "$0")/sets}
epochs=${3:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
for set in text-words code-tokens protein-kmer3 dna-kmer5 image-rgb; do
  for loss in poisson hurdle mse; do
    for transform in none log1p; do
      start=$(date +%s.%N)
      out=$("$sae" train --data "$sets/$set.mtx" --backend cpu --loss "$loss" \
              --input-transform "$transform" --epochs "$epochs" --val-frac 0.2 --quiet --no-pca \
              --json -o "$work/model.ckpt" 2>&1 || true)
      end=$(date +%s.%N)
      f1=$(grep -o '"exact_f1": [0-9.]*' <<<"$out" | tail -1 | cut -d' ' -f2)
      train_loss=$(grep -o '"train_loss": [0-9.e+-]*' <<<"$out" | tail -1 | cut -d' ' -f2)
      error=$(grep -o 'error: .*' <<<"$out" | head -1 || true)
      echo "$set $loss $transform f1=${f1:-none} train_loss=${train_loss:-none}" \
           "seconds=$(echo "$end - $start" | bc) ${error}"
    done
  done
done
