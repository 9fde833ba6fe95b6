"""The trainer: one `step()` trains once and returns an immutable snapshot of every probe.

Runs on whichever thread or process calls it; it knows nothing about threads or Qt. All probes
are taken on the weights *before* the step's update. The per-timestep gradients come from one
`torch.autograd.grad` call over the parameters, every hidden (and LSTM cell) state and the
inputs, which costs a few percent over a plain backward pass. The probes that sweep every
timestep (state-gradient norms, saturation, gate means) do it in cache-sized blocks; only the
pre-activation histogram, a display aid, looks at a sample of timesteps.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine import registry
from engine.config import Config
from engine.model import GATE_NAMES, RecurrentNet

_HIST_LOW, _HIST_BINS_PER_UNIT = -6.0, 4  # bins a quarter wide: edges that floating point holds exactly
HIST_EDGES = _HIST_LOW + np.arange(49) / _HIST_BINS_PER_UNIT  # -6 .. 6: pre-activation histogram bins shared by every snapshot


@dataclass(frozen=True)
class Event:
    step: int     # the first step trained under the new settings
    kind: str     # "changed" | "rebuilt" | "diverged"
    detail: str   # plain words, e.g. "lr 0.001 -> 0.01"

    def to_dict(self):
        return {"step": self.step, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Snapshot:
    """Every probe of one training step, as numpy arrays copied out of the live tensors."""
    step: int
    loss: float
    metric: float
    grad_h: np.ndarray                 # (layers, T) norm of dL/dh_t
    grad_c: np.ndarray | None          # (layers, T) norm of dL/dc_t, LSTM only
    grad_x: np.ndarray                 # (T,) norm of dL/dx_t
    grad_norm: float                   # total parameter-gradient norm before clipping
    grad_norm_clipped: float           # ... and after
    grad_norm_layer: np.ndarray        # (layers,) per recurrent layer, before clipping
    grad_norm_layer_clipped: np.ndarray  # (layers,) after
    clipped: bool                      # clipping changed the gradient this step
    sigma_max: np.ndarray              # (layers,) largest singular value of W_hh
    max_slope: np.ndarray              # (layers,) largest slope of the activation
    saturation: np.ndarray             # (layers,) fraction of saturated units (or sigmoid gates)
    gate_means: np.ndarray             # (layers, n_gates) mean gate values; (layers, 0) for rnn
    preact_hist: np.ndarray            # (layers, len(HIST_EDGES) - 1) counts of activation inputs
    attention: np.ndarray | None       # (T,) batch-mean attention weights of the last answer
    step_time: float                   # seconds for the whole step, probes included
    diverged: bool = False
    events: tuple = ()                 # Events that happened at this step

    @property
    def orders_of_magnitude(self) -> float:
        """How many powers of ten the top layer's gradient falls from the last timestep to the first."""
        g = self.grad_h[-1]
        if not np.all(np.isfinite(g)) or g[-1] <= 0:
            return float("nan")
        return float(np.log10(g[-1]) - np.log10(max(g[0], 1e-45)))


class RunDiverged(RuntimeError):
    pass


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from engine.config import ConfigError
        raise ConfigError("device", name, "auto | cpu (no CUDA device is available on this machine)")
    return torch.device(name)


HIST_SAMPLE = 1 << 14  # activation inputs histogrammed per layer and step: a display aid, so a sample


