#!/usr/bin/env python3
"""The PyTorch peer of sae-bench: the users' own model on the same rows, timed the same way.

The users train a plain nn.Sequential autoencoder, 512-256-128-32 with a mirrored decoder, relu
everywhere but the identity output, on dense rows with torch.optim.Adam (lr 1e-3, defaults
otherwise); MSE (nn.functional.mse_loss, the mean over all entries) or Poisson
(nn.functional.poisson_nll_loss with log-rate outputs). This script trains exactly that on the
rows sae-bench generated (`sae-bench --write-dense rows.npy`), resident on the device, with a
fresh torch.randperm per epoch and batches indexed on the device; the batch losses are summed on
the device and read once per epoch, as sae-bench's loss is. Each epoch is timed from the
permutation to the epoch's loss on the host; the first --warmup epochs are not counted (and
absorb torch.compile's compilation, including the last partial batch's shape).

  modes: eager, and compile (torch.compile of the model) where this torch has it
  --compare sae.json: also prints sae-bench's samples/s beside these and the ratios (of the
                     fastest of its plain, captured and fused variants)

  bench/torch_peer.py --data rows.npy --device cpu --threads 2 --epochs 3 --warmup 1 \
      --losses mse,poisson --batches 256 --json torch.jsonl --compare sae.json
"""
import argparse
import itertools
import json
import os
import re
import statistics
import time

import numpy as np
import torch
from torch import nn


def users_model(cols):
    widths = [cols, 256, 128, 32, 128, 256, cols]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def loss_function(name):
    if name == "mse":
        return nn.functional.mse_loss
    if name == "poisson":
        return lambda out, x: nn.functional.poisson_nll_loss(out, x, log_input=True, full=False)
    raise SystemExit(f"torch_peer: unknown loss {name}")


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def blas_in_use():
    """The BLAS torch's process has loaded, from its memory map (Linux), and torch's own
    build note."""
    libraries = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                name = os.path.basename(path)
                if any(k in name for k in ("blas", "mkl", "lapack")):
                    libraries.add(os.path.realpath(path))
    except OSError:
        pass
    config = torch.__config__.show()
    build = re.findall(r"\b(?:BLAS_INFO|LAPACK_INFO)=\w+", config)
    return sorted(libraries), build


def train(x, loss_name, batch, mode, precision, epochs, warmup, seed):
    device = x.device
    # fp32 products, as sparseae's fp32 workloads (TF32 is off by default in recent torch; set
    # here so that no version or environment decides), or tf32 as its tf32 ones.
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    # bf16: PyTorch's own mixed precision (autocast: bf16 products and activations, fp32 weights
    # and Adam state), against sparseae's bf16 products.
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")
    torch.manual_seed(seed)
    model = users_model(x.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if mode == "compile" else model
    loss_of = loss_function(loss_name)
    rows = x.shape[0]
    seconds = []
    final_loss = float("nan")
    for epoch in range(warmup + epochs):
        synchronize(device)
        start = time.perf_counter()
        permutation = torch.randperm(rows, device=device)
        total = torch.zeros((), device=device)
        for first in range(0, rows, batch):
            ids = permutation[first:first + batch]
            rows_in = x[ids]
            with autocast:
                loss = loss_of(forward(rows_in).float(), rows_in)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * ids.shape[0]
        final_loss = total.item() / rows  # the epoch's one read-back; waits for the device
        elapsed = time.perf_counter() - start
        if epoch >= warmup:
            seconds.append(elapsed)
    median = statistics.median(seconds)
    return {"tool": "pytorch", "mode": mode, "device": str(device), "loss": loss_name,
            "batch": batch, "precision": precision,
            "name": f"users/{loss_name}/b{batch}/{precision}", "rows": rows,
            "epoch_seconds": seconds, "median_epoch_ms": 1e3 * median,
            "samples_per_second": rows / median, "final_train_loss": final_loss}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dense float32 .npy (sae-bench --write-dense)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--losses", default="mse,poisson")
    parser.add_argument("--batches", default="256,1024,4096")
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--precisions", default="fp32",
                        help="fp32,tf32,bf16 (tf32: cuda only; bf16: autocast)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write every result as JSON lines here")
    parser.add_argument("--compare", help="sae-bench's --json file: print the ratios")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_peer: torch sees no CUDA device")
    x = torch.from_numpy(np.load(args.data)).to(device)
    modes = args.modes.split(",")
    if "compile" in modes and not hasattr(torch, "compile"):
        print(f"torch {torch.__version__} has no torch.compile: eager only")
        modes = [m for m in modes if m != "compile"]

    libraries, build = blas_in_use()
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
          + f", {torch.get_num_threads()} threads")
    print(f"BLAS loaded: {', '.join(libraries) or 'none found'}; build: {'; '.join(build)}")
    print(f"data: {x.shape[0]} rows x {x.shape[1]} columns, "
          f"{int((x != 0).sum())} non-zeros; median of {args.epochs} epochs after {args.warmup}")

    results = []
    for loss_name in args.losses.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            for precision, mode in itertools.product(args.precisions.split(","), modes):
                try:
                    r = train(x, loss_name, batch, mode, precision, args.epochs, args.warmup,
                              args.seed)
                except Exception as error:  # torch.compile needs a compiler and triton at run time
                    if mode != "compile":
                        raise
                    print(f"users/{loss_name}/b{batch}/{precision} compile: failed: {error!r}")
                    continue
                r.update({"torch": torch.__version__, "threads": torch.get_num_threads(),
                          "blas": libraries})
                results.append(r)
                print(f"{r['name']} {mode}: {r['samples_per_second']:.0f} samples/s", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            for r in results:
                out.write(json.dumps(r) + "\n")

    sae = {}
    if args.compare:
        with open(args.compare) as f:
            sae = {w["name"]: w for w in json.load(f)["workloads"]}
    print("| workload | tool | samples/s (median) | ms/epoch | sparseae / this |")
    print("| --- | --- | --- | --- | --- |")
    for name in dict.fromkeys(r["name"] for r in results):
        # sae-bench's variants of the workload: the plain and the captured step (names ending in
        # /captured), the separate and the fused layer forward (/fused); the ratio is the fastest's.
        variants = [w for n, w in sae.items()
                    if n in (name, name + "/captured", name + "/fused", name + "/captured/fused")]
        for w in variants:
            print(f"| {w['name']} | sparseae | {w['samples_per_second']:.0f} | "
                  f"{w['median_epoch_ms']:.1f} | |")
        best = max((w["samples_per_second"] for w in variants), default=None)
        for r in (r for r in results if r["name"] == name):
            ratio = (f"{best / r['samples_per_second']:.2f}x" if best else "")
            print(f"| {name} | pytorch {r['mode']} | {r['samples_per_second']:.0f} | "
                  f"{r['median_epoch_ms']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
