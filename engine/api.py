"""Probe your own recurrent networks from a script or a notebook: `probe(rnn, x, y) -> Probe` for one
bare module, `probe_model(model, inputs, targets) -> ModelProbe` for any model that holds them.

Runs on the caller's thread (a script, a notebook kernel); no Qt. `probe` takes a user's `nn.RNN` (tanh
or relu), `nn.LSTM` or `nn.GRU` as it is, runs one batch through it and reports how the gradient of the
loss reaches each timestep of each layer: the numbers the window's views show, as numpy arrays, plus
plain-language findings that point to the lesson (engine/lessons.py) that shows each one. `probe_model`
does the same for every such module anywhere inside a model of the user's own (engine/model_probe.py
measures it); this module turns both measurements into findings.

PyTorch's fused modules keep their per-timestep states to themselves, so the module is unrolled
(engine.model_probe.unroll, the one unroll both share) from its own parameters, layer by layer, keeping
every h_t (and c_t), and one `torch.autograd.grad` call asks for d loss / d h_t for all of them at once
(the trainer does the same). Where float32 lost part of that gradient below its range, the measurement is
redone in float64, as the trainer does (engine.probes.underflowed), so no timestep reads 0 where the truth
is not 0, down to about 1e-300. The user's module is only read: its parameters enter the unroll
detached, so nothing accumulates in their `.grad`, and no hook is installed.

Scope of `probe`, said once: the initial state is zero (the module's default); dropout between layers is
not applied (the probe looks at the deterministic network, as in eval mode); bidirectional modules and
LSTMs with proj_size > 0 are refused (probe_model takes them). The unroll runs on the module's device and
dtype and is written to be device-agnostic, but it is tested on CPU only: CUDA is untested.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine import probes
from engine.diagnosis import EXPLODING_ORDERS
from engine.model_probe import (CELLS, Measured, ModelProbe, Unrolled, check_loss_value, default_loss, exact_norm,
                                layer_weights, measure_model, measured, readonly, state_tensors, unroll,
                                shape_text as _shape)  # ModelProbe, unroll, layer_weights: scripts find them here too
from engine.svg import profile_svg

VANISHING_ORDERS = 4.0   # a gradient that loses four powers of ten on its way back is vanishing
SMALL_SIGMA = 0.5        # recurrent weights that shrink every vector to half or less, every step
LOW_FORGET_BIAS = 0.5    # an LSTM forget bias below this leaves the gate near or below one half
SATURATED_SHARE = 0.5    # more than half of a tanh layer's outputs where its slope is under 0.1

CELL_NAMES = {"rnn_tanh": "tanh RNN", "rnn_relu": "ReLU RNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass(frozen=True)
class Finding:
    text: str     # what the numbers show, in plain words
    remedy: str   # what to try
    lesson: str   # the lesson that shows it: `python main.py --lesson NAME`, or the window's lesson browser


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value to compare by
class Probe:
    """What one batch says about a module's gradients. Arrays are float64 and read-only. In a notebook it
    shows itself as its gradient profile (`_repr_svg_`); `summary()` says it in words. Its rows are h_n's:
    layer 0 (forward), layer 0 backward for a bidirectional module, layer 1, ...; timesteps in input order
    for both directions."""
    cell: str                       # "rnn_tanh" | "rnn_relu" | "lstm" | "gru"
    grad_h: np.ndarray              # (rows, T): norm of d loss / d h_t over batch and units
    grad_c: np.ndarray | None       # (rows, T): the same for the LSTM cell state; None for other cells
    grad_x: np.ndarray              # (T,): norm of d loss / d x_t over batch and features
    loss: float
    orders_lost: float              # engine.probes.orders_lost of the top layer's forward row: log10(last / first)
    sigma_max: np.ndarray           # (rows,): largest singular value of each row's weight_hh
    findings: tuple[Finding, ...]   # most important first
    grad_h_units: np.ndarray | None = None  # (rows, T, H): each unit's norm over the batch of d loss / d h_t
    connectivity: np.ndarray | None = None  # (T_out, T): norm over batch and features of d loss_k / d x_t, loss_k
    #   the loss's term at the k-th timestep it reads (terms summing to the loss): T_out = 1 when y is read at the
    #   last timestep, T when at every one; None with a loss of your own that reads every timestep (its terms
    #   are not known), and from probe_model
    float64_redo: bool = False      # measured again in float64 (exact down to about 1e-300), every array holding
    #   those values: in float32 some of the gradient read 0 or came near the end of float32's range
    directions: int = 1             # 2 for a bidirectional module
    name: str = ""                  # the module's qualified name in probe_model's model ("" from probe)

    @property
    def top_row(self) -> int:
        """The row of the top layer's forward direction, the one orders_lost reads."""
        return len(self.grad_h) - self.directions

    def summary(self) -> str:
        """A few lines of text: what was probed, the loss, how much gradient is lost, the findings."""
        rows, steps = self.grad_h.shape
        layers = rows // self.directions
        lines = [f"{self._title()}, {layers} layer{'s' if layers > 1 else ''}"
                 f"{', bidirectional' if self.directions == 2 else ''}, {steps} timesteps: loss {self.loss:.4g}",
                 "gradient at the first timestep against the last (top layer"
                 f"{', forward' if self.directions == 2 else ''}): "
                 + _orders_text(self.orders_lost, self.grad_h[self.top_row])]
        if self.float64_redo:
            lines.append("measured again in float64, exact down to about 1e-300: in float32 some of this gradient "
                         "read 0 or came near the end of float32's range")
        if not self.findings:
            lines.append("no findings: nothing here vanishes, explodes or saturates by the thresholds used")
        for finding in self.findings:
            lines += [f"- {finding.text}", f"  try: {finding.remedy} (lesson {finding.lesson})"]
        return "\n".join(lines)

    def _title(self) -> str:
        return f"{self.name}: {CELL_NAMES[self.cell]}" if self.name else CELL_NAMES[self.cell]

    def _repr_svg_(self) -> str:
        rows = " (lines: layer 1 forward, layer 1 backward, ...)" if self.directions == 2 else ""
        title = (f"{self._title()} gradient profile{rows}: "
                 f"{_orders_text(self.orders_lost, self.grad_h[self.top_row])}")
        return profile_svg(self.grad_h, title)


