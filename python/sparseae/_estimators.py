"""The scikit-learn style estimators over the engine: SparseAutoencoder and PCA."""
from __future__ import annotations

import inspect
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp

from . import _progress, _sparseae
from ._io import Matrix, as_csr_arrays, csr_from_arrays


class NotFittedError(ValueError, AttributeError):
    """A model used before fit (or load), as scikit-learn's NotFittedError."""


class _Estimator:
    """get_params/set_params from __init__'s signature, as scikit-learn's BaseEstimator."""

    @classmethod
    def _param_names(cls) -> List[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "_Estimator":
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"{type(self).__name__}: no parameter '{name}' (parameters: "
                                 f"{', '.join(names)})")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default
                    for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k]]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _engine(self) -> "_sparseae.Model":
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(X) "
                                 "or sparseae.load(path) first")
        return model

    def transform(self, X: Matrix) -> np.ndarray:
        """The codes of the rows of X: a (rows, latent) float32 array."""
        return self._engine().encode(*as_csr_arrays(X))

    def inverse_transform(self, Z: np.ndarray,
                          decode: Optional[str] = None) -> Union[sp.csr_matrix, np.ndarray]:
        """Counts from codes Z, as CSR, decoded by ``decode`` ("round", "mode" or "mean"; by
        default the decode the model measured best on its validation rows, decode_); "values"
        gives the unrounded means as a dense float32 array instead."""
        result = self._engine().decode(np.asarray(Z, dtype=np.float32), decode)
        return csr_from_arrays(result) if isinstance(result, tuple) else result

    def score(self, X: Matrix, decode: Optional[str] = None) -> Dict[str, Any]:
        """How exactly X comes back through the model: exact_f1, exact_precision,
        nonzero_exact_fraction (the exact recall), row_exact_fraction, support precision, recall
        and F1, mse, mae, ... (the engine's metrics; None where undefined)."""
        return json.loads(self._engine().evaluate(*as_csr_arrays(X), decode))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the model's checkpoint (the format of ``sae train --checkpoint``, which
        ``sae eval``, ``encode``, ``decode`` and ``compress`` read; it names no data file, so
        ``sae eval`` needs ``--data``). Written to a temporary file and renamed."""
        self._engine().save(os.fspath(path))

    @property
    def n_features_in_(self) -> int:
        return self._engine().input_width


# The estimator's parameters that are sae train flags: name -> flag. None leaves a flag out,
# so that sae train's default applies (sae train --help lists them).
_TRAIN_FLAGS = {
    "hidden": "hidden", "latent": "latent", "loss": "loss", "backend": "backend",
    "epochs": "epochs", "batch_size": "batch", "learning_rate": "lr", "random_state": "seed",
    "val_fraction": "val-frac", "decoder_hidden": "decoder-hidden", "tied": "tied",
    "hidden_act": "hidden-act", "latent_act": "latent-act", "output_act": "output-act",
    "pca_anchor": "pca-anchor", "scale": "scale", "input_transform": "input-transform",
    "dispersion": "dispersion", "size_factors": "size-factors", "optimizer": "optimizer",
    "weight_decay": "weight-decay", "momentum": "momentum", "clip_norm": "clip-norm",
    "schedule": "schedule", "warmup": "warmup", "patience": "patience", "select": "select",
    "decode": "decode", "l1": "l1", "kl_beta": "kl-beta", "kl_rho": "kl-rho",
    "penalty_layer": "penalty-layer", "rate_lambda": "rate-lambda",
    "cosine_weight": "cosine-weight", "zero_weight": "zero-weight", "huber_delta": "huber-delta",
    "on_nan": "on-nan", "decoder_norm": "decoder-norm", "aux_k": "aux-k",
    "aux_weight": "aux-weight", "aux_dead_steps": "aux-dead-steps",
    "refine_steps": "refine-steps", "refine_rate": "refine-rate", "auto": "auto",
    "auto_budget": "auto-budget", "auto_rows": "auto-rows",
}
_SWITCHES = {"tied", "pca_anchor", "size_factors", "decoder_norm", "auto"}
_PARAMETER_OF_FLAG = {flag: name for name, flag in _TRAIN_FLAGS.items()}


def _in_parameter_names(message: str) -> str:
    """The engine's message about sae train's flags, told in this class's parameter names:
    "sae train: --latent-act topk:99 keeps K of the 4 latents of --latent" becomes
    "latent_act topk:99 keeps K of the 4 latents of latent"."""
    message = re.sub(r"^sae train: ", "", message)
    return re.sub(r"--([a-z][a-z0-9-]*)",
                  lambda flag: _PARAMETER_OF_FLAG.get(flag.group(1), flag.group(0)), message)


class SparseAutoencoder(_Estimator):
    """An autoencoder of count rows, trained by the engine exactly as ``sae train`` trains it.

    Every parameter but ``progress`` is the ``sae train`` flag of the same meaning
    (``batch_size`` is --batch, ``learning_rate`` --lr, ``random_state`` --seed, ``val_fraction``
    --val-frac; lists like ``hidden`` are sequences of widths, switches booleans), and a model
    fitted with them has the parameters ``sae train`` gives the same rows with those flags.
    None takes sae train's default: epochs 20 (128 with auto), batch_size 256, learning_rate 0.001,
    random_state 1 (runs repeat), val_fraction 0.1, input_transform "log1p", clip_norm 1,
    select "auto" (the epoch with the best validation exact F1), decode chosen on the validation
    rows; ``sae train --help`` lists every one. ``loss`` None is mse. ``refine_steps``
    (--refine-steps) refines each row's code before decoding it, in score() and transform() too;
    ``refine_rate`` sets its rate and needs steps (fit() fails on a rate without them).

    ``auto=True`` is ``sae train --auto``: fit() searches the recipe (loss and decode, latent
    activation, learning rate, started at PCA or not) that reproduces the validation rows most
    exactly within ``auto_budget`` seconds (default 600), ranking the recipes on at most
    ``auto_rows`` rows (default 65536; 0: every row) and training the best on every row after,
    and keeps the best model. ``loss``, ``decode``, ``latent_act`` and ``learning_rate`` must be
    left None then: the search chooses them. No progress bar; Ctrl-C stops the search (no model).

    ``progress``: a progress bar while fitting (tqdm's where installed, a notebook widget in
    Jupyter); None shows one in a terminal or a notebook only. Ctrl-C stops fit() after the
    current step and raises KeyboardInterrupt.

    Fitted attributes: ``n_features_in_``, ``n_iter_`` (epochs trained), ``history_`` (one dict
    per epoch: losses, val_f1, best, samples_per_second, ...), ``kept_epoch_``,
    ``validation_metrics_`` (the kept parameters' metrics on the validation rows), ``decode_``,
    ``parameters_`` (the flat parameter vector), ``config_`` (the checkpoint's configuration),
    ``backend_`` (what trained it). After a search (auto) instead of the epochs': ``recipes_``
    (one dict a recipe: loss, decode, latent_act, learning_rate, pca_anchor, huber_delta, epochs,
    exact_f1 on the validation rows it was ranked by, seconds, eliminated, failure),
    ``best_recipe_`` (the one kept), ``search_`` (validation_rows, search_rows,
    search_validation_rows, all_rows: the best's epochs and exact_f1 on every row after ranking
    on a sample, else None; refinement: the refined codes' trial, its "skipped" reason where its
    time did not fit, else None) and ``n_iter_`` (the
    best's epochs in all).
    """

    def __init__(self, hidden: Sequence[int] = (256, 128), latent: int = 32,
                 loss: Optional[str] = None,
                 backend: str = "auto", epochs: Optional[int] = None,
                 batch_size: Optional[int] = None, learning_rate: Optional[float] = None,
                 random_state: Optional[int] = None, val_fraction: Optional[float] = None,
                 decoder_hidden: Optional[Sequence[int]] = None, tied: bool = False,
                 hidden_act: Optional[str] = None, latent_act: Optional[str] = None,
                 output_act: Optional[str] = None, pca_anchor: bool = False,
                 scale: Optional[str] = None, input_transform: Optional[str] = None,
                 dispersion: Optional[str] = None, size_factors: bool = False,
                 optimizer: Optional[str] = None, weight_decay: Optional[float] = None,
                 momentum: Optional[float] = None, clip_norm: Optional[float] = None,
                 schedule: Optional[str] = None, warmup: Optional[int] = None,
                 patience: Optional[int] = None, select: Optional[str] = None,
                 decode: Optional[str] = None, l1: Optional[float] = None,
                 kl_beta: Optional[float] = None, kl_rho: Optional[float] = None,
                 penalty_layer: Optional[int] = None, rate_lambda: Optional[float] = None,
                 cosine_weight: Optional[float] = None, zero_weight: Optional[float] = None,
                 huber_delta: Optional[float] = None, on_nan: Optional[str] = None,
                 decoder_norm: bool = False, aux_k: Optional[int] = None,
                 aux_weight: Optional[float] = None, aux_dead_steps: Optional[int] = None,
                 refine_steps: Optional[int] = None, refine_rate: Optional[float] = None,
                 auto: bool = False, auto_budget: Optional[float] = None,
                 auto_rows: Optional[int] = None, progress: Optional[bool] = None):
        self.hidden = hidden
        self.latent = latent
        self.loss = loss
        self.backend = backend
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.val_fraction = val_fraction
        self.decoder_hidden = decoder_hidden
        self.tied = tied
        self.hidden_act = hidden_act
        self.latent_act = latent_act
        self.output_act = output_act
        self.pca_anchor = pca_anchor
        self.scale = scale
        self.input_transform = input_transform
        self.dispersion = dispersion
        self.size_factors = size_factors
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.clip_norm = clip_norm
        self.schedule = schedule
        self.warmup = warmup
        self.patience = patience
        self.select = select
        self.decode = decode
        self.l1 = l1
        self.kl_beta = kl_beta
        self.kl_rho = kl_rho
        self.penalty_layer = penalty_layer
        self.rate_lambda = rate_lambda
        self.cosine_weight = cosine_weight
        self.zero_weight = zero_weight
        self.huber_delta = huber_delta
        self.on_nan = on_nan
        self.decoder_norm = decoder_norm
        self.aux_k = aux_k
        self.aux_weight = aux_weight
        self.aux_dead_steps = aux_dead_steps
        self.refine_steps = refine_steps
        self.refine_rate = refine_rate
        self.auto = auto
        self.auto_budget = auto_budget
        self.auto_rows = auto_rows
        self.progress = progress

    def train_flags(self) -> List[str]:
        """The ``sae train`` flags these parameters stand for."""
        flags = []
        for name, flag in _TRAIN_FLAGS.items():
            value = getattr(self, name)
            if name in _SWITCHES:
                if value:
                    flags.append(f"--{flag}")
            elif value is not None:
                if isinstance(value, (list, tuple)):
                    value = ",".join(str(int(v)) for v in value)
                flags.append(f"--{flag}={value}")
        return flags

    def fit(self, X: Matrix, y: Any = None) -> "SparseAutoencoder":
        """Trains on the rows of X (counts), holding out val_fraction of them to select the
        epoch and the decode by, as sae train does. y is ignored."""
        arrays = as_csr_arrays(X)
        if self.auto:
            return self._search(arrays)
        progress = _progress.Progress(self.epochs) if _progress.wanted(self.progress) else None
        try:
            model, info = _sparseae.fit(*arrays, self.train_flags(), progress)
        except _sparseae.SparseaeError as error:
            raise _sparseae.SparseaeError(_in_parameter_names(str(error))) from None
        finally:
            if progress is not None:
                progress.close()
        self.model_ = model
        self.history_ = info["epochs"]
        self.n_iter_ = len(info["epochs"])
        self.kept_epoch_ = info["kept_epoch"]
        self.validation_loss_ = info["validation_loss"]
        self.validation_metrics_ = json.loads(info["validation"])
        self.other_decode_ = info["other_decode"]
        self.other_decode_f1_ = info["other_decode_f1"]
        self.backend_ = info["backend"]
        for name in ("recipes_", "best_recipe_", "search_"):
            self.__dict__.pop(name, None)
        return self

    def _search(self, arrays) -> "SparseAutoencoder":
        try:
            model, info = _sparseae.search(*arrays, self.train_flags())
        except _sparseae.SparseaeError as error:
            raise _sparseae.SparseaeError(_in_parameter_names(str(error))) from None
        self.model_ = model
        self.recipes_ = info.pop("recipes")
        self.best_recipe_ = self.recipes_[info.pop("best")]
        self.backend_ = info.pop("backend")
        self.search_ = info
        all_rows = info["all_rows"]
        self.n_iter_ = self.best_recipe_["epochs"] + (all_rows["epochs"] if all_rows else 0)
        for name in ("history_", "kept_epoch_", "validation_loss_", "validation_metrics_",
                     "other_decode_", "other_decode_f1_"):
            self.__dict__.pop(name, None)
        return self

    def fit_transform(self, X: Matrix, y: Any = None) -> np.ndarray:
        """fit(X), then the codes of X's rows."""
        return self.fit(X).transform(X)

    @property
    def decode_(self) -> str:
        return self._engine().decode_name

    @property
    def parameters_(self) -> np.ndarray:
        return self._engine().parameters

    @property
    def config_(self) -> Dict[str, Any]:
        return json.loads(self._engine().config_json)


class PCA(_Estimator):
    """PCA of count rows on the engine (as ``sae pca``; the baseline of every sae report),
    fitted on every row of X without densifying it. Its transform gives codes (x - mean_) W,
    inverse_transform counts (rounded, by default) or values, score the same metrics as
    SparseAutoencoder's; its checkpoint (save) is one that sae encode, decode and eval read.

    ``solver``: "auto", "covariance" or "randomized"; ``random_state`` seeds the randomized one.
    Fitted attributes: ``components_`` (k x D), ``mean_``, ``explained_variance_``,
    ``explained_variance_ratio_``, ``n_features_in_``, ``n_samples_``, ``solver_``.
    """

    def __init__(self, n_components: int = 32, solver: str = "auto", random_state: int = 1,
                 backend: str = "auto"):
        self.n_components = n_components
        self.solver = solver
        self.random_state = random_state
        self.backend = backend

    def fit(self, X: Matrix, y: Any = None) -> "PCA":
        model, info = _sparseae.fit_pca(*as_csr_arrays(X), self.n_components, self.solver,
                                        self.random_state, self.backend)
        self.model_ = model
        self.components_ = info["components"]
        self.mean_ = info["mean"]
        self.explained_variance_ = np.asarray(info["explained_variance"])
        self.explained_variance_ratio_ = np.asarray(info["explained_variance_ratio"])
        self.n_samples_ = info["rows"]
        self.solver_ = info["solver"]
        return self

    def fit_transform(self, X: Matrix, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)


def load(path: Union[str, os.PathLike], backend: str = "auto") -> SparseAutoencoder:
    """A model from a checkpoint that ``sae train`` (or ``save``) wrote, ready to transform,
    inverse_transform and score; its parameters (hidden, latent, loss, ...) are the
    checkpoint's."""
    model = _sparseae.Model.load(os.fspath(path), backend)
    config = json.loads(model.config_json)
    estimator = SparseAutoencoder(
        hidden=tuple(config["model"]["hidden"]), latent=config["model"]["latent"],
        loss=config["train"]["loss"], backend=backend)
    estimator.model_ = model
    return estimator
