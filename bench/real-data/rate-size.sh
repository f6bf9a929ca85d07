#!/usr/bin/env bash
# Lossless size of rate-aware models on rows they never saw (README "Lossless size", issue 16).
# Per set: every fifth row held out (split-rows.awk), a model trained on the other rows with
# --loss hurdle_nb --rate-lambda L, then sae compress --stats of the held-out rows, which prints
# gzip/zstd/xz, the order-0 coder (fitted on the held-out rows themselves, tables in the file),
# the order-0 code of the model's training rows (--codec order0-training: no tables), PCA and the
# model. Prints one table line per set and lambda; the ratios are the model's file over each
# order-0 coder's.
# Usage: rate-size.sh SAE SETS_DIR WORK_DIR [EPOCHS] [LAMBDAS] [SETS]; $TRAIN_FLAGS adds sae train
# options (and names the runs' files with a tag, $TAG).
set -u
B=$(realpath "$1")
S=$(realpath "$2")
EPOCHS=${4:-30}
LAMBDAS=${5:-1}
SETS=${6:-"text-words code-tokens image-rgb protein-kmer3 dna-kmer5"}
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$3" && cd "$3" || exit 1
export OMP_WAIT_POLICY=passive
printf '%-14s %6s %8s %8s %8s %9s %8s %9s %7s %8s %8s\n' set lambda xz zstd order0 order0-tr \
  file all-model ratio ratio-tr seconds
for set in $SETS; do
  [ -f "$set-train.mtx" ] || awk -v train="$set-train.mtx" -v test="$set-test.mtx" \
    -f "$HERE/split-rows.awk" "$S/$set.mtx"
  for lambda in $LAMBDAS; do
    run="$set-rate$lambda${TAG:-}"
    start=$(date +%s)
    nice -n 19 "$B" train --data "$set-train.mtx" --loss hurdle_nb --input-transform log1p \
      --rate-lambda "$lambda" --epochs "$EPOCHS" -o "$run.ckpt" --backend cpu \
      --force --quiet ${TRAIN_FLAGS:-} > "$run.train.log" 2>&1
    nice -n 19 "$B" compress --model "$run.ckpt" --data "$set-test.mtx" -o "$run.sae" \
      --backend cpu --stats > "$run.stats.log" 2>&1
    seconds=$(( $(date +%s) - start ))
    awk -v set="$set" -v lambda="$lambda" -v seconds="$seconds" '
      /xz -9 of/ { xz = $(NF) } /zstd -19 of/ { zstd = $(NF) }
      /order-0 per column/ { order0 = $4 }
      /order-0 of the training rows/ { training = $6 }
      /model codes \+ residual/ { model = $6 }
      /model coding of every block/ { every = $6 }
      END { printf "%-14s %6s %8s %8s %8s %9s %8s %9s %7.3f %8.3f %8s\n", set, lambda, xz, zstd,
            order0, training, model, every, (order0 > 0 ? model / order0 : 0),
            (training > 0 ? model / training : 0), seconds }' "$run.stats.log"
  done
done
