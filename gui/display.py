"""The redraw scheduler: the views and the status bar's badges, redrawn at display rate at most.

GUI thread only. It subscribes to the run session: a rebuilt run set or new data marks the views
dirty, and a display-rate QTimer redraws the dirty, visible ones round-robin, as many a tick as fit in
TICK_BUDGET_MS. A view's cost is learnt as it is drawn: its refresh, timed, and the paint that follows
in the same turn of the event loop (its plot areas, `PlotArea`, time their paints: `View.painted_ms`; the
Unrolled view's own canvas is not timed, so it counts by its refresh), smoothed; a view not yet drawn gets
a tick to itself. A paint costs 1-6 times the refresh before it (`bench_gui.py
--stalls`), so drawing every dirty view in one tick held the window 40 ms and more; one a tick left the
GUI thread idle most of each frame (each view redrawn 7 times a second out of 8); the budget keeps each
frame short and draws each view as often as the frames' spare time allows. The timer slows when a tick
makes it late all the same (`_pace`). On a machine of two cores or fewer, while the worker trains, a
tick draws nothing while the GUI thread has used more than CPU_SHARE of a core over the last half
second, so that the worker keeps its core and Xvfb or the compositor the rest of the other; but one tick every
MAX_FRAME_GAP_S draws all the same (a 60 fps recording, grabbing the window, could take the share by itself,
and the views stood still in its video). Views get
the session's histories and nothing else: those it shows (`shown_histories`: live, or as they stood at
a replay's step; a new step shown is news too). The diagnosis badges follow at most every
DIAGNOSIS_INTERVAL_S while data streams in, and at once for the last of it. A view that fails to draw
is reported once and skipped; the others go on. Each tick it also asks the session for the steps seen
closely (engine.detail) that the visible views wish to show, or for none: a hidden units view costs
the training nothing.
"""
from __future__ import annotations

import collections
import os
import time
import traceback

from PySide6.QtCore import QObject, QTimer, Signal

from engine.detail import DetailRequest
from gui.views._legends import legends_held

DISPLAY_INTERVAL_MS = 16         # ~60 Hz redraws at most
DIAGNOSIS_INTERVAL_S = 0.25      # badges need not update every frame
PACE_LATE_MS = 12.0              # a display tick this late means the last one drew too much
MAX_INTERVAL_MS = 100
CPU_SHARE = 0.6 if (os.cpu_count() or 1) <= 2 else None  # see the module docstring; None: no cap
CPU_WINDOW_S = 0.5
MAX_FRAME_GAP_S = 0.25           # ... but a tick draws at least this often: the views never stand still
TICK_BUDGET_MS = 6.0             # the views' refreshes and paints a tick may start (of a 16.7 ms frame)
COST_SMOOTHING = 0.3             # weight of a view's latest cost in its running estimate


