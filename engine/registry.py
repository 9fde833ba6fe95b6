"""Registries mapping setting names to factories, each with a plain-language description.

Runs on any thread. The GUI fills its menus and tooltips from these; the config validates
against them; the model and trainer build from them. Adding an entry here is all it takes to
offer a new choice everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from engine import cells as _cells
from engine import tasks as _tasks
from engine.user_data import DataTask


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    description: str
    factory: Callable


# ----------------------------------------------------------------------------- activations

class PReLU(nn.Module):
    """Leaky ReLU whose negative slope is learned (one slope per layer, starting at 0.25)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(0.25))

    def forward(self, x):
        return torch.where(x >= 0, x, self.weight * x)


def _fixed(fn, max_slope):
    class Fixed(nn.Module):
        def forward(self, x):
            return fn(x)

        def max_slope(self):
            return max_slope
    return Fixed


def _prelu_slope(module):
    return max(1.0, abs(float(module.weight)))


PReLU.max_slope = _prelu_slope

ACTIVATIONS = {e.name: e for e in [
    Entry("tanh", "tanh", "S-shaped, output between -1 and 1. Its slope is at most 1 and falls to almost 0 "
          "for large inputs, so the activation never grows the gradient: each step back in time multiplies it "
          "by at most the recurrent weights' largest stretch. Weights that stretch by more than 1 can grow it "
          "(orthogonal weights of spectral radius 3 grow it some 14 orders of magnitude over 100 steps: lesson "
          "exploding).",
          _fixed(torch.tanh, 1.0)),
    Entry("sigmoid", "sigmoid", "S-shaped, output between 0 and 1. Its slope is at most 1/4, so each step back "
          "in time multiplies the gradient by at most a quarter of the recurrent weights' largest stretch: it "
          "shrinks at every step unless they stretch more than 4 times, and vanishing is worse than with tanh.",
          _fixed(torch.sigmoid, 0.25)),
    Entry("relu", "ReLU", "Passes positive inputs unchanged (slope 1), blocks negative ones (slope 0). "
          "No squashing, so gradients need not shrink; with identity initialization this is the IRNN recipe.",
          _fixed(torch.relu, 1.0)),
    Entry("leaky_relu", "Leaky ReLU", "Like ReLU, but negative inputs keep a small slope (0.01), so units "
          "never go completely dead.", _fixed(lambda x: nn.functional.leaky_relu(x, 0.01), 1.0)),
    Entry("prelu", "PReLU", "Like Leaky ReLU, but the network learns the negative slope itself.", PReLU),
    Entry("linear", "linear (none)", "No activation at all: the gradient is multiplied by the recurrent "
          "matrix alone, so its spectral radius decides between vanishing (<1) and exploding (>1).",
          _fixed(lambda x: x, 1.0)),
]}


def activation_curve(name: str, xs):
    """The activation and its derivative at the points `xs` (numpy in, numpy out), for plotting."""
    x = torch.as_tensor(xs, dtype=torch.float64).clone().requires_grad_(True)
    module = ACTIVATIONS[name].factory().double()
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach().numpy(), dy.numpy()


# ----------------------------------------------------------------------------- initializers
# Each takes a square (hidden x hidden) recurrent block in place; LSTM and GRU blocks are
# initialized gate by gate.

def _default(w):
    pass  # keep PyTorch's own U(-1/sqrt(H), 1/sqrt(H))


def _normal(w):
    nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))


def _he(w):
    nn.init.kaiming_normal_(w, nonlinearity="relu")


def _identity(w):
    nn.init.eye_(w)


INITIALIZERS = {e.name: e for e in [
    Entry("default", "PyTorch default", "PyTorch's own uniform initialization, U(-1/sqrt(H), 1/sqrt(H)).", _default),
    Entry("xavier_uniform", "Xavier/Glorot uniform", "Xavier (Glorot) initialization: weights scaled so the "
          "signal keeps roughly the same size from one step to the next.", nn.init.xavier_uniform_),
    Entry("xavier_normal", "Xavier/Glorot normal", "Xavier (Glorot) initialization with a normal distribution.",
          nn.init.xavier_normal_),
    Entry("he", "He (Kaiming)", "He initialization: scaled for ReLU units, which pass only half the signal.", _he),
    Entry("orthogonal", "orthogonal", "A random rotation: every direction keeps exactly its length, so the "
          "recurrent matrix alone neither shrinks nor grows the gradient.", nn.init.orthogonal_),
    Entry("identity", "identity (IRNN)", "The identity matrix with zero biases: each step starts by copying "
          "its memory unchanged. With ReLU this is the IRNN recipe.", _identity),
    Entry("normal", "random normal", "Gaussian weights with standard deviation 1/sqrt(H).", _normal),
]}


