"""Training tasks: each makes batches, scores outputs, and knows its trivial baseline loss.

Runs on any thread (the trainer's). A task owns no model; it says how many input channels and
outputs it needs, at which timesteps the network must answer, and how good "learned nothing" is,
so a user can tell whether the network learned anything.
"""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from engine.errors import ConfigError

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


class Task:
    name = ""
    label = ""
    description = ""
    metric_name = ""
    input_size = 1
    output_size = 1

    def __init__(self, seq_len: int, batch: int, device="cpu"):
        self.check_seq_len(seq_len)
        self.seq_len, self.batch, self.device = seq_len, batch, device

    @classmethod
    def check_seq_len(cls, seq_len: int) -> None:
        """Raise ConfigError if this task cannot use `seq_len`."""

    @classmethod
    def fit_seq_len(cls, seq_len: int) -> int:
        """`seq_len` if this task can use it, else the length to switch to when the task is chosen
        and the length left as it was (digits: 64)."""
        return seq_len

    @property
    def n_steps(self) -> int:
        """Timesteps the network sees (the length of every per-timestep probe)."""
        return self.seq_len

    @property
    def output_steps(self) -> list[int]:
        """Timesteps at which the network's output is scored."""
        return [self.n_steps - 1]

    baseline_loss: float = 0.0

    def sample(self, gen: torch.Generator):
        """A batch: inputs (batch, n_steps, input_size) and targets."""
        raise NotImplementedError

    def loss(self, out, target):
        raise NotImplementedError

    def metric(self, out, target) -> float:
        raise NotImplementedError

    def input_labels(self, x) -> tuple | None:
        """Per sequence of a batch `x`, a label for each timestep's input (a character, a symbol) for the
        views to write along the time axis; None where the inputs are numbers, drawn as curves."""
        return None


class AddingTask(Task):
    name = "adding"
    label = "adding problem"
    description = ("Each step shows a random number and a marker. Exactly two numbers are marked, one in "
                   "each half of the sequence; at the end the network must output their sum. To solve it, "
                   "it has to remember a number from long ago: a long-term dependency. Guessing 1 every "
                   "time (the baseline) scores a loss of 1/6.")
    metric_name = "accuracy (|error| < 0.04)"
    input_size, output_size = 2, 1
    baseline_loss = 1.0 / 6.0  # variance of the sum of two U(0,1): the loss of always answering 1

    @classmethod
    def check_seq_len(cls, seq_len):
        if seq_len < 2:
            raise ConfigError("seq_len", seq_len, "at least 2 for the adding task (two marked values)")

    def sample(self, gen):
        b, t = self.batch, self.seq_len
        values = torch.rand(b, t, generator=gen)
        half = t // 2
        first = torch.randint(0, half, (b,), generator=gen)
        second = torch.randint(half, t, (b,), generator=gen)
        markers = torch.zeros(b, t)
        rows = torch.arange(b)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = torch.stack([values, markers], dim=2)
        target = (values[rows, first] + values[rows, second]).unsqueeze(1)
        return x.to(self.device), target.to(self.device)

    def loss(self, out, target):
        return F.mse_loss(out[:, -1, :], target)

    def metric(self, out, target):
        return float((out[:, -1, :] - target).abs().lt(0.04).float().mean())


class CopyTask(Task):
    name = "copy"
    label = "copy (memory) task"
    description = ("The network is shown a few symbols, then waits through a delay of seq_len blank steps, "
                   "then a 'go' marker asks it to repeat the symbols in order. The longer the delay, the "
                   "further the gradient must travel back. Guessing at random scores the baseline.")
    metric_name = "symbol accuracy"
    symbols = 5       # symbols to remember
    alphabet = 8      # distinct symbols
    input_size = alphabet + 2  # one-hot symbols, blank, go marker
    output_size = alphabet
    baseline_loss = math.log(alphabet)

    @classmethod
    def check_seq_len(cls, seq_len):
        if seq_len < 1:
            raise ConfigError("seq_len", seq_len, "at least 1 for the copy task")

    @property
    def n_steps(self):
        return self.symbols + self.seq_len + self.symbols

    @property
    def output_steps(self):
        return list(range(self.n_steps - self.symbols, self.n_steps))

    def sample(self, gen):
        b, k, a = self.batch, self.symbols, self.alphabet
        seq = torch.randint(0, a, (b, k), generator=gen)
        codes = torch.full((b, self.n_steps), a, dtype=torch.long)  # blank
        codes[:, :k] = seq
        codes[:, k + self.seq_len - 1] = a + 1  # go marker on the last delay step
        x = F.one_hot(codes, a + 2).float()
        return x.to(self.device), seq.to(self.device)

    def loss(self, out, target):
        return F.cross_entropy(out.reshape(-1, self.output_size), target.reshape(-1))

    def metric(self, out, target):
        return float((out.argmax(-1) == target).float().mean())

    def input_labels(self, x):
        names = "ABCDEFGH"[:self.alphabet] + "·▶"  # the symbols, then blank and the go marker
        return tuple("".join(names[c] for c in row) for row in x.argmax(-1).tolist())


class DigitsTask(Task):
    name = "digits"
    label = "handwritten digits (8x8)"
    description = ("Real data: 8x8 images of handwritten digits, read one pixel per step (64 steps, the "
                   "small cousin of sequential MNIST) or one row per step (8 steps). The class must be "
                   "told at the end, so the first pixels are far back in time. Guessing the most common "
                   "digit scores the baseline.")
    metric_name = "accuracy"
    output_size = 10
    _data = None

    @classmethod
    def check_seq_len(cls, seq_len):
        if seq_len not in (64, 8):
            raise ConfigError("seq_len", seq_len, "64 (pixel by pixel) or 8 (row by row) for the digits task")

    @classmethod
    def fit_seq_len(cls, seq_len):
        return seq_len if seq_len in (64, 8) else 64

    @classmethod
    def data(cls):
        if cls._data is None:
            with gzip.open(RESOURCES / "digits.csv.gz", "rt") as fh:
                table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
            images = torch.from_numpy(table[:, :64] / 16.0)
            labels = torch.from_numpy(table[:, 64].astype(np.int64))
            cls._data = (images, labels)
        return cls._data

    def __init__(self, seq_len, batch, device="cpu"):
        super().__init__(seq_len, batch, device)
        self.input_size = 64 // seq_len
        images, labels = self.data()
        self.images = images.view(-1, seq_len, self.input_size).to(device)
        self.labels = labels.to(device)
        counts = torch.bincount(labels, minlength=10).double() / len(labels)
        self.baseline_loss = float(-(counts * counts.log()).sum())  # entropy of the class prior

    def sample(self, gen):
        idx = torch.randint(0, len(self.labels), (self.batch,), generator=gen).to(self.device)
        return self.images[idx], self.labels[idx]

    def loss(self, out, target):
        return F.cross_entropy(out[:, -1, :], target)

    def metric(self, out, target):
        return float((out[:, -1, :].argmax(-1) == target).float().mean())


ALL_TASKS = [AddingTask, CopyTask, DigitsTask]