def probe(rnn: nn.RNNBase, x, y, readout: nn.Linear | None = None, loss=None) -> Probe:
    """Per-timestep, per-layer gradients of one batch through a user's recurrent module.

    rnn: nn.RNN (tanh or relu), nn.LSTM or nn.GRU; any num_layers, batch_first either way, with or
        without bias. Not modified: no hook, no parameter change, no `.grad` left behind.
    x: the input batch in the module's own layout, (N, T, input_size) with batch_first, else
        (T, N, input_size); moved to the module's device and dtype.
    y: the targets, always batch-first whatever the module's layout. Read at the LAST timestep
        (many-to-one): (N, O) float, or (N,) integer classes. Read at EVERY timestep (many-to-many):
        (N, T, O) float, or (N, T) integer classes. O is readout.out_features, or hidden_size without one.
    readout: an optional nn.Linear applied to the top layer's hidden states; without it the predictions
        are those hidden states themselves.
    loss: optional callable(predictions, y) -> scalar tensor, with predictions (N, O) or (N, T, O) as
        `y` says; by default mean squared error for float targets, cross-entropy (mean) for integer ones.
    """
    cell = _cell(rnn)
    weights = layer_weights(rnn)
    like = weights[0][0]  # the module's device and dtype
    inputs = _inputs(rnn, x, like)
    width = _readout_width(readout, rnn)
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a callable(predictions, y) -> scalar tensor, got {type(loss).__name__}")
    target, every_step = _targets(y, inputs.shape[1], inputs.shape[0], width, like, check_width=loss is None)
    head = None if readout is None else (readout.weight.detach(), None if readout.bias is None else readout.bias.detach())

    value, part = _measure(cell, weights, inputs, head, target, loss, every_step)
    if part.underflowed:  # float32 lost part of the gradient: the same measurement on float64 copies
        def double(tensors):
            return None if tensors is None else tuple(None if t is None else t.double() for t in tensors)
        _, part = _measure(cell, [double(w) for w in weights], inputs.detach().double().requires_grad_(True),
                           double(head), target.double() if target.is_floating_point() else target, loss, every_step)
        return _result(cell, weights, part, value, float64_redo=True)
    return _result(cell, weights, part, value)


