"""The Python package against the engine: fit/transform/score on a real .npz file, agreement with
sae train (same flags, same parameters; each reads the other's checkpoint), files, lossless mode,
Ctrl-C, and bad input (a clear exception, nothing written)."""
import json
import os
import signal
import subprocess
import threading
import time

import anndata
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import sparseae

SAE = os.environ.get("SPARSEAE_SAE")
# A small model that trains in well under a second on the rows below.
SMALL = dict(hidden=(32,), latent=8, epochs=3, batch_size=64, learning_rate=3e-3,
             random_state=5, val_fraction=0.2, backend="cpu", progress=False)
SMALL_FLAGS = ["--hidden", "32", "--latent", "8", "--epochs", "3", "--batch", "64", "--lr",
               "3e-3", "--seed", "5", "--val-frac", "0.2", "--backend", "cpu"]


def counts(rows=400, cols=48, seed=0):
    """Topic-like counts: each row draws from one of a few column profiles."""
    rng = np.random.default_rng(seed)
    profiles = rng.dirichlet(np.full(cols, 0.2), size=4)
    topic = rng.integers(0, 4, size=rows)
    dense = np.stack([rng.multinomial(12, profiles[t]) for t in topic]).astype(np.int64)
    return sp.csr_matrix(dense)


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "counts.npz"
    sp.save_npz(path, counts())
    return path


def test_fits_transforms_and_scores_an_npz_file(npz):
    X = sparseae.read(npz)
    assert sp.isspmatrix_csr(X) and X.shape == (400, 48)
    model = sparseae.SparseAutoencoder(loss="hurdle", **SMALL)
    Z = model.fit_transform(X)
    assert Z.shape == (400, 8) and Z.dtype == np.float32
    assert model.n_features_in_ == 48 and model.n_iter_ == 3 and len(model.history_) == 3
    back = model.inverse_transform(Z)
    assert sp.isspmatrix_csr(back) and back.shape == X.shape
    assert np.all(back.data == np.round(back.data)) and np.all(back.data > 0)
    metrics = model.score(X)
    assert 0 < metrics["exact_f1"] <= 1 and metrics["rows"] == 400
    # The exact F1 of the reconstruction, counted here from the decoded counts themselves.
    dense, decoded = X.toarray(), back.toarray()
    exact = np.sum((dense != 0) & (decoded == dense))
    assert metrics["exact_f1"] == pytest.approx(2 * exact / (X.nnz + back.nnz), abs=1e-6)
    values = model.inverse_transform(Z, decode="values")
    assert isinstance(values, np.ndarray) and values.shape == X.shape
    # Dense and other sparse layouts give the same codes as CSR.
    np.testing.assert_array_equal(model.transform(X.toarray()), Z)
    np.testing.assert_array_equal(model.transform(X.tocoo()), Z)


@pytest.mark.skipif(not SAE, reason="SPARSEAE_SAE (the sae binary) not set; ctest sets it")
def test_same_flags_same_parameters_as_sae_train_and_each_reads_the_others_checkpoint(
        npz, tmp_path):
    cli_ckpt = tmp_path / "cli.ckpt"
    subprocess.run([SAE, "train", "--data", str(npz), "--loss", "hurdle", "-o",
                    str(cli_ckpt), "--no-pca", "--quiet"] + SMALL_FLAGS, check=True,
                   stdout=subprocess.DEVNULL)
    model = sparseae.SparseAutoencoder(loss="hurdle", **SMALL).fit(sparseae.read(npz))
    from_cli = sparseae.load(cli_ckpt, backend="cpu")
    np.testing.assert_array_equal(model.parameters_, from_cli.parameters_)
    # The same configuration but where the rows came from: a file, or Python's memory.
    python_config, cli_config = model.config_, from_cli.config_
    for config in (python_config, cli_config):
        config.pop("data_source", None)
        config.pop("data_source_relative_to_checkpoint", None)
    assert python_config == cli_config
    assert from_cli.loss == "hurdle" and from_cli.hidden == (32,) and from_cli.latent == 8
    X = sparseae.read(npz)
    assert from_cli.score(X) == model.score(X)
    # sae eval reads the checkpoint Python saved, and measures what score() measures.
    py_ckpt = tmp_path / "py.ckpt"
    model.save(py_ckpt)
    out = subprocess.run([SAE, "eval", "--model", str(py_ckpt), "--data", str(npz), "--json",
                          "--backend", "cpu"], check=True, capture_output=True, text=True)
    assert '"exact_f1"' in out.stdout