def histogram_timesteps(steps: int, per_step: int, budget: int | None = None) -> list[int]:
    """The timesteps whose activation inputs (whole batch, every unit) go into `preact_hist`: all of
    them if they fit in `budget` (default HIST_SAMPLE) values, else the middles of equal stretches of
    the sequence, so no part of it (such as the first step, which starts from h = 0) is over-weighted."""
    budget = HIST_SAMPLE if budget is None else budget
    take = min(steps, max(1, budget // max(per_step, 1)))
    return [int((k + 0.5) * steps / take) for k in range(take)]


def _histogram(values: torch.Tensor) -> np.ndarray:
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


_BLOCK = 1 << 16  # values per pass when a probe sweeps a (T, batch, units) tensor: a cache-sized block
#   that the allocator hands back step after step, where one pass over the whole tensor would fault in
#   fresh pages every step (measured: 2.4 ms against 0.9 ms for the norms at seq_len 1000)


def _steps_per_block(values_per_step: int) -> int:
    return max(1, _BLOCK // max(values_per_step, 1))


def _blocks(per_step: list[torch.Tensor]):
    """Consecutive timesteps' tensors stacked about _BLOCK values at a time."""
    rows = _steps_per_block(per_step[0].numel())
    for start in range(0, len(per_step), rows):
        yield torch.stack(per_step[start:start + rows])


def _norms(per_step: list[torch.Tensor]) -> np.ndarray:
    """The Frobenius norm of each tensor, in float64: squaring a float32 entry below ~1e-23 underflows
    to 0, which would report a vanished gradient as exactly zero many orders of magnitude too early.
    (A float32 pass first, redoing only the tiny norms, was 2x faster on ordinary gradients and 4x
    slower on vanishing ones: squares below float32's normal range take the CPU's slow denormal path.)"""
    return torch.cat([torch.linalg.vector_norm(block.flatten(1), dim=1, dtype=torch.float64)
                      for block in _blocks(per_step)]).cpu().numpy()


def _flat_slope(activation: str, out: torch.Tensor) -> torch.Tensor | None:
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


def _largest_singular_values(weights: torch.Tensor) -> np.ndarray:
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


def _host(values: torch.Tensor):
    """A numpy view of a CPU tensor (numpy compares a block of values several times faster than torch
    does there: measured 6x for `h * h > 0.9`); the tensor itself on any other device."""
    return values.detach().numpy() if values.device.type == "cpu" else values


def _count_flat(activation: str, outputs: torch.Tensor) -> int:
    """How many entries of `outputs` (activation outputs) sit where the slope is flat."""
    flat = _flat_slope(activation, _host(outputs))
    if flat is None:
        return 0
    return int(np.count_nonzero(flat) if isinstance(flat, np.ndarray) else torch.count_nonzero(flat))


class Trainer:
    """Trains one network on one task. Create, then call `step()` repeatedly."""

    def __init__(self, config: Config):
        self.config = config
        self.device = pick_device(config.device)
        self.events: list[Event] = []
        self.step_count = 0
        self.diverged_at_step: int | None = None
        self._pending_events: list[Event] = []
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self):
        c = self.config
        torch.manual_seed(c.seed)
        self.data_gen = torch.Generator().manual_seed(c.seed + 1)
        self.task = registry.TASKS[c.task](c.seq_len, c.batch, self.device)
        self.model = RecurrentNet(c, self.task.input_size, self.task.output_size).to(self.device)
        self.layer_params = self.model.layer_parameters()
        self.params = list(self.model.parameters())
        position = {id(p): k for k, p in enumerate(self.params)}
        self._layer_param_index = [[position[id(p)] for p in group] for group in self.layer_params]
        self._make_optimizer()
        self.diverged_at_step = None

    def _make_optimizer(self):
        self.optimizer = registry.OPTIMIZERS[self.config.optimizer].factory(self.model.parameters(), lr=self.config.lr)

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None

    @property
    def gate_names(self) -> tuple:
        return GATE_NAMES[self.config.cell]

    def update_config(self, new: Config) -> list[Event]:
        """Apply new settings. Learning rate, clipping and optimizer apply from the next step;
        anything structural rebuilds the model from the seed. Returns the recorded events."""
        old = self.config
        changed = old.changed_keys(new)
        if not changed:
            return []
        detail = ", ".join(f"{k} {getattr(old, k)} -> {getattr(new, k)}" for k in changed)
        rebuild = old.needs_rebuild(new) or self.diverged
        self.config = new
        if rebuild:
            self.device = pick_device(new.device)
            self._build()
        elif "optimizer" in changed:
            self._make_optimizer()
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = new.lr
        event = Event(self.step_count + 1, "rebuilt" if rebuild else "changed", detail)
        self.events.append(event)
        self._pending_events.append(event)
        return [event]

    # ------------------------------------------------------------------ training
    def _grad_norms(self) -> tuple[np.ndarray, float]:
        """Per-recurrent-layer and total norms of the parameters' current gradients (float64; math.hypot
        combines them without squaring past float64's range)."""
        norms = registry.grad_norms([p.grad for p in self.params])
        layer = np.array([math.hypot(*(norms[k] for k in index)) for index in self._layer_param_index])
        return layer, math.hypot(*norms)

    def _activity(self, trace, layer: int, hist_steps: list[int]) -> tuple[np.ndarray, float, np.ndarray]:
        """One layer's pre-activation histogram (over `hist_steps`), saturated fraction and gate means."""
        c = self.config
        pre = trace.preact[layer]
        hist = _histogram(torch.stack([pre[t] for t in hist_steps]))
        if c.cell == "rnn":
            states = trace.outputs[layer]  # (T, batch, hidden)
            flat = sum(_count_flat(c.activation, block) for block in states.split(_steps_per_block(states[0].numel())))
            return hist, flat / max(states.numel(), 1), np.zeros(0)
        # sigmoid gates in (input, forget, output) / (reset, update) order, then the tanh candidate
        gate_sums, flat, count = 0, 0, 0
        for block in _blocks(trace.gates[layer]):  # (steps, batch, n_sigmoid * hidden)
            flat += _count_flat("sigmoid", block)
            gate_sums = gate_sums + block.sum(dim=(0, 1))
            count += block.numel()
        per_unit = max(count, 1) / (gate_sums.numel() // c.hidden)  # T * batch * hidden: one gate's values
        per_gate = gate_sums.view(-1, c.hidden).sum(dim=1) / per_unit
        candidate_mean = (sum(block.sum() for block in _blocks(trace.candidate[layer])) / per_unit).view(1)
        if c.cell == "lstm":  # report in PyTorch's order: input, forget, cell, output
            per_gate = torch.cat([per_gate[:2], candidate_mean, per_gate[2:]])
        else:  # gru: reset, update, new
            per_gate = torch.cat([per_gate, candidate_mean])
        return hist, flat / max(count, 1), per_gate.cpu().numpy()

    def step(self) -> Snapshot:
        if self.diverged:
            raise RunDiverged(f"the run diverged at step {self.diverged_at_step}; reset or change a setting")
        start = time.perf_counter()
        c, task, model = self.config, self.task, self.model
        model.train()
        x, target = task.sample(self.data_gen)
        x.requires_grad_(True)
        out, trace = model(x, task.output_steps)
        loss = task.loss(out, target)

        params = self.params
        hidden = [h for layer in trace.hidden for h in layer]
        cells = [s for layer in trace.cell for s in layer]
        grads = torch.autograd.grad(loss, params + hidden + cells + [x], allow_unused=True)
        n_p, n_h, n_c = len(params), len(hidden), len(cells)
        param_grads = [g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads[:n_p])]
        for p, g in zip(params, param_grads):
            p.grad = g

        with torch.no_grad():
            L, T = c.layers, task.n_steps
            grad_h = _norms(grads[n_p:n_p + n_h]).reshape(L, T)
            grad_c = _norms(grads[n_p + n_h:n_p + n_h + n_c]).reshape(L, T) if n_c else None
            grad_x = torch.linalg.vector_norm(grads[-1], dim=(0, 2), dtype=torch.float64)
            layer_norm, total = self._grad_norms()
            finite = bool(torch.isfinite(loss)) and math.isfinite(total)

            clip = registry.CLIP_MODES[c.clip].factory
            layer_norm_after, total_after = layer_norm, total
            if c.clip == "norm" and finite:
                clip(params, c.clip_threshold, total=total)
                clipped = total > c.clip_threshold
                if clipped:  # every gradient was scaled by the same factor: so were the norms
                    scale = registry.norm_clip_scale(total, c.clip_threshold)
                    layer_norm_after, total_after = layer_norm * scale, total * scale
            elif c.clip == "value" and finite:
                largest = torch.stack(torch._foreach_norm(param_grads, math.inf)).max()  # max |g| over all
                clipped = bool(largest > c.clip_threshold)
                clip(params, c.clip_threshold)
                if clipped:
                    layer_norm_after, total_after = self._grad_norms()
            else:
                clipped = False

            recurrent = [layer.weight_hh.detach() for layer in model.layers]
            sigma = _largest_singular_values(recurrent[0][None] if L == 1 else torch.stack(recurrent))
            slopes = [layer.max_slope() for layer in model.layers]
            hist_steps = histogram_timesteps(T, trace.preact[0][0].numel())
            hists, sat, gate_means = zip(*(self._activity(trace, k, hist_steps) for k in range(L)))
            metric = task.metric(out.detach(), target)

        self.step_count += 1
        step = self.step_count
        if finite:
            self.optimizer.step()
            events = tuple(self._pending_events)
        else:
            self.diverged_at_step = step
            event = Event(step, "diverged", f"loss or gradient became {'NaN' if math.isnan(total) else 'infinite'}")
            self.events.append(event)
            events = tuple(self._pending_events) + (event,)
        self._pending_events = []
        model.zero_grad(set_to_none=True)

        return Snapshot(
            step=step, loss=float(loss.detach()), metric=metric,
            grad_h=grad_h, grad_c=grad_c,
            grad_x=grad_x.cpu().numpy(),
            grad_norm=total, grad_norm_clipped=total_after,
            grad_norm_layer=layer_norm, grad_norm_layer_clipped=layer_norm_after,
            clipped=clipped, sigma_max=sigma, max_slope=np.asarray(slopes, dtype=np.float32),
            saturation=np.asarray(sat, dtype=np.float32),
            gate_means=np.stack(gate_means).astype(np.float32),
            preact_hist=np.stack(hists).astype(np.float32),
            attention=None if trace.attention is None else trace.attention.detach().mean(0).cpu().numpy(),
            step_time=time.perf_counter() - start, diverged=not finite, events=events)
