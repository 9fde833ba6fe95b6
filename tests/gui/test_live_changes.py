"""Live setting changes that pile up: a thousand cost what the first did, and the last one shows.

The history keeps every event since the run started coalesced into a bounded number of groups; the
loss view draws a bounded number of markers whose tooltips count the events they stand for; the run
info (`RunHistory.info.config`) carries each live change as soon as the worker applied it. Counts,
not times: benchmarks/bench_live_changes.py measures the time.
"""
from __future__ import annotations

import dataclasses
import re

from engine.config import Config
from engine.trainer import Event, Trainer
from engine.worker import run_info
from gui.history import EVENT_GROUPS, EventMarks, RunHistory
from gui.session import RunSession
from gui.views.loss import MAX_MARKERS, LossView

TINY = Config(seq_len=6, hidden=4, batch=2, device="cpu")


def lr_for(change: int) -> float:
    """A different learning rate from the one before, every time."""
    return round(0.001 * (1.0 + (change % 97 + 1) / 100.0), 8)


def counted(view) -> list[tuple[int, int, int]]:
    """(events, first step, last step) each shown marker says it stands for, read from its tooltip."""
    out = []
    for top, _ in view.markers:
        if not top.isVisible():
            continue
        tip = top.toolTip()
        many = re.match(r"(\d+) changes (?:between steps (\d+) and (\d+)|at step (\d+))", tip)
        if many:
            first = int(many[2] or many[4])
            out.append((int(many[1]), first, int(many[3] or many[4])))
        else:
            step = int(re.match(r"step (\d+): ", tip)[1])
            out.append((1, step, step))
    return out