def test_pca_fits_and_round_trips_its_checkpoint(npz, tmp_path):
    X = sparseae.read(npz)
    pca = sparseae.PCA(n_components=6, backend="cpu").fit(X)
    assert pca.components_.shape == (6, 48) and pca.mean_.shape == (48,)
    np.testing.assert_allclose(pca.mean_, np.asarray(X.mean(axis=0)).ravel(), rtol=1e-5)
    assert np.all(np.diff(pca.explained_variance_) <= 0)
    Z = pca.transform(X)
    np.testing.assert_allclose(Z, (X.toarray() - pca.mean_) @ pca.components_.T, atol=1e-4)
    pca.save(tmp_path / "pca.ckpt")
    loaded = sparseae.load(tmp_path / "pca.ckpt", backend="cpu")
    np.testing.assert_array_equal(loaded.transform(X), Z)
    assert loaded.score(X) == pca.score(X)


def test_read_write_round_trip_every_format(tmp_path):
    X = counts(rows=30, cols=7)
    for name in ["a.mtx", "a.npz", "a.h5ad", "a.npy", "a.csv"]:
        sparseae.write(tmp_path / name, X)
        back = sparseae.read(tmp_path / name)
        np.testing.assert_array_equal(back.toarray() if sp.issparse(back) else back,
                                      X.toarray())
    # scipy reads the engine's .npz as the engine reads scipy's.
    np.testing.assert_array_equal(sp.load_npz(tmp_path / "a.npz").toarray(), X.toarray())


def test_reads_h5ad_that_h5py_writes_and_h5py_reads_what_it_writes(tmp_path):
    X = counts(rows=30, cols=7)
    # X as anndata stores a csc matrix (int64 indices, integer data), and as a dense dataset.
    csc = X.tocsc()
    with h5py.File(tmp_path / "csc.h5ad", "w") as f:
        group = f.create_group("X")
        group.attrs["encoding-type"] = "csc_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = np.array(csc.shape, dtype=np.int64)
        group["data"] = csc.data.astype(np.int32)
        group["indices"] = csc.indices.astype(np.int64)
        group["indptr"] = csc.indptr.astype(np.int64)
    with h5py.File(tmp_path / "dense.h5ad", "w") as f:
        f["X"] = X.toarray().astype(np.float64)
    back = sparseae.read(tmp_path / "csc.h5ad")
    assert sp.isspmatrix_csr(back)
    np.testing.assert_array_equal(back.toarray(), X.toarray())
    np.testing.assert_array_equal(sparseae.read(tmp_path / "dense.h5ad"), X.toarray())
    np.testing.assert_array_equal(sparseae.read(tmp_path / "csc.h5ad", transpose=True).toarray(),
                                  X.toarray().T)
    sparseae.write(tmp_path / "w.h5ad", X)
    with h5py.File(tmp_path / "w.h5ad", "r") as f:
        assert f["X"].attrs["encoding-type"] == "csr_matrix"
        written = sp.csr_matrix((f["X/data"][:], f["X/indices"][:], f["X/indptr"][:]),
                                shape=tuple(f["X"].attrs["shape"]))
    np.testing.assert_array_equal(written.toarray(), X.toarray())
    with h5py.File(tmp_path / "csc.h5ad", "r+") as f:
        f["X/data"][0] = -1
    with pytest.raises(sparseae.SparseaeError, match="csc.h5ad: X/data: element 0: negative"):
        sparseae.read(tmp_path / "csc.h5ad")


