"""fit() in a Jupyter notebook: a real IPython kernel (this Python, this package) runs a notebook
cell that fits a model with the default progress, as a notebook user would. The bar must show,
as tqdm's widget where the notebook's widget library can draw it, else as tqdm's text bar, and
the fit must succeed either way (with Debian 12's ipywidgets 6, tqdm's widget itself fails)."""
import json
import os
import sys

import nbformat
from nbclient import NotebookClient

from sparseae._progress import notebook_widgets_work

CELL = """
import numpy as np, scipy.sparse as sp, sparseae
X = sp.random(400, 48, density=0.2, format="csr", random_state=0)
X.data = np.ceil(X.data * 5)
model = sparseae.SparseAutoencoder(hidden=(32,), latent=8, epochs=2, batch_size=64,
                                   backend="cpu").fit(X)
print("fitted", model.n_iter_, "epochs")
"""
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_fit_in_a_notebook_shows_progress(tmp_path, monkeypatch):
    # A kernel of this interpreter, whatever python3 comes first on the PATH: the package under
    # test is importable here (PYTHONPATH), not necessarily there.
    spec = tmp_path / "kernels" / "sparseae-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sparseae test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    client = NotebookClient(notebook, timeout=120, kernel_name="sparseae-test",
                            resources={"metadata": {"path": str(tmp_path)}})
    # nbclient's own handler of widget messages expects ipywidgets 7's; the kernel's outputs are
    # what this test reads.
    client.comm_open_handlers = {}
    client.execute()

    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "fitted 2 epochs" in text
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    if notebook_widgets_work():
        assert widgets, outputs
    else:
        assert not widgets, outputs
        assert "epoch 2/2: 100%" in text, text
    assert os.listdir(tmp_path) == ["kernels"]