# ----------------------------------------------------------------------------- cells, clipping, optimizers

CELLS = {e.name: e for e in [
    Entry("rnn", "vanilla RNN", "The simple recurrent cell: new memory = activation(weights x input + "
          "weights x old memory). Gradients pass through the activation at every step.", None),
    Entry("lstm", "LSTM", "Long short-term memory: a separate cell state updated by adding, guarded by "
          "gates, gives the gradient a path through time that need not shrink.", None),
    Entry("gru", "GRU", "Gated recurrent unit: an update gate mixes old memory and new; where it is near 1 "
          "it keeps the old, so memory (and gradient) can pass through many steps with little loss per step.", None),
    Entry("lru", "LRU", "Linear recurrent unit (2023): no activation between steps, and a diagonal complex "
          "recurrence whose eigenvalues lambda start on a ring just inside the unit circle. One step back "
          "multiplies a state's gradient by exactly |lambda|, so near 1 it lasts thousands of steps.", _cells.lru),
    Entry("mingru", "minGRU", "Minimal GRU (2024): the update gate and the candidate see only the input, not "
          "the old memory, so the factor per step, 1 - z, is decided by the input; training runs all steps "
          "at once as one parallel scan.", _cells.mingru),
    Entry("indrnn", "IndRNN", "Independently recurrent network (2018): each unit has one recurrent weight u "
          "of its own, so one step back multiplies its gradient by u (times the activation's slope); "
          "|u| is kept below 2^(1/T). The paper uses ReLU (activation).", _cells.indrnn),
    Entry("ssm", "selective SSM", "Selective state space (S6, Mamba's scan): per channel, states that decay "
          "by exp(delta A) each step, with the step size delta chosen from the input: a large one takes the "
          "input in and forgets, a small one remembers.", _cells.ssm),
]}

def grad_norms(grads: list[torch.Tensor]) -> list[float]:
    """Norm of each gradient tensor. torch's float32 norm squares in float32: it reports inf once
    entries pass ~1e19, which an exploding RNN reaches long before any entry is infinite, and loses
    entries below ~1e-19, whose squares leave float32's normal range (1e-30 entries read 0). Such
    norms are taken again in float64 (a NaN gradient stays NaN either way)."""
    norms = torch.stack(torch._foreach_norm(grads)).tolist()
    if not all(math.isfinite(n) and n >= 1e-15 * math.sqrt(g.numel()) for n, g in zip(norms, grads)):
        norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads]).tolist()
    return norms


def norm_clip_scale(total: float, max_norm: float) -> float:
    """The factor clipping by norm multiplies every gradient by (1 when the norm is within max_norm)."""
    return min(1.0, max_norm / (total + 1e-6))


def clip_grad_norm(parameters, max_norm: float, total: float | None = None) -> float:
    """nn.utils.clip_grad_norm_ with the norm from `grad_norms` (or `total`, if the caller has it):
    torch's own turns a huge but finite gradient into an infinite norm and scales the gradient to
    zero instead of down to `max_norm`."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if total is None:
        total = math.hypot(*grad_norms(grads))
    scale = norm_clip_scale(total, max_norm)
    if scale < 1.0:
        torch._foreach_mul_(grads, scale)
    return total


CLIP_MODES = {e.name: e for e in [
    Entry("none", "no clipping", "Gradients are used as they are, however large.", None),
    Entry("norm", "clip by norm", "If the total gradient norm exceeds the threshold, scale the whole gradient "
          "down to it: the direction is kept, the step size is capped.", clip_grad_norm),
    Entry("value", "clip by value", "Cap every single gradient entry to [-threshold, threshold].",
          nn.utils.clip_grad_value_),
]}

OPTIMIZERS = {e.name: e for e in [
    Entry("sgd", "SGD", "Plain gradient descent: step = learning rate x gradient. A vanished gradient "
          "means a vanished step.", torch.optim.SGD),
    Entry("adam", "Adam", "Adam rescales each weight's step by its recent gradient size.", torch.optim.Adam),
    Entry("rmsprop", "RMSprop", "RMSprop divides each step by a running average of gradient size.",
          torch.optim.RMSprop),
]}

TASKS = {t.name: t for t in _tasks.ALL_TASKS + [DataTask]}  # data: a user's file (engine/user_data.py)


def describe(key: str) -> dict[str, Entry]:
    """The registry behind a config key, for menus: {name: Entry}."""
    return {"activation": ACTIVATIONS, "init": INITIALIZERS, "cell": CELLS, "clip": CLIP_MODES,
            "optimizer": OPTIMIZERS, "task": TASKS}[key]