def test_event_marks_keep_every_event_counted_in_a_bounded_number_of_groups():
    marks = EventMarks()
    steps = [1 + (k * 37) // 10 for k in range(1000)]    # 1,000 changes over 3,700 steps, some on one step
    for step in steps:
        marks.add(Event(step, "changed", f"lr {step}"))
    marks.add(Event(3800, "diverged", "loss became NaN"))
    assert len(marks.groups) <= EVENT_GROUPS and len(marks) == 1001 and marks.dropped == 0
    assert [g.first for g in marks.groups] == sorted(g.first for g in marks.groups)
    assert all(g.last - g.first < marks.width for g in marks.groups)
    changes = [g for g in marks.groups if g.kind == "changed"]
    assert sum(g.count for g in changes) == 1000 and changes[-1].detail == f"lr {steps[-1]}"
    assert marks.groups[-1].kind == "diverged" and marks.groups[-1].first == 3800  # a marker of its own


def test_the_loss_view_coalesces_close_changes_into_markers_that_say_how_many(qtbot):
    trainer = Trainer(TINY)
    history = RunHistory(run_info(0, trainer))
    trained = [trainer.step() for _ in range(4)]
    history.extend([dataclasses.replace(trained[k % 4], step=k + 1) for k in range(1000)])  # 1,000 steps
    steps = [320 + 2 * k for k in range(12)] + [700] + [900 + k for k in range(200)]
    history.add_events([Event(step, "changed", f"lr 0.001 -> {step}") for step in steps])
    view = LossView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.set_runs([history.info])
    view.refresh([history])
    shown = counted(view)
    assert len(shown) <= MAX_MARKERS and len(shown) < len(steps)
    assert sum(n for n, _, _ in shown) == len(steps)              # every change counted, none twice
    for step in steps:                                            # and each inside the steps its marker names
        assert any(first <= step <= last for _, first, last in shown), step
    assert (1, 700, 700) in shown                                 # a lone change keeps its own words
    lone = next(top for top, _ in view.markers if top.isVisible() and top.value() == 700)
    assert lone.full_text == "lr 0.001 -> 700" and "step 700: changed: lr 0.001 -> 700" in lone.toolTip()


def test_a_thousand_live_changes_draw_a_bounded_number_of_markers_and_show_the_last_lr(qtbot):
    """Compare mode, run 2's learning rate changed a thousand times while training: the loss view
    never holds more than MAX_MARKERS markers, which together count all thousand changes, and the run
    info (and with it run 2's legend label) says the last learning rate once the worker applied it."""
    session = RunSession([TINY, TINY.replace(lr=0.002)], in_process=True)
    view = LossView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    try:
        qtbot.waitUntil(lambda: len(session.histories) == 2, timeout=20_000)
        session.play()
        held = []
        for change in range(1000):
            lr = lr_for(change)
            session.apply_configs([TINY, TINY.replace(lr=lr)])
            if change % 20 == 19:  # some changes share a step, and the steps go on between them
                trained = session.training_steps
                qtbot.waitUntil(lambda: session.training_steps > trained, timeout=20_000)
                view.refresh(session.histories)
                held.append(len(view.markers))
        qtbot.waitUntil(lambda: session.histories[1].info.config.lr == lr, timeout=20_000)
        qtbot.waitUntil(lambda: len(session.histories[1].event_marks) == 1000, timeout=20_000)
        view.refresh(session.histories)
        held.append(len(view.markers))
        assert max(held) <= MAX_MARKERS
        assert sum(n for n, _, _ in counted(view)) == 1000 and len(session.histories[0].event_marks) == 0
        assert session.histories[1].info.config == TINY.replace(lr=lr)
        assert session.histories[0].info.config == TINY
        assert f"run 2: lr {lr}" in [label.text for _, label in view.legend.items]
    finally:
        session.shutdown()


def test_kinds_that_alternate_for_ever_still_keep_the_groups_bounded():
    """A run that diverges after every change cannot merge its groups: the oldest go, and are counted."""
    marks = EventMarks(capacity=20)
    for k in range(500):
        marks.add(Event(k, ("changed", "diverged")[k % 2], "x"))
    assert len(marks.groups) <= 20 and len(marks) + marks.dropped == 500


def test_a_compared_runs_marker_counts_what_each_run_had():
    from gui.history import EventGroup
    from gui.views.loss import marker_spec
    every_run = EventGroup("changed", 10, 14, 3, 0, "clip none -> norm")
    step, diverged, text, tooltip = marker_spec("changed", {0: every_run, 1: every_run}, 2)
    assert (step, diverged, text) == (10, False, "3 changes")    # the same changes in each run: said once
    assert tooltip == "3 changes between steps 10 and 14; the last: clip none -> norm"
    run_2 = EventGroup("changed", 12, 12, 1, 0, "lr 0.001 -> 0.002")
    step, _, text, tooltip = marker_spec("changed", {0: every_run, 1: run_2}, 3)
    assert (step, text) == (10, "4 changes")
    assert tooltip.splitlines() == ["4 changes between steps 10 and 14 over the runs:",
                                    "run 1: 3 changes between steps 10 and 14; the last: clip none -> norm",
                                    "run 2: step 12: lr 0.001 -> 0.002"]
    _, _, text, tooltip = marker_spec("changed", {2: run_2}, 3)
    assert text == "lr 0.001 -> 0.002" and tooltip == "step 12: changed: lr 0.001 -> 0.002 (run 3)"
    blew_up = EventGroup("diverged", 40, 40, 1, 0, "loss became NaN")
    assert marker_spec("diverged", {1: blew_up}, 2) == (40, True, "diverged (run 2)",
                                                         "run 2, step 40: diverged: loss became NaN")
    # a lesson's runs: named as its legend names them (dead-units: "exploded (run 3)" beside "ReLU (before)")
    assert marker_spec("diverged", {1: blew_up}, 2, ["Leaky ReLU", "ReLU (before)"]) == (
        40, True, "diverged (ReLU (before))", "ReLU (before), step 40: diverged: loss became NaN")
    _, _, _, tooltip = marker_spec("changed", {0: every_run, 1: run_2}, 2, ["LSTM", "GRU"])
    assert tooltip.splitlines()[1:] == ["LSTM: 3 changes between steps 10 and 14; the last: clip none -> norm",
                                        "GRU: step 12: lr 0.001 -> 0.002"]
