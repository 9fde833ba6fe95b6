"""Every measurement taken from a training step, apart from the trainer that drives it.

Runs on the trainer's thread, inside `Trainer.step()`, on the gradients its one `torch.autograd.grad`
call captured and on the weights *before* the step's update; `orders_lost` also runs on the GUI
thread, over the snapshots' numpy arrays. The probes that sweep every timestep (state-gradient norms,
saturation, gate means) do it in cache-sized blocks; only the pre-activation histogram, a display
aid, looks at a sample of timesteps. Nothing here changes a weight or a gradient.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine import registry

_HIST_LOW, _HIST_BINS_PER_UNIT = -6.0, 4  # bins a quarter wide: edges that floating point holds exactly
HIST_EDGES = _HIST_LOW + np.arange(49) / _HIST_BINS_PER_UNIT  # -6 .. 6: pre-activation histogram bins shared by every snapshot
HIST_SAMPLE = 1 << 14  # activation inputs histogrammed per layer and step: a display aid, so a sample

BLOCK_VALUES = 1 << 16  # values per pass when a probe sweeps a (T, batch, units) tensor: a cache-sized
#   block that the allocator hands back step after step, where one pass over the whole tensor would
#   fault in fresh pages every step (measured: 2.4 ms against 0.9 ms for the norms at seq_len 1000)


# ----------------------------------------------------------------------------- how a gradient falls off

def orders_lost(profile) -> float:
    """Powers of ten a gradient loses on its way back in time: log10(last / first) of a per-timestep
    norm profile, positive when it vanishes, negative when it grows. Read from the two ends as
    floating point reads them, so a step whose gradient left float range still gets an answer: +inf
    when the first is 0 and the last is not (vanished below float precision) or the last is infinite,
    -inf when the last is 0 or the first infinite; NaN for an empty profile, a NaN at either end, or
    0 or infinity at both. The timesteps in between are not read: a caller that needs them all finite
    (a diagnosis of a step that diverged has nothing to say) checks that itself."""
    if len(profile) == 0:
        return math.nan
    ends = np.asarray([profile[0], profile[-1]], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first, last = np.log10(ends)
        return float(last - first)


# ----------------------------------------------------------------------------- gradient norms

def steps_per_block(values_per_step: int) -> int:
    return max(1, BLOCK_VALUES // max(values_per_step, 1))


def timestep_blocks(per_step: list[torch.Tensor]):
    """Consecutive timesteps' tensors stacked about BLOCK_VALUES values at a time."""
    rows = steps_per_block(per_step[0].numel())
    for start in range(0, len(per_step), rows):
        yield torch.stack(per_step[start:start + rows])


def norm_per_timestep(per_step: list[torch.Tensor]) -> np.ndarray:
    """The Frobenius norm of each tensor, in float64: squaring a float32 entry below ~1e-23 underflows
    to 0, which would report a vanished gradient as exactly zero many orders of magnitude too early.
    (A float32 pass first, redoing only the tiny norms, was 2x faster on ordinary gradients and 4x
    slower on vanishing ones: squares below float32's normal range take the CPU's slow denormal path.)"""
    return torch.cat([torch.linalg.vector_norm(block.flatten(1), dim=1, dtype=torch.float64)
                      for block in timestep_blocks(per_step)]).cpu().numpy()


def input_norm_per_timestep(grad_inputs: torch.Tensor) -> np.ndarray:
    """The norm of dL/dx_t over batch and channels for each timestep of a (batch, T, channels)
    gradient, in float64 for the same reason as the state norms."""
    return torch.linalg.vector_norm(grad_inputs, dim=(0, 2), dtype=torch.float64).cpu().numpy()


# ----------------------------------------------------------------------------- past float32's range

FLOAT32_NORMAL = 1.18e-38  # float32's smallest normal number: below it an entry keeps fewer bits, below 1.4e-45 none
DENORMAL_SHARE = 1e-6      # ... and a norm is redone in float64 once entries down there could move it by more than this


DENORMALS_FLUSHED = True  # Trainer.step runs its float32 forward and backward pass with denormal numbers
#   flushed to 0 (torch.set_flush_denormal: the CPU's FTZ/DAZ modes; no effect on a GPU): every operation
#   on a denormal takes the CPU's slow path, and a vanishing gradient fills its early timesteps with them
#   (measured: an LSTM of hidden 256, seq_len 200, batch 64 took 3.7 s a step with them, 1.1 s without).
#   Nothing reported changes by more than 1e-6: a norm that flushed products could move that much is
#   redone in float64 (with denormals kept; FLUSHED_MARGIN); the weights' gradients lose terms under 1e-38.


