#!/usr/bin/env python3
"""A paper model of data-parallel strong scaling on GPUs for the users' model (512-256-128-32,
mirrored decoder, 337 184 parameters), as sae train runs it across ranks: each step, every GPU
computes its B/N rows, then one ncclAllReduce of the whole fp32 gradient, not overlapped.

    step(N) = floor + compute(B / N) + allreduce(N)

- floor: what a step costs whatever its rows, launches and host work: about 60 ops a step, ~4 us
  each issued one by one (a plain step, what ranks run today) or ~30 us for a replayed CUDA graph
  (the captured step one process can use).
- compute(b) = FLOPs(b) / effective rate: 1.25 MFLOP a row (forward and backward of the dense
  layers, 204 800 weights, x 6; the sparse first layer at 20 non-zeros a row), at 25 TFLOP/s,
  about a third of an H100/H200's fp32 peak for these skinny GEMMs.
- allreduce(N) for S = 1.35 MB, a ring: 2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency;
  within a machine (N <= 8, NVLink/NVSwitch) 100 GB/s and 1 us a hop, across machines (400 Gb/s
  InfiniBand a GPU) 40 GB/s and 1.5 us a hop: 15-40 us and 100-160 us, the order NCCL's own tests
  report for ~1 MB messages.
None of these numbers is measured (no GPU was lent): replace them with the GPU check's when one is.
"""
PARAMETERS = 337184
GRADIENT_BYTES = 4 * PARAMETERS
FLOP_PER_ROW = 6 * (32768 + 4096 + 4096 + 32768 + 131072) + 4 * 20 * 256
RATE = 25e12


def compute(rows):
    return FLOP_PER_ROW * rows / RATE


def allreduce(ranks):
    if ranks == 1:
        return 0.0
    bandwidth, latency = (100e9, 1e-6) if ranks <= 8 else (40e9, 1.5e-6)
    return 2 * (ranks - 1) / ranks * GRADIENT_BYTES / bandwidth + 2 * (ranks - 1) * latency


def main():
    ranks = [1, 2, 4, 8, 16, 32]
    print(f"gradient {GRADIENT_BYTES / 1e6:.2f} MB a step; "
          f"{FLOP_PER_ROW / 1e6:.2f} MFLOP a row\n")
    print("| step floor | global batch | " + " | ".join(f"{n} GPUs" for n in ranks) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in ranks) + " |")
    for floor, name in ((250e-6, "plain, 250 us"), (30e-6, "captured, 30 us")):
        for batch in (4096, 65536):
            one = floor + compute(batch)
            cells = []
            for n in ranks:
                step = floor + compute(batch / n) + allreduce(n)
                cells.append(f"{step * 1e6:.0f} us, {one / step:.1f}x")
            print(f"| {name} | {batch} | " + " | ".join(cells) + " |")
    print("\n| GPUs | all-reduce us |")
    print("| ---: | ---: |")
    for n in ranks[1:]:
        print(f"| {n} | {allreduce(n) * 1e6:.0f} |")


if __name__ == "__main__":
    main()
