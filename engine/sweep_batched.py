"""Many networks of one shape measured at initialisation in one set of tensor operations.

Runs on whichever thread or process calls it (a sweep's worker, the Phase diagram view's map process); no Qt.
A phase diagram at initialisation is many small forward and backward passes that differ only in their
weights and data (spectral radius, seed, initializer): stacked along a leading network dimension, N of
them cost about what one costs in Python overhead. Each network is built exactly as the trainer builds it
(engine.trainer.Trainer: the seed, the initializer, the first batch from its data generator), then its
weights are stacked and the cells below run in float64, PyTorch's gate layouts (tested against
probes.float64_state_gradients, the trainer's own float64 pass, network by network).

The loss of the stack is the sum of each network's loss, so d(sum)/d h_t of network n is d loss_n / d h_t
of network n alone: one backward pass gives every network's gradient.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine import probes, registry
from engine.config import Config

# the settings that decide the weights and the data, not the shape of the computation
WEIGHT_KEYS = ("seed", "init", "spectral_radius", "forget_bias")
# the settings that only act in an update: no effect at initialisation
UPDATE_KEYS = ("lr", "optimizer", "clip", "clip_threshold", "device")


def shape_key(config: Config) -> tuple:
    """Configs with equal keys can run stacked."""
    return tuple((k, v) for k, v in config.to_dict().items() if k not in WEIGHT_KEYS + UPDATE_KEYS)


STACKED_CELLS = ("rnn", "lstm", "gru")


def can_stack(config: Config) -> bool:
    """The stacked cells cover PyTorch's three; attention's readout and engine.cells' cells run one network
    at a time."""
    return config.cell in STACKED_CELLS and not config.attention


def first_batch(config: Config):
    """The network and the first batch `Trainer(config).step()` would train on: (trainer, x, target)."""
    from engine.trainer import Trainer  # (the trainer imports the sweep's neighbours, not this module)
    trainer = Trainer(config, check_memory=False)  # (the sweep checked every point's memory first)
    x, target = trainer.task.sample(trainer.data_gen)
    return trainer, x, target


def _activation(name: str, slope: torch.Tensor | None):
    if name == "prelu":  # the learned slope, one per network: (N, 1, 1)
        return lambda a: torch.where(a >= 0, a, slope * a)
    module = registry.ACTIVATIONS[name].factory()
    return module.forward


def _norms(per_step: torch.Tensor) -> torch.Tensor:
    """(steps, N, B, H) -> (N, steps) Frobenius norms over batch and units, scaled before squaring so that
    float64's smallest numbers (1e-300) square without underflow."""
    flat = per_step.flatten(2)
    largest = flat.abs().amax(dim=2)
    scale = torch.where(largest > 0, largest, torch.ones_like(largest))
    return (largest * torch.linalg.vector_norm(flat / scale[..., None], dim=2)).T


