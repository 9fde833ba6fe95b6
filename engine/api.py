"""Probe your own recurrent module from a script or a notebook: `probe(rnn, x, y) -> Probe`.

Runs on the caller's thread (a script, a notebook kernel); no Qt. It takes a user's `nn.RNN` (tanh or
relu), `nn.LSTM` or `nn.GRU` as it is, runs one batch through it and reports how the gradient of the
loss reaches each timestep of each layer: the numbers the window's views show, as numpy arrays, plus
plain-language findings that point to the lesson (engine/lessons.py) that shows each one.

PyTorch's fused modules keep their per-timestep states to themselves, so the module is unrolled here
from its own parameters, layer by layer, keeping every h_t (and c_t), and one `torch.autograd.grad`
call asks for d loss / d h_t for all of them at once (the trainer does the same). The user's module is
only read: its parameters enter the unroll detached, so nothing accumulates in their `.grad`, and no
hook is installed.

Scope, said once: the initial state is zero (the module's default); dropout between layers is not
applied (the probe looks at the deterministic network, as in eval mode); bidirectional modules and LSTMs
with proj_size > 0 are refused. The unroll runs on the module's device and dtype and is written to be
device-agnostic, but it is tested on CPU only: CUDA is untested.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine import detail, probes
from engine.svg import profile_svg

VANISHING_ORDERS = 4.0   # a gradient that loses four powers of ten on its way back is vanishing
EXPLODING_ORDERS = 3.0   # one that grows a thousandfold is exploding (as engine.diagnosis says)
SMALL_SIGMA = 0.5        # recurrent weights that shrink every vector to half or less, every step
LOW_FORGET_BIAS = 0.5    # an LSTM forget bias below this leaves the gate near or below one half
SATURATED_SHARE = 0.5    # more than half of a tanh layer's outputs where its slope is under 0.1

CELLS = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}
CELL_NAMES = {"rnn_tanh": "tanh RNN", "rnn_relu": "ReLU RNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass(frozen=True)
class Finding:
    text: str     # what the numbers show, in plain words
    remedy: str   # what to try
    lesson: str   # the lesson that shows it: `python main.py --lesson NAME`, or the window's lesson browser


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value to compare by
class Probe:
    """What one batch says about a module's gradients. Arrays are float64 and read-only. In a notebook it
    shows itself as its gradient profile (`_repr_svg_`); `summary()` says it in words."""
    cell: str                       # "rnn_tanh" | "rnn_relu" | "lstm" | "gru"
    grad_h: np.ndarray              # (layers, T): norm of d loss / d h_t over batch and units
    grad_c: np.ndarray | None       # (layers, T): the same for the LSTM cell state; None for other cells
    grad_x: np.ndarray              # (T,): norm of d loss / d x_t over batch and features
    loss: float
    orders_lost: float              # engine.probes.orders_lost of the top layer: log10(last / first)
    sigma_max: np.ndarray           # (layers,): largest singular value of each layer's weight_hh
    findings: tuple[Finding, ...]   # most important first
    grad_h_units: np.ndarray | None = None  # (layers, T, H): each unit's norm over the batch of d loss / d h_t
    connectivity: np.ndarray | None = None  # (T_out, T): norm over batch and features of d loss_k / d x_t, loss_k
    #   the loss's term at the k-th timestep it reads (terms summing to the loss): T_out = 1 when y is read at the
    #   last timestep, T when at every one; None with a loss of your own that reads every timestep (its terms
    #   are not known)

    def summary(self) -> str:
        """A few lines of text: what was probed, the loss, how much gradient is lost, the findings."""
        layers, steps = self.grad_h.shape
        lines = [f"{CELL_NAMES[self.cell]}, {layers} layer{'s' if layers > 1 else ''}, {steps} timesteps: "
                 f"loss {self.loss:.4g}",
                 "gradient at the first timestep against the last (top layer): "
                 + _orders_text(self.orders_lost, self.grad_h[-1])]
        if not self.findings:
            lines.append("no findings: nothing here vanishes, explodes or saturates by the thresholds used")
        for finding in self.findings:
            lines += [f"- {finding.text}", f"  try: {finding.remedy} (lesson {finding.lesson})"]
        return "\n".join(lines)

    def _repr_svg_(self) -> str:
        title = f"{CELL_NAMES[self.cell]} gradient profile: {_orders_text(self.orders_lost, self.grad_h[-1])}"
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

    with torch.enable_grad():  # a caller inside torch.no_grad() still gets its gradients
        run = unroll(cell, weights, inputs)
        top = torch.stack(run.hidden[-1], dim=1)  # (N, T, H)
        if readout is not None:
            top = F.linear(top, readout.weight.detach(), None if readout.bias is None else readout.bias.detach())
        predictions = top if every_step else top[:, -1]
        value = loss(predictions, target) if loss is not None else _default_loss(predictions, target)
        _check_loss_value(value)
        states = [h for layer in run.hidden for h in layer] + [c for layer in run.cell for c in layer]
        terms = _loss_terms(predictions, target) if every_step and loss is None else None
        grads = torch.autograd.grad(value.reshape(()), states + [inputs], allow_unused=True,
                                    retain_graph=terms is not None)
        grads = [torch.zeros_like(s) if g is None else g for s, g in zip(states + [inputs], grads)]
        per_answer = [grads[-1]] if not every_step else None if terms is None else [
            _input_grad(term, inputs, retain=k < len(terms) - 1) for k, term in enumerate(terms)]

    layers, steps = len(weights), inputs.shape[0]
    grad_h = _readonly(np.stack([probes.norm_per_timestep(grads[k * steps:(k + 1) * steps]) for k in range(layers)]))
    grad_c = None
    if run.cell:
        offset = layers * steps
        grad_c = _readonly(np.stack([probes.norm_per_timestep(grads[offset + k * steps:offset + (k + 1) * steps])
                                     for k in range(layers)]))
    grad_x = _readonly(probes.input_norm_per_timestep(grads[-1].transpose(0, 1)))
    with torch.no_grad():
        grad_h_units = _readonly(torch.stack([detail.per_unit_norms([g.double() for g in grads[k * steps:(k + 1) * steps]])
                                              for k in range(layers)]).cpu().numpy())
        connectivity = None if per_answer is None else _readonly(torch.stack([
            torch.linalg.vector_norm(g.double(), dim=(1, 2)) for g in per_answer]).cpu().numpy())
    sigma = _readonly(probes.largest_singular_values(torch.stack([w[1] for w in weights])).astype(np.float64))
    orders = probes.orders_lost(grad_h[-1])
    loss_value = float(value.detach())
    findings = tuple(_findings(cell, weights, run, grad_h, orders, loss_value, sigma))
    return Probe(cell, grad_h, grad_c, grad_x, loss_value, orders, sigma, findings, grad_h_units, connectivity)


def _loss_terms(predictions: torch.Tensor, target: torch.Tensor) -> list:
    """The default loss's term at each timestep of (N, T, ...) predictions: that timestep's loss over T."""
    steps = predictions.shape[1]
    return [_default_loss(predictions[:, t], target[:, t]) / steps for t in range(steps)]


def _input_grad(term, inputs, retain: bool):
    (g,) = torch.autograd.grad(term, [inputs], retain_graph=retain, allow_unused=True)
    return torch.zeros_like(inputs) if g is None else g


# ----------------------------------------------------------------------------- the unroll

@dataclass
class Unrolled:
    hidden: list   # [layer][t] -> (N, H), in the graph
    cell: list     # LSTM: [layer][t] -> (N, H), in the graph; [] for other cells
    forget: list   # LSTM: [layer] -> mean forget-gate value over batch, units and time; [] otherwise


def unroll(cell: str, weights: list, inputs: torch.Tensor) -> Unrolled:
    """The module's forward pass, one timestep at a time: `inputs` (T, N, input_size), `weights` one
    (weight_ih, weight_hh, bias_ih, bias_hh) per layer (biases None without bias). RNN and GRU steps are
    PyTorch's own cell kernels (what nn.RNNCell and nn.GRUCell call). The LSTM step is written out as
    PyTorch composes torch.lstm_cell on CPU: on CUDA that function is one fused kernel whose c_t output
    is not the tensor its h_t is computed from, so autograd would leave the path through h_t out of
    d loss / d c_t. Written out, c_t is one node on every device, and the forget gate is at hand."""
    step = {"rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell, "gru": torch.gru_cell}.get(cell)
    run = Unrolled([], [], [])
    layer_input = list(inputs.unbind(0))
    for w_ih, w_hh, b_ih, b_hh in weights:
        h = inputs.new_zeros(inputs.shape[1], w_hh.shape[1])
        c, hs, cs, forget_sum = h, [], [], 0.0
        for x_t in layer_input:
            if step is not None:
                h = step(x_t, h, w_ih, w_hh, b_ih, b_hh)
            else:
                i, f, g, o = (F.linear(x_t, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
                f = torch.sigmoid(f)
                c = f * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                forget_sum = forget_sum + f.detach().mean()  # a tensor: no device sync per step
                cs.append(c)
            hs.append(h)
        run.hidden.append(hs)
        if cs:
            run.cell.append(cs)
            run.forget.append(float(forget_sum) / len(hs))
        layer_input = hs
    return run


# ----------------------------------------------------------------------------- checking the arguments

def _shape(t) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + (",)" if t.dim() == 1 else ")")


def _cell(rnn) -> str:
    if not isinstance(rnn, nn.RNNBase) or getattr(rnn, "mode", None) not in CELLS:
        raise TypeError(f"rnn must be a torch.nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")
    if rnn.bidirectional:
        raise ValueError("rnn is bidirectional: not supported (the probe follows the gradient back in time "
                         "through one direction); probe a module with bidirectional=False")
    if getattr(rnn, "proj_size", 0) > 0:
        raise ValueError(f"rnn is an LSTM with proj_size={rnn.proj_size}: projections are not supported; "
                         "probe an LSTM with proj_size=0")
    return CELLS[rnn.mode]


def layer_weights(rnn) -> list:
    """Each layer's (weight_ih, weight_hh, bias_ih, bias_hh), detached: the unroll reads them and never
    asks for their gradients."""
    def get(name, k):
        return getattr(rnn, f"{name}_l{k}").detach() if rnn.bias or name.startswith("weight") else None
    return [tuple(get(name, k) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for k in range(rnn.num_layers)]


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


def _check_loss_value(value) -> None:
    if not isinstance(value, torch.Tensor):
        got = type(value).__name__
    elif value.numel() != 1:
        got = f"a tensor of shape {_shape(value)}"
    elif not value.requires_grad:
        got = "a tensor that does not depend on them (requires_grad is False)"
    else:
        return
    raise ValueError(f"loss(predictions, y) must return a scalar tensor computed from the predictions, got {got}")


def _default_loss(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.is_floating_point():
        return F.mse_loss(predictions, target)
    return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), target.reshape(-1))


def _readonly(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    values.setflags(write=False)
    return values


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


def _findings(cell: str, weights: list, run: Unrolled, grad_h: np.ndarray, orders: float, loss: float,
              sigma: np.ndarray) -> list[Finding]:
    """Plain-language diagnoses, each a claim the numbers of this one batch show: first what happens to
    the gradient over time, then what in the module makes it so."""
    steps, top = grad_h.shape[1], grad_h[-1]
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
        which = ", ".join(f"layer {k + 1}: {sigma[k]:.2f}" for k in small)
        found.append(Finding(
            f"Small recurrent weights: the largest singular value of weight_hh is far below 1 ({which}). One "
            f"step back through a {CELL_NAMES[cell]} multiplies what the gradient carries through the recurrence "
            f"by at most that (the activation's slope is at most 1): over {steps - 1} steps, at most "
            f"10^{(steps - 1) * np.log10(max(sigma[small].max(), 1e-300)):.0f}.",
            "Start weight_hh orthogonal (torch.nn.init.orthogonal_) or Xavier-scaled, so one step back keeps "
            "the gradient's size.", "fix-init"))

    layers = len(weights)
    if cell == "lstm" and weights[0][2] is not None:
        H = weights[0][1].shape[1]  # PyTorch's gate order: input, forget, cell, output
        bias = [float((b_ih + b_hh)[H:2 * H].mean()) for _, _, b_ih, b_hh in weights]
        low = [k for k in range(layers) if bias[k] < LOW_FORGET_BIAS]
        if low:
            numbers = "; ".join(("" if layers == 1 else f"layer {k + 1}: ")
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
                f"{shares[worst]:.0%} of layer {worst + 1}'s tanh outputs are saturated (h² > 0.9, where tanh's "
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
