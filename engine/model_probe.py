"""Measure the recurrent modules inside any model: what `engine.api.probe_model` reads, and the unroll
it shares with `engine.api.probe`.

Runs on the caller's thread (a script, a notebook kernel); no Qt. PyTorch's fused nn.RNN, nn.LSTM and
nn.GRU keep their per-timestep states to themselves, so for the length of one call each of them inside
the user's model has its `forward` replaced by an unrolled twin (`forward_unrolled`): PyTorch's own
equations on the module's own parameters, one timestep at a time, keeping every h_t (and c_t) in the
graph and returning what the fused module returns, in its layout. The model then runs as it is
(embeddings, heads, pooling, an encoder's state handed to a decoder), the user's loss is taken, and one
`torch.autograd.grad` asks for d loss / d h_t, d loss / d c_t and d loss / d input of every module at
once. When float32 lost part of that gradient below its range, the whole measurement is redone on
float64 copies of the parameters (`torch.func.functional_call`), exact down to about 1e-300.

The model is only read: `forward` is restored in a `finally` (also when the model or the loss raises),
no hook is installed, and `torch.autograd.grad` leaves every `.grad` as it was. The model runs in eval
mode for the call (every submodule's training flag is put back afterwards): dropout, between a module's
layers or anywhere else, is off, and batch norm reads its running statistics without updating them, so
the probe measures the deterministic network, and the float64 redo sees the same one.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine import probes

CELLS = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}


class UnsupportedInput(ValueError):
    """An input a recurrent module accepts that the probe does not (a PackedSequence): raised as it is,
    not wrapped as an error of the user's model."""


# ----------------------------------------------------------------------------- the unroll

@dataclass
class Unrolled:
    hidden: list   # [row][t] -> (N, H_out), in the graph; rows in h_n's order, t in input order
    cell: list     # LSTM: [row][t] -> (N, H), in the graph; [] for other cells
    forget: list   # LSTM: [row] -> mean forget-gate value over batch, units and time; [] otherwise


def layer_weights(rnn: nn.RNNBase) -> list:
    """One (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr) per row of h_n: layer 0 forward, layer 0
    backward (bidirectional), layer 1 forward, ...; biases None without bias, weight_hr None without
    proj_size. Detached: the unroll reads them and never asks for their gradients. Read when called, so
    inside torch.func.functional_call they are the copies it put in."""
    directions = 2 if rnn.bidirectional else 1

    def get(name: str, row: int):
        layer, direction = divmod(row, directions)
        tensor = getattr(rnn, f"{name}_l{layer}{'_reverse' if direction else ''}", None)
        return None if tensor is None else tensor.detach()
    return [tuple(get(name, row) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))
            for row in range(rnn.num_layers * directions)]


