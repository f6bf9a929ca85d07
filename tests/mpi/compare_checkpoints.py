#!/usr/bin/env python3
"""Compares the parameters of sparseae checkpoints (include/sparseae/checkpoint.hpp's layout).

Usage: compare_checkpoints.py TOLERANCE REFERENCE OTHER...
Exits 0 when every OTHER's parameters, optimizer moments and progress match REFERENCE's: the
relative norm of the parameters' difference ||a - b|| / ||a|| at most TOLERANCE, the same epoch
and step; prints each comparison. Data-parallel runs sum their gradients in another order than
one process, so their parameters agree to float rounding, not bit for bit.
"""
import math
import struct
import sys


def read_checkpoint(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"SPARSEAE":
        raise SystemExit(f"{path}: not a sparseae checkpoint")
    at = 16
    (config_bytes,) = struct.unpack_from("<Q", data, at)
    at += 8 + config_bytes
    (count,) = struct.unpack_from("<Q", data, at)
    at += 8
    arrays = []
    for _ in range(4):
        arrays.append(struct.unpack_from(f"<{count}f", data, at))
        at += 4 * count
    epoch, step = struct.unpack_from("<qq", data, at)
    return {"parameters": arrays[0], "first_moment": arrays[1], "epoch": epoch, "step": step}


def relative_difference(a, b):
    norm = math.sqrt(sum(x * x for x in a))
    difference = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    return difference / norm if norm > 0 else difference


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    tolerance = float(sys.argv[1])
    reference = read_checkpoint(sys.argv[2])
    failed = False
    for path in sys.argv[3:]:
        other = read_checkpoint(path)
        if len(other["parameters"]) != len(reference["parameters"]):
            print(f"{path}: {len(other['parameters'])} parameters, the reference has "
                  f"{len(reference['parameters'])}")
            failed = True
            continue
        difference = relative_difference(reference["parameters"], other["parameters"])
        same_progress = (other["epoch"], other["step"]) == (reference["epoch"], reference["step"])
        ok = difference <= tolerance and same_progress
        print(f"{path}: relative parameter difference {difference:.3g} (tolerance {tolerance:g}), "
              f"epoch {other['epoch']} step {other['step']}: {'ok' if ok else 'DIFFERS'}")
        failed = failed or not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