def test_fits_transforms_and_scores_an_h5ad_file_that_anndata_writes(tmp_path):
    X = counts()
    anndata.AnnData(X=X.astype(np.float32)).write_h5ad(tmp_path / "cells.h5ad")
    read = sparseae.read(tmp_path / "cells.h5ad")
    assert sp.isspmatrix_csr(read) and (read != X).nnz == 0
    model = sparseae.SparseAutoencoder(loss="hurdle", **SMALL)
    Z = model.fit_transform(read)
    assert Z.shape == (400, 8)
    metrics = model.score(read)
    assert 0 < metrics["exact_f1"] <= 1 and metrics["rows"] == 400


def test_compress_decompress_is_exact_with_and_without_a_model(tmp_path):
    X = counts()
    sizes = sparseae.compress(tmp_path / "o0.sae", X)
    assert sizes["bytes"] == os.path.getsize(tmp_path / "o0.sae")
    assert (sparseae.decompress(tmp_path / "o0.sae") != X).nnz == 0
    model = sparseae.SparseAutoencoder(loss="hurdle", **SMALL).fit(X)
    sparseae.compress(tmp_path / "m.sae", X, model=model)
    assert (sparseae.decompress(tmp_path / "m.sae", model=model) != X).nnz == 0
    # The order-0 code of the model's training rows: no tables, and the model to decompress.
    sizes = sparseae.compress(tmp_path / "t.sae", X, model=model, codec="order0-training")
    assert sizes["table_bytes"] == 0 and sizes["order0_blocks"] == sizes["blocks"]
    assert (sparseae.decompress(tmp_path / "t.sae", model=model) != X).nnz == 0
    with pytest.raises(sparseae.SparseaeError, match="decompress with that checkpoint"):
        sparseae.decompress(tmp_path / "t.sae")
    with pytest.raises(sparseae.SparseaeError, match="needs the model"):
        sparseae.compress(tmp_path / "x.sae", X, codec="order0-training")
    with pytest.raises(sparseae.SparseaeError, match="expected model, order0 or order0-training"):
        sparseae.compress(tmp_path / "x.sae", X, codec="zip")


def test_params_and_not_fitted():
    model = sparseae.SparseAutoencoder(latent=16)
    assert model.get_params()["latent"] == 16
    assert "--epochs=4" in model.set_params(epochs=4, random_state=3).train_flags()
    assert "--seed=3" in model.train_flags()
    with pytest.raises(ValueError, match="no parameter 'epoch'"):
        model.set_params(epoch=4)
    with pytest.raises(sparseae.NotFittedError, match="not fitted yet"):
        model.transform(counts())
    with pytest.raises(sparseae.SparseaeError, match="loss"):
        sparseae.SparseAutoencoder(loss="nonsense", **{**SMALL}).fit(counts())


def test_decoder_norm_is_the_switch_of_sae_train_and_is_stored():
    model = sparseae.SparseAutoencoder(decoder_norm=True, **SMALL)
    assert "--decoder-norm" in model.train_flags()
    assert "--decoder-norm" not in sparseae.SparseAutoencoder(**SMALL).train_flags()
    assert model.fit(counts()).config_["train"]["decoder_norm"] is True


def test_auxk_is_sae_trains_and_is_stored():
    model = sparseae.SparseAutoencoder(latent_act="topk:4", aux_k=2, aux_weight=0.25,
                                       aux_dead_steps=8, **SMALL)
    assert {"--aux-k=2", "--aux-weight=0.25", "--aux-dead-steps=8"} <= set(model.train_flags())
    train = model.fit(counts()).config_["train"]
    assert (train["aux_k"], train["aux_weight"], train["aux_dead_steps"]) == (2, 0.25, 8)
    with pytest.raises(sparseae.SparseaeError,
                       match=r"^AuxK \(aux_k\) revives the dead latents .* latent_act topk:K"):
        sparseae.SparseAutoencoder(aux_k=2, **SMALL).fit(counts())


