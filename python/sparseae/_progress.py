"""Training progress: a tqdm bar where tqdm is installed (tqdm.auto: a widget in a notebook),
else one line redrawn with a carriage return, as ``sae train`` draws it."""
from __future__ import annotations

import math
import sys
from typing import Optional


def wanted(progress: Optional[bool]) -> bool:
    """progress=None: shown in a terminal and in a notebook (an IPython kernel), not in logs."""
    if progress is not None:
        return progress
    if "ipykernel" in sys.modules:
        return True
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def notebook_widgets_work() -> bool:
    """Whether tqdm's notebook bar can draw: it needs ipywidgets 7 or later (with Debian 12's
    ipywidgets 6 it fails as it opens, AttributeError: no 'style', after showing a broken
    widget)."""
    try:
        import ipywidgets
    except ImportError:
        return False
    return int(ipywidgets.__version__.split(".")[0]) >= 7


class Progress:
    """Called by the engine after every step: (epoch, step, steps, samples_per_second, loss)."""

    def __init__(self, epochs: Optional[int]):
        self.epochs = epochs
        self.epoch = 0
        self.bar = None
        self.last_drawn = -1
        try:
            from tqdm.auto import tqdm
            in_notebook = any(base.__module__ == "tqdm.notebook" for base in tqdm.__mro__)
            if in_notebook and not notebook_widgets_work():
                from tqdm.std import tqdm  # its text bar, which a notebook shows as output
        except ImportError:
            tqdm = None
        self.tqdm = tqdm

    def __call__(self, epoch: int, step: int, steps: int, rate: float, loss: float) -> None:
        if self.tqdm is not None:
            self._tqdm_step(epoch, step, steps, rate, loss)
            return
        if epoch != self.epoch:
            self.epoch, self.last_drawn = epoch, -steps
        # Redrawing every step would cost more than a small step: about 50 redraws an epoch.
        if step != steps and step - self.last_drawn < steps // 50 + 1:
            return
        self.last_drawn = step
        of = f"/{self.epochs}" if self.epochs else ""
        loss_text = "-" if math.isnan(loss) else f"{loss:.5g}"
        sys.stderr.write(f"\r\033[Kepoch {epoch}{of} step {step}/{steps}  loss {loss_text}  "
                         f"{rate:.0f} samples/s")
        sys.stderr.flush()

    def _tqdm_step(self, epoch: int, step: int, steps: int, rate: float, loss: float) -> None:
        if self.bar is None or epoch != self.epoch:
            if self.bar is not None:
                self.bar.close()
            of = f"/{self.epochs}" if self.epochs else ""
            self.bar = self.tqdm(total=steps, desc=f"epoch {epoch}{of}", unit="step",
                                 leave=False)
            self.epoch = epoch
        self.bar.n = step
        if not math.isnan(loss):
            self.bar.set_postfix(loss=f"{loss:.5g}", samples_s=f"{rate:.0f}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.epoch:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