def probe_model(model: nn.Module, inputs, targets, loss=None) -> ModelProbe:
    """Per-timestep gradients of one batch through every nn.RNN, nn.LSTM and nn.GRU inside a model.

    model: any nn.Module holding one or more of them anywhere (embeddings in front, heads, pooling, an
        encoder's final state handed to a decoder as hx); each may be bidirectional, an LSTM with
        proj_size, without bias, batch_first either way, batched or not. A module called several times
        (a decoder fed one step at a time) reports its calls' timesteps one after another. Left exactly
        as it was: parameters, `.grad`, training flags, no hook, forward restored whatever is raised. It
        runs in eval mode for the call: dropout (between a module's layers too) is off, so the probe
        measures the deterministic network (engine.model_probe says more).
    inputs: what the model takes: a tensor, model(inputs), or a tuple, model(*inputs). A module given a
        PackedSequence is refused.
    targets: what the loss compares the output with.
    loss: optional callable(output, targets) -> scalar tensor, output as the model returns it; by default
        mean squared error for float targets, cross-entropy for integer ones with the output reshaped
        (-1, C) against targets reshaped (-1) (a tuple output, such as (output, h_n), is read by its first
        element).
    Returns a ModelProbe: .modules[name] is a Probe per recurrent module, keyed by its qualified name in
    model.named_modules(); where float32 lost part of the gradient it is measured again in float64.
    """
    value, parts, redo = measure_model(model, inputs, targets, loss)
    modules = {name: _result(CELLS[rnn.mode], layer_weights(rnn), part, value, 2 if rnn.bidirectional else 1,
                             name, float64_redo=redo) for name, (rnn, part) in parts.items()}
    findings = tuple(replace(f, text=f"{name or '(the model itself)'}: {f.text}")
                     for name, result in modules.items() for f in result.findings)
    return ModelProbe(value, MappingProxyType(modules), findings, redo)


def _measure(cell, weights, inputs, head, target, loss, every_step) -> tuple[float, Measured]:
    """probe()'s forward pass, loss and gradients in the dtype of `weights` and `inputs`."""
    with torch.enable_grad():  # a caller inside torch.no_grad() still gets its gradients
        run = unroll(cell, weights, inputs)
        top = torch.stack(run.hidden[-1], dim=1)  # (N, T, H)
        if head is not None:
            top = F.linear(top, *head)
        predictions = top if every_step else top[:, -1]
        value = loss(predictions, target) if loss is not None else default_loss(predictions, target)
        check_loss_value(value, "loss(predictions, y)")
        states = state_tensors(run)
        terms = _loss_terms(predictions, target) if every_step and loss is None else None
        grads = torch.autograd.grad(value.reshape(()), states + [inputs], allow_unused=True,
                                    retain_graph=terms is not None)
        per_answer = [grads[-1]] if not every_step else None if terms is None else [
            _input_grad(term, inputs, retain=k < len(terms) - 1) for k, term in enumerate(terms)]
    with torch.no_grad():
        connectivity = None if per_answer is None else torch.stack([exact_norm(g, (1, 2)) for g in per_answer])
        return float(value.detach()), measured(run, grads[:-1], grads[-1], connectivity)


