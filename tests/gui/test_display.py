"""The redraw scheduler's budget: a tick refreshes the views with news round-robin, as many as their learnt costs (a
refresh and the paint after it) fit in its budget, and draws nothing while the GUI thread has used more than its
share of a core; and the window's garbage
collection, paced by the GUI thread (gui/collection.py). Clocks are scripted: no test here waits on time."""
import gc
import weakref

import pytest
from PySide6.QtCore import QObject, Signal

from gui import display
from gui.collection import CollectionPacer
from gui.views.base import View


class Clock:
    def __init__(self):
        self.wall, self.cpu = 100.0, 10.0

    def spend(self, ms: float, cpu_share: float = 1.0):
        self.wall += ms / 1000
        self.cpu += cpu_share * ms / 1000


class Session(QObject):
    runs_rebuilt = Signal(bool)
    steps_arrived = Signal(int)
    details_arrived = Signal()
    settings_applied = Signal()
    shown_sequence_changed = Signal(object)
    shown_step_changed = Signal(object)

    def __init__(self):
        super().__init__()
        self.histories, self.shown_sequence, self.last_data_time, self.steps_per_second = [], None, None, None
        self.eigenvalues = []
        self.state = "running"

    def shown_histories(self):
        return []

    def want_detail(self, request):
        pass

    def want_eigenvalues(self, shown):
        self.eigenvalues.append(shown)


class Status:
    def update_diagnosis(self, histories):
        pass

    def set_rates(self, steps, fps):
        pass


class CostlyView(View):
    """A view whose refresh takes `ms` of the scripted clock, and its paint `paint_ms` (as its plots report it)."""
    def __init__(self, clock, ms, paint_ms=0.0):
        super().__init__()
        self.clock, self.ms, self.paint_ms, self.refreshes, self.settled = clock, ms, paint_ms, 0, 0

    def painted_ms(self):
        return self.paint_ms if self.refreshes else 0.0

    def refresh(self, histories):
        self.refreshes += 1
        self.clock.spend(self.ms)

    def settle(self):  # (after each refresh: the ranges fitted before the paint, test_views.py)
        assert self.settled == self.refreshes - 1
        self.settled += 1