GRADIENT_SCALE_TARGET = 1e28  # Trainer.step starts its float32 backward pass from 2^k times the loss's gradient
#   (as mixed-precision training scales its loss), k chosen from the step before so that its largest
#   gradient norm would come out near this, ten orders below float32's largest number: a gradient that
#   vanishes, only a fraction of a step's values, then keeps some 60 orders of magnitude above float32's
#   smallest number instead of 40, and needs no float64 redo (measured: an LSTM of hidden 256 at seq_len 200
#   falls 38 orders; its step took 1.1 s with the redo, 0.3 s without). A power of two scales every float32
#   operation exactly, so every number comes out as unscaled arithmetic gives it wherever that does not
#   underflow; the norms and the weights' gradients are divided back exactly. A step that overflows when
#   scaled is taken again unscaled; the first step, and the first after a rebuild, are unscaled.
MAX_GRADIENT_SCALE_EXPONENT = 100


def gradient_scale(grad_h, grad_c, grad_x, total: float) -> float:
    """2^k for the next step (GRADIENT_SCALE_TARGET): from this step's largest state, input and total
    parameter gradient norm; 1 (no scaling) where that is already large, 0 or not finite."""
    largest = max(float(np.max(grad_h)), float(np.max(grad_x)) if len(grad_x) else 0.0, total,
                  float(np.max(grad_c)) if grad_c is not None else 0.0)
    if not math.isfinite(largest) or largest <= 0:
        return 1.0
    exponent = math.floor(math.log2(GRADIENT_SCALE_TARGET) - math.log2(largest))  # (a quotient overflows for 1e-300)
    return 2.0 ** min(max(exponent, 0), MAX_GRADIENT_SCALE_EXPONENT)


def all_finite(*profiles) -> bool:
    """Whether every value of the given arrays (None: skipped) is finite."""
    return all(p is None or bool(np.isfinite(p).all()) for p in profiles)


def underflow_norm(values_per_step: int) -> float:
    """The per-timestep float32 norm below which it is redone in float64: entries under FLOAT32_NORMAL,
    however many of the `values_per_step` they are, could then change the norm by more than
    DENORMAL_SHARE (1e-6) of itself. 5.4e-34 for a batch of 32 x 64 units. (Above it, a step's values are
    computed from the later, larger timesteps' values: no denormal enters them on their way back.)"""
    return FLOAT32_NORMAL * math.sqrt(values_per_step / DENORMAL_SHARE)


FLUSHED_MARGIN = 1e3  # the float32 pass flushes denormals to 0 (DENORMALS_FLUSHED), and the products flushed
#   inside it moved norms by more than 1e-6 up to 130x underflow_norm (measured: rnn, lstm, gru at seq_len
#   157-400): norms below FLUSHED_MARGIN x underflow_norm are redone in float64 (with denormals kept)


def underflowed(state_values: int, input_values: int, grad_h, grad_c, grad_x) -> bool:
    """Whether any per-timestep float32 norm of grad_h, grad_c (None: ignored), with `state_values`
    values per timestep, or of grad_x, with `input_values`, fell below FLUSHED_MARGIN x underflow_norm
    (0 included): below it, values float32 loses or the float32 pass flushed could move it by 1e-6."""
    def low(profile, values):
        return profile is not None and profile.size > 0 and float(profile.min()) < FLUSHED_MARGIN * underflow_norm(values)
    return low(grad_h, state_values) or low(grad_c, state_values) or low(grad_x, input_values)


REDO_CHUNKS = 4  # see REDO_WHOLE_BATCH_BYTES
REDO_WHOLE_BATCH_BYTES = 64 * 1024 ** 2  # a float64 redo of up to this much runs as one pass; a larger one in
#   REDO_CHUNKS batch chunks, each about half of the float32 pass's states (let go of before it), so a redo
#   never needs more memory than the step it redoes (engine.memory's estimate; measured with 2 chunks, the
#   calibration step of tests/engine/test_memory.py passed it: 956 MB against 938). More passes mean more
#   small matmuls: 4 chunks took 0.91 s a step where 8 took 1.12 (LSTM hidden 256, seq_len 200, batch 64)


