"""The trainer: one `step()` trains once and returns an immutable snapshot of every probe.

Runs on whichever thread or process calls it; it knows nothing about threads or Qt. A step samples a
batch, runs the forward pass and takes the per-timestep gradients from one `torch.autograd.grad`
call over the parameters, every hidden (and LSTM cell) state and the inputs, which costs a few
percent over a plain backward pass; engine.probes measures them, on the weights *before* the step's
update; where float32 flushed part of a vanishing gradient to 0 they are redone in float64
(probes.float64_state_gradients). Then the trainer clips, updates, and records divergence, explosion
and setting changes as events. Building (and rebuilding) first asks engine.memory whether the sizes
fit this machine, and refuses them before anything is allocated.

Diverged and exploded differ. A step *diverges* when its loss or gradient is NaN or infinite: the run
stops there, as nothing more can be computed from it. A run *explodes* when its loss passes
engine.diagnosis.EXPLODED_LOSS (1e8) times the task's baseline loss, or its total parameter-gradient
norm as applied (after any clipping) passes EXPLODED_GRAD_NORM (1e8), while every number is still
finite. It is flagged (`Snapshot.exploded` at every step past a bound; an "exploded" event and
`Trainer.exploded_at_step` at the first such step since the network was built) and training goes
on: the user decides to go on or reset.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import admission, user_model, detail, devices, memory, probes, registry, user_data
from engine.config import Config
from engine.diagnosis import explosion_detail, past_explosion_bounds
from engine.model import RecurrentNet
from engine.user_data import HELD_OUT_EVERY, DataTask


@dataclass(frozen=True)
class Event:
    step: int     # the first step trained under the new settings
    kind: str     # "changed" | "rebuilt" | "diverged" | "exploded"
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
    held_out_loss: float = math.nan    # the loss on the held-out part of a user's data (every
    #                                    HELD_OUT_EVERY steps and at step 1; NaN between, and for built-in tasks)
    float64_redo: bool = False         # grad_h, grad_c, grad_x were redone in float64 (float32 underflowed)
    exploded: bool = False             # finite, but loss or gradient norm past the bounds (see the module docstring)
    eigenvalues: np.ndarray | None = None   # (layers, H) complex: the recurrence's fixed factors where it has them
    #   (rnn: the eigenvalues of weight_hh, up to probes.EIGEN_MAX_HIDDEN units, at the steps taken while
    #   Trainer.take_eigenvalues is on; lru: lambda; indrnn: u), else None
    step_factors: np.ndarray | None = None  # (layers, H, 3): where the input decides the factor per step (mingru:
    #   1 - z_t; ssm: exp(delta_t A), over its N states too), each unit's 10%, 50% and 90% quantiles over the
    #   step's timesteps and batch (probes.FACTOR_QUANTILES); else None

    @property
    def orders_of_magnitude(self) -> float:
        """How many powers of ten the top layer's gradient falls from the last timestep to the first
        (probes.orders_lost: +inf where nothing reaches the first). NaN once any timestep is not finite
        or the last is 0: a step that diverged, where there is no fall to read."""
        g = self.grad_h[-1]
        if not np.all(np.isfinite(g)) or g[-1] <= 0:
            return float("nan")
        return probes.orders_lost(g)


class RunDiverged(RuntimeError):
    pass


class Trainer:
    """Trains one network on one task. Create, then call `step()` repeatedly."""

    def __init__(self, config: Config, check_memory: bool = True):
        """`check_memory`: refuse (ConfigError) sizes this machine cannot hold, before allocating
        anything; False for a caller that has checked them itself (the worker checks a whole run set)."""
        if check_memory:
            admission.admit(config)
        self.device = devices.pick(config.device, config)
        self.config = config
        self.events: list[Event] = []
        self.step_count = 0
        self.diverged_at_step: int | None = None
        self.exploded_at_step: int | None = None  # the first step past an explosion bound since the last build
        self._pending_events: list[Event] = []
        self.keep_last_batch = False  # keep each step's batch and weights for `detail()` (the worker and
        #                              `train --detail-every` do: a copy of the weights a step, ~1% of it)
        self._last_batch = None
        self.take_eigenvalues = False  # the tanh RNN's eigenvalues of weight_hh at each step (Snapshot.eigenvalues):
        #   an H x H eigenvalue problem, a fifth of a step at 128 units, so taken only for those who read them: the
        #   Eigenvalues view, a lesson whose claim reads them (Lesson.reads_eigenvalues), `train --eigenvalues`
        self._gradient_scale = 1.0  # the next step's backward pass starts from this times d loss / d loss
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self):
        c = self.config
        torch.manual_seed(c.seed)
        self.data_gen = torch.Generator().manual_seed(c.seed + 1)
        if c.task == "data":
            self.task = DataTask(c.seq_len, c.batch, self.device, user_data.cached(c.data, c.target))
        else:
            self.task = registry.TASKS[c.task](c.seq_len, c.batch, self.device)
        classes = getattr(getattr(self.task, "data", None), "classes", False)
        self.imported = user_model.cached(c.model) if c.model else None
        outputs = self.task.output_size
        if self.imported:
            user_model.check_matches(c, self.imported)
            outputs = user_model.output_size(self.imported, outputs, classes)
        self.model = RecurrentNet(c, self.task.input_size, outputs)
        self.imported_note = ""
        if self.imported:
            what_for = f"the {self.task.label}" if c.task != "data" else f"the features of {Path(c.data).name}"
            self.imported_note = user_model.load_into(self.model, self.imported, self.task.input_size, what_for)
        if c.task == "data":
            self.task.check_classes(outputs)
            if classes:  # the head's classes, not the data's: a class the data lacks is still one to score
                self.task.output_size = outputs
        self.model.to(self.device)
        self.layer_params = [[p for p in group if p.requires_grad] for group in self.model.layer_parameters()]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        position = {id(p): k for k, p in enumerate(self.params)}
        self._layer_param_index = [[position[id(p)] for p in group] for group in self.layer_params]
        self._make_optimizer()
        self.diverged_at_step = None
        self.exploded_at_step = None
        self._last_batch = None
        self._gradient_scale = 1.0

    def _make_optimizer(self):
        self.optimizer = registry.OPTIMIZERS[self.config.optimizer].factory(self.model.parameters(), lr=self.config.lr)

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None

    @property
    def gate_names(self) -> tuple:
        return self.model.layers[0].gate_names

    def update_config(self, new: Config, check_memory: bool = True) -> list[Event]:
        """Apply new settings. Learning rate, clipping and optimizer apply from the next step;
        anything structural rebuilds the model from the seed. Returns the recorded events. Settings
        that are refused (a missing CUDA device, sizes that do not fit) change nothing."""
        old = self.config
        changed = old.changed_keys(new)
        if not changed:
            return []
        detail = ", ".join(f"{k} {getattr(old, k)} -> {getattr(new, k)}" for k in changed)
        rebuild = old.needs_rebuild(new) or self.diverged
        if rebuild:
            if check_memory and old.needs_rebuild(new):  # the model it replaces is freed first
                admission.admit(new, replacing=[old])
            device = devices.pick(new.device, new)
        self.config = new
        if rebuild:
            self.device = device
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
    def step(self) -> Snapshot:
        if self.diverged:
            raise RunDiverged(f"the run diverged at step {self.diverged_at_step}; reset or change a setting")
        start = time.perf_counter()
        self.model.train()
        x, target = self.task.sample(self.data_gen)
        x.requires_grad_(True)
        torch.set_flush_denormal(True)  # the float32 pass: see probes.DENORMALS_FLUSHED; off again before the redo
        try:
            return self._step(start, x, target)
        finally:
            torch.set_flush_denormal(False)

    def _step(self, start: float, x: torch.Tensor, target: torch.Tensor) -> Snapshot:
        c, task, model = self.config, self.task, self.model
        out, trace = model(x, task.output_steps)
        loss = task.loss(out, target)

        params = self.params
        hidden = [h for layer in trace.hidden for h in layer]
        cells = [s for layer in trace.cell for s in layer]
        scale = self._gradient_scale  # a power of two: see probes.GRADIENT_SCALE_TARGET
        seed = None if scale == 1.0 else [loss.detach().new_tensor(scale)]
        grads = torch.autograd.grad(loss, params + hidden + cells + [x], grad_outputs=seed, allow_unused=True)
        n_p, n_h, n_c = len(params), len(hidden), len(cells)
        param_grads = [g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads[:n_p])]
        if scale != 1.0:  # exact: dividing by a power of two
            torch._foreach_mul_(param_grads, 1.0 / scale)
        for p, g in zip(params, param_grads):
            p.grad = g

        with torch.no_grad():
            L, T = c.layers, task.n_steps
            grad_h = probes.norm_per_timestep(grads[n_p:n_p + n_h]).reshape(L, T)
            grad_c = probes.norm_per_timestep(grads[n_p + n_h:n_p + n_h + n_c]).reshape(L, T) if n_c else None
            grad_x = probes.input_norm_per_timestep(grads[-1])
            layer_norm, total = probes.parameter_gradient_norms(params, self._layer_param_index)
            finite = bool(torch.isfinite(loss)) and math.isfinite(total)
            if scale != 1.0 and not (finite and probes.all_finite(grad_h, grad_c, grad_x)):
                # scaled past float32's largest number (or a run that diverges): the step again, unscaled
                self._gradient_scale = 1.0
                model.zero_grad(set_to_none=True)
                del grads, param_grads, hidden, cells, trace, out, loss
                with torch.enable_grad():
                    return self._step(start, x, target)
            float64_redo = finite and probes.underflowed(hidden[0].numel(), x.numel() // T, grad_h, grad_c, grad_x)
            if scale != 1.0:
                grad_h, grad_x = grad_h / scale, grad_x / scale
                grad_c = None if grad_c is None else grad_c / scale

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
                    layer_norm_after, total_after = probes.parameter_gradient_norms(params, self._layer_param_index)
            else:
                clipped = False

            activity = probes.weights_and_activity(model, c.activation, trace, self.take_eigenvalues)
            metric = task.metric(out.detach(), target)
            step_number = self.step_count + 1
            held_out = task.held_out_loss(model) if isinstance(task, DataTask) and (
                step_number == 1 or step_number % HELD_OUT_EVERY == 0) else math.nan
            attention = probes.mean_attention(trace)
            torch.set_flush_denormal(False)  # the float64 redo and the update see every number
            if float64_redo:  # float32 lost part of the fall, or flushed it to 0: redo it in float64, once
                del grads, hidden, cells, trace, out  # the float32 states and their gradients have made room
                grad_h, grad_c, grad_x = probes.float64_state_gradients(
                    model, task, x, target, L, T, memory.estimate_bytes(c)["activations"])

        self.step_count += 1
        step = self.step_count
        loss_value = float(loss.detach())
        self._last_batch = None
        if finite and self.keep_last_batch:  # the weights the gradients were taken at, before the update
            self._last_batch = (step, x.detach(), target, {n: p.detach().clone() for n, p in model.named_parameters()})
        exploded = finite and past_explosion_bounds(loss_value, task.baseline_loss, total_after)
        if finite:
            self.optimizer.step()
            model.after_update()
            events = tuple(self._pending_events)
            if exploded and self.exploded_at_step is None:  # one event: a loss hovering at a bound makes one mark
                self.exploded_at_step = step
                event = Event(step, "exploded", explosion_detail(loss_value, task.baseline_loss, total_after))
                self.events.append(event)
                events += (event,)
        else:
            self.diverged_at_step = step
            event = Event(step, "diverged", f"loss or gradient became {'NaN' if math.isnan(total) else 'infinite'}")
            self.events.append(event)
            events = tuple(self._pending_events) + (event,)
        self._pending_events = []
        model.zero_grad(set_to_none=True)
        self._gradient_scale = probes.gradient_scale(grad_h, grad_c, grad_x, total) if finite else 1.0

        return Snapshot(
            step=step, loss=loss_value, metric=metric,
            grad_h=grad_h, grad_c=grad_c, grad_x=grad_x,
            grad_norm=total, grad_norm_clipped=total_after,
            grad_norm_layer=layer_norm, grad_norm_layer_clipped=layer_norm_after,
            clipped=clipped, **activity, attention=attention,
            step_time=time.perf_counter() - start, diverged=not finite, events=events,
            float64_redo=float64_redo, exploded=exploded, held_out_loss=held_out)

    def detail(self, request: detail.DetailRequest | None = None) -> detail.StepDetail | None:
        """The last step seen closely (engine.detail): per unit, gate, sequence and answer, on that step's
        batch and the weights its gradients were taken at. None unless `keep_last_batch` was on for that step,
        before the first step, after a rebuild, and after a step that diverged (it has nothing to show)."""
        if self._last_batch is None:
            return None
        step, x, target, params = self._last_batch
        return detail.measure(self.model, self.task, x, target, request or detail.DetailRequest(), step,
                              self.gate_names, params, memory.estimate_bytes(self.config)["activations"])
