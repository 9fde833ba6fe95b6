"""Bounded per-run histories that the views read: fixed-size ring buffers, so memory stays flat.

Lives on the GUI thread. The main window feeds every snapshot that arrives into the run's
history (`extend`), then asks the views to redraw from it. Views only read.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from engine.metrics import MetricsLog
from engine.probes import orders_lost
from engine.trainer import Event, Snapshot
from engine.worker import RunInfo

CURVE_CAPACITY = 20_000     # steps of scalar curves kept (older ones drop off the left)
WATERFALL_ROWS = 300        # training steps shown by the waterfall
TRAIL = 8                   # earlier gradient profiles kept for the fading trail
EXPORT_ROWS = 5_000         # full snapshots kept for exports (NPZ/CSV)


class Ring:
    """A fixed-capacity buffer of equally shaped rows; `view()` returns them oldest first."""

    def __init__(self, capacity: int, row_shape=(), dtype=np.float64):
        self.data = np.full((capacity,) + tuple(row_shape), np.nan, dtype=dtype)
        self.capacity, self.count, self.head = capacity, 0, 0

    def append(self, row):
        self.data[self.head] = row
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def view(self) -> np.ndarray:
        if self.count < self.capacity:
            return self.data[:self.count]
        return np.concatenate([self.data[self.head:], self.data[:self.head]])

    def last(self, default=float("nan")):
        """The newest row (`default` while empty)."""
        return self.data[(self.head - 1) % self.capacity] if self.count else default

    def __len__(self):
        return self.count


class RunHistory:
    """Everything the views show about one run, bounded in size."""

    def __init__(self, info: RunInfo):
        self.info = info
        L, T = info.config.layers, info.n_steps
        self.steps = Ring(CURVE_CAPACITY)
        self.loss = Ring(CURVE_CAPACITY)
        self.metric = Ring(CURVE_CAPACITY)
        self.grad_norm = Ring(CURVE_CAPACITY)
        self.grad_norm_clipped = Ring(CURVE_CAPACITY)
        self.grad_norm_layer = Ring(CURVE_CAPACITY, (L,))
        self.grad_norm_layer_clipped = Ring(CURVE_CAPACITY, (L,))
        self.clipped = Ring(CURVE_CAPACITY, dtype=bool)
        self.first_last_ratio = Ring(CURVE_CAPACITY)  # log10 grad_h[top, 0] - log10 grad_h[top, -1]
        self.waterfall = Ring(WATERFALL_ROWS, (L, T), dtype=np.float32)  # log10 grad_h
        self.waterfall_steps = Ring(WATERFALL_ROWS)
        self.trail: deque[Snapshot] = deque(maxlen=TRAIL)
        self.events: deque[Event] = deque(maxlen=500)
        self.log = MetricsLog(max_rows=EXPORT_ROWS)
        self.latest: Snapshot | None = None
        # Since the run started (reset), across rebuilds and setting changes; the rings above keep
        # only the last CURVE_CAPACITY steps, so these are the counts to quote "since start".
        self.steps_seen = 0
        self.clip_count = 0
        self.diverged_at_step: int | None = None

    def reshape(self, info: RunInfo):
        """A rebuild changed the run's structure: keep curves and events, restart shaped buffers."""
        old = self.info
        self.info = info
        if (old.config.layers, old.n_steps) != (info.config.layers, info.n_steps):
            L, T = info.config.layers, info.n_steps
            self.grad_norm_layer = Ring(CURVE_CAPACITY, (L,))
            self.grad_norm_layer_clipped = Ring(CURVE_CAPACITY, (L,))
            self.waterfall = Ring(WATERFALL_ROWS, (L, T), dtype=np.float32)
            self.waterfall_steps = Ring(WATERFALL_ROWS)
            self.trail.clear()
            self.latest = None
        self.diverged_at_step = None

    def extend(self, snapshots: list[Snapshot]):
        for s in snapshots:
            if s.grad_h.shape != self.waterfall.data.shape[1:]:
                continue  # a straggler from before a rebuild
            self.steps.append(s.step)
            self.loss.append(s.loss)
            self.metric.append(s.metric)
            self.grad_norm.append(s.grad_norm)
            self.grad_norm_clipped.append(s.grad_norm_clipped)
            self.grad_norm_layer.append(s.grad_norm_layer)
            self.grad_norm_layer_clipped.append(s.grad_norm_layer_clipped)
            self.clipped.append(s.clipped)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_g = np.log10(s.grad_h)
                self.first_last_ratio.append(-orders_lost(s.grad_h[-1]))
            self.waterfall.append(log_g)
            self.waterfall_steps.append(s.step)
            self.trail.append(s)
            self.log.append(s)
            self.events.extend(s.events)
            self.steps_seen += 1
            self.clip_count += int(s.clipped)
            if s.diverged:
                self.diverged_at_step = s.step
            self.latest = s