def _result(cell: str, weights: list, part: Measured, loss: float, directions: int = 1, name: str = "",
            float64_redo: bool = False) -> Probe:
    """A measurement as a Probe, with its findings (probe and probe_model alike)."""
    top = len(weights) - directions
    sigma = readonly(probes.largest_singular_values(torch.stack([w[1] for w in weights])))
    orders = probes.orders_lost(part.grad_h[top])
    findings = tuple(_findings(cell, weights, part.run, part.grad_h, top, orders, loss, sigma, directions))
    return Probe(cell, part.grad_h, part.grad_c, part.grad_x, loss, orders, sigma, findings, part.grad_h_units,
                 part.connectivity, float64_redo, directions, name)


def _loss_terms(predictions: torch.Tensor, target: torch.Tensor) -> list:
    """The default loss's term at each timestep of (N, T, ...) predictions: that timestep's loss over T."""
    steps = predictions.shape[1]
    return [default_loss(predictions[:, t], target[:, t]) / steps for t in range(steps)]


def _input_grad(term, inputs, retain: bool):
    (g,) = torch.autograd.grad(term, [inputs], retain_graph=retain, allow_unused=True)
    return torch.zeros_like(inputs) if g is None else g


# ----------------------------------------------------------------------------- checking the arguments

def _cell(rnn) -> str:
    if not isinstance(rnn, nn.RNNBase) or getattr(rnn, "mode", None) not in CELLS:
        raise TypeError(f"rnn must be a torch.nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")
    if rnn.bidirectional:
        raise ValueError("rnn is bidirectional: not supported by probe(), whose readout reads one direction; "
                         "probe_model(model, inputs, targets) takes bidirectional modules")
    if getattr(rnn, "proj_size", 0) > 0:
        raise ValueError(f"rnn is an LSTM with proj_size={rnn.proj_size}: projections are not supported by "
                         "probe(); probe_model(model, inputs, targets) takes them")
    return CELLS[rnn.mode]


def _inputs(rnn, x, like: torch.Tensor) -> torch.Tensor:
    """x as a fresh time-major (T, N, input_size) leaf that requires grad; the caller's x is untouched."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise ValueError("x is a PackedSequence: not supported; pass a padded tensor of equal-length sequences")
    x = torch.as_tensor(x)
    layout = "(N, T, input_size)" if rnn.batch_first else "(T, N, input_size)"
    expected = f"{layout} with input_size={rnn.input_size} (batch_first={rnn.batch_first})"
    if x.dim() != 3 or x.shape[2] != rnn.input_size or 0 in x.shape:
        hint = "; an unbatched sequence needs a batch dimension of 1" if x.dim() == 2 else ""
        raise ValueError(f"x has shape {_shape(x)}: expected {expected}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"x has dtype {x.dtype}: expected floating point (the module's is {like.dtype})")
    x = x.detach().to(device=like.device, dtype=like.dtype)
    return (x.transpose(0, 1) if rnn.batch_first else x).clone().requires_grad_(True)


def _readout_width(readout, rnn) -> int:
    if readout is None:
        return rnn.hidden_size
    if not isinstance(readout, nn.Linear):
        raise TypeError(f"readout must be a torch.nn.Linear or None, got {type(readout).__name__}")
    if readout.in_features != rnn.hidden_size:
        raise ValueError(f"readout takes in_features={readout.in_features}: expected the module's "
                         f"hidden_size={rnn.hidden_size}")
    return readout.out_features


def _targets(y, batch: int, steps: int, width: int, like: torch.Tensor, check_width: bool):
    """y on the module's device, and whether it is read at every timestep. With a loss of the caller's own,
    the width O of float targets is not checked: what a target holds is that loss's business."""
    y = torch.as_tensor(y)
    if y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"y has dtype {y.dtype}: expected float targets or integer class indices")
    floating = y.is_floating_point()
    if floating:
        shapes = {2: (batch, width), 3: (batch, steps, width)}
        kinds = f"float (N, O) = ({batch}, {width}) for the last timestep or (N, T, O) = ({batch}, {steps}, {width})"
    else:
        shapes = {1: (batch,), 2: (batch, steps)}
        kinds = f"integer classes (N,) = ({batch},) for the last timestep or (N, T) = ({batch}, {steps})"
    expected = shapes.get(y.dim())
    compared = tuple(y.shape[:-1]) if floating and not check_width else tuple(y.shape)
    if expected is None or compared != expected[:len(compared)]:
        raise ValueError(f"y has shape {_shape(y)} ({y.dtype}): expected {kinds} for every timestep "
                         "(targets are batch-first whatever the module's batch_first)")
    every_step = y.dim() == max(shapes)
    if floating:
        return y.detach().to(device=like.device, dtype=like.dtype), every_step
    if check_width and (int(y.min()) < 0 or int(y.max()) >= width):
        raise ValueError(f"y holds class indices from {int(y.min())} to {int(y.max())}: expected 0 to {width - 1} "
                         f"(the predictions have {width} classes)")
    return y.detach().to(device=like.device, dtype=torch.long), every_step


