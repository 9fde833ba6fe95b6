"""Where a run trains: the CPU or a CUDA GPU, and what `device=auto` picks for a model's size.

Runs on any thread; torch only. A recurrent step is a chain of small matrix products, one per
timestep and layer: on a GPU each is a kernel launch that costs about the same whatever its size, so
a small model trains faster on the CPU. Measured on an NVIDIA H200 against one CPU thread (issue 19):
the default tanh RNN (batch 32, hidden 64: 0.14 M multiply-adds per timestep) ran 14 steps/s on CUDA
and 40 on the CPU; an LSTM of hidden 256 at batch 64 (17 M) took 139 ms a step on CUDA and 450 ms on
the CPU. `auto` takes CUDA from CUDA_FROM_MACS multiply-adds per timestep, a point between those two
measurements (their geometric middle is 1.5 M), not yet measured on a GPU of this project's own.
"""
from __future__ import annotations

import torch

from engine import registry
from engine.errors import ConfigError

CUDA_FROM_MACS = 2_000_000   # multiply-adds per timestep (all layers, whole batch) from which auto picks CUDA
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "lru": 3, "mingru": 2, "indrnn": 1, "ssm": 2}  # (a user's own cell: 4)


def macs_per_timestep(config, input_size: int | None = None) -> int:
    """The multiply-adds of one timestep's recurrent and input products over every layer and the batch:
    batch x gates x hidden x (inputs + hidden) per layer. `input_size`: the task's (default: the
    built-in task's own, 0 for a user's data, whose first layer's inputs are few beside the hidden units)."""
    if input_size is None:
        size = getattr(registry.TASKS.get(config.task), "input_size", 0)
        input_size = size if isinstance(size, int) else 0
    gates, hidden = GATES.get(config.cell, 4), config.hidden
    per_layer = [gates * hidden * ((input_size if k == 0 else hidden) + hidden) for k in range(config.layers)]
    return config.batch * sum(per_layer)


def uses_cuda(config) -> bool:
    """Whether `config` trains on CUDA (device=cuda, or auto on a machine with CUDA for a model this size)."""
    return pick(config.device, config).type == "cuda"


def pick(name: str, config=None) -> torch.device:
    """The device for `name` (auto | cpu | cuda); auto takes CUDA when there is one and `config`'s model
    is large enough (CUDA_FROM_MACS; without a config: whenever there is one)."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if config is not None and macs_per_timestep(config) < CUDA_FROM_MACS:
            return torch.device("cpu")
        return torch.device("cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "auto | cpu (no CUDA device is available on this machine)")
    return torch.device(name)


def explain(config) -> str:
    """What the device setting chose and why, in a line (for tooltips and the command line)."""
    device = pick(config.device, config)
    if config.device != "auto":
        return f"device {device.type}, as set"
    if not torch.cuda.is_available():
        return "device auto: cpu (no CUDA device on this machine)"
    macs = macs_per_timestep(config)
    size = "large" if device.type == "cuda" else "small"
    return (f"device auto: {device.type} (a {size} model: {macs / 1e6:.2f} M multiply-adds per timestep; auto takes "
            f"CUDA from {CUDA_FROM_MACS / 1e6:g} M, where a GPU starts to beat the CPU)")