@pytest.fixture
def scheduled(qtbot, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(display.time, "perf_counter", lambda: clock.wall)
    monkeypatch.setattr(display.time, "thread_time", lambda: clock.cpu)
    monkeypatch.setattr(display, "CPU_SHARE", 0.6)
    views = {f"v{k}": CostlyView(clock, 2.0) for k in range(6)}
    for view in views.values():
        qtbot.addWidget(view)
        view.show()
    session = Session()
    scheduler = display.DisplayScheduler(session, views, Status())
    return scheduler, views, clock, session


def test_a_view_not_drawn_yet_gets_a_tick_to_itself_and_the_next_goes_on_round_robin_to_those_with_news(scheduled):
    scheduler, views, clock, _ = scheduled
    scheduler.mark_all_dirty()
    for _ in range(4):
        scheduler.tick()
        clock.spend(16, cpu_share=0.0)  # the timer's interval, idle
    assert [v.refreshes for v in views.values()] == [1, 1, 1, 1, 0, 0] and scheduler.frames == 4
    assert [v.settled for v in views.values()] == [1, 1, 1, 1, 0, 0]
    scheduler.dirty.discard("v4")  # nothing new for v4: the next tick draws v5
    scheduler.tick()
    assert [v.refreshes for v in views.values()] == [1, 1, 1, 1, 0, 1] and not scheduler.dirty
    clock.spend(16, cpu_share=0.0)
    scheduler.tick()  # nothing has news: no frame
    assert scheduler.frames == 5


def test_a_tick_draws_as_many_views_as_their_learnt_costs_fit_in_its_budget(scheduled, monkeypatch):
    scheduler, views, clock, _ = scheduled
    monkeypatch.setattr(display, "TICK_BUDGET_MS", 6.0)
    views["v1"].paint_ms = 3.0  # its refresh 2 ms, its paint 3: 5 ms
    for _ in range(6):  # each view drawn once (one a tick while its cost is unknown)
        scheduler.mark_all_dirty()
        scheduler.tick()
        clock.spend(16, cpu_share=0.0)
    assert [v.refreshes for v in views.values()] == [1] * 6
    scheduler.mark_all_dirty()
    scheduler.tick()  # learns v5's cost; v0 (2 ms) fits, v1 (5 ms) would not: v1 is first at the next tick
    assert scheduler.cost_ms == pytest.approx({"v0": 2.0, "v1": 5.0, "v2": 2.0, "v3": 2.0, "v4": 2.0, "v5": 2.0})
    assert [v.refreshes for v in views.values()] == [2, 1, 1, 1, 1, 1]
    clock.spend(16, cpu_share=0.0)
    scheduler.tick()  # v1 (5 ms), then v2 (2 ms) would make 7
    assert [v.refreshes for v in views.values()] == [2, 2, 1, 1, 1, 1]
    clock.spend(16, cpu_share=0.0)
    scheduler.tick()  # v2, v3, v4: 6 ms
    assert [v.refreshes for v in views.values()] == [2, 2, 2, 2, 2, 1] and scheduler.frames == 9
    clock.spend(16, cpu_share=0.0)
    views["v5"].paint_ms = 20.0  # a view that alone is over the budget is still drawn, alone
    scheduler.tick()
    clock.spend(16, cpu_share=0.0)
    assert [v.refreshes for v in views.values()] == [2, 2, 2, 2, 2, 2] and not scheduler.dirty
    scheduler.mark_all_dirty()
    scheduler.tick()  # v5's cost learnt smoothed: 2 + 0.3 * (22 - 2) = 8 ms; v0, v1 fit
    assert scheduler.cost_ms["v5"] == pytest.approx(2.0 + display.COST_SMOOTHING * 20.0)
    assert [v.refreshes for v in views.values()] == [3, 2, 2, 2, 2, 2]  # v1 (5 ms) makes 7: next tick


def test_a_tick_draws_nothing_while_the_gui_thread_used_more_than_its_share_of_a_core(scheduled):
    scheduler, views, clock, _ = scheduled
    for _ in range(40):  # busy: 16 ms of wall clock, 14 of them the GUI thread's own (87%), new data every tick
        scheduler.mark_all_dirty()
        scheduler.tick()
        clock.spend(16, cpu_share=0.875)
    # ticks draw until a quarter second of the window is there to judge by (16 ticks of 16 ms), then stop, but
    # for one tick every MAX_FRAME_GAP_S (a 60 fps recording took the share by itself: its video stood still)
    assert 12 <= scheduler.frames <= 18 + 2
    skipped_from, drawn_at = scheduler.frames, []
    for _ in range(60):  # 0.96 s over the share
        scheduler.mark_all_dirty()
        frames = scheduler.frames
        scheduler.tick()
        if scheduler.frames > frames:
            drawn_at.append(clock.wall)
        clock.spend(16, cpu_share=0.875)
    gaps = [b - a for a, b in zip(drawn_at, drawn_at[1:])]
    assert 3 <= len(drawn_at) <= 4 and all(display.MAX_FRAME_GAP_S <= gap < display.MAX_FRAME_GAP_S + 0.02 for gap in gaps)
    skipped_from = scheduler.frames
    scheduler.session.state = "paused"  # the worker needs no core: the display may use it
    scheduler.mark_all_dirty()
    scheduler.tick()
    assert scheduler.frames == skipped_from + 1
    scheduler.session.state = "running"
    skipped_from = scheduler.frames
    for _ in range(40):  # idle for a while: drawing again, at every tick (not only the floor's few)
        clock.spend(16, cpu_share=0.1)
        scheduler.tick()
        scheduler.mark_all_dirty()
    assert scheduler.frames > skipped_from + 10


def test_without_a_cap_the_share_never_stops_a_tick(scheduled, monkeypatch):
    scheduler, views, clock, _ = scheduled
    monkeypatch.setattr(display, "CPU_SHARE", None)
    for _ in range(20):
        scheduler.mark_all_dirty()
        scheduler.tick()
        clock.spend(16, cpu_share=1.0)
    assert scheduler.frames == 20


class BuildingView(CostlyView):
    """A CostlyView whose set_runs (its curves and legends made again) takes `build_ms`, and which records what it
    was given and whether it was drawn before it was given the run set."""
    def __init__(self, clock, ms, build_ms):
        super().__init__(clock, ms)
        self.build_ms, self.built, self.cleared, self.stale_refreshes, self.wishes = build_ms, [], 0, 0, 0

    def set_runs(self, infos):
        self.built.append(list(infos))
        self.clock.spend(self.build_ms)

    def clear(self):
        self.cleared += 1

    def refresh(self, histories):
        super().refresh(histories)
        self.stale_refreshes += not self.built

    def detail_wish(self):
        self.wishes += 1
        return None


def test_a_new_run_set_is_given_to_each_view_when_it_is_next_drawn_one_a_tick_not_all_at_once(qtbot, monkeypatch):
    """Eight views' set_runs took 45-110 ms in one turn of the event loop at a lesson change: each is now given the
    run set at its next draw, one such a tick (its set_runs is left out of its learnt cost); a fresh run set's
    figures are cleared at once; a view not on screen is given it when shown, or exported."""
    clock = Clock()
    monkeypatch.setattr(display.time, "perf_counter", lambda: clock.wall)
    monkeypatch.setattr(display.time, "thread_time", lambda: clock.cpu)
    views = {f"v{k}": BuildingView(clock, 2.0, 20.0) for k in range(5)}
    for key, view in views.items():
        qtbot.addWidget(view)
        view.setVisible(key != "v4")  # v4: a view in a tab behind another
    session = Session()
    session.infos = ["lesson A's run"]
    scheduler = display.DisplayScheduler(session, views, Status())
    session.runs_rebuilt.emit(True)
    assert [v.cleared for v in views.values()] == [1] * 5 and all(v.built == [] for v in views.values())
    ticks = []
    for _ in range(4):
        start = clock.wall
        scheduler.tick()
        ticks.append(round((clock.wall - start) * 1000))
        clock.spend(16, cpu_share=0.0)
    assert ticks == [22] * 4  # one set_runs and its refresh a tick, never 4 x 22 ms in one
    assert [len(v.built) for v in views.values()] == [1, 1, 1, 1, 0] and scheduler.unbuilt == {"v4"}
    assert scheduler.cost_ms == pytest.approx({f"v{k}": 2.0 for k in range(3)})  # (v3's is learnt at the next tick)
    assert all(v.stale_refreshes == 0 for v in views.values()) and views["v4"].wishes == 0

    session.infos = ["lesson B's run 1", "lesson B's run 2"]
    session.runs_rebuilt.emit(False)  # a rebuild that keeps the figures (a setting's change): none cleared
    assert [v.cleared for v in views.values()] == [1] * 5
    scheduler.tick()  # v0: built again (22 ms with its refresh: alone, its cost with a set_runs is over the budget)
    assert [len(v.built) for v in views.values()] == [2, 1, 1, 1, 0]
    assert views["v0"].built[-1] == session.infos
    views["v4"].show()
    for _ in range(4):
        clock.spend(16, cpu_share=0.0)
        scheduler.tick()
    assert [len(v.built) for v in views.values()] == [2, 2, 2, 2, 1] and not scheduler.unbuilt
    assert views["v4"].built == [session.infos] and views["v4"].stale_refreshes == 0

    views["v1"].hide()
    session.runs_rebuilt.emit(True)
    scheduler.bring_up_to_date("v1")  # (an export of a hidden view)
    assert views["v1"].built[-1] == session.infos and "v1" not in scheduler.unbuilt and "v1" not in scheduler.dirty


def test_a_view_whose_set_runs_fails_is_reported_once_and_the_others_go_on(qtbot, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(display.time, "perf_counter", lambda: clock.wall)
    views = {f"v{k}": BuildingView(clock, 1.0, 1.0) for k in range(3)}
    for view in views.values():
        qtbot.addWidget(view)
        view.show()

    def broken(infos):
        raise ValueError("no such layer")
    views["v1"].set_runs = broken
    session = Session()
    session.infos = ["a run"]
    scheduler = display.DisplayScheduler(session, views, Status())
    errors = []
    scheduler.errored.connect(lambda message, trace: errors.append(message))
    for _ in range(2):
        session.runs_rebuilt.emit(True)
        for _ in range(3):
            scheduler.tick()
            clock.spend(16)
    assert errors == ["The v1 view failed to draw: ValueError: no such layer"]
    assert [len(v.built) for v in views.values()] == [2, 0, 2] and views["v1"].refreshes == 0


def test_the_pacer_collects_cycles_on_its_own_thread_with_automatic_collection_off(qtbot):
    class Node:
        pass
    pacer = CollectionPacer()
    was_enabled = gc.isenabled()
    pacer.start()
    try:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        node = Node()
        node.me = node  # a cycle: only a collection frees it
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        pacer.collect()  # what the timer calls
        assert alive() is None
        assert pacer.timer.isActive()
    finally:
        pacer.stop()
    assert gc.isenabled() == was_enabled and gc.get_freeze_count() == 0 and not pacer.timer.isActive()


def test_the_automatic_range_of_a_curve_plot_stays_while_the_data_stay_inside_it(qtbot):
    """A range that moves at every frame re-lays out the axes' ticks and the grid at every frame (about half of a
    curve plot's frame): the automatic range keeps its bounds while the data stay inside and fill 75% of them,
    through pyqtgraph's own update (which asks for the bounds with frac [1.0, 1.0])."""
    import numpy as np
    import pyqtgraph as pg
    from gui.views._legends import LegendRoomViewBox
    box = LegendRoomViewBox()
    widget = pg.PlotWidget(viewBox=box)
    qtbot.addWidget(widget)
    widget.resize(300, 200)
    widget.show()
    curve = widget.plot(np.arange(10), np.linspace(-26.0, -1.0, 10))
    box.updateAutoRange()
    first = box.viewRange()
    moves = []
    box.sigRangeChanged.connect(lambda *args: moves.append(box.viewRange()))
    for k in range(6):  # a new step's profile, a little higher or lower each time, inside the range kept
        curve.setData(np.arange(10), np.linspace(-26.0, -1.0, 10) + (0.15 if k % 2 else -0.15))
        box.updateAutoRange()
    assert moves == [] and box.viewRange() == first
    curve.setData(np.arange(10), np.linspace(-26.0, 5.0, 10))  # out of it: the range follows, with room
    box.updateAutoRange()
    assert len(moves) == 1 and box.viewRange()[1][1] > 5.0


def test_a_legend_filled_while_held_is_laid_out_once_and_as_it_would_have_been(qtbot, monkeypatch):
    """The display gives a view the run set with its legends held (gui/views/_legends.legends_held): pyqtgraph lays
    a legend out at each entry added or removed, and each layout fits it again; held, once at the end, the same."""
    import pyqtgraph as pg
    from gui.views._legends import add_legend, legends_held
    layouts = []
    own = pg.LegendItem.updateSize
    monkeypatch.setattr(pg.LegendItem, "updateSize", lambda self: (layouts.append(self), own(self))[1])

    def plot_with_legend():
        widget = pg.PlotWidget()
        qtbot.addWidget(widget)
        widget.resize(260, 160)
        widget.show()
        legend = add_legend(widget.getPlotItem())
        legend.addItem(widget.plot([0, 1], [0, 1]), "the run before")
        return widget, legend

    def fill(widget, legend):
        legend.clear()
        for k in range(6):
            legend.addItem(widget.plot([0, 1], [k, k + 1]), f"run {k + 1} of a compare lesson")

    (plain, plain_legend), (held, held_legend) = plot_with_legend(), plot_with_legend()
    fill(plain, plain_legend)
    layouts.clear()
    with legends_held(held):
        fill(held, held_legend)
        assert layouts == []
    assert layouts == [held_legend]
    pg.QtWidgets.QApplication.processEvents()
    looks = [(lg.boundingRect(), lg.scale(), lg.isVisible(), lg.columnCount, len(lg.items)) for lg in (plain_legend, held_legend)]
    assert looks[0] == looks[1] and looks[0][4] == 6
