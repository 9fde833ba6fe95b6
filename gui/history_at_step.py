"""The run histories as they stood at an earlier step: what the views, badges and exports read in a replay.

GUI thread only, Qt-free. `history_at(history, step)` gives a `PastHistory` that reads like a
gui.history.RunHistory (the same names, the same ring interface: `view()`, `last()`, `first()`,
`len()`) but ends at `step`: curves stop there, `latest` is that step's snapshot, the trail and the
waterfall are the steps before it, the counts since start are those at that step. It is built from the
live history's full snapshots (the newest EXPORT_ROWS per run), so a replay reaches that far back;
an earlier step shows the oldest one kept. Nothing in the live history changes. A name this module
does not know (a field added to RunHistory later) reads the live history's value.
"""
from __future__ import annotations

import bisect
import itertools

import numpy as np

from engine.metrics import MetricsLog
from gui.history import TRAIL, WATERFALL_ROWS, EventGroup, RunHistory

_versions = itertools.count(1)   # every PastMarks is a version no other marks object had


class PastRing:
    """Read-only rows, oldest first, with the reading side of gui.history.Ring."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.count = len(rows)

    def view(self) -> np.ndarray:
        return self.rows

    def last(self, default=float("nan")):
        return self.rows[-1] if self.count else default

    def first(self, default=float("nan")):
        return self.rows[0] if self.count else default

    def __len__(self):
        return self.count


class PastMarks:
    """The live history's coalesced events up to a step: groups after it dropped, the one across it
    cut there (its count from the events kept one by one, where they reach back that far)."""

    def __init__(self, marks, events, step: int):
        groups = []
        for group in marks.groups:
            if group.first > step:
                break
            if group.last > step:
                inside = [e for e in events if group.first <= e.step <= step
                          and (e.kind if e.kind in ("diverged", "exploded") else "changed") == group.kind]
                group = EventGroup(group.kind, group.first, inside[-1].step if inside else step, max(len(inside), 1),
                                   sum(e.kind == "rebuilt" for e in inside),
                                   inside[-1].detail if inside else group.detail)
            groups.append(group)
        self.groups = groups
        self.capacity, self.width, self.dropped = marks.capacity, marks.width, marks.dropped
        self.version = -next(_versions)  # never equal to a live version, nor to another replay's

    def __len__(self):
        return sum(g.count for g in self.groups)


class PastHistory:
    """A RunHistory as it stood after the training step `step` (see the module docstring)."""

    def __init__(self, live: RunHistory, index: int):
        """`index`: the position in `live.log` of the snapshot to show."""
        snapshots = list(live.log.snapshots)[:index + 1]
        later = len(live.log) - len(snapshots)  # steps the live history has after this one
        self.live = live
        self.latest = snapshots[-1]
        self.step = int(self.latest.step)
        self.info = live.info
        for name in ("steps", "loss", "metric", "held_out_loss", "grad_norm", "grad_norm_clipped", "grad_norm_layer",
                     "grad_norm_layer_clipped", "clipped", "first_last_ratio"):
            rows = getattr(live, name).view()  # one row per step, in every ring
            setattr(self, name, PastRing(rows[:max(len(rows) - later, 0)]))
        same_shape = [s for s in snapshots[-WATERFALL_ROWS:] if s.grad_h.shape == self.latest.grad_h.shape]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.waterfall = PastRing(np.array([np.log10(s.grad_h) for s in same_shape], dtype=np.float32))
        self.waterfall_steps = PastRing(np.array([s.step for s in same_shape], dtype=np.float64))
        self.trail = same_shape[-TRAIL:]
        self.events = [e for e in live.events if e.step <= self.step]
        self.event_marks = PastMarks(live.event_marks, self.events, self.step)
        self.log = MetricsLog()
        self.log.snapshots.extend(snapshots)
        self.steps_seen = live.steps_seen - later
        newer_clipped = live.clipped.view()[len(live.clipped) - later:] if later else ()
        self.clip_count = live.clip_count - int(np.count_nonzero(newer_clipped))
        diverged = [s.step for s in snapshots if s.diverged]
        self.diverged_at_step = diverged[-1] if diverged else None
        # the first explosion since the run's last rebuild, if it came by the shown step
        exploded = live.exploded_at_step
        self.exploded_at_step = exploded if exploded is not None and exploded <= self.step else None
        # the step seen closely that was on screen then: the latest at or before the shown step
        self.detail = next((d for d in reversed(live.details) if d.step <= self.step), None)

    def __getattr__(self, name):  # only for names not set above
        return getattr(self.live, name)


def kept_steps(history: RunHistory) -> tuple[int, int] | None:
    """The oldest and the newest step a replay of this run can show (None: nothing kept yet)."""
    log = history.log.snapshots
    return (int(log[0].step), int(log[-1].step)) if log else None


def history_at(history: RunHistory, step: int):
    """The history as it stood after `step` (the newest kept step at or before it; the oldest kept
    where `step` is older still). The live history itself where that is its newest step."""
    snapshots = history.log.snapshots
    if not snapshots:
        return history
    steps = [s.step for s in snapshots]
    index = max(bisect.bisect_right(steps, step) - 1, 0)
    if index == len(steps) - 1:
        return history
    return PastHistory(history, index)
