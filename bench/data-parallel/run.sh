#!/usr/bin/env bash
# Data-parallel scaling on cpu, measured side by side: rounds of `sae train` on 1, 2 and 4 ranks
# (interleaved, so a load that comes and goes on the machine falls on every rank count alike),
# each rank one OpenMP thread, the users' model (512-256-128-32, batch 256) on generated counts;
# then the all-reduce of one step alone (sae-allreduce-bench). Prints a Markdown table: the median
# over rounds of each run's median epoch samples/s, the ratio to 1 rank, the bytes all-reduced a
# step and the measured all-reduce time against the step time.
# Usage: bench/data-parallel/run.sh [BUILD_DIR] [ROUNDS] [ROWS] [EPOCHS] [RANKS...]
set -euo pipefail
build=${1:-build-cpu}
rounds=${2:-3}
rows=${3:-40000}
epochs=${4:-4}
shift $(( $# < 4 ? $# : 4 ))
rank_counts=("$@")
((${#rank_counts[@]} > 0)) || rank_counts=(1 2 4)
sae=$build/src/cli/sae
allreduce=$build/bench/sae-allreduce-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1
# yield_when_idle: a rank waiting in the all-reduce gives its core back instead of spinning, which
# on a machine with no spare core (this one: 2 cores, shared) took the core the other rank needed
# (2 ranks: 16 000 samples/s spinning, 54 000 yielding). --bind-to none: ranks are not pinned, so
# they move away from cores other processes hold.
mpirun=(mpirun --oversubscribe --allow-run-as-root --bind-to none --mca mpi_yield_when_idle 1)

"$sae" gen --out "$work/rows.mtx" --rows "$rows" --cols 512 --nnz 20 --quiet
for ((round = 1; round <= rounds; ++round)); do
  for n in "${rank_counts[@]}"; do
    "${mpirun[@]}" -np "$n" "$sae" train --backend cpu --data "$work/rows.mtx" --epochs "$epochs" \
      --select loss --no-pca --quiet --json -o '' > "$work/train-$n-$round.json"
  done
done
for n in "${rank_counts[@]}"; do
  "${mpirun[@]}" -np "$n" "$allreduce" --floats 337184 --reps 300 > "$work/allreduce-$n.json"
done

/usr/bin/python3 - "$work" "$rounds" "$rows" "${rank_counts[@]}" <<'PY'
import json, statistics, sys
work, rounds, rows, counts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
train_rows = rows - round(0.1 * rows)
steps = -(-train_rows // 256)
base = None
print(f"{rows} rows x 512 columns (20 non-zeros a row), model 512-256-128-32, batch 256, "
      f"{steps} steps an epoch, median of {rounds} rounds\n")
print("| ranks | samples/s | x 1 rank | per rank | MB all-reduced a step | all-reduce ms (median) "
      "| step ms | all-reduce share of the step |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for n in counts:
    rates = [json.load(open(f"{work}/train-{n}-{r}.json"))["median_samples_per_second"]
             for r in range(1, rounds + 1)]
    rate = statistics.median(rates)
    base = base or rate
    reduce = json.load(open(f"{work}/allreduce-{n}.json"))
    step_ms = 256 / rate * 1e3
    reduce_ms = reduce["median_seconds"] * 1e3 if int(n) > 1 else 0.0
    print(f"| {n} | {rate:,.0f} | {rate / base:.2f} | {rate / base / int(n):.2f} | "
          f"{reduce['bytes'] / 1e6:.2f} | {reduce_ms:.3f} | {step_ms:.3f} | "
          f"{reduce_ms / step_ms:.0%} |")
    print(f"<!-- {n} ranks, each round: {', '.join(f'{x:,.0f}' for x in rates)} -->")
PY