def redo_chunks(batch: int, activation_bytes: int) -> int:
    """Passes a float64 redo takes for a step whose float32 states take about `activation_bytes`
    (engine.memory's "activations"): float64 doubles them."""
    if 2 * activation_bytes <= REDO_WHOLE_BATCH_BYTES:
        return 1
    return min(batch, REDO_CHUNKS)


def float64_state_gradients(model, task, x: torch.Tensor, target: torch.Tensor, layers: int, steps: int,
                            activation_bytes: int = 0):
    """grad_h, grad_c (None without an LSTM cell state) and grad_x of the same forward pass, redone in
    float64 on the same weights and batch: exact down to float64's range (about 1e-300) where float32
    flushes everything below 1e-45 to 0. The parameters go in as float64 copies (torch.func.functional_call),
    so the model and its float32 gradients are not touched. Costs about one more forward and backward pass,
    paid only at the steps whose float32 state gradients underflowed. Each example's states depend on that
    example alone and the loss is a mean over the batch, so a large step is redone in batch chunks
    (redo_chunks), each chunk's loss weighted by its share of the batch, the norms summed in squares."""
    params = {name: p.detach().double() for name, p in model.named_parameters()}
    batch = x.shape[0]
    chunks = redo_chunks(batch, activation_bytes)
    parts = []
    for rows in torch.arange(batch).chunk(chunks):
        x64 = x.detach()[rows].double().requires_grad_(True)
        target64 = target[rows].double() if target.is_floating_point() else target[rows]
        with torch.enable_grad():
            out, trace = torch.func.functional_call(model, params, (x64, task.output_steps))
            loss = task.loss(out, target64) * (len(rows) / batch)
            hidden = [h for layer in trace.hidden for h in layer]
            cells = [s for layer in trace.cell for s in layer]
            grads = torch.autograd.grad(loss, hidden + cells + [x64], allow_unused=True)
        n_h, n_c = len(hidden), len(cells)
        grad_h = _scaled_norms(_zeros_for_unused(grads[:n_h], hidden)).reshape(layers, steps)
        grad_c = _scaled_norms(_zeros_for_unused(grads[n_h:n_h + n_c], cells)).reshape(layers, steps) if n_c else None
        grad_x = grads[-1] if grads[-1] is not None else torch.zeros_like(x64)
        parts.append((grad_h, grad_c, _scaled_norms(list(grad_x.transpose(0, 1).unbind(0)))))
        del out, trace, hidden, cells, grads, grad_x
    if chunks == 1:
        return parts[0]
    return tuple(None if part[0] is None else _hypot(part) for part in zip(*parts))


def _hypot(arrays) -> np.ndarray:
    """sqrt of the sum of squares of same-shaped arrays of norms, without squaring below float64's range."""
    stacked = np.stack(arrays)
    largest = stacked.max(axis=0)
    scale = np.where(largest > 0, largest, 1.0)
    return largest * np.sqrt(((stacked / scale) ** 2).sum(axis=0))


def _zeros_for_unused(grads, tensors):
    return [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, tensors)]


def _scaled_norms(per_step: list[torch.Tensor]) -> np.ndarray:
    """The norm of each float64 tensor, divided by its largest |entry| before squaring and multiplied
    back after: squaring entries below 1e-154 would underflow float64 and read 1e-160 as 0."""
    norms = []
    for block in timestep_blocks(per_step):
        flat = block.flatten(1)
        largest = flat.abs().amax(dim=1)
        scale = torch.where(largest > 0, largest, torch.ones_like(largest))
        norms.append(largest * torch.linalg.vector_norm(flat / scale[:, None], dim=1))
    return torch.cat(norms).cpu().numpy()


def parameter_gradient_norms(params: list[torch.Tensor], layer_index: list[list[int]]) -> tuple[np.ndarray, float]:
    """Per-recurrent-layer and total norms of the parameters' current gradients; `layer_index` lists
    each recurrent layer's positions in `params`. float64 throughout: math.hypot combines the norms
    without squaring past float64's range."""
    norms = registry.grad_norms([p.grad for p in params])
    layer = np.array([math.hypot(*(norms[k] for k in index)) for index in layer_index])
    return layer, math.hypot(*norms)


# ----------------------------------------------------------------------------- weights

