#!/usr/bin/env python3
"""Order-0 per column fitted on the training rows (issue 16's first baseline): the ideal code
length of the held-out rows under each column's count distribution from the training rows,
counts 0..63 with add-1/2 (Krichevsky-Trofimov) smoothing and an escape for larger counts, whose
excess costs an Elias-gamma code. Bytes per row, no tables (they come from the training rows),
beside sae compress --codec order0, which fits the held-out rows themselves and stores its
tables in the file.

Usage: order0-train.py WORK_DIR SET... (WORK_DIR holds SET-train.mtx and SET-test.mtx, as
rate-size.sh splits them)."""
import sys

import numpy as np
import scipy.io


def load(path):
    return scipy.io.mmread(path).tocsc().astype(np.int64)


for name in sys.argv[2:]:
    train = load(f"{sys.argv[1]}/{name}-train.mtx")
    test = load(f"{sys.argv[1]}/{name}-test.mtx")
    bits = 0.0
    for c in range(train.shape[1]):
        tr = np.zeros(train.shape[0], np.int64); col = train.getcol(c); tr[col.indices] = col.data
        te = np.zeros(test.shape[0], np.int64); col = test.getcol(c); te[col.indices] = col.data
        hist = np.bincount(np.minimum(tr, 64), minlength=65).astype(float) + 0.5
        p = hist / hist.sum()
        sym = np.minimum(te, 64)
        bits += -np.log2(p[sym]).sum()
        excess = te[te >= 64] - 64 + 1
        bits += (2 * np.floor(np.log2(excess)) + 1).sum()
    print(f"{name} {bits / 8 / test.shape[0]:.2f}")