def measure_stacked(configs: list[Config]) -> list[dict]:
    """Each config's loss and float64 grad_h (layers, T) at initialisation, all in one stacked pass.
    `configs` must share a shape_key and satisfy can_stack."""
    built = [first_batch(c) for c in configs]
    c0 = configs[0]
    task = built[0][0].task
    models = [trainer.model for trainer, _, _ in built]
    params = [dict(m.named_parameters()) for m in models]

    def stacked(name):
        return torch.stack([p[name].detach().double().cpu() for p in params])

    x = torch.stack([b[1].detach().double().cpu() for b in built])  # (N, B, T, I)
    inp = x.permute(2, 0, 1, 3)  # (T, N, B, I)
    N, B, T = x.shape[0], x.shape[1], x.shape[2]
    H, L = c0.hidden, c0.layers
    hidden_states = []
    with torch.enable_grad():
        for k in range(L):
            w_ih, w_hh = stacked(f"layers.{k}.weight_ih"), stacked(f"layers.{k}.weight_hh")
            b_ih, b_hh = stacked(f"layers.{k}.bias_ih"), stacked(f"layers.{k}.bias_hh")
            xproj = torch.einsum("tnbi,ngi->tnbg", inp, w_ih) + b_ih[None, :, None, :]
            w_rec = w_hh.requires_grad_(True).transpose(1, 2)  # (puts every state in the graph; its own
            #                                                   gradient is never asked for, so never computed)
            bias = b_hh[:, None, :]
            slope = stacked(f"layers.{k}.act.weight").view(N, 1, 1) if c0.cell == "rnn" and c0.activation == "prelu" \
                else None
            act = _activation(c0.activation, slope) if c0.cell == "rnn" else None
            h = x.new_zeros(N, B, H)
            c = h
            hs = []
            for t in range(T):
                rec = torch.baddbmm(bias, h, w_rec)  # (N, B, gates * H)
                if c0.cell == "rnn":
                    h = act(xproj[t] + rec)
                elif c0.cell == "lstm":  # PyTorch's order: input, forget, cell, output
                    i, f, g, o = (xproj[t] + rec).chunk(4, dim=-1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                else:  # gru: reset, update, new
                    x_r, x_z, x_n = xproj[t].chunk(3, dim=-1)
                    h_r, h_z, h_n = rec.chunk(3, dim=-1)
                    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                    n = torch.tanh(x_n + r * h_n)
                    h = torch.lerp(n, h, z)
                hs.append(h)
            hidden_states.append(hs)
            out = torch.stack(hs)  # (T, N, B, H)
            inp = out + inp if c0.skip and k > 0 else out
        steps = task.output_steps
        feats = inp[steps]  # (answers, N, B, H)
        w_out, b_out = stacked("readout.weight"), stacked("readout.bias")
        outputs = torch.einsum("knbh,noh->nbko", feats, w_out) + b_out[:, None, None, :]  # (N, B, answers, O)
        losses = []
        for n, (_, _, target) in enumerate(built):
            target64 = target.double() if target.is_floating_point() else target
            losses.append(task.loss(outputs[n], target64))
        total = torch.stack(losses).sum()
        flat = [h for hs in hidden_states for h in hs]
        grads = torch.autograd.grad(total, flat, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(h) for g, h in zip(grads, flat)]
    norms = _norms(torch.stack(grads)).reshape(N, L, T)  # (N, L * T) in layer-major order
    return [{"loss": float(losses[n].detach()), "baseline_loss": float(task.baseline_loss),
             "grad_h": norms[n].numpy().astype(np.float64)} for n in range(N)]


def measure_one(config: Config) -> dict:
    """One network at initialisation, through the trainer's own float64 pass (any cell and readout)."""
    trainer, x, target = first_batch(config)
    model, task = trainer.model, trainer.task
    grad_h, _, _ = probes.float64_state_gradients(model, task, x, target, config.layers, task.n_steps)
    params = {name: p.detach().double() for name, p in model.named_parameters()}
    with torch.no_grad():
        out, _ = torch.func.functional_call(model, params, (x.detach().double(), task.output_steps))
        loss = task.loss(out, target.double() if target.is_floating_point() else target)
    return {"loss": float(loss), "baseline_loss": float(task.baseline_loss), "grad_h": np.asarray(grad_h, np.float64)}


def stack_size(config: Config, budget_bytes: int) -> int:
    """How many networks of `config` one stacked pass may hold within `budget_bytes`: float64 doubles
    the float32 activations engine.memory estimates for one."""
    from engine import memory
    each = 2 * memory.estimate_bytes(config)["activations"]
    return max(1, min(64, budget_bytes // max(each, 1)))


def orders(grad_h: np.ndarray) -> float:
    """Orders of magnitude lost by the top layer, last timestep against the first (probes.orders_lost)."""
    return probes.orders_lost(grad_h[-1]) if len(grad_h) else math.nan
