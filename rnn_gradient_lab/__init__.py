"""The lab's Python API under a name of its own, for scripts and notebooks: `import rnn_gradient_lab`.

    import rnn_gradient_lab
    result = rnn_gradient_lab.probe_model(model, inputs, targets)     # every nn.RNN/LSTM/GRU inside model
    with rnn_gradient_lab.watch(model, out="runs/lm", every=10):      # your own training loop, recorded
        ...
    run = rnn_gradient_lab.load_run("runs/lm")

Runs on the caller's thread; no Qt. The lab's code lives in the top-level packages `engine/` and `gui/`,
names a user's own folder may also hold: a notebook's folder comes first on sys.path, so there `import
engine` would find the user's `engine/`. This package finds the lab's `engine` by its location (the
folder that holds `rnn_gradient_lab/` holds `engine/` too, in a checkout and in an install) and imports
it with that folder first on sys.path for the length of the import only.

One process has one module per name: once this package is imported, `import engine` gives the lab's
engine (its own modules import each other as `engine.x`, also while your loop trains), and a warning
says so where your folder holds an `engine` of its own. Where your `engine` is already imported, the
lab's cannot be, and importing this package raises ImportError saying what to do.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent   # the folder holding rnn_gradient_lab/, engine/, gui/, resources/
RESOURCES = HOME / "resources"                  # the data that ships with the lab (resources/DATA.md)
_ENGINE = HOME / "engine"


def _is_the_labs(module) -> bool:
    where = getattr(module, "__file__", None)
    return where is not None and Path(where).resolve().parent == _ENGINE.resolve()


def _shadowing_engine() -> str | None:
    """Where `import engine` would look first, as sys.path stands, where that is not the lab's engine."""
    try:
        spec = importlib.util.find_spec("engine")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None if spec is None else str(list(spec.submodule_search_locations or ["?"])[0])
    return None if Path(spec.origin).resolve().parent == _ENGINE.resolve() else spec.origin


def _import_the_labs_engine():
    """The lab's `engine` package, imported by its location, whatever sys.path[0] holds."""
    loaded = sys.modules.get("engine")
    if loaded is not None:
        if _is_the_labs(loaded):
            return loaded
        raise ImportError(
            f"rnn_gradient_lab needs the name `engine` for its own package ({_ENGINE}), and this process already "
            f"imported another module under that name ({getattr(loaded, '__file__', None) or loaded!r}). One process "
            "holds one module per name: use the lab from a process (a fresh kernel) that imports rnn_gradient_lab "
            "before anything imports your `engine`, which it then cannot import; or rename your package.")
    if not (_ENGINE / "__init__.py").is_file():
        raise ImportError(f"rnn_gradient_lab: the lab's engine package is missing from {HOME}")
    shadowed = _shadowing_engine()
    sys.path.insert(0, str(HOME))
    try:
        engine = importlib.import_module("engine")
    finally:
        sys.path.remove(str(HOME))  # the first occurrence: the one put there above
    if shadowed is not None:
        warnings.warn(f"rnn_gradient_lab imported the lab's `engine` package ({_ENGINE}); `import engine` in this "
                      f"process now gives it, not {shadowed}", stacklevel=2)
    return engine


_import_the_labs_engine()

from engine.api import Probe, probe, probe_model  # noqa: E402  (after the lab's engine is the one imported)
from engine.model_probe import ModelProbe  # noqa: E402
from engine.run_folder import load_run  # noqa: E402
from engine.watching import watch  # noqa: E402
from engine.lightning_callback import lightning_callback  # noqa: E402  (imports Lightning only when called)

__all__ = ["probe", "probe_model", "watch", "load_run", "lightning_callback", "Probe", "ModelProbe", "RESOURCES"]