# ----------------------------------------------------------------------------- findings

def _orders_text(orders: float, profile: np.ndarray) -> str:
    """How much gradient the top layer loses from its last timestep back to its first, in words; where
    orders_lost is infinite, which end made it so."""
    first, last = profile[0], profile[-1]
    if np.isnan(orders):
        return "orders of magnitude lost: not defined (NaN, or 0 or inf at both ends)"
    if np.isinf(orders):
        if first == 0:
            return "no gradient reaches the first timestep"
        if last == 0:
            return "no gradient at the last timestep"
        return "the gradient overflowed (inf)"
    return f"{abs(orders):.1f} orders of magnitude {'lost' if orders >= 0 else 'gained'}"


def _row_name(row: int, directions: int) -> str:
    layer, direction = divmod(row, directions)
    return f"layer {layer + 1}" + ("" if directions == 1 else " backward" if direction else " forward")


def _findings(cell: str, weights: list, run: Unrolled, grad_h: np.ndarray, top_row: int, orders: float,
              loss: float, sigma: np.ndarray, directions: int = 1) -> list[Finding]:
    """Plain-language diagnoses, each a claim the numbers of this one batch show: first what happens to
    the gradient over time (read from the top layer's forward row), then what in the module makes it so."""
    steps, top = grad_h.shape[1], grad_h[top_row]
    if not np.isfinite(loss):
        return [Finding(
            f"The loss itself is {loss}: the forward pass already left floating-point range, so no gradient "
            "here can be trusted.",
            "Check the inputs and weights for inf or NaN; weights thrown this far usually come from too large "
            "a learning rate.", "learning-rate")]
    found = []
    if not np.isfinite(grad_h).all():
        bad = int(np.count_nonzero(~np.isfinite(grad_h)))
        found.append(Finding(
            f"The gradient is inf or NaN at {bad} of {grad_h.size} layer-timesteps while the loss ({loss:.3g}) is "
            "finite: it overflowed on its way back in time.",
            "Clip the gradient norm before each update (torch.nn.utils.clip_grad_norm_) and bring the "
            "recurrent weights' largest singular value towards 1.", "fix-clipping"))
    elif steps > 1 and top[0] == 0 and top[-1] > 0:
        found.append(Finding(
            f"No gradient reaches the first of {steps} timesteps at all: the top layer's d loss / d h there is "
            "exactly 0, shrunk below the smallest number floating point holds (or cut off by units that pass "
            "no gradient). Nothing that depends on the first inputs can be learned.", *_vanishing_remedy(cell)))
    elif orders >= VANISHING_ORDERS:
        found.append(Finding(
            f"Vanishing gradient: at the first of {steps} timesteps the top layer's gradient is {orders:.1f} "
            "powers of ten weaker than at the last, so the early inputs can hardly teach the network anything.",
            *_vanishing_remedy(cell)))
    elif orders <= -EXPLODING_ORDERS and top[-1] > 0:
        found.append(Finding(
            f"Exploding gradient: at the first of {steps} timesteps the top layer's gradient is {-orders:.1f} "
            "powers of ten larger than at the last, so the earliest timesteps dominate the weights' gradient "
            "on this batch, and an update can throw the weights far.",
            "Clip the gradient norm before each update (torch.nn.utils.clip_grad_norm_); shrink weight_hh "
            f"towards a largest singular value of 1 (now up to {np.nanmax(sigma):.2f}).", "fix-clipping"))

    small = [k for k in range(len(sigma)) if sigma[k] < SMALL_SIGMA]
    if cell.startswith("rnn") and small:  # a gated cell's memory does not go through weight_hh alone
        which = ", ".join(f"{_row_name(k, directions)}: {sigma[k]:.2f}" for k in small)
        found.append(Finding(
            f"Small recurrent weights: the largest singular value of weight_hh is far below 1 ({which}). One "
            f"step back through a {CELL_NAMES[cell]} multiplies what the gradient carries through the recurrence "
            f"by at most that (the activation's slope is at most 1): over {steps - 1} steps, at most "
            f"10^{(steps - 1) * np.log10(max(sigma[small].max(), 1e-300)):.0f}.",
            "Start weight_hh orthogonal (torch.nn.init.orthogonal_) or Xavier-scaled, so one step back keeps "
            "the gradient's size.", "fix-init"))

    rows = len(weights)
    if cell == "lstm" and weights[0][2] is not None:
        H = weights[0][1].shape[0] // 4  # PyTorch's gate order: input, forget, cell, output
        bias = [float((w[2] + w[3])[H:2 * H].mean()) for w in weights]
        low = [k for k in range(rows) if bias[k] < LOW_FORGET_BIAS]
        if low:
            numbers = "; ".join(("" if rows == 1 else f"{_row_name(k, directions)}: ")
                                + f"bias {bias[k]:.2f}, gate {run.forget[k]:.2f} on average" for k in low)
            found.append(Finding(
                f"The LSTM's forget gate is not held open ({numbers}; the bias is the forget slice of bias_ih + "
                "bias_hh, the gate its value on this batch). The cell state keeps only about the gate's share of "
                "itself per step, so what the gradient carries back along it shrinks by about that factor every "
                "step.",
                "Set the forget slice of bias_ih (rows hidden_size to 2 * hidden_size) to 1 or 2 and of bias_hh "
                "to 0, the standard recipe.", "fix-lstm"))

    if cell == "rnn_tanh":
        shares = [probes.count_flat("tanh", torch.stack(hs).detach()) / (len(hs) * hs[0].numel())
                  for hs in run.hidden]
        worst = int(np.argmax(shares))
        if shares[worst] > SATURATED_SHARE:
            found.append(Finding(
                f"{shares[worst]:.0%} of {_row_name(worst, directions)}'s tanh outputs are saturated (h² > 0.9, where tanh's "
                "slope 1 - h² is under 0.1): almost no gradient passes back through them.",
                "Saturation comes from large inputs to tanh: normalize the inputs, or scale weight_ih and "
                "weight_hh down (Xavier or orthogonal initialization).", "vanishing-sigmoid"))
    return found


def _vanishing_remedy(cell: str) -> tuple[str, str]:
    """What to try against a vanishing gradient in this cell, and the lesson that shows it working."""
    if cell == "rnn_tanh":
        return ("Use a gated cell, nn.LSTM or nn.GRU (lessons fix-lstm, fix-gru), or start weight_hh "
                "orthogonal (lesson fix-init).", "fix-lstm")
    if cell == "rnn_relu":
        return ("Start weight_hh as the identity with zero biases (IRNN), or use nn.LSTM or nn.GRU.", "fix-irnn")
    if cell == "lstm":
        return ("Hold the forget gate open: set the forget slice of bias_ih to 2 (and of bias_hh to 0), so the "
                "cell state carries the gradient back.", "fix-lstm")
    return ("Train on: the GRU's update gate learns to keep its memory, and the early timesteps brighten as "
            "it does; orthogonal weight_hh gives it a better start.", "fix-gru")
