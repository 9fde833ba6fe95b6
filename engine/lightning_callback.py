"""`watch()` as a PyTorch Lightning callback, for a training loop that Lightning runs.

Runs on the training thread; no Qt. Lightning is not a dependency: `lightning_callback(...)` imports it
when called (`lightning.pytorch`, else the older `pytorch_lightning`) and says how to install it where
neither is there. The callback starts watching the LightningModule when fitting starts (the same hooks as
`watch`: d loss / d h_t of every recurrent module inside, on the measured step's batch and the weights
before its update), logs each training step's loss from what `training_step` returned, and closes the
run folder when fitting ends, however it ends.

    trainer = lightning.Trainer(callbacks=[rnn_gradient_lab.lightning_callback(out="runs/lm", every=10)])
"""
from __future__ import annotations

import importlib

from engine.watching import Watcher

INSTALL = "pip install lightning (the callback is for a training loop Lightning runs; watch() needs no Lightning)"


def _callback_base():
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name).Callback
        except ImportError:
            continue
    raise ImportError(f"PyTorch Lightning is not installed: {INSTALL}")


def lightning_callback(out, every: int = 10, units: bool = True, replace: bool = False):
    """A Lightning Callback that watches the module being fitted into the run folder `out` (see `watch`)."""
    base = _callback_base()

    class WatchGradients(base):
        """Watches the LightningModule while it is fitted (engine.watching.Watcher)."""

        def __init__(self):
            super().__init__()
            self.watcher: Watcher | None = None

        def on_fit_start(self, trainer, pl_module):
            self.watcher = Watcher(pl_module, out, every, units=units, replace=replace, live=False)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if self.watcher is not None and loss is not None:
                self.watcher.log(loss)

        def on_fit_end(self, trainer, pl_module):
            self._close()

        def on_exception(self, trainer, pl_module, exception):
            self._close()

        def _close(self):
            if self.watcher is not None:
                self.watcher.close()
                self.watcher = None

    return WatchGradients()
