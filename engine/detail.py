"""Zoomed-in probes of one training step: per unit, per gate, per sequence and per answer.

Runs on the trainer's thread (the worker process, `train --detail-every`, a notebook). The trainer's
snapshot reports norms over the whole batch and every unit; a detail looks closer at the same step:

  units          (layers, gates + 1, T, H): for each unit, the norm over the batch of d loss / d h_t
                 (index 0) and of d loss / d gate_t for each gate value of an LSTM (input, forget,
                 cell candidate, output) or GRU (reset, update, new), as engine.model.GATE_NAMES
  connectivity   (T_out, T): the norm over batch and features of d loss_k / d x_t, loss_k the loss's
                 term at output step k (terms that sum to the loss): how strongly each answer still
                 depends on each earlier input; a lower triangle for a causal model
  sequences      the same for one sequence alone: d of *its own* loss (the loss of a batch holding it
                 alone), which is the batch size times its row of the batch loss's gradient, as every
                 task's loss is a mean over the batch. Per-sequence profiles (grad_h, grad_c, grad_x)
                 come for every sequence of the batch; units and connectivity for the chosen one.

It is a pass of its own, on the step's batch and on the weights the step's gradients were taken at,
in float64 (exact where float32 would flush a vanishing gradient to 0), with one more backward pass
per answer for the connectivity: T_out passes, the cost of a detail of a many-to-many task (measured in
benchmarks/bench_detail.py; a batch repeated once per answer, one pass for all, cost the same, and
torch's batched gradients, is_grads_batched, six times more). It is never part of a plain step: the worker asks for one at
most at display rate and within a share of the training time (DetailBudget); `train --detail-every N`
every N steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from engine import probes


DETAIL_SHARE = 0.04         # at most this share of the training time goes to detail passes in the window (measured
#   overhead: a little more, as a pass also evicts the caches the steps after it would reuse; under 5% here)
DETAIL_MIN_INTERVAL = 1 / 30  # ... and at most this often (seconds): a display cannot show more
HEADLESS_DETAIL_BYTES = 2 * 1024 ** 3  # `train --detail-every`: the detail arrays kept for metrics.npz at most


@dataclass(frozen=True)
class DetailRequest:
    """What to measure. `layer`: the layer whose units (and gates) to report, None for every layer;
    `sequence`: the batch row to report alone as well (units and connectivity; profiles come for all)."""
    layer: int | None = None
    sequence: int = 0
    connectivity: bool = True


@dataclass(frozen=True, eq=False)
class StepDetail:
    """One step seen closely. Arrays are float64 numpy copies."""
    step: int
    layers: tuple                        # the layers `units` holds, e.g. (0,) or (0, 1, 2)
    gate_names: tuple                    # ("hidden",) + engine.model.GATE_NAMES[cell]
    units: np.ndarray                    # (len(layers), len(gate_names), T, H) norm over the batch, per unit
    output_steps: tuple                  # the timesteps the loss reads, T_out of them
    connectivity: np.ndarray | None      # (T_out, T) norm over batch and features of d loss_k / d x_t
    sequence: int                        # the batch row `sequence_units` and `sequence_connectivity` are of
    sequence_units: np.ndarray           # (len(layers), len(gate_names), T, H) that sequence alone
    sequence_connectivity: np.ndarray | None  # (T_out, T)
    sequence_grad_h: np.ndarray          # (batch, layers, T) every sequence's own d loss / d h_t norms
    sequence_grad_c: np.ndarray | None   # (batch, layers, T) LSTM cell state; None for other cells
    sequence_grad_x: np.ndarray          # (batch, T)
    input_labels: tuple | None           # (batch,) of per-timestep labels (characters, symbols), or None
    seconds: float                       # what the pass took

    @property
    def batch(self) -> int:
        return len(self.sequence_grad_x)

    def grad_h_units(self) -> np.ndarray:
        """(layers, T, H): each unit's d loss / d h_t norm over the batch, the API's `grad_h_units`."""
        return self.units[:, 0]


class DetailBudget:
    """When the worker may spend a detail pass: at most DETAIL_MIN_INTERVAL apart, and only once the
    training since the last one has taken 1 / DETAIL_SHARE - 1 times what that pass took, so detail
    passes take at most DETAIL_SHARE of the time, however slow they are."""

    def __init__(self, share: float = DETAIL_SHARE, min_interval: float = DETAIL_MIN_INTERVAL):
        self.share, self.min_interval = share, min_interval
        self.last_cost = 0.0
        self.trained = 0.0
        self.last_at = -float("inf")

    def trained_for(self, seconds: float):
        self.trained += seconds

    def due(self, now: float) -> bool:
        return (now - self.last_at >= self.min_interval
                and self.trained >= self.last_cost * (1 / self.share - 1))

    def at_once(self):
        """The next pass is due at the next step, whatever the last one cost (a new wish of the user's)."""
        self.trained, self.last_at = float("inf"), -float("inf")

    def spent(self, seconds: float, now: float):
        self.last_cost, self.trained, self.last_at = seconds, 0.0, now


def loss_terms(task, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(T_out,) the loss's term at each output step, summing to task.loss(out, target): every task's loss
    is a mean over its output steps, so the term at step k is the loss of that step alone over T_out."""
    n_out = out.shape[1]
    if n_out == 1:
        return task.loss(out, target).reshape(1)
    return torch.stack([task.loss(out[:, k:k + 1], target[:, k:k + 1]) for k in range(n_out)]) / n_out


def per_unit_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """(T, H) from T tensors (batch, H) or (batch, H, k): each unit's norm over the batch (and over its k
    numbers: an LRU unit's real and imaginary parts, an S6 channel's states), scaled by its largest entry
    first so squares of float64 values below 1e-154 do not underflow."""
    g = torch.stack(grads)  # (T, batch, H[, k])
    g = g.movedim(1, -1).flatten(2) if g.dim() > 3 else g.transpose(1, 2)  # (T, H, batch * k)
    largest = g.abs().amax(dim=2)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    return largest * torch.linalg.vector_norm(g / scale[..., None], dim=2)


def _unit_sizes(values: torch.Tensor) -> torch.Tensor:
    """(T, H) from one sequence's (T, H) or (T, H, k) gradients: each unit's size (the norm of its k numbers)."""
    return values.abs() if values.dim() == 2 else torch.linalg.vector_norm(values, dim=-1)


def _layer_states(model, trace, k: int) -> list[list[torch.Tensor]]:
    """Layer k's tensors whose gradients the units show, per timestep: the hidden state, then (LSTM, GRU)
    the sigmoid gates side by side as the loop keeps them and the tanh candidate. A gate's gradient is
    read from the block it lives in (a view taken now would not be in the graph)."""
    if model.layers[k].cell == "rnn":
        return [trace.hidden[k]]
    if not hasattr(model.layers[k], "weight_hh") or model.layers[k].weight_hh.dim() != 2:  # engine.cells' protocol
        return [trace.hidden[k]] + [[step[g] for step in trace.gates[k]] for g in range(len(model.layers[k].gate_names))]
    return [trace.hidden[k], trace.gates[k], trace.candidate[k]]


def _per_gate(cell: str, H: int, grads: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """The gradients of _layer_states, as [hidden] + one list per gate in GATE_NAMES order."""
    if cell not in ("lstm", "gru"):  # rnn, and the protocol's cells: already so
        return grads
    hidden, sigmoid, candidate = grads
    blocks = [list(kind) for kind in zip(*(g.split(H, dim=1) for g in sigmoid))]
    if cell == "lstm":  # the loop keeps (input, forget, output): see RecurrentLayer.run
        return [hidden, blocks[0], blocks[1], candidate, blocks[2]]
    return [hidden, blocks[0], blocks[1], candidate]  # gru: reset, update, new


def measure(model, task, x: torch.Tensor, target: torch.Tensor, request: DetailRequest, step: int,
            gate_names: tuple, params: dict | None = None, activation_bytes: int = 0) -> StepDetail:
    """The detail of one step: `x`, `target` its batch; `params` the weights its gradients were taken at
    by name (default: the model's own). The model is not modified: float64 copies of the parameters go
    in through torch.func.functional_call. Where the float64 states would pass what the step's float32
    ones took (`activation_bytes`, engine.memory's "activations"), the batch goes in chunks as the
    float64 redo does (probes.redo_chunks: each sequence's states are its own), norms combined in squares."""
    start = time.perf_counter()
    params = {name: p.detach().double() for name, p in (params or dict(model.named_parameters())).items()}
    batch = x.shape[0]
    n_layers = len(model.layers)
    layers = tuple(range(n_layers)) if request.layer is None else (min(max(request.layer, 0), n_layers - 1),)
    row = min(max(request.sequence, 0), batch - 1)
    parts = [_measure_rows(model, params, task, x, target, rows, request, layers, row)
             for rows in torch.arange(batch).chunk(probes.redo_chunks(batch, activation_bytes))]
    units = _combined([p["units"] for p in parts])
    connectivity = _combined([p["connectivity"] for p in parts]) if request.connectivity else None
    mine = next(p for p in parts if p["sequence_units"] is not None)
    labels = task.input_labels(x.detach()) if hasattr(task, "input_labels") else None
    return StepDetail(
        step=step, layers=layers, gate_names=("hidden",) + tuple(gate_names),
        units=_numpy(units), output_steps=tuple(task.output_steps),
        connectivity=_numpy(connectivity), sequence=row, sequence_units=_numpy(mine["sequence_units"]),
        sequence_connectivity=_numpy(mine["sequence_connectivity"]),
        sequence_grad_h=_numpy(torch.cat([p["grad_h"] for p in parts])),
        sequence_grad_c=None if parts[0]["grad_c"] is None else _numpy(torch.cat([p["grad_c"] for p in parts])),
        sequence_grad_x=_numpy(torch.cat([p["grad_x"] for p in parts])),
        input_labels=labels,
        seconds=time.perf_counter() - start)


def _measure_rows(model, params: dict, task, x: torch.Tensor, target: torch.Tensor, rows: torch.Tensor,
                  request: DetailRequest, layers: tuple, row: int) -> dict:
    """One chunk of the batch (`rows`): its terms weighted by its share of the batch, so that its gradients
    are its rows of the whole batch loss's. Per-unit and map norms over these rows; per-sequence figures
    for these rows; the chosen `row`'s units and map if it is here (else None)."""
    batch, steps = x.shape[0], x.shape[1]
    n_layers = len(model.layers)
    x64 = x.detach()[rows].double().requires_grad_(True)
    target64 = target[rows].double() if target.is_floating_point() else target[rows]
    local = int((rows == row).nonzero()[0]) if bool((rows == row).any()) else None
    with torch.enable_grad():
        out, trace = torch.func.functional_call(model, params, (x64, task.output_steps), {"sequential": True})
        terms = loss_terms(task, out, target64) * (len(rows) / batch)
        hidden = [h for layer in trace.hidden for h in layer]
        cells = [c for layer in trace.cell for c in layer]
        gates = [_layer_states(model, trace, k) for k in layers]
        wanted = hidden + cells + [t for layer in gates for kind in layer for t in kind] + [x64]
        n_out = len(terms)
        grads = torch.autograd.grad(terms.sum(), wanted, allow_unused=True,
                                    retain_graph=request.connectivity and n_out > 1)
        grads = [g if g is not None else torch.zeros_like(t) for t, g in zip(wanted, grads)]
        grad_x = grads[-1]  # (rows, T, F)
        n_h, n_c, kinds = len(hidden), len(cells), [len(layer) for layer in gates]
        connectivity = sequence_connectivity = None
        if request.connectivity:  # one more backward pass per answer, each from that answer's loss term alone
            per_answer = [grad_x] if n_out == 1 else (_input_grad(terms[k], x64, retain=k < n_out - 1)
                                                      for k in range(n_out))
            maps = [(_scaled_norm(g, dims=(0, 2)), None if local is None else batch * _scaled_norm(g[local], dims=(1,)))
                    for g in per_answer]
            connectivity = torch.stack([m[0] for m in maps])
            sequence_connectivity = None if local is None else torch.stack([m[1] for m in maps])
    with torch.no_grad():
        count = len(rows)
        part = {"grad_h": _row_norms(grads[:n_h], count, batch).reshape(count, n_layers, steps),
                "grad_c": _row_norms(grads[n_h:n_h + n_c], count, batch).reshape(count, n_layers, steps) if n_c else None,
                "grad_x": batch * _scaled_norm(grad_x, dims=(2,)), "connectivity": connectivity,
                "sequence_connectivity": sequence_connectivity}
        units, sequence_units = [], []
        position = n_h + n_c
        for k, count_kinds in zip(layers, kinds):
            layer_grads = []
            for _ in range(count_kinds):
                layer_grads.append(grads[position:position + steps])
                position += steps
            batch_rows, one_row = [], []
            for per_step in _per_gate(model.layers[k].cell, model.layers[k].hidden, layer_grads):
                batch_rows.append(per_unit_norms(per_step))
                if local is not None:
                    one_row.append(batch * _unit_sizes(torch.stack([g[local] for g in per_step])))
            units.append(torch.stack(batch_rows))
            if local is not None:
                sequence_units.append(torch.stack(one_row))
        part["units"] = torch.stack(units)
        part["sequence_units"] = torch.stack(sequence_units) if local is not None else None
    return part


def _combined(norms: list[torch.Tensor]) -> torch.Tensor:
    """Norms over disjoint rows combined into the norm over all of them, without squaring past float64."""
    if len(norms) == 1:
        return norms[0]
    stacked = torch.stack(norms)
    largest = stacked.amax(dim=0)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    return largest * torch.sqrt(((stacked / scale) ** 2).sum(dim=0))


def _input_grad(term: torch.Tensor, x: torch.Tensor, retain: bool) -> torch.Tensor:
    (g,) = torch.autograd.grad(term, [x], retain_graph=retain, allow_unused=True)
    return g if g is not None else torch.zeros_like(x)


def _scaled_norm(values: torch.Tensor, dims: tuple) -> torch.Tensor:
    """The norm over `dims`, scaled by the largest |entry| first (no float64 underflow in the squares)."""
    largest = values.abs().amax(dim=dims, keepdim=True)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    return (largest * torch.linalg.vector_norm(values / scale, dim=dims, keepdim=True)).squeeze(dims)


def _row_norms(per_step: list[torch.Tensor], count: int, batch: int) -> torch.Tensor:
    """(count, n) from n tensors (count, H): each sequence's own norm (`batch` times its row's)."""
    if not per_step:
        return torch.zeros(count, 0, dtype=torch.float64)
    return batch * _scaled_norm(torch.stack(per_step, dim=1).flatten(2), dims=(2,))


def _numpy(values):
    return None if values is None else values.detach().cpu().numpy().astype(np.float64)



def detail_bytes(layers: int, gates: int, steps: int, hidden: int, output_steps: int) -> int:
    """What one detail of every layer takes in metrics.npz (float64): units and connectivity."""
    return 8 * (layers * (gates + 1) * steps * hidden + output_steps * steps)


def to_arrays(details: list[StepDetail]) -> dict[str, np.ndarray]:
    """The arrays `train --detail-every` adds to metrics.npz, one row per detail: detail_steps (n,),
    grad_h_units (n, layers, T, H), gate_units (n, layers, gates, T, H) for LSTM and GRU (gates in
    engine.model.GATE_NAMES order), connectivity (n, T_out, T), output_steps (T_out,)."""
    if not details:
        return {}
    out = {"detail_steps": np.array([d.step for d in details]),
           "grad_h_units": np.stack([d.units[:, 0] for d in details]),
           "output_steps": np.array(details[0].output_steps),
           "connectivity": np.stack([d.connectivity for d in details])}
    if details[0].units.shape[1] > 1:
        out["gate_units"] = np.stack([d.units[:, 1:] for d in details])
    return out