def largest_singular_values(weights: torch.Tensor) -> np.ndarray:
    """sigma_max of each (gates * H, H) matrix in `weights` (layers, gates * H, H): the square root of
    the largest eigenvalue of W^T W (H x H), cheaper than an SVD of the tall matrix. In float32 (good
    to ~1e-6 of sigma, a third faster) while W^T W is finite there; float64 for the huge weights one
    wild update can leave (float32 overflows past ~1e19). A matrix that is already infinite or NaN
    reports inf or NaN, not an error. The last steps run in numpy: a handful of torch calls on a few
    numbers cost more than the eigenvalue problem's own overhead."""
    gram = weights.mT @ weights
    if math.isfinite(float(gram.sum())):  # every entry finite (a finite sum that overflows errs on the safe side)
        return np.sqrt(np.maximum(torch.linalg.eigvalsh(gram)[:, -1].cpu().numpy(), 0))
    w = weights.double()
    gram = w.mT @ w
    finite = torch.isfinite(gram).all(dim=(1, 2))
    sigma = torch.full((len(w),), math.inf, dtype=w.dtype, device=w.device)
    sigma[torch.isnan(w).flatten(1).any(dim=1)] = math.nan
    if bool(finite.any()):
        sigma[finite] = torch.linalg.eigvalsh(gram[finite])[:, -1].clamp(min=0).sqrt()
    return sigma.cpu().numpy()


# ----------------------------------------------------------------------------- activity

