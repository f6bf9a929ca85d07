"""Counts in and out of the engine: conversion to the CSR arrays it takes, and its files."""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp

from . import _sparseae

Matrix = Union[np.ndarray, sp.spmatrix, Any]

CsrArrays = Tuple[int, int, np.ndarray, np.ndarray, np.ndarray]


def as_csr_arrays(X: Matrix, name: str = "X") -> CsrArrays:
    """X's counts as (rows, cols, indptr, indices, data), the form the engine takes.

    A CSR matrix's own arrays are passed on (the engine casts only a dtype that is not its own);
    other sparse layouts and dense arrays are converted to CSR first. Duplicate entries are summed
    and explicit zeros dropped, as the engine's readers do, on a copy: X is never changed.
    """
    if sp.issparse(X):
        csr = X.tocsr()
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"{name}: a 2-D matrix (rows x columns) of counts, not "
                             f"{array.ndim}-D with shape {array.shape}")
        _check_dtype(array.dtype, name)
        csr = sp.csr_matrix(array)
    _check_dtype(csr.dtype, name)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    if csr.nnz and not csr.data.all():
        csr = csr.copy()
        csr.eliminate_zeros()
    rows, cols = csr.shape
    return rows, cols, csr.indptr, csr.indices, csr.data


def _check_dtype(dtype: np.dtype, name: str) -> None:
    if dtype.kind not in "biuf":
        raise TypeError(f"{name}: dtype {dtype} is not a number type; counts are integers or "
                        "floats")


def csr_from_arrays(arrays: CsrArrays) -> sp.csr_matrix:
    rows, cols, indptr, indices, data = arrays
    return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))


def read(path: Union[str, os.PathLike], transpose: bool = False) -> Union[sp.csr_matrix, np.ndarray]:
    """Reads a count matrix as ``sae`` does, by extension.

    ``.mtx``/``.mtx.gz``, scipy.sparse ``.npz`` and AnnData ``.h5ad`` files (X as csr or csc)
    give a ``scipy.sparse.csr_matrix`` (float32 counts); dense files (``.npy``, ``.csv``, an
    ``np.savez`` of one array, an ``.h5ad`` whose X is dense) a float32 ``numpy.ndarray``. ``transpose`` reads the file's columns as rows (genes x cells files).
    """
    result = _sparseae.read(os.fspath(path), transpose)
    if isinstance(result, tuple):
        return csr_from_arrays(result)
    return result


def write(path: Union[str, os.PathLike], X: Matrix) -> None:
    """Writes counts X in the format path's extension names: ``.mtx``, ``.npz`` (scipy.sparse
    CSR), ``.h5ad`` (AnnData, X as CSR; ``anndata.read_h5ad``), ``.npy`` or ``.csv``. The file is written to a temporary name and renamed: a failed
    write (bad counts, an extension the engine does not write) leaves nothing at path.
    """
    _sparseae.write_csr(os.fspath(path), *as_csr_arrays(X))


def compress(path: Union[str, os.PathLike], X: Matrix, model: Optional[Any] = None,
             latent_bits: int = 32, block_rows: int = 4096, codec: Optional[str] = None) -> dict:
    """Stores counts X losslessly at path (as ``sae compress``), returning where the bytes went.

    ``codec`` is ``sae compress --codec``: ``"model"`` (the default with ``model``, a fitted
    SparseAutoencoder) codes each block by the model's code and its residual, or by the order-0
    code when that is smaller; ``"order0"`` (the default without one) fits each column's
    distribution on X and needs no model to decompress; ``"order0-training"`` takes the
    distributions of the model's training rows, so the file holds no tables and decompressing
    needs the model. ``latent_bits``: 32, 16, 8, or 0 for a rate-aware model's integer codes.
    """
    engine = model._engine() if model is not None else None
    return _sparseae.compress(os.fspath(path), *as_csr_arrays(X), engine, codec or "",
                              latent_bits, block_rows)


def decompress(path: Union[str, os.PathLike], model: Optional[Any] = None) -> sp.csr_matrix:
    """The counts of a file that ``compress`` or ``sae compress`` wrote, exactly, as CSR; a
    model-coded or order0-training file needs the model it was compressed with."""
    engine = model._engine() if model is not None else None
    return csr_from_arrays(_sparseae.decompress(os.fspath(path), engine))
