#!/usr/bin/env python3
"""sae's .h5ad files against h5py and anndata (Debian's python3-h5py and python3-anndata):

(a) files that h5py and anndata write (X as csr, csc or a dense dataset) are read by sae: each
    goes through `sae compress --codec order0` and `sae decompress` (lossless, no model), and what
    comes back is the matrix written;
(b) what sae writes is read by h5py and anndata: `sae gen -o .h5ad` (X csr, the same counts as
    `sae gen -o .mtx`), `sae train --latents .h5ad` (obsm["X_sparseae"], the codes of
    `sae encode -o .npy`) and `--reconstruction .h5ad` (the counts of `sae decode -o .mtx`).

Usage: h5ad_h5py_test.py SAE WORK_DIR. Without anndata the h5py checks still run."""
import os
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import anndata
except ImportError:  # the h5py half still runs
    anndata = None

SAE, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
os.chdir(WORK)


def sae(*args):
    result = subprocess.run([SAE, *args], capture_output=True, text=True,
                            env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    if result.returncode != 0:
        sys.exit(f"sae {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def read_x(path):
    """X of an .h5ad as h5py holds it, as scipy CSR (sparse) or a numpy array (dense)."""
    with h5py.File(path, "r") as f:
        x = f["X"]
        if isinstance(x, h5py.Dataset):
            return x[:]
        assert x.attrs["encoding-type"] == "csr_matrix", dict(x.attrs)
        return sp.csr_matrix((x["data"][:], x["indices"][:], x["indptr"][:]),
                             shape=tuple(x.attrs["shape"]))


def through_sae(path):
    """The matrix sae reads from path, as it comes back from a lossless round trip."""
    sae("compress", "--data", path, "--codec", "order0", "-o", path + ".sae", "--quiet")
    sae("decompress", "--in", path + ".sae", "-o", path + ".back.h5ad", "--quiet")
    return read_x(path + ".back.h5ad")


rng = np.random.default_rng(3)
counts = sp.random(40, 9, density=0.3, random_state=4, format="csr")
counts.data = rng.integers(1, 20, size=counts.nnz).astype(np.float64)
counts.sort_indices()

# (a) h5py's AnnData layouts: csr with int64 indices and integer data, csc, dense.
with h5py.File("csr.h5ad", "w") as f:
    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"
    x = f.create_group("X")
    x.attrs["encoding-type"] = "csr_matrix"
    x.attrs["encoding-version"] = "0.1.0"
    x.attrs["shape"] = np.array(counts.shape)
    x["data"] = counts.data.astype(np.int64)
    x["indices"] = counts.indices.astype(np.int64)
    x["indptr"] = counts.indptr.astype(np.int64)
csc = counts.tocsc()
with h5py.File("csc.h5ad", "w") as f:
    x = f.create_group("X")
    x.attrs["encoding-type"] = "csc_matrix"
    x.attrs["shape"] = np.array(csc.shape, dtype=np.int32)
    x["data"] = csc.data.astype(np.float32)
    x["indices"] = csc.indices.astype(np.int32)
    x["indptr"] = csc.indptr.astype(np.int32)
with h5py.File("dense.h5ad", "w") as f:
    f["X"] = counts.toarray().astype(np.uint16)
for name in ["csr.h5ad", "csc.h5ad", "dense.h5ad"]:
    back = through_sae(name)
    assert (back != counts).nnz == 0, name

if anndata is not None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata.AnnData(X=counts.astype(np.float32)).write_h5ad("anndata.h5ad")
        anndata.AnnData(X=csc.astype(np.int64)).write_h5ad("anndata_csc.h5ad")
    for name in ["anndata.h5ad", "anndata_csc.h5ad"]:
        assert (through_sae(name) != counts).nnz == 0, name

# (b) What sae writes, read by h5py and anndata.
sae("gen", "--rows", "200", "--seed", "5", "-o", "g.h5ad", "--quiet")
sae("gen", "--rows", "200", "--seed", "5", "-o", "g.mtx", "--quiet")
generated = sp.csr_matrix(scipy.io.mmread("g.mtx"))
assert (read_x("g.h5ad") != generated).nnz == 0
sae("train", "--data", "g.h5ad", "--epochs", "1", "--hidden", "16", "--latent", "4",
    "--checkpoint", "m.ckpt", "--latents", "z.h5ad", "--reconstruction", "r.h5ad", "--quiet",
    "--backend", "cpu", "--no-pca")
sae("encode", "--model", "m.ckpt", "--data", "g.h5ad", "-o", "z.npy", "--backend", "cpu")
sae("decode", "--model", "m.ckpt", "--data", "g.h5ad", "-o", "r.mtx", "--backend", "cpu")
codes = np.load("z.npy")
with h5py.File("z.h5ad", "r") as f:
    assert "X" not in f, list(f)
    stored = f["obsm/X_sparseae"]
    assert stored.dtype == np.float32 and stored.shape == codes.shape
    np.testing.assert_array_equal(stored[:], codes)
reconstruction = sp.csr_matrix(scipy.io.mmread("r.mtx"))
assert (read_x("r.h5ad") != reconstruction).nnz == 0

if anndata is not None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = anndata.read_h5ad("g.h5ad")
        z = anndata.read_h5ad("z.h5ad")
        r = anndata.read_h5ad("r.h5ad")
    assert g.shape == generated.shape and sp.issparse(g.X)
    assert (sp.csr_matrix(g.X) != generated).nnz == 0
    assert list(g.obs_names[:3]) == ["0", "1", "2"] and g.n_vars == generated.shape[1]
    assert z.n_obs == codes.shape[0] and z.n_vars == 0 and z.X is None
    np.testing.assert_array_equal(z.obsm["X_sparseae"], codes)
    assert (sp.csr_matrix(r.X) != reconstruction).nnz == 0

print("h5ad_h5py: ok" + ("" if anndata is not None else " (h5py only: anndata not installed)"))