def unroll(cell: str, weights: list, inputs: torch.Tensor, directions: int = 1, initial=None) -> Unrolled:
    """The module's forward pass, one timestep at a time: `inputs` (T, N, input_size), `weights` as
    layer_weights gives them, `initial` None (zero states, the module's default) or (h_0, c_0 or None)
    shaped like h_n and c_n. A backward row runs from T-1 down to 0; a layer above the first reads its
    rows' states side by side, as nn.RNN/LSTM/GRU do. RNN and GRU steps are PyTorch's own cell kernels
    (what nn.RNNCell and nn.GRUCell call). The LSTM step is written out as PyTorch composes
    torch.lstm_cell on CPU: on CUDA that function is one fused kernel whose c_t output is not the tensor
    its h_t is computed from, so autograd would leave the path through h_t out of d loss / d c_t.
    Written out, c_t is one node on every device, the forget gate is at hand, and a projection
    (h_t = weight_hr (o * tanh(c_t))) is one more line."""
    step = {"rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell, "gru": torch.gru_cell}.get(cell)
    run = Unrolled([], [], [])
    layer_input, steps = list(inputs.unbind(0)), inputs.shape[0]
    for layer in range(len(weights) // directions):
        rows = []
        for direction in range(directions):
            row = layer * directions + direction
            w_ih, w_hh, b_ih, b_hh, w_hr = weights[row]
            if initial is None:
                h = inputs.new_zeros(inputs.shape[1], w_hh.shape[1])
                c = inputs.new_zeros(inputs.shape[1], w_hh.shape[0] // 4) if cell == "lstm" else None
            else:
                h, c = initial[0][row], initial[1][row] if cell == "lstm" else None
            hs, cs, forget_sum = [None] * steps, [None] * steps, 0.0
            for t in (range(steps) if direction == 0 else reversed(range(steps))):
                if step is not None:
                    h = step(layer_input[t], h, w_ih, w_hh, b_ih, b_hh)
                else:
                    i, f, g, o = (F.linear(layer_input[t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
                    f = torch.sigmoid(f)
                    c = f * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if w_hr is not None:
                        h = F.linear(h, w_hr)
                    forget_sum = forget_sum + f.detach().mean()  # a tensor: no device sync per step
                    cs[t] = c
                hs[t] = h
            run.hidden.append(hs)
            if cell == "lstm":
                run.cell.append(cs)
                run.forget.append(float(forget_sum) / steps)
            rows.append(hs)
        layer_input = rows[0] if directions == 1 else [torch.cat(pair, dim=1) for pair in zip(*rows)]
    return run


def state_tensors(run: Unrolled) -> list:
    """Every h_t, then every c_t, row by row: the order the measurement asks autograd for them in."""
    return [h for hs in run.hidden for h in hs] + [c for cs in run.cell for c in cs]


# ----------------------------------------------------------------------------- the twin of a fused module

@dataclass
class Call:
    """One call of a recurrent module's twin: its states, and the node its input's gradient is read at."""
    run: Unrolled
    seen: torch.Tensor   # the module's input as the twin received it, in its layout; requires grad
    time_axis: int


def forward_unrolled(rnn: nn.RNNBase, input, hx=None, name: str = "rnn"):
    """What rnn(input, hx) returns, (output, h_n) or (output, (h_n, c_n)) in the module's own layout
    (batch_first or not, batched or not), computed by `unroll`; and the Call that keeps it in the graph."""
    if isinstance(input, nn.utils.rnn.PackedSequence):
        raise UnsupportedInput(f"{name} was given a PackedSequence: not supported by the probe; pass the "
                               "model padded tensors of equal-length sequences")
    weights, directions = layer_weights(rnn), 2 if rnn.bidirectional else 1
    if not isinstance(input, torch.Tensor) or input.dim() not in (2, 3) or input.shape[-1] != rnn.input_size \
            or 0 in input.shape:
        layout = "(N, T, input_size)" if rnn.batch_first else "(T, N, input_size)"
        raise ValueError(f"{name} takes {layout} or unbatched (T, input_size) input with input_size="
                         f"{rnn.input_size}, got {describe(input)}")
    unbatched = input.dim() == 2
    seen = input.clone() if input.requires_grad else input.detach().requires_grad_(True)  # (clone: a node of its own)
    x = seen.to(weights[0][0].dtype)  # the float64 redo: an input made from float32 constants is lifted too
    x = x.unsqueeze(1) if unbatched else x.transpose(0, 1) if rnn.batch_first else x
    run = unroll(CELLS[rnn.mode], weights, x, directions, _initial(rnn, hx, x, len(weights), unbatched, name))
    output = torch.cat([torch.stack(hs) for hs in run.hidden[-directions:]], dim=2)  # (T, N, directions * H_out)

    def last(states):  # a backward row ends at t = 0
        ends = torch.stack([s[-1] if row % directions == 0 else s[0] for row, s in enumerate(states)])
        return ends.squeeze(1) if unbatched else ends
    output = output.squeeze(1) if unbatched else output.transpose(0, 1) if rnn.batch_first else output
    hidden = (last(run.hidden), last(run.cell)) if run.cell else last(run.hidden)
    return output, hidden, Call(run, seen, 1 if rnn.batch_first and not unbatched else 0)


def _initial(rnn, hx, x: torch.Tensor, rows: int, unbatched: bool, name: str):
    """hx as the unroll takes it, (h_0, c_0 or None) in x's dtype; None for zeros."""
    if hx is None:
        return None
    lstm, batch = rnn.mode == "LSTM", () if unbatched else (x.shape[1],)
    shapes = [(rows, *batch, rnn.proj_size or rnn.hidden_size)] + ([(rows, *batch, rnn.hidden_size)] if lstm else [])
    given = tuple(hx) if lstm and isinstance(hx, (tuple, list)) else (hx,)
    if len(given) != len(shapes) or any(not isinstance(t, torch.Tensor) or tuple(t.shape) != s
                                        for t, s in zip(given, shapes)):
        expected = " and ".join(f"{what} of shape {s}" for what, s in zip(("h_0", "c_0"), shapes))
        raise ValueError(f"{name} was given hx = {', '.join(describe(t) for t in given)}: expected {expected}")
    given = tuple(t.unsqueeze(1) if unbatched else t for t in given)
    return given[0].to(x.dtype), given[1].to(x.dtype) if lstm else None


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {shape_text(value)} ({value.dtype})"
    return f"a {type(value).__name__}"


def shape_text(t) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + (",)" if t.dim() == 1 else ")")


# ----------------------------------------------------------------------------- norms of the gradients

@dataclass
class Measured:
    """The gradient norms of one unroll: float64 numpy arrays, read-only."""
    run: Unrolled
    grad_h: np.ndarray              # (rows, T)
    grad_c: np.ndarray | None       # (rows, T); None without a cell state
    grad_x: np.ndarray              # (T,)
    grad_h_units: np.ndarray        # (rows, T, H_out)
    underflowed: bool               # a float32 (or narrower) norm fell where that precision loses it
    connectivity: np.ndarray | None = None


def exact_norm(values: torch.Tensor, dim) -> torch.Tensor:
    """The 2-norm over `dim` in float64, each slice divided by its largest |entry| before squaring and
    multiplied back after (probes._scaled_norms does the same per timestep): squares of entries below
    1e-154 underflow float64 and would read 1e-160 as 0. inf stays inf, NaN stays NaN."""
    values = values.double()
    largest = values.abs().amax(dim=dim, keepdim=True)
    scale = torch.where((largest > 0) & torch.isfinite(largest), largest, torch.ones_like(largest))
    return (scale * torch.linalg.vector_norm(values / scale, dim=dim, keepdim=True)).squeeze(dim)


def readonly(values) -> np.ndarray:
    values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    values.setflags(write=False)
    return values


def measured(run: Unrolled, grads, grad_input: torch.Tensor, connectivity=None) -> Measured:
    """The norms of `grads` (in state_tensors order, None where the loss does not read a state) and of
    `grad_input`, time-major (T, ...). Whether a float32 norm underflowed is judged as the trainer judges
    it (probes.underflowed), with each array's own count of values per timestep."""
    states = state_tensors(run)
    grads = [torch.zeros_like(s) if g is None else g for s, g in zip(states, grads)]
    rows, steps = len(run.hidden), len(run.hidden[0])
    per_row = [grads[k * steps:(k + 1) * steps] for k in range(len(grads) // steps)]  # [row][t] -> (N, H)
    grad_h = readonly(torch.stack([_per_step(g, (1, 2)) for g in per_row[:rows]]))
    grad_c = readonly(torch.stack([_per_step(g, (1, 2)) for g in per_row[rows:]])) if run.cell else None
    grad_x = readonly(_per_step(list(grad_input.unbind(0)), tuple(range(1, grad_input.dim()))))
    units = readonly(torch.stack([_per_step(g, 1) for g in per_row[:rows]]))
    narrow = states[0].dtype != torch.float64
    per_x = grad_input[0].numel()
    underflowed = narrow and (probes.underflowed(states[0].numel(), per_x, grad_h, None, grad_x) or bool(
        run.cell) and probes.underflowed(run.cell[0][0].numel(), per_x, None, grad_c, None))
    return Measured(run, grad_h, grad_c, grad_x, units, underflowed,
                    None if connectivity is None else readonly(connectivity))


def _per_step(per_step: list, dim) -> torch.Tensor:
    """exact_norm over `dim` of each timestep's tensor (dim counted in a (steps, ...) stack of them), a
    cache-sized block of timesteps at a time (probes.timestep_blocks): a float64 copy of a long sequence's
    gradients at once would take as much memory again as the pass itself."""
    return torch.cat([exact_norm(block, dim) for block in probes.timestep_blocks(per_step)])


def joined(parts: list[Measured]) -> Measured:
    """A module called several times (a decoder fed one step at a time): its calls' timesteps in call order."""
    if len(parts) == 1:
        return parts[0]
    steps = [p.grad_h.shape[1] for p in parts]
    run = Unrolled([sum((p.run.hidden[k] for p in parts), []) for k in range(len(parts[0].run.hidden))],
                   [sum((p.run.cell[k] for p in parts), []) for k in range(len(parts[0].run.cell))],
                   [float(np.average([p.run.forget[k] for p in parts], weights=steps))
                    for k in range(len(parts[0].run.forget))])
    glue = lambda field, axis: readonly(np.concatenate([getattr(p, field) for p in parts], axis=axis))
    return Measured(run, glue("grad_h", 1), None if parts[0].grad_c is None else glue("grad_c", 1),
                    glue("grad_x", 0), glue("grad_h_units", 1), any(p.underflowed for p in parts))


# ----------------------------------------------------------------------------- a whole model

def default_loss(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error for float targets; cross-entropy for integer ones, the output read as rows of
    class scores (-1, C) against targets (-1)."""
    if targets.is_floating_point():
        return F.mse_loss(output, targets.to(output.dtype))
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), targets.reshape(-1))


def check_loss_value(value, call: str) -> None:
    if not isinstance(value, torch.Tensor):
        got = type(value).__name__
    elif value.numel() != 1:
        got = f"a tensor of shape {shape_text(value)}"
    elif not value.requires_grad:
        got = "a tensor that does not depend on them (requires_grad is False)"
    else:
        return
    raise ValueError(f"{call} must return a scalar tensor computed from the predictions, got {got}")


def measure_model(model: nn.Module, inputs, targets, loss=None):
    """engine.api.probe_model's measurement: (the loss, {qualified name: (module, Measured)} for every
    recurrent module that ran, whether it was redone in float64). Checks its arguments first; the model
    is left exactly as it was, whatever is raised."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    recurrent = {name: m for name, m in model.named_modules() if isinstance(m, nn.RNNBase) and m.mode in CELLS}
    if not recurrent:
        raise ValueError(f"model ({type(model).__name__}) holds no nn.RNN, nn.LSTM or nn.GRU: nothing to probe "
                         "(probe_model looks for them among model.named_modules())")
    for name, m in recurrent.items():  # the twin stands in for PyTorch's forward: a forward of one's own would be skipped
        if type(m).forward not in (nn.RNN.forward, nn.LSTM.forward, nn.GRU.forward):
            raise ValueError(f"{name or 'model'} ({type(m).__name__}) has a forward of its own: not supported; "
                             "probe_model measures nn.RNN, nn.LSTM and nn.GRU as PyTorch defines them")
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a callable(output, targets) -> scalar tensor, got {type(loss).__name__}")
    _check_finite(inputs, "inputs")
    _check_finite(targets, "targets")
    args, call = (inputs, "model(*inputs)") if isinstance(inputs, tuple) else ((inputs,), "model(inputs)")
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        value, parts = _measure(model, recurrent, args, targets, loss, call)
        redo = any(part.underflowed for part in parts.values())
        if redo:  # float32 lost part of the gradient: the same measurement on float64 copies
            parameters = {name: _float64(t) for named in (model.named_parameters(), model.named_buffers())
                          for name, t in named}
            try:
                _, parts = _measure(model, recurrent, _float64(args), _float64(targets), loss, call, parameters)
            except Exception as err:  # a float32 constant inside the user's own code, say
                warnings.warn(f"probe_model: the float64 redo failed ({type(err).__name__}: {err}); the float32 "
                              "gradients are reported, and those below float32's range read 0", stacklevel=3)
                redo = False
    finally:
        for module, training in modes:
            module.training = training
    return value, {name: (recurrent[name], part) for name, part in parts.items()}, redo


def _measure(model, recurrent: dict, args: tuple, targets, loss, call: str, parameters=None):
    with _unrolled(recurrent) as calls, torch.enable_grad():  # a caller inside torch.no_grad() still gets gradients
        try:
            output = model(*args) if parameters is None else torch.func.functional_call(model, parameters, args)
        except UnsupportedInput:
            raise
        except Exception as err:
            raise ValueError(f"{call} raised {type(err).__name__}: {err}") from err
        value = _loss_value(loss, output, targets)
        ran = {name: made for name, made in calls.items() if made}
        tensors = [t for made in ran.values() for one in made for t in state_tensors(one.run) + [one.seen]]
        grads = iter(torch.autograd.grad(value, tensors, allow_unused=True))
    parts = {}
    for name, made in ran.items():
        pieces = []
        for one in made:
            state_grads = [next(grads) for _ in state_tensors(one.run)]
            grad_input = next(grads)
            grad_input = torch.zeros_like(one.seen) if grad_input is None else grad_input
            pieces.append(measured(one.run, state_grads, grad_input.movedim(one.time_axis, 0)))
        parts[name] = joined(pieces)
    return float(value.detach()), parts


def _loss_value(loss, output, targets) -> torch.Tensor:
    if loss is None:
        output = output[0] if isinstance(output, (tuple, list)) and output else output  # (output, h_n), say
        _check_default_targets(output, targets)
        value = default_loss(output, targets)
    else:
        try:
            value = loss(output, targets)
        except Exception as err:
            raise ValueError(f"loss(output, targets) raised {type(err).__name__}: {err}") from err
    check_loss_value(value, "loss(output, targets)")
    return value.reshape(())


def _check_default_targets(output, targets) -> None:
    if not isinstance(output, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(f"the default loss needs a tensor output and tensor targets, got output {describe(output)} "
                        f"and targets {describe(targets)}: pass loss=callable(output, targets)")
    if targets.dtype == torch.bool or targets.is_complex():
        raise ValueError(f"targets has dtype {targets.dtype}: expected float targets or integer class indices")
    if targets.is_floating_point():
        if targets.shape != output.shape:
            raise ValueError(f"targets has shape {shape_text(targets)}: the default loss for float targets, mean "
                             f"squared error, needs the output's shape {shape_text(output)}")
        return
    classes = output.shape[-1] if output.dim() >= 2 else 0
    rows = output.numel() // classes if classes else 0
    if not classes or targets.numel() != rows:
        raise ValueError(f"targets has shape {shape_text(targets)}: the default loss for integer targets, "
                         f"cross-entropy, reads the output {shape_text(output)} as {rows} rows of {classes} class "
                         f"scores and needs {rows} class indices")
    if int(targets.min()) < 0 or int(targets.max()) >= classes:
        raise ValueError(f"targets holds class indices from {int(targets.min())} to {int(targets.max())}: "
                         f"expected 0 to {classes - 1} (the output has {classes} classes)")


def _check_finite(value, what: str) -> None:
    """NaN or inf in a batch, named with its place: a gradient through it means nothing."""
    if isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            _check_finite(item, f"{what}[{k}]")
    elif isinstance(value, torch.Tensor) and value.is_floating_point():
        bad = ~torch.isfinite(value.detach())
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            kind = "NaN" if bool(torch.isnan(value.detach()[where])) else "inf"
            raise ValueError(f"{what} holds {kind} at index {where}: the probe needs a finite batch")


def _float64(value):
    """Floating tensors as detached float64 copies, inside tuples and lists too; token ids and anything
    else as they are."""
    if isinstance(value, torch.Tensor):
        return value.detach().double() if value.is_floating_point() else value
    if type(value) in (tuple, list):
        return type(value)(_float64(item) for item in value)
    return value


_ABSENT = object()


@contextmanager
def _unrolled(recurrent: dict):
    """Each module's forward replaced by its twin, which records its Calls; put back however this ends."""
    calls = {name: [] for name in recurrent}
    replaced = []
    try:
        for name, rnn in recurrent.items():
            replaced.append((rnn, rnn.__dict__.get("forward", _ABSENT)))  # a forward of the instance's own, if any
            rnn.forward = _twin(rnn, name, calls[name])
        yield calls
    finally:
        for rnn, own in replaced:
            if own is _ABSENT:
                del rnn.forward
            else:
                rnn.forward = own


def _twin(rnn, name: str, calls: list):
    def forward(input, hx=None):
        output, hidden, call = forward_unrolled(rnn, input, hx, name or type(rnn).__name__)
        calls.append(call)
        return output, hidden
    return forward


# ----------------------------------------------------------------------------- the result

@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value to compare by
class ModelProbe:
    """What one batch says about the gradients of every recurrent module in a model (engine.api.probe_model).
    In a notebook it shows every module's gradient profile; `summary()` says it in words."""
    loss: float
    modules: Mapping[str, object]  # qualified name (model.named_modules()) -> engine.api.Probe, in model order
    findings: tuple                # every module's findings, each text led by the module's name
    float64_redo: bool             # whether it was measured again in float64: in float32 some of the gradient read
    #   0 or came near the end of float32's range (engine.probes.underflowed)

    def summary(self) -> str:
        precision = ("measured again in float64: in float32 some of it read 0 or came near the end of its range"
                     if self.float64_redo else "measured in the model's own precision")
        head = (f"loss {self.loss:.4g}; {len(self.modules)} recurrent module{'s' if len(self.modules) > 1 else ''}; "
                f"gradients {precision}")
        return "\n\n".join([head] + [probe.summary() for probe in self.modules.values()])

    def _repr_svg_(self) -> str:
        """Every module's profile, one under another, in one SVG."""
        parts, top, width = [], 0, 0
        for probe in self.modules.values():
            svg = probe._repr_svg_()
            w, h = (int(re.search(f'{size}="([0-9]+)"', svg).group(1)) for size in ("width", "height"))
            parts.append(svg.replace("<svg ", f'<svg x="0" y="{top}" ', 1))
            top, width = top + h, max(width, w)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top}" '
                f'viewBox="0 0 {width} {top}">\n' + "\n".join(parts) + "\n</svg>")

    def _repr_html_(self) -> str:
        return (f"<pre>{escape(self.summary())}</pre>"
                + "".join(f"<div>{probe._repr_svg_()}</div>" for probe in self.modules.values()))
