"""Bounded per-run histories that the views read: fixed-size ring buffers, so memory stays flat.

Lives on the GUI thread. The run session feeds every snapshot that arrives into the run's history
(`extend`), and the settings the run trains with now into its `info` (`reshape` after a rebuild,
`apply_settings` after a live change); the views redraw from it. Views only read.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.metrics import MetricsLog
from engine.probes import orders_lost
from engine.trainer import Event, Snapshot
from engine.worker import RunInfo

CURVE_CAPACITY = 20_000     # steps of scalar curves kept (older ones drop off the left)
WATERFALL_ROWS = 300        # training steps shown by the waterfall
TRAIL = 8                   # earlier gradient profiles kept for the fading trail
EXPORT_ROWS = 5_000         # full snapshots kept for exports (NPZ/CSV)
EVENT_GROUPS = 200          # coalesced event groups kept per run (see EventMarks)
DETAILS_KEPT = 16           # the latest steps seen closely (engine.detail), for a replay of the last few


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

    def first(self, default=float("nan")):
        """The oldest row (`default` while empty)."""
        return self.data[self.head if self.count == self.capacity else 0] if self.count else default

    def __len__(self):
        return self.count


@dataclass(frozen=True)
class EventGroup:
    """Events of one kind close together in steps, kept as one: what one marker stands for."""
    kind: str      # "changed" (setting changes, rebuilds among them), "exploded" or "diverged"
    first: int     # the step of its first event
    last: int      # the step of its last
    count: int     # events in it
    rebuilt: int   # how many of them rebuilt the network
    detail: str    # the last event's detail

    def joined(self, other: "EventGroup") -> "EventGroup":
        """This group and a later one of the same kind, as one."""
        return EventGroup(self.kind, self.first, max(self.last, other.last), self.count + other.count,
                          self.rebuilt + other.rebuilt, other.detail)


def group_of(event: Event) -> EventGroup:
    kind = event.kind if event.kind in ("diverged", "exploded") else "changed"
    return EventGroup(kind, event.step, event.step, 1, int(event.kind == "rebuilt"), event.detail)


class EventMarks:
    """Every event since the run started, coalesced into at most `capacity` groups, oldest first.

    An event joins the newest group when it is of the same kind and less than `width` steps after
    that group's first step. When there are more groups than `capacity`, the width doubles and
    neighbours merge, so a thousand changes cost what the first did, and the counts stay whole:
    a group says how many events it holds, between which steps. (Only where kinds alternate, a run
    diverging again and again, can merging not make room: then the oldest groups go, counted in
    `dropped`.) `version` changes with every event, so a view can tell whether to look again."""

    def __init__(self, capacity: int = EVENT_GROUPS):
        self.capacity = capacity
        self.groups: list[EventGroup] = []
        self.width = 1
        self.version = 0
        self.dropped = 0

    def add(self, event: Event):
        self.version += 1
        new = group_of(event)
        last = self.groups[-1] if self.groups else None
        if last is not None and last.kind == new.kind and new.last - last.first < self.width:
            self.groups[-1] = last.joined(new)
            return
        self.groups.append(new)
        if len(self.groups) > self.capacity:
            self._coarsen()

    def _coarsen(self):
        # down to half the capacity: the next coarsening is many events away (constant cost per event)
        span = self.groups[-1].last - self.groups[0].first + 1
        while len(self.groups) > self.capacity // 2 and self.width <= span:
            self.width *= 2
            merged = [self.groups[0]]
            for group in self.groups[1:]:
                if group.kind == merged[-1].kind and group.last - merged[-1].first < self.width:
                    merged[-1] = merged[-1].joined(group)
                else:
                    merged.append(group)
            self.groups = merged
        if len(self.groups) > self.capacity:
            self.dropped += sum(g.count for g in self.groups[:-self.capacity])
            del self.groups[:-self.capacity]

    def __len__(self):
        return sum(g.count for g in self.groups)


class RunHistory:
    """Everything the views show about one run, bounded in size."""

    def __init__(self, info: RunInfo):
        self.info = info
        L, T = info.config.layers, info.n_steps
        self.steps = Ring(CURVE_CAPACITY)
        self.loss = Ring(CURVE_CAPACITY)
        self.metric = Ring(CURVE_CAPACITY)
        self.held_out_loss = Ring(CURVE_CAPACITY)  # a user's data: the held-out loss (NaN between its steps)
        self.grad_norm = Ring(CURVE_CAPACITY)
        self.grad_norm_clipped = Ring(CURVE_CAPACITY)
        self.grad_norm_layer = Ring(CURVE_CAPACITY, (L,))
        self.grad_norm_layer_clipped = Ring(CURVE_CAPACITY, (L,))
        self.clipped = Ring(CURVE_CAPACITY, dtype=bool)
        self.first_last_ratio = Ring(CURVE_CAPACITY)  # log10 grad_h[top, 0] - log10 grad_h[top, -1]
        self.waterfall = Ring(WATERFALL_ROWS, (L, T), dtype=np.float32)  # log10 grad_h
        self.waterfall_steps = Ring(WATERFALL_ROWS)
        self.trail: deque[Snapshot] = deque(maxlen=TRAIL)
        self.events: deque[Event] = deque(maxlen=500)  # the latest events, as they came
        self.event_marks = EventMarks()                  # every event since the run started, coalesced
        self.log = MetricsLog(max_rows=EXPORT_ROWS)
        self.latest: Snapshot | None = None
        self.details: deque = deque(maxlen=DETAILS_KEPT)  # engine.detail.StepDetail, oldest first
        # Since the run started (reset), across rebuilds and setting changes; the rings above keep
        # only the last CURVE_CAPACITY steps, so these are the counts to quote "since start".
        self.steps_seen = 0
        self.clip_count = 0
        self.diverged_at_step: int | None = None
        self.exploded_at_step: int | None = None  # the first step past engine.trainer's explosion bounds

    def apply_settings(self, config):
        """Live settings (engine.config.LIVE_KEYS) took effect: the run trains with `config` from its
        next step, without a rebuild, so the info shows them and nothing shaped restarts."""
        if config != self.info.config:
            self.info = dataclasses.replace(self.info, config=config)

    def add_events(self, events):
        self.events.extend(events)
        for event in events:
            self.event_marks.add(event)

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
        self.exploded_at_step = None
        self.details.clear()  # measured on the network before the rebuild

    @property
    def detail(self):
        """The latest step seen closely (engine.detail.StepDetail), or None."""
        return self.details[-1] if self.details else None

    def add_detail(self, detail):
        if detail is not None and detail.units.shape[2] == self.waterfall.data.shape[2]:  # not from before a rebuild
            self.details.append(detail)

    def extend(self, snapshots: list[Snapshot]):
        for s in snapshots:
            if s.grad_h.shape != self.waterfall.data.shape[1:]:
                continue  # a straggler from before a rebuild
            self.steps.append(s.step)
            self.loss.append(s.loss)
            self.metric.append(s.metric)
            self.held_out_loss.append(s.held_out_loss)
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
            if s.events:
                self.add_events(s.events)
            self.steps_seen += 1
            self.clip_count += int(s.clipped)
            if s.diverged:
                self.diverged_at_step = s.step
            if s.exploded and self.exploded_at_step is None:
                self.exploded_at_step = s.step
            self.latest = s
