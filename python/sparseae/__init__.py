"""sparseae: autoencoders that reproduce sparse count matrices exactly from a small code.

A scikit-learn style front end to the sparseae engine (the library behind the ``sae`` command)::

    import sparseae
    X = sparseae.read("counts.npz")            # scipy.sparse CSR, or numpy for dense files
    model = sparseae.SparseAutoencoder(hidden=(256, 128), latent=32, loss="hurdle", epochs=30)
    Z = model.fit_transform(X)                  # (rows, 32) float32 codes
    counts = model.inverse_transform(Z)         # scipy.sparse CSR counts, decoded as measured
    model.score(X)["exact_f1"]                  # exact-reconstruction metrics as a dict
    model.save("counts.ckpt")                   # the checkpoint sae eval/encode/decode read

X is a numpy array or any scipy.sparse matrix of counts (finite, non-negative). Every engine
error is a ``SparseaeError`` (a ``ValueError``) with the engine's one-line message.
"""
from ._estimators import PCA, NotFittedError, SparseAutoencoder, load
from ._io import compress, decompress, read, write
from ._sparseae import SparseaeError

__all__ = ["SparseAutoencoder", "PCA", "NotFittedError", "SparseaeError", "load", "read",
           "write", "compress", "decompress"]
