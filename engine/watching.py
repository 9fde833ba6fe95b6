"""Watch a user's own PyTorch training loop, unchanged, and keep what its recurrent modules' gradients do.

Runs on the thread that trains (a script, a notebook kernel); no Qt. It writes a run folder
(engine/run_folder.py: the format, its writer and readers):

- `watch(model, out=DIR, every=N)`: a context manager around the user's own loop. Every N-th step
  (and the first) it measures, for every nn.RNN/LSTM/GRU inside `model` (by qualified name), what
  engine.api.probe_model reports, on that step's batch and on the weights BEFORE that step's
  update, and appends it to the run folder DIR.
- `RunReader(DIR).read_new()`: the records appended since the last call (what a viewer polls; the
  window's gui/following.py does), and `load_run(DIR) -> Run`: the whole folder as arrays.
- The run folder (TensorBoard's log directory, on a small scale): `run.json` once, written whole
  (a temp file renamed), then `records.bin`, an append-only log of length-prefixed, checksummed
  records. A writer killed mid-record leaves a cut-short last record, which readers skip (a live
  viewer waits for the rest); a record whose checksum fails is damage, and an error.

How a step is measured, exactly and with no change to the loop. A step is one backward pass through
the output of one forward call of `model` with gradients on, counted from 1. Hooks on `model` only:
a forward pre-hook copies the call's arguments when the coming step is to be measured (nothing is
copied otherwise), and a forward hook puts a tensor hook on the output, which during the user's
`loss.backward()` receives d loss / d output. At the end of that backward pass (an autograd end-of-pass
callback: before `backward()` returns, so before `opt.step()` changes the weights), probe_model (engine.api) runs
the model again on the copied arguments with its recurrent modules unrolled step by step, with the
"loss" sum(output * captured d loss / d output). Its gradient at every h_t is then exactly the user's
d loss / d h_t (a vector-Jacobian product through the same network), whatever the user's loss was and
without knowing the targets. The probe reads detached weights and asks autograd for the states' gradients
only, so no parameter's `.grad`, no random-number state and no weight changes: training is what it
would have been unwatched (a test checks 30 Adam steps against an unwatched run).

Dropout: probe_model runs the model in eval mode (and puts every module's mode back after), so the
record is of the deterministic network; the user's step itself trained with its dropout masks. With
dropout between d loss / d output and the recurrent module the two differ by those masks; `run.json`
says whether the model has dropout. The loss: what `loss_of(output)` returns on the measured step's
output, else what `watcher.log(loss=...)` is given for that step, else NaN. In a Jupyter kernel, a picture under
the cell (each module's gradient profile) is updated at every measured step (`LivePicture`, IPython's
display handle); nothing of IPython is imported elsewhere.
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


from engine.run_folder import (RECURRENT, ModuleRecord, Record, RunWriter, has_dropout, module_shapes,
                               readonly_array)

# ----------------------------------------------------------------------------- watching a loop

def watch(model: nn.Module, out, every: int = 10, loss_of=None, units: bool = True, replace: bool = False,
          live: bool | None = None) -> "Watcher":
    """Watch `model` train in the caller's own loop; use as `with watch(model, out="runs/lm", every=10): ...`.

    model: any nn.Module holding one or more nn.RNN/LSTM/GRU (found by named_modules()).
    out: the run folder; made if missing. A folder that already holds a run is refused unless `replace`.
    every: measure steps 1, every, 2 * every, ... (a step: one backward pass through the model's output).
    loss_of: optional callable(output) -> the loss (a tensor or number), called on the measured step's
        output to record its loss; or call `watcher.log(loss=...)` in the loop; else the loss is not recorded.
    units: keep each unit's gradient norm (rows x T x H float64 numbers a record); False leaves it out.
    live: in a notebook, a picture under the cell (each module's gradient profile) updated at every
        measured step; None: when running in a Jupyter kernel, False: never.
    """
    return Watcher(model, out, every, loss_of, units, replace, live)


class Watcher:
    """The hooks `watch` puts on the model, and the run folder it writes. `close()` (or leaving the
    `with` block) removes the hooks and closes the folder."""

    def __init__(self, model: nn.Module, out, every: int = 10, loss_of=None, units: bool = True, replace: bool = False,
                 live: bool | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of steps, 1 or more, got {every!r}")
        if loss_of is not None and not callable(loss_of):
            raise TypeError(f"loss_of must be a callable(output) -> loss, got {type(loss_of).__name__}")
        shapes = module_shapes(model)
        if not shapes:
            raise ValueError(f"{type(model).__name__} holds no nn.RNN, nn.LSTM or nn.GRU: nothing to watch")
        self.model, self.every, self.loss_of, self.units = model, every, loss_of, units
        dropout = has_dropout(model)
        self.writer = RunWriter(out, shapes, every, replace, {
            "model": type(model).__name__, "dropout": dropout,
            "measured": "the deterministic network (eval mode: no dropout) on the step's batch and the weights "
                        "before the step's update; loss: sum(output * d loss / d output), whose gradient at "
                        "every state is the user's own d loss / d h_t"})
        self.steps = 0                 # backward passes through the model's output seen so far
        self._captured = None          # (args, kwargs) of the forward call the coming step measures
        self._forward = None           # the token of the last forward call with gradients on
        self._pending: Record | None = None  # measured, waiting for its loss (watcher.log) or the next step
        self._losses: dict[int, float] = {}
        self._measuring = False        # probe_model's own pass through the model: the hooks stand aside
        self._handles = [model.register_forward_pre_hook(self._before_forward, with_kwargs=True),
                         model.register_forward_hook(self._after_forward)]
        self.measure_seconds = 0.0     # time spent measuring, in total
        self.picture = LivePicture(self.folder) if (in_notebook() if live is None else live) else None

    # -------------------------------------------------------------- the user's side
    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def folder(self) -> Path:
        return self.writer.folder

    def due(self, step: int) -> bool:
        """Whether step `step` (from 1) is measured: the first, and every `every`-th."""
        return step == 1 or step % self.every == 0

    def log(self, loss) -> None:
        """The loss of the current step (the one whose backward pass ran last, or whose forward pass ran
        since): recorded with it where it is measured."""
        step = self.steps + 1 if self._forward is not None and self._forward.get("counted") is False else self.steps
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if self._pending is not None and self._pending.step == step:
            self._pending = Record(step, value, self._pending.modules, self._pending.seconds)
            self._flush()
        elif self.due(step):
            self._losses = {step: value}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._flush()
        self.writer.close()

    # -------------------------------------------------------------- hooks
    def _before_forward(self, module, args, kwargs):
        if self._measuring:
            return None
        self._flush()  # the step before is over: its record goes out, with the loss it has
        if not torch.is_grad_enabled():
            return None
        measure = self.due(self.steps + 1)
        self._forward = {"counted": False, "measure": measure, "grads": None, "output": None,
                         "inputs": (_detached(args), _detached(kwargs)) if measure else None}
        return None

    def _after_forward(self, module, args, output):
        token = self._forward
        if self._measuring or token is None or token["output"] is not None or not torch.is_grad_enabled():
            return None
        tensors = [t for t in _tensors(output) if t.requires_grad]
        if not tensors:
            return None
        token["output"] = _detached(output) if token["measure"] and self.loss_of is not None else True
        if token["measure"]:
            token["grads"] = [None] * len(tensors)
        for k, tensor in enumerate(tensors):
            tensor.register_hook(lambda grad, k=k, token=token: self._output_grad(token, k, grad))
        return None

    def _output_grad(self, token: dict, k: int, grad: torch.Tensor):
        if not token["counted"]:
            token["counted"] = True
            self.steps += 1
            token["step"] = self.steps
            if token["measure"]:  # at the end of this backward pass: every output's gradient is in
                torch.autograd.Variable._execution_engine.queue_callback(lambda: self._measure(token))
        if token["measure"] and token["grads"] is not None:
            token["grads"][k] = grad.detach().clone()
        return None

    def _measure(self, token: dict):
        """On the step's weights (opt.step() has not run yet), what probe_model reports for the user's loss.
        A step it cannot measure (a batch or gradient that is not finite, say) is left out with a warning:
        watching never stops training."""
        if token.get("inputs") is None or token.get("grads") is None:
            return  # measured already (a second backward pass through the same output)
        started = time.perf_counter()
        from engine.api import probe_model
        (args, kwargs), grads = token["inputs"], token["grads"]
        token["inputs"] = token["grads"] = None
        self._measuring = True
        # the measured call's keyword arguments ride along with its positional ones
        extra = self.model.register_forward_pre_hook(lambda m, a, kw: (a, {**kwargs, **kw}), with_kwargs=True) \
            if kwargs else None
        try:
            # probe_model runs the model in eval mode (dropout off) and puts every training flag back
            result = probe_model(self.model, args[0] if len(args) == 1 else args, grads, loss=_vjp_loss)
            loss = math.nan
            if self.loss_of is not None:
                with torch.no_grad():
                    loss = float(torch.as_tensor(self.loss_of(token["output"])).detach())
            elif token["step"] in self._losses:
                loss = self._losses.pop(token["step"])
        except Exception as exc:  # noqa: BLE001 - the user's training goes on whatever the probe meets
            warnings.warn(f"watch: step {token['step']} was not measured ({type(exc).__name__}: {exc})", stacklevel=2)
            return
        finally:
            self._measuring = False
            if extra is not None:
                extra.remove()
        self._pending = Record(token["step"], loss, self._module_records(result), time.time())
        self.measure_seconds += time.perf_counter() - started

    def _module_records(self, result) -> dict[str, ModuleRecord]:
        records = {}
        named = dict(self.model.named_modules())
        for name, probe in result.modules.items():
            module = named.get(name)
            sigma = getattr(probe, "sigma_max", None)
            if sigma is None and isinstance(module, RECURRENT):
                sigma = _sigma_max(module)
            records[name or "(model)"] = ModuleRecord(
                readonly_array(probe.grad_h), None if probe.grad_c is None else readonly_array(probe.grad_c),
                readonly_array(probe.grad_x),
                None if not self.units or probe.grad_h_units is None else readonly_array(probe.grad_h_units),
                float(probe.orders_lost), readonly_array(sigma if sigma is not None else []),
                tuple(getattr(f, "text", str(f)) for f in probe.findings))
        return records

    def _flush(self):
        if self._pending is not None:
            record, self._pending = self._pending, None
            self.writer.append(record)
            if self.picture is not None:
                self.picture.update(record)


def in_notebook() -> bool:
    """Running in a Jupyter kernel (IPython's ZMQ shell), where a display handle can update a picture."""
    ipython = sys.modules.get("IPython")  # never imported here: a script that did not load it is no notebook
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LivePicture:
    """A picture under the notebook cell, updated in place (IPython's display handle) at every measured
    step: each module's gradient profile (engine.svg), its name, the step and the loss."""

    def __init__(self, folder: Path):
        from IPython.display import HTML, display
        self._html = HTML
        self.folder = folder
        self.handle = display(HTML(f"<p>watching: the first measured step goes to {folder}</p>"), display_id=True)

    def update(self, record: Record) -> None:
        from engine.svg import profile_svg
        loss = f", loss {record.loss:.4g}" if math.isfinite(record.loss) else ""
        pictures = [profile_svg(m.grad_h, f"{name}, step {record.step}{loss}") for name, m in record.modules.items()]
        self.handle.update(self._html("<div>" + "".join(pictures) + "</div>"))


def _vjp_loss(output, output_grads: list) -> torch.Tensor:
    """sum(output * d loss / d output), over the output's tensors that need a gradient: its gradient at every
    state is the user's own d loss / d state (probe_model gets the captured gradients as its "targets")."""
    total = None
    for tensor, grad in zip((t for t in _tensors(output) if t.requires_grad), output_grads):
        if grad is not None:
            term = (tensor * grad.to(tensor.dtype)).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("no output of the model received a gradient in this backward pass")
    return total


def _tensors(value):
    """The tensors in a model's output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _detached(value):
    """A copy of the call's arguments that later changes to them cannot reach."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _sigma_max(module: nn.RNNBase) -> np.ndarray:
    from engine.probes import largest_singular_values
    suffixes = ("", "_reverse") if module.bidirectional else ("",)
    weights = [getattr(module, f"weight_hh_l{k}{s}").detach() for k in range(module.num_layers) for s in suffixes]
    return np.asarray(largest_singular_values(torch.stack(weights)), dtype=np.float64)
