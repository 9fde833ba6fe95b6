"""The trainer: one `step()` trains once and returns an immutable snapshot of every probe.

Runs on whichever thread or process calls it; it knows nothing about threads or Qt. All probes
are taken on the weights *before* the step's update. The per-timestep gradients come from one
`torch.autograd.grad` call over the parameters, every hidden (and LSTM cell) state and the
inputs, which costs a few percent over a plain backward pass.
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

HIST_EDGES = np.linspace(-6.0, 6.0, 49)  # pre-activation histogram bins shared by every snapshot


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


# Where an activation's slope is below 10% of its largest (dead ReLUs: slope 0):
# ("beyond", t) means |x| > t, ("at_most", t) means x <= t; other activations never saturate.
SATURATION = {
    "tanh": ("beyond", 1.8184),     # tanh'(x) < 0.1 <=> |x| > 1.8184
    "sigmoid": ("beyond", 3.6369),  # sigmoid'(x) < 0.025 <=> |x| > 3.6369
    "relu": ("at_most", 0.0),
}
_SORT_BLOCK = 1 << 16  # sort this many values at a time, as np.histogram does (cache-sized)
assert np.array_equal(HIST_EDGES.astype(np.float32), HIST_EDGES)  # so float32 comparisons are exact


def _saturated(activation: str, pre: torch.Tensor) -> torch.Tensor:
    """Mask of saturated activation inputs (the definition; step() counts them while sorting)."""
    kind, t = SATURATION.get(activation, (None, 0.0))
    if kind == "beyond":
        return pre.abs() > t
    if kind == "at_most":
        return pre <= t
    return torch.zeros_like(pre, dtype=torch.bool)


def _histogram_and_saturated(pre: torch.Tensor, activation: str | None) -> tuple[np.ndarray, int]:
    """np.histogram(pre, HIST_EDGES) counts, and (for `activation`) the number of saturated inputs.

    Same counts as np.histogram, which sorts 64K-value blocks and searches the edges in each; here
    each block is sorted in place (`pre` must be a scratch tensor) and the saturation thresholds
    are searched too, instead of three more passes over the data. Thresholds are compared in the
    data's precision, as torch compares a tensor with a Python number; NaN sorts last and counts
    nowhere, as in the mask."""
    values = pre.detach().cpu().numpy().reshape(-1)
    dtype = values.dtype.type
    edges = HIST_EDGES.astype(values.dtype)
    kind, t = SATURATION.get(activation, (None, 0.0))
    t = dtype(t)
    cumulative = np.zeros(len(edges), dtype=np.int64)
    saturated = 0
    for start in range(0, len(values), _SORT_BLOCK):
        block = values[start:start + _SORT_BLOCK]
        block.sort()
        cumulative[:-1] += block.searchsorted(edges[:-1], "left")
        cumulative[-1] += block.searchsorted(edges[-1], "right")  # the last bin includes its right edge
        if kind == "beyond":
            saturated += int(block.searchsorted(-t, "left")
                             + block.searchsorted(dtype(np.inf), "right") - block.searchsorted(t, "right"))
        elif kind == "at_most":
            saturated += int(block.searchsorted(t, "right"))
    return np.diff(cumulative), saturated


def _fraction(mask: torch.Tensor) -> float:
    return int(torch.count_nonzero(mask)) / max(mask.numel(), 1)


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
        self._layer_param_index = [torch.tensor([position[id(p)] for p in group]) for group in self.layer_params]
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
    def _grad_norms(self):
        """Per-recurrent-layer and total norms of the parameters' current gradients."""
        norms = torch.stack(torch._foreach_norm([p.grad for p in self.params]))
        layer = torch.stack([torch.linalg.vector_norm(norms[index]) for index in self._layer_param_index])
        return layer, torch.linalg.vector_norm(norms)

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
            # Norms in float64: squaring a float32 entry below ~1e-23 underflows to 0, which would
            # report a vanished gradient as exactly zero many orders of magnitude too early.
            grad_h = torch.stack(grads[n_p:n_p + n_h]).view(L, T, -1).double().norm(dim=2)
            grad_c = torch.stack(grads[n_p + n_h:n_p + n_h + n_c]).view(L, T, -1).double().norm(dim=2) if n_c else None
            grad_x = grads[-1].double().norm(dim=(0, 2))
            layer_norm, total = self._grad_norms()
            finite = bool(torch.isfinite(loss)) and bool(torch.isfinite(total))

            clip = registry.CLIP_MODES[c.clip].factory
            clipped = False
            if c.clip == "norm" and finite:
                clip(params, c.clip_threshold)
                clipped = float(total) > c.clip_threshold
            elif c.clip == "value" and finite:
                largest = torch.stack(torch._foreach_norm(param_grads, math.inf)).max()  # max |g| over all
                clipped = bool(largest > c.clip_threshold)
                clip(params, c.clip_threshold)
            if clipped:
                layer_norm_after, total_after = self._grad_norms()
            else:
                layer_norm_after, total_after = layer_norm, total

            # largest singular value = sqrt of the largest eigenvalue of W^T W (hidden x hidden, float64):
            # cheaper than an SVD of the (gates * hidden) x hidden matrix, and as accurate
            sigma = torch.stack([torch.linalg.eigvalsh(w.t() @ w)[-1].clamp(min=0).sqrt()
                                 for w in (layer.weight_hh.detach().double() for layer in model.layers)]).float()
            slopes = [layer.max_slope() for layer in model.layers]
            sat, gate_means, hists = [], [], []
            for layer_idx, layer in enumerate(model.layers):
                pre = torch.stack(trace.preact[layer_idx])  # a scratch copy: sorted in place below
                counts, saturated = _histogram_and_saturated(pre, c.activation if c.cell == "rnn" else None)
                hists.append(counts)
                if c.cell == "rnn":
                    sat.append(saturated / max(pre.numel(), 1))
                    gate_means.append(np.zeros(0))
                else:
                    # sigmoid gates in (input, forget, output) / (reset, update) order, then the tanh candidate
                    gates = torch.stack(trace.gates[layer_idx])  # (T, batch, n_sigmoid * hidden)
                    sat.append(_fraction(gates * (1 - gates) < 0.025))
                    per_gate = gates.view(-1, gates.shape[-1] // c.hidden, c.hidden).mean(dim=(0, 2))
                    candidate_mean = torch.stack(trace.candidate[layer_idx]).mean().view(1)
                    if c.cell == "lstm":  # report in PyTorch's order: input, forget, cell, output
                        per_gate = torch.cat([per_gate[:2], candidate_mean, per_gate[2:]])
                    else:  # gru: reset, update, new
                        per_gate = torch.cat([per_gate, candidate_mean])
                    gate_means.append(per_gate.cpu().numpy())
            metric = task.metric(out.detach(), target)

        self.step_count += 1
        step = self.step_count
        if finite:
            self.optimizer.step()
            events = tuple(self._pending_events)
        else:
            self.diverged_at_step = step
            event = Event(step, "diverged", f"loss or gradient became {'NaN' if math.isnan(float(total)) else 'infinite'}")
            self.events.append(event)
            events = tuple(self._pending_events) + (event,)
        self._pending_events = []
        model.zero_grad(set_to_none=True)

        return Snapshot(
            step=step, loss=float(loss.detach()), metric=metric,
            grad_h=grad_h.cpu().numpy(), grad_c=None if grad_c is None else grad_c.cpu().numpy(),
            grad_x=grad_x.cpu().numpy(),
            grad_norm=float(total), grad_norm_clipped=float(total_after),
            grad_norm_layer=layer_norm.cpu().numpy(), grad_norm_layer_clipped=layer_norm_after.cpu().numpy(),
            clipped=clipped, sigma_max=sigma.cpu().numpy(), max_slope=np.asarray(slopes, dtype=np.float32),
            saturation=np.asarray(sat, dtype=np.float32),
            gate_means=np.stack(gate_means).astype(np.float32),
            preact_hist=np.stack(hists).astype(np.float32),
            attention=None if trace.attention is None else trace.attention.detach().mean(0).cpu().numpy(),
            step_time=time.perf_counter() - start, diverged=not finite, events=events)