def test_refinement_is_sae_trains_and_every_use_reads_it():
    plain = sparseae.SparseAutoencoder(latent_act="identity", loss="poisson", **SMALL)
    refined = sparseae.SparseAutoencoder(latent_act="identity", loss="poisson", refine_steps=20,
                                         refine_rate=0.05, **SMALL)
    assert {"--refine-steps=20", "--refine-rate=0.05"} <= set(refined.train_flags())
    X = counts()
    refined.fit(X)
    assert refined.config_["latent_refinement"] == {"steps": 20, "rate": 0.05}
    plain.fit(X)
    # The same training; only the codes differ, and they reconstruct the rows more closely.
    np.testing.assert_array_equal(plain.parameters_, refined.parameters_)
    assert not np.array_equal(plain.transform(X), refined.transform(X))
    assert refined.score(X)["nll_bits_per_row"] < plain.score(X)["nll_bits_per_row"]
    with pytest.raises(sparseae.SparseaeError, match=r"quantised under a latent prior"):
        sparseae.SparseAutoencoder(rate_lambda=1, refine_steps=5, **SMALL).fit(X)


# sae train --auto's flags, less those the search chooses itself (loss, decode, latent_act, lr).
AUTO = dict(hidden=(16,), latent=4, epochs=2, batch_size=64, random_state=5, val_fraction=0.2,
            backend="cpu", progress=False)
AUTO_FLAGS = ["--hidden", "16", "--latent", "4", "--epochs", "2", "--batch", "64", "--seed", "5",
              "--val-frac", "0.2", "--backend", "cpu"]


def test_auto_is_sae_train_auto_and_keeps_the_best_recipe(npz, tmp_path):
    X = sparseae.read(npz)
    model = sparseae.SparseAutoencoder(auto=True, auto_rows=200, **AUTO).fit(X)
    assert len(model.recipes_) == 12
    best = model.best_recipe_
    assert model.config_["train"]["loss"] == best["loss"]
    assert model.search_["search_rows"] == 200 and model.search_["validation_rows"] == 80
    assert model.search_["all_rows"]["epochs"] == 2, "ranked on 200 rows, then trained on all 400"
    assert model.n_iter_ == best["epochs"] + 2
    assert model.score(X)["exact_f1"] is not None
    # sae train --auto with the same flags: the same recipes' F1s and the same model.
    cli_ckpt = tmp_path / "auto.ckpt"
    out = subprocess.run([SAE, "train", "--auto", "--auto-rows", "200", "--data", str(npz), "-o",
                          str(cli_ckpt), "--json", "--quiet", "--no-pca"] + AUTO_FLAGS,
                         check=True, capture_output=True, text=True)
    cli = json.loads(out.stdout)
    assert [r["exact_f1"] for r in cli["recipes"]] == pytest.approx(
        [r["exact_f1"] for r in model.recipes_], abs=1e-6)
    assert cli["all_rows"]["exact_f1"] == pytest.approx(model.search_["all_rows"]["exact_f1"],
                                                        abs=1e-6)
    # The same parameters, but for rounding noise of 1e-18 on entries the PCA anchor's
    # eigensolver leaves at zero (a PCA-anchored recipe wins on these rows).
    np.testing.assert_allclose(model.parameters_,
                               sparseae.load(cli_ckpt, backend="cpu").parameters_,
                               rtol=1e-6, atol=1e-12)
    # A plain fit after a search drops the search's attributes.
    plain = model.set_params(auto=False, auto_rows=None).fit(X)
    assert not hasattr(plain, "recipes_") and plain.history_


@pytest.mark.parametrize("parameters, message", [
    (dict(auto=True, loss="hurdle"), r"^auto chooses loss; drop it$"),
    (dict(auto=True, learning_rate=1e-3), r"^auto chooses learning_rate; drop it$"),
    (dict(auto=True, auto_rows=-1), r"^auto_rows must be 0 \(every row\) or a number of rows$"),
    (dict(auto_rows=100), r"^auto_rows sets the recipe search: give auto$"),
])
def test_auto_refuses_what_it_chooses_itself(parameters, message):
    with pytest.raises(sparseae.SparseaeError, match=message):
        sparseae.SparseAutoencoder(**{**AUTO, **parameters}).fit(counts())


