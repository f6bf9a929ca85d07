#!/usr/bin/env python3
"""PCA fit time of sparseae against its peers on the same rows, in the same run.

sae_pca_bench generates the embedded dataset's rows (--rows), times sparseae's fit on CSR and
dense input, and writes the rows as a dense float32 .npy; this script then times, on that file:

  cpu: scikit-learn PCA (svd_solver "full" with --full, and "randomized"), and numpy's
       covariance + eigh (the algorithm sparseae's covariance solver runs)
  gpu: torch.linalg.eigh of the covariance and torch.pca_lowrank, when torch sees a CUDA device

Every fit is timed --repeats times after one untimed warm-up (library loading, CUDA context);
the table gives medians, in seconds, and the explained-variance ratio of the k components as a
check that every tool solved the same problem. Data loading and densifying are not timed.

  bench/pca_peers.py --bench build/bench/sae_pca_bench --rows 100000 --k 32 --repeats 3 --full
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np


def timed(fit, repeats):
    fit()  # warm-up
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), seconds, result


def sklearn_rows(x, k, repeats, full):
    from sklearn.decomposition import PCA

    solvers = (["full"] if full else []) + ["randomized"]
    for solver in solvers:
        median, seconds, model = timed(
            lambda: PCA(n_components=k, svd_solver=solver, random_state=0).fit(x), repeats)
        yield {"tool": "scikit-learn PCA", "backend": "cpu", "input": "dense",
               "solver": solver, "median_seconds": median, "seconds": seconds,
               "explained_variance_ratio": float(model.explained_variance_ratio_.sum())}


def numpy_rows(x, k, repeats):
    def fit():
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=0)
        centred = x64 - mean
        covariance = centred.T @ centred / (x.shape[0] - 1)
        values = np.linalg.eigh(covariance)[0]
        return values[-k:].sum() / values.sum()

    median, seconds, ratio = timed(fit, repeats)
    yield {"tool": "numpy cov + eigh", "backend": "cpu", "input": "dense",
           "solver": "covariance", "median_seconds": median, "seconds": seconds,
           "explained_variance_ratio": float(ratio)}


def torch_rows(x, k, repeats):
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        return
    device_x = torch.from_numpy(x).cuda()

    def eigh():
        x64 = device_x.double()
        centred = x64 - x64.mean(dim=0)
        covariance = centred.T @ centred / (x.shape[0] - 1)
        values = torch.linalg.eigh(covariance)[0]
        ratio = values[-k:].sum() / values.sum()
        torch.cuda.synchronize()
        return float(ratio)

    def lowrank():
        _, s, _ = torch.pca_lowrank(device_x, q=k, center=True, niter=4)
        torch.cuda.synchronize()
        return s

    median, seconds, ratio = timed(eigh, repeats)
    yield {"tool": "torch cov + linalg.eigh", "backend": "cuda", "input": "dense",
           "solver": "covariance", "median_seconds": median, "seconds": seconds,
           "explained_variance_ratio": ratio}
    total = float(((device_x - device_x.mean(dim=0)) ** 2).sum())
    median, seconds, s = timed(lowrank, repeats)
    yield {"tool": "torch.pca_lowrank", "backend": "cuda", "input": "dense",
           "solver": "randomized", "median_seconds": median, "seconds": seconds,
           "explained_variance_ratio": float((s ** 2).sum()) / total}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True, help="path of sae_pca_bench")
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="cpu", help="sparseae backends, comma-separated")
    parser.add_argument("--full", action="store_true", help="also scikit-learn's full SVD")
    parser.add_argument("--json", help="also write every row as JSON lines here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        dense_path = os.path.join(scratch, "rows.npy")
        for i, backend in enumerate(args.backends.split(",")):
            command = [args.bench, "--rows", str(args.rows), "--k", str(args.k), "--repeats",
                       str(args.repeats), "--backend", backend]
            if i == 0:
                command += ["--write-dense", dense_path]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows += [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        x = np.load(dense_path)
    rows += list(sklearn_rows(x, args.k, args.repeats, args.full))
    rows += list(numpy_rows(x, args.k, args.repeats))
    rows += list(torch_rows(x, args.k, args.repeats))

    print(f"PCA fit, {x.shape[0]} rows x {x.shape[1]} columns, k = {args.k}, "
          f"median of {args.repeats} (seconds)")
    print("| tool | backend | input | solver | median s | explained variance (k) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tool']} | {r['backend']} | {r['input']} | {r['solver']} | "
              f"{r['median_seconds']:.3f} | {r['explained_variance_ratio']:.4f} |")
    if args.json:
        with open(args.json, "w") as out:
            for r in rows:
                out.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