class DisplayScheduler(QObject):
    errored = Signal(str, str)   # a view failed to draw: message, traceback

    def __init__(self, session, views: dict, status, parent=None):
        super().__init__(parent)
        self.session, self.views, self.status = session, views, status
        self.frames = 0                    # ticks that redrew at least one view
        self.first_frame_time: float | None = None
        self.broken_views: set[str] = set()
        self.dirty: set[str] = set()       # views with data they have not drawn yet
        self.unbuilt: set[str] = set()     # views not yet given the run set (set_runs) since it was rebuilt
        self._next_view = 0
        self.cost_ms: dict[str, float] = {}  # each view's refresh and paint, learnt (see the module docstring)
        self._drawn: list[tuple[str, float]] = []  # (view, ms of its refresh) drawn by the last tick
        self._cpu_samples: collections.deque = collections.deque()  # (wall, GUI thread's CPU) at recent ticks
        self._last_tick: float | None = None
        self._last_diagnosis = 0.0
        self._undiagnosed = False          # steps arrived that the badges have not looked at yet
        self._frame_times: collections.deque = collections.deque(maxlen=120)
        self.timer = QTimer(self)
        self.timer.setInterval(DISPLAY_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)
        session.runs_rebuilt.connect(self._on_runs_rebuilt)
        session.steps_arrived.connect(self._on_data)
        session.details_arrived.connect(self._on_data)
        session.settings_applied.connect(self._on_data)
        session.shown_sequence_changed.connect(self._on_data)
        session.shown_step_changed.connect(self._on_data)
        if session.histories:  # a run set built before this scheduler listened
            self._on_runs_rebuilt(True)

    def start(self):
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def shutdown(self):
        """The window closes: no more redraws, and each view ends what it runs off the GUI thread."""
        self.stop()
        for view in self.views.values():
            view.shutdown()

    def mark_all_dirty(self):
        self.dirty.update(self.views)

    # ------------------------------------------------------------------ session signals
    def _on_runs_rebuilt(self, fresh: bool):
        """A new run set: each view is given it (set_runs: its curves, legends, labels made again) when it is
        next drawn, within the tick's budget, not all here at once (eight views' set_runs took 45-110 ms, a
        lesson change's stall); a fresh one's figures are cleared at once, so none of the run set before stays."""
        for view in self.views.values() if fresh else ():
            view.clear()
        if fresh:
            self._undiagnosed = True
            self._last_diagnosis = 0.0
        self.unbuilt.update(self.views)
        self.mark_all_dirty()  # redrawn round-robin by the timer, not all at once

    def bring_up_to_date(self, key: str):
        """Give one view the run set and the histories now, shown or not (an export of it)."""
        self._refresh(key, self.views[key])

    def _on_data(self, *_):
        self.mark_all_dirty()
        self._undiagnosed = True

    # ------------------------------------------------------------------ the display tick
    def tick(self):
        now = time.perf_counter()
        self._pace(now)
        visible = self.visible_views()
        built = [v for k, v in visible.items() if k not in self.unbuilt]
        wishes = [v.detail_wish() for v in built]
        self.session.want_eigenvalues(any(v.reads_eigenvalues for v in built))
        if self.session.shown_sequence is not None:  # every view of the latest step shows that sequence
            wishes.append({"sequence": self.session.shown_sequence})
        self.session.want_detail(detail_request(wishes))
        last_data = self.session.last_data_time
        if self._undiagnosed and (now - self._last_diagnosis >= DIAGNOSIS_INTERVAL_S
                                  or now - (last_data or 0.0) > 0.1):
            self._undiagnosed = False
            self._last_diagnosis = now
            self.status.update_diagnosis(self.session.shown_histories())
        held_back = self.session.state == "running" and self._over_cpu_share(now)
        starved = bool(self._frame_times) and now - self._frame_times[-1] >= MAX_FRAME_GAP_S
        if (not held_back or starved) and self._redraw_some(visible):
            self.frames += 1
            if self.first_frame_time is None:
                self.first_frame_time = now
            self._frame_times.append(now)
            recent = [t for t in self._frame_times if now - t <= 1.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else None
            self.status.set_rates(self.session.steps_per_second, fps)

    def _pace(self, now: float):
        """Slow the timer while it fires late (a tick's views took longer to paint than a display frame on
        a slow or busy machine), leaving the CPU to the worker; speed it up again once it is on time."""
        if self._last_tick is not None:
            late = (now - self._last_tick) * 1000.0 - self.timer.interval()
            if late > PACE_LATE_MS:
                self.timer.setInterval(min(MAX_INTERVAL_MS, self.timer.interval() + 4))
            elif late < PACE_LATE_MS / 3 and self.timer.interval() > DISPLAY_INTERVAL_MS:
                self.timer.setInterval(max(DISPLAY_INTERVAL_MS, self.timer.interval() - 2))
        self._last_tick = now

    def _over_cpu_share(self, now: float) -> bool:
        """Whether the GUI thread used more than CPU_SHARE of a core over the last CPU_WINDOW_S (never without a cap)."""
        if CPU_SHARE is None:
            return False
        samples = self._cpu_samples
        samples.append((now, time.thread_time()))  # this, the GUI thread's, alone: not a map measured beside it
        while len(samples) > 2 and now - samples[1][0] >= CPU_WINDOW_S:
            samples.popleft()
        (wall, cpu), (wall_now, cpu_now) = samples[0], samples[-1]
        return wall_now - wall >= CPU_WINDOW_S / 2 and (cpu_now - cpu) > CPU_SHARE * (wall_now - wall)

    def _redraw_some(self, visible: dict) -> bool:
        """Refresh the visible views that have new data, round-robin, as many as their learnt costs fit in
        TICK_BUDGET_MS (at least one; see the module docstring)."""
        self._learn_costs()
        keys = list(self.views)
        if not keys or not self.dirty:
            return False
        spent, first = 0.0, self._next_view
        for position in range(first, first + len(keys)):
            key = keys[position % len(keys)]
            if key in self.dirty and key in visible:
                cost = self.cost_ms.get(key, TICK_BUDGET_MS) + (TICK_BUDGET_MS if key in self.unbuilt else 0.0)
                if self._drawn and spent + cost > TICK_BUDGET_MS:
                    self._next_view = position  # first in the next tick
                    break
                start = time.perf_counter()
                building_ms = self._refresh(key, visible[key])
                self._drawn.append((key, (time.perf_counter() - start) * 1000.0 - building_ms))
                spent += cost
                self._next_view = position + 1
        self._next_view %= len(keys)
        return bool(self._drawn)

    def _learn_costs(self):
        """Each view the last tick drew: its refresh and the paint since, into its running cost (a view that
        cannot say its paint's cost is counted by its refresh: it must not stop the display)."""
        drawn, self._drawn = self._drawn, []
        for key, refresh_ms in drawn:
            try:
                cost = refresh_ms + self.views[key].painted_ms()
            except Exception:
                cost = refresh_ms
            known = self.cost_ms.get(key)
            self.cost_ms[key] = cost if known is None else known + COST_SMOOTHING * (cost - known)

    def visible_views(self) -> dict:
        # (visibleRegion() is no help: a plot covered by its own children reports an empty region)
        return {k: v for k, v in self.views.items()
                if v.isVisible() and v.width() > 0 and v.height() > 0 and not v.window().isMinimized()}

    def _refresh(self, key, view) -> float:
        """Draw one view (given the run set first where it has not been); the ms its set_runs took, a one-off
        left out of its learnt cost."""
        self.dirty.discard(key)
        building_ms = 0.0
        try:
            if key in self.unbuilt:
                start = time.perf_counter()
                self.unbuilt.discard(key)
                with legends_held(view):  # (each legend laid out once, not at each entry)
                    view.set_runs(self.session.infos)
                building_ms = (time.perf_counter() - start) * 1000.0
            view.refresh(self.session.shown_histories())
            view.settle()
        except Exception as exc:  # one broken view must not stop the others or the window
            if key not in self.broken_views:
                self.broken_views.add(key)
                self.errored.emit(f"The {key} view failed to draw: {type(exc).__name__}: {exc}",
                                  traceback.format_exc())
        return building_ms


def detail_request(wishes) -> DetailRequest | None:
    """One request for the worker from what the visible views wish to see closely (None: nothing):
    the layer they name when they agree (every layer when they do not; the first when none names one:
    the per-sequence profiles cover every layer anyway), the first sequence named, and the connectivity
    map when any wants it."""
    wishes = [w for w in wishes if w]
    if not wishes:
        return None
    layers = {w["layer"] for w in wishes if "layer" in w}
    sequences = [w["sequence"] for w in wishes if w.get("sequence") is not None]
    return DetailRequest(layer=layers.pop() if len(layers) == 1 else None if layers else 0,
                         sequence=sequences[0] if sequences else 0,
                         connectivity=any(w.get("connectivity") for w in wishes))