def test_ctrl_c_stops_a_search_with_keyboard_interrupt():
    model = sparseae.SparseAutoencoder(auto=True, **{**AUTO, "epochs": None})
    X = counts(rows=20000)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X)
    finally:
        timer.cancel()
    # Uninterrupted, this search takes about a minute here (128 epochs for its last recipe).
    assert time.monotonic() - started < 10, "stopped mid-search, not at its end"
    with pytest.raises(sparseae.NotFittedError):
        model.transform(counts())


def test_ctrl_c_stops_fit_with_keyboard_interrupt(monkeypatch):
    steps = []

    class Interrupting:
        def __init__(self, epochs):
            pass

        def __call__(self, epoch, step, steps_per_epoch, rate, loss):
            steps.append(step)
            os.kill(os.getpid(), signal.SIGINT)

        def close(self):
            pass

    monkeypatch.setattr(sparseae._progress, "Progress", Interrupting)
    model = sparseae.SparseAutoencoder(**{**SMALL, "epochs": 50, "progress": True})
    with pytest.raises(KeyboardInterrupt):
        model.fit(counts())
    assert len(steps) == 1  # stopped at the first step, not after 50 epochs
    with pytest.raises(sparseae.NotFittedError):
        model.transform(counts())


@pytest.mark.parametrize("bad, error, message", [
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "dtype <U1 is not a number type"),
    (sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 3.0]])), ValueError,
     "X: row 0, column 1: negative count -2"),
    (np.array([[1.0, np.nan], [0.0, 3.0]]), ValueError, "X: row 0, column 1: value nan is not"),
    (np.array([[1, 2 ** 30], [0, 3]]), ValueError, "count 1073741824 exceeds 16777216"),
    (np.zeros((0, 48)), ValueError, "X: 0 rows; fitting a model needs at least 2"),
    (np.ones(5), ValueError, "a 2-D matrix"),
])
def test_bad_input_is_a_clear_exception_and_nothing_is_written(tmp_path, bad, error, message):
    with pytest.raises(error, match=message):
        sparseae.SparseAutoencoder(**SMALL).fit(bad)
    if len(np.shape(bad)) == 2 and np.shape(bad)[0] > 0:
        with pytest.raises(error, match=message):
            sparseae.write(tmp_path / "out.npz", bad)
        with pytest.raises(error, match=message):
            sparseae.compress(tmp_path / "out.sae", bad)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("parameters, message", [
    (dict(learning_rate=-1e-3), r"^learning rate \(learning_rate\) must be finite and positive"),
    (dict(latent_act="topk:99"),
     r"^latent_act topk:99 keeps K of the 8 latents of latent: K from 1 to 8$"),
    (dict(loss="hurdle", tied=True), r"^tied needs one output per column; loss hurdle has 2"),
    (dict(clip_norm=-1), r"^clipping norm \(clip_norm\) must be finite and non-negative"),
])
def test_bad_parameters_are_named_as_parameters(parameters, message):
    with pytest.raises(sparseae.SparseaeError, match=message):
        sparseae.SparseAutoencoder(**{**SMALL, **parameters}).fit(counts())


def test_mismatched_columns_and_bad_paths(tmp_path):
    model = sparseae.SparseAutoencoder(**SMALL).fit(counts())
    with pytest.raises(sparseae.SparseaeError, match="X: 47 columns, the model was fitted on 48"):
        model.transform(counts(cols=47))
    with pytest.raises(sparseae.SparseaeError, match="X: 47 columns"):
        model.score(counts(cols=47))
    with pytest.raises(sparseae.SparseaeError, match="latents: 3 columns, the model's code has 8"):
        model.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(sparseae.SparseaeError, match="out.txt"):
        sparseae.write(tmp_path / "out.txt", counts())
    with pytest.raises(sparseae.SparseaeError, match="missing.npz"):
        sparseae.read(tmp_path / "missing.npz")
    assert os.listdir(tmp_path) == []