def histogram_timesteps(steps: int, per_step: int, budget: int | None = None) -> list[int]:
    """The timesteps whose activation inputs (whole batch, every unit) go into `preact_hist`: all of
    them if they fit in `budget` (default HIST_SAMPLE) values, else the middles of equal stretches of
    the sequence, so no part of it (such as the first step, which starts from h = 0) is over-weighted."""
    budget = HIST_SAMPLE if budget is None else budget
    take = min(steps, max(1, budget // max(per_step, 1)))
    return [int((k + 0.5) * steps / take) for k in range(take)]


def preactivation_histogram(values: torch.Tensor) -> np.ndarray:
    """The counts np.histogram(values, HIST_EDGES) gives (the last bin closed; values outside -6..6,
    and NaN, not counted), without its sort. The edges are multiples of 1/4, so floor(4 v) is exact in
    floating point and names each value's bin with no rounding at an edge. np.histogram sorts with
    explicit edges and bins a few passes slower for a range: measured here 282 and 118 us against 68
    for 16K values on one CPU (on another, sorting was the faster of its two)."""
    v = values.detach().cpu().numpy()
    inside = v[(v >= HIST_EDGES[0]) & (v <= HIST_EDGES[-1])]  # NaN compares False: dropped
    bins = len(HIST_EDGES) - 1
    index = np.floor(inside * _HIST_BINS_PER_UNIT).astype(np.intp) - int(_HIST_LOW * _HIST_BINS_PER_UNIT)
    return np.bincount(np.minimum(index, bins - 1), minlength=bins)  # v == 6 joins the last bin


def flat_slope_mask(activation: str, out: torch.Tensor) -> torch.Tensor | None:
    """Mask of the units that pass (almost) no gradient, judged from the activation's *output* as
    backprop itself computes the slope: tanh and sigmoid where the slope is under 10% of its largest
    (tanh' = 1 - h^2, sigmoid' = s(1 - s)), dead ReLUs (relu' = 0 where the output is 0). None for the
    activations that are never saturated or dead: linear, and Leaky ReLU and PReLU, whose negative
    side keeps a slope (its very purpose, even where that slope is small)."""
    if activation == "tanh":
        return out * out > 0.9                                # tanh' = 1 - h^2 < 0.1
    if activation == "sigmoid":
        return out - out * out < 0.025                        # s(1 - s) < 0.1 * 0.25
    if activation == "relu":
        return out <= 0
    return None


def host_view(values: torch.Tensor):
    """A numpy view of a CPU tensor (numpy compares a block of values several times faster than torch
    does there: measured 6x for `h * h > 0.9`); the tensor itself on any other device."""
    return values.detach().numpy() if values.device.type == "cpu" else values


SIGMOID_FLAT_AT_MOST, SIGMOID_FLAT_AT_LEAST = 0.025658349, 0.9743417  # float32 (bits 0x3cd23175, 0x3f796c75):
#   for every float32 s in [0, 1] (all 1.07e9 checked), s - s*s < 0.025 computed in float32 holds exactly where
#   s <= the first or s >= the second (and for every s outside, +inf aside, which no sigmoid gives): two
#   comparisons, where the product, difference and comparison were three passes (LSTM gates: 0.4 of 1.6 ms)


def count_flat(activation: str, outputs: torch.Tensor) -> int:
    """How many entries of `outputs` (activation outputs) sit where the slope is flat."""
    values = host_view(outputs)
    if activation == "sigmoid" and values.dtype in (np.float32, torch.float32):  # flat_slope_mask's count
        count = np.count_nonzero if isinstance(values, np.ndarray) else torch.count_nonzero
        return int(count(values <= np.float32(SIGMOID_FLAT_AT_MOST))) + int(count(values >= np.float32(SIGMOID_FLAT_AT_LEAST)))
    flat = flat_slope_mask(activation, values)
    if flat is None:
        return 0
    return int(np.count_nonzero(flat) if isinstance(flat, np.ndarray) else torch.count_nonzero(flat))


def layer_activity(layer, activation: str, trace, k: int, hist_steps: list[int]) -> tuple[np.ndarray, float, np.ndarray]:
    """Layer k's pre-activation histogram (over `hist_steps`), saturated fraction and gate means
    (in GATE_NAMES order, as the layer itself, an engine.model.RecurrentLayer, reports them)."""
    pre = trace.preact[k]
    hist = preactivation_histogram(torch.stack([pre[t] for t in hist_steps]))
    if layer.cell == "rnn":
        states = trace.outputs[k]  # (T, batch, hidden)
        flat = sum(count_flat(activation, block) for block in states.split(steps_per_block(states[0].numel())))
        return hist, flat / max(states.numel(), 1), np.zeros(0)
    gate_sums, flat, count = 0, 0, 0
    for block in timestep_blocks(trace.gates[k]):  # (steps, batch, sigmoid gates * hidden)
        flat += count_flat("sigmoid", block)
        gate_sums = gate_sums + block.sum(dim=(0, 1))
        count += block.numel()
    candidate_sum = sum(block.sum() for block in timestep_blocks(trace.candidate[k]))
    return hist, flat / max(count, 1), layer.gate_means(gate_sums, count, candidate_sum).cpu().numpy()


EIGEN_MAX_HIDDEN = 256  # the tanh RNN's eigenvalues of weight_hh are taken up to this many units (an eigenvalue
#   problem of H x H every step: 0.3 ms at 64 units, 6 ms at 256; beyond, a step's probes would grow by more than 10%)
FACTOR_QUANTILES = (0.1, 0.5, 0.9)  # Snapshot.step_factors: each unit's factors per step at these quantiles
FACTOR_SAMPLE = 1 << 16  # factors per layer (over timesteps, batch and a unit's states) the quantiles are taken from


def weights_and_activity(model, activation: str, trace, eigenvalues: bool = True) -> dict:
    """The per-layer probes of one forward pass, keyed by the Snapshot fields they fill: sigma_max and
    max_slope of the weights, saturation, gate means and the pre-activation histogram of the activity,
    the recurrence's eigenvalues and the factors per step (see eigen_probes). `eigenvalues` False: not those
    of a full recurrent matrix (the tanh RNN's weight_hh), which cost an eigenvalue problem each (the
    diagonal cells' are their parameters, always reported)."""
    if any(not hasattr(layer, "weight_hh") or layer.weight_hh.dim() != 2 for layer in model.layers):
        return cell_weights_and_activity(model, activation, trace)
    recurrent = [layer.weight_hh.detach() for layer in model.layers]
    sigma = largest_singular_values(recurrent[0][None] if len(recurrent) == 1 else torch.stack(recurrent))
    slopes = [layer.max_slope() for layer in model.layers]
    hist_steps = histogram_timesteps(len(trace.preact[0]), trace.preact[0][0].numel())
    hists, saturation, gate_means = zip(*(layer_activity(layer, activation, trace, k, hist_steps)
                                          for k, layer in enumerate(model.layers)))
    fixed = None
    if eigenvalues and model.layers[0].cell == "rnn" and model.layers[0].hidden <= EIGEN_MAX_HIDDEN:
        fixed = recurrent_eigenvalues(torch.stack(recurrent))
    return {"sigma_max": sigma, "max_slope": np.asarray(slopes, dtype=np.float32),
            "saturation": np.asarray(saturation, dtype=np.float32),
            "gate_means": np.stack(gate_means).astype(np.float32),
            "preact_hist": np.stack(hists).astype(np.float32),
            "eigenvalues": fixed, "step_factors": None}


def recurrent_eigenvalues(weights: torch.Tensor) -> np.ndarray:
    """(layers, H) complex64: the eigenvalues of each (H, H) matrix of `weights`, computed in float64. The tanh
    RNN's largest fixed cost per step (LAPACK's geev: 4-6 ms at 128 units on this machine, the same through
    numpy; in float32 half that, but only good to about 1e-6 where complex64 keeps 6e-8)."""
    with torch.no_grad():
        return torch.linalg.eigvals(weights.cpu().double()).to(torch.complex64).numpy()


def factor_quantiles(factors: list[torch.Tensor], hidden: int) -> np.ndarray:
    """(H, len(FACTOR_QUANTILES)) from a layer's per-step factors [t] -> (batch, H[, states]): each unit's
    factor at those quantiles over timesteps (a sample of them, as the histogram takes), batch and states."""
    per_step = factors[0].numel()
    steps = histogram_timesteps(len(factors), per_step, FACTOR_SAMPLE)
    sample = torch.stack([factors[t] for t in steps]).float()  # (S, batch, H[, states])
    by_unit = sample.transpose(0, 2).reshape(hidden, -1)  # (H, S * batch * states)
    q = torch.tensor(FACTOR_QUANTILES, dtype=by_unit.dtype, device=by_unit.device)
    return torch.quantile(by_unit, q, dim=1).t().cpu().numpy()


def cell_weights_and_activity(model, activation: str, trace) -> dict:
    """weights_and_activity for the cells of engine.cells' protocol (engine.model.CellLayer). sigma_max is
    what one step back can multiply a unit's gradient by at most, apart from the activation: the largest
    |eigenvalue| of a fixed diagonal recurrence (a diagonal matrix's largest singular value), else the largest
    factor per step seen in the pass."""
    eigen, quantiles, sigma, hists, saturation, gate_means = [], [], [], [], [], []
    for k, layer in enumerate(model.layers):
        fixed = layer.eigenvalues()
        factors = trace.factors[k]
        if fixed is not None:
            eigen.append(fixed.detach().cpu().to(torch.complex64).numpy())
        if factors is not None:
            quantiles.append(factor_quantiles(factors, layer.hidden))
        sigma.append(float(fixed.abs().max()) if fixed is not None else
                     max(float(f.max()) for f in factors) if factors is not None else math.nan)
        pre = trace.preact[k]
        if pre:
            hists.append(preactivation_histogram(torch.stack([pre[t] for t in histogram_timesteps(len(pre), pre[0].numel())])))
        else:
            hists.append(np.zeros(len(HIST_EDGES) - 1))
        gates = trace.gates[k]
        means, flat, count = [], 0, 0
        for g, name in enumerate(layer.gate_names):
            total, values = 0.0, 0
            for block in timestep_blocks([step[g] for step in gates]):
                total += float(block.sum())
                values += block.numel()
                if name == "update":  # minGRU's sigmoid gate: saturated where its slope is under 10%
                    flat += count_flat("sigmoid", block)
                    count += block.numel()
            means.append(total / max(values, 1))
        if pre and activation in ("tanh", "sigmoid", "relu"):  # IndRNN: its activation's outputs
            states = trace.outputs[k]
            flat = sum(count_flat(activation, block) for block in states.split(steps_per_block(states[0].numel())))
            count = states.numel()
        saturation.append(flat / count if count else math.nan)  # (LRU, the SSM: nothing here saturates)
        gate_means.append(np.asarray(means))
    return {"sigma_max": np.asarray(sigma, dtype=np.float64),
            "max_slope": np.asarray([layer.max_slope() for layer in model.layers], dtype=np.float32),
            "saturation": np.asarray(saturation, dtype=np.float32),
            "gate_means": np.stack(gate_means).astype(np.float32),
            "preact_hist": np.stack(hists).astype(np.float32),
            "eigenvalues": np.stack(eigen) if eigen else None,
            "step_factors": np.stack(quantiles).astype(np.float32) if quantiles else None}


def mean_attention(trace) -> np.ndarray | None:
    """The attention readout's weights for the last answer, averaged over the batch; None without it."""
    return None if trace.attention is None else trace.attention.detach().mean(0).cpu().numpy()
