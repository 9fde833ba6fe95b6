"""The replay scrubber: every view, badge, the status bar and exports show the step chosen, and back to live.

The truth for a past step is independent of gui/history_at_step.py: a RunHistory fed only the snapshots up to
that step (a history that never saw the later ones), or the snapshot of that step in the live log.
"""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.config import Config
from engine.metrics import MetricsLog
from engine.trainer import RunDiverged, Trainer
from engine.worker import run_info
from gui.history import RunHistory
from gui.history_at_step import PastHistory, history_at

TIMEOUT = 30_000
SMALL = Config(seq_len=12, hidden=8, batch=4)


# ----------------------------------------------------------------------------- the history at a step

def train(config: Config, steps: int, changes: dict | None = None):
    """Snapshots of `steps` training steps (fewer where the run diverges); `changes`: step -> lr,
    set before that step (a live change, an event)."""
    trainer = Trainer(config)
    info = run_info(0, trainer)
    snapshots = []
    for step in range(1, steps + 1):
        if changes and step in changes:
            trainer.update_config(trainer.config.replace(lr=changes[step]))
        try:
            snapshots.append(trainer.step())
        except RunDiverged:
            break
    return info, snapshots


def fed(info, snapshots) -> RunHistory:
    history = RunHistory(info)
    history.extend(snapshots)
    return history


RINGS = ("steps", "loss", "metric", "grad_norm", "grad_norm_clipped", "grad_norm_layer",
         "grad_norm_layer_clipped", "clipped", "first_last_ratio", "waterfall", "waterfall_steps")


def assert_same(past, truth: RunHistory, rings=RINGS):
    for name in rings:
        np.testing.assert_array_equal(getattr(past, name).view(), getattr(truth, name).view(), err_msg=name)
        assert len(getattr(past, name)) == len(getattr(truth, name)), name
    assert past.steps.last() == truth.steps.last() and past.steps.first() == truth.steps.first()
    assert past.latest is truth.latest
    if "waterfall" in rings:
        assert [s.step for s in past.trail] == [s.step for s in truth.trail]
    assert (past.steps_seen, past.clip_count, past.diverged_at_step) == \
        (truth.steps_seen, truth.clip_count, truth.diverged_at_step)
    assert past.event_marks.groups == truth.event_marks.groups
    assert list(past.events) == list(truth.events)
    if "waterfall" in rings:
        assert [s.step for s in past.log.snapshots] == [s.step for s in truth.log.snapshots]


def test_a_history_at_a_step_is_the_history_that_stopped_there():
    # clipping fires at some steps only; live changes at 20, 21 and 23 make one event group across step 22
    info, snapshots = train(SMALL.replace(clip="norm", clip_threshold=3.0), 340, {20: 0.002, 21: 0.003, 23: 0.004})
    assert 0 < sum(s.clipped for s in snapshots) < len(snapshots)
    live = fed(info, snapshots)
    for step in (1, 2, 19, 20, 21, 22, 23, 150, 301, 339):  # 301 on: the waterfall's 300 rows, all from the log
        past = history_at(live, step)
        assert isinstance(past, PastHistory) and past.step == step
        assert_same(past, fed(info, snapshots[:step]))
    assert history_at(live, 340) is live and history_at(live, 10_000) is live  # the newest step is live


def test_a_past_step_before_divergence_has_not_diverged():
    info, snapshots = train(SMALL.replace(optimizer="sgd", lr=10.0), 60)
    diverged = snapshots[-1].step
    assert snapshots[-1].diverged and diverged < 60
    live = fed(info, snapshots)
    assert live.diverged_at_step == diverged
    for step in (1, diverged - 1):
        past = history_at(live, step)
        assert past.diverged_at_step is None
        assert_same(past, fed(info, snapshots[:step]))


def test_a_step_older_than_those_kept_shows_the_oldest_kept():
    info, snapshots = train(SMALL, 60)
    live = RunHistory(info)
    live.log = MetricsLog(max_rows=25)  # keeps the newest 25 full snapshots: steps 36..60
    live.extend(snapshots)
    for step in (1, 35, 36, 37):
        past = history_at(live, step)
        shown = max(step, 36)
        assert past.latest is snapshots[shown - 1] and past.steps.last() == shown
        # the curves go back further than the full snapshots; the waterfall and the trail, made of
        # these, start at the oldest kept
        assert_same(past, fed(info, snapshots[:shown]), rings=RINGS[:-2])
        assert list(past.waterfall_steps.view()) == list(range(36, shown + 1))
        assert [s.step for s in past.trail] == list(range(max(36, shown - 7), shown + 1))
        assert [s.step for s in past.log.snapshots] == list(range(36, shown + 1))


# ----------------------------------------------------------------------------- the window

def drawn(window):
    """Every view redrawn from what the session shows now (the display timer's work, done at once)."""
    window.session.drain()
    window.display.mark_all_dirty()
    for _ in range(4 * len(window.views)):
        window.display.tick()
        if not window.display.dirty:
            break
    window.display.tick()


def snapshot_at(history, step):
    return next(s for s in history.log.snapshots if s.step == step)


def check_views_show(window, step):
    """The loss curves end at `step` with its loss; the influence curves are its grad_x; the waterfall
    ends at its grad_h; the status bar says so: for every run."""
    histories = window.session.histories
    loss, influence, waterfall = (window.views[k] for k in ("loss", "attribution", "waterfall"))
    for run, history in enumerate(histories):
        snap = snapshot_at(history, step)
        x, y = loss.loss_curves[run].xData, loss.loss_curves[run].yData
        assert x[-1] == step and y[-1] == pytest.approx(snap.loss)
        np.testing.assert_allclose(influence.curves[run].yData, snap.grad_x, rtol=1e-6)
    snap = snapshot_at(histories[waterfall.selectors.run_index(len(histories))], step)
    image = waterfall.image.image
    assert image.shape[0] == min(step, 300)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(image[-1], np.log10(snap.grad_h[0]), rtol=1e-5)
    assert window.status.step.text() == (f"step {step:,} (replay)" if window.session.shown_step is not None
                                         else f"step {step:,}")


@pytest.fixture
def trained_compare_window(make_window, qtbot):
    """Two compared runs with every view, 30 steps trained, paused."""
    from gui.views import ALL_VIEWS
    window = make_window([SMALL, SMALL.replace(lr=0.01)], view_classes=ALL_VIEWS)
    window.resize(2560, 1600)  # every view side by side: one in a tab behind another is not drawn
    window.session.play()
    qtbot.waitUntil(lambda: min(len(h.steps) for h in window.session.histories) >= 30, timeout=TIMEOUT)
    window.session.pause()
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=TIMEOUT)
    window.session.drain()
    return window


def test_scrubbing_shows_every_view_at_that_step_and_live_returns(trained_compare_window, qtbot):
    window = trained_compare_window
    session, bar = window.session, window.replay
    newest = session.replay_span()[1]
    assert session.replay_span() == (1, newest) and bar.mark.text() == "LIVE"
    with qtbot.waitSignal(session.shown_step_changed):
        bar.slider.setValue(12)  # what dragging the handle does
    assert session.shown_step == 12 and bar.box.value() == 12 and bar.mark.text() == "REPLAY"
    drawn(window)
    check_views_show(window, 12)
    # the keys: one step, ten steps, the oldest kept, live
    for key, modifier, expected in ((Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, 11),
                                    (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, 12),
                                    (Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier, 22),
                                    (Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier, 12),
                                    (Qt.Key.Key_Home, Qt.KeyboardModifier.NoModifier, 1)):
        qtbot.keyClick(window, key, modifier)
        assert session.shown_step == expected and bar.slider.value() == expected
    drawn(window)
    check_views_show(window, 1)
    assert len(session.histories[0].steps) == newest  # nothing trained while replaying
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert session.shown_step is None and bar.mark.text() == "LIVE" and bar.slider.value() == newest
    drawn(window)
    check_views_show(window, newest)


def test_a_typed_step_is_shown_and_dragging_to_the_end_is_live(trained_compare_window, qtbot):
    window = trained_compare_window
    session, bar = window.session, window.replay
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert bar.box.hasFocus()
    qtbot.keyClicks(bar.box, "7")
    assert session.shown_step is None  # not while typing
    qtbot.keyClick(bar.box, Qt.Key.Key_Return)
    assert session.shown_step == 7 and bar.slider.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_Left)  # the keys step again, not the box's cursor
    assert session.shown_step == 6
    qtbot.keyClick(window, Qt.Key.Key_Right)
    drawn(window)
    check_views_show(window, 7)
    bar.slider.setValue(bar.slider.maximum())
    assert session.shown_step is None and bar.mark.text() == "LIVE"


def test_the_badges_show_the_step_shown(make_window, qtbot):
    window = make_window([SMALL.replace(optimizer="sgd", lr=10.0)])
    session = window.session
    session.play()
    qtbot.waitUntil(lambda: session.state == "diverged", timeout=TIMEOUT)
    session.drain()
    diverged = session.histories[0].diverged_at_step
    badged = lambda: any("diverged" in text for text in window.status.badge_texts())  # noqa: E731
    qtbot.waitUntil(badged, timeout=TIMEOUT)  # the display timer diagnoses what is shown
    session.show_step(diverged - 1)
    qtbot.waitUntil(lambda: not badged(), timeout=TIMEOUT)
    assert window.status.step.text() == f"step {diverged - 1} (replay)"
    session.show_step(None)
    qtbot.waitUntil(badged, timeout=TIMEOUT)


def test_scrubbing_pauses_training_and_play_returns_to_live(make_window, qtbot):
    window = make_window()
    session = window.session
    session.play()
    qtbot.waitUntil(lambda: len(session.histories[0].steps) >= 10, timeout=TIMEOUT)
    session.show_step(5)
    assert session.shown_step == 5
    qtbot.waitUntil(lambda: session.state == "paused", timeout=TIMEOUT)
    session.drain()
    assert session.shown_step == 5  # steps that arrive after the pause leave the step shown alone
    assert [int(h.steps.last()) for h in session.shown_histories()] == [5]
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert session.shown_step is None
    qtbot.waitUntil(lambda: session.state == "running", timeout=TIMEOUT)
    session.pause()
    qtbot.waitUntil(lambda: session.state == "paused", timeout=TIMEOUT)


def test_live_right_trains_a_step_and_step_returns_to_live(make_window, qtbot):
    window = make_window()
    session = window.session
    qtbot.keyClick(window, Qt.Key.Key_Right)  # live: Right trains one step, as before
    qtbot.waitUntil(lambda: len(session.histories[0].steps) == 1, timeout=TIMEOUT)
    for expected in (2, 3):
        qtbot.keyClick(window, Qt.Key.Key_S)
        qtbot.waitUntil(lambda: len(session.histories[0].steps) == expected, timeout=TIMEOUT)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert session.shown_step == 2
    qtbot.keyClick(window, Qt.Key.Key_Right)  # forward to the newest step is live again
    assert session.shown_step is None
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.keyClick(window, Qt.Key.Key_S)  # Step leaves the replay and trains
    assert session.shown_step is None
    qtbot.waitUntil(lambda: len(session.histories[0].steps) == 4, timeout=TIMEOUT)


def test_reset_leaves_no_replay_behind(trained_compare_window, qtbot):
    window = trained_compare_window
    session, bar = window.session, window.replay
    session.show_step(10)
    old = session.histories[0]
    with qtbot.waitSignal(session.runs_rebuilt, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.histories[0] is not old, timeout=TIMEOUT)
    assert session.shown_step is None and session.shown_histories() is session.histories
    assert bar.mark.text() == "LIVE" and not bar.slider.isEnabled() and bar.kept.text() == "no steps yet"
    drawn(window)
    assert window.status.step.text() == "step 0"
    assert all(len(x) == 0 for x in (c.getData()[0] for c in window.views["loss"].loss_curves) if x is not None)
    qtbot.keyClick(window, Qt.Key.Key_Left)  # nothing to replay: nothing happens
    assert session.shown_step is None


def test_exports_follow_the_step_shown(trained_compare_window, tmp_path):
    window = trained_compare_window
    window.session.show_step(9)
    written = window.files.export_data(tmp_path / "replay.csv")
    assert [p.name for p in written] == ["replay-run1.csv", "replay-run2.csv"]
    for path, history in zip(written, window.session.histories):
        rows = path.read_text().splitlines()[1:]
        assert len(rows) == 9 and float(rows[-1].split(",")[0]) == 9
        assert float(rows[-1].split(",")[1]) == pytest.approx(snapshot_at(history, 9).loss)
    window.session.show_step(None)
    written = window.files.export_data(tmp_path / "live.csv")
    assert len(written[0].read_text().splitlines()) - 1 == len(window.session.histories[0].log)


def test_a_files_recorded_steps_can_be_replayed(make_window, qtbot, tmp_path):
    """A lecturer's run prepared beforehand: its saved steps open paused, and any of them can be shown."""
    from engine import experiment as ex
    config = Config(seq_len=10, hidden=6, seed=7)
    info, snapshots = train(config, 20)
    log = MetricsLog()
    for snap in snapshots:
        log.append(snap)
    path = ex.save(tmp_path / "prepared.rgl", ex.Experiment([config], logs=[log]), include_data=True)
    window = make_window()
    session = window.session
    window.files.open(path)
    qtbot.waitUntil(lambda: session.showing_recorded and len(session.histories[0].steps) == 20, timeout=TIMEOUT)
    assert session.replay_span() == (1, 20) and window.replay.kept.text() == "of 1–20"
    window.replay.slider.setValue(8)
    drawn(window)
    past = session.shown_histories()[0]
    assert past.latest.step == 8 and past.latest.loss == snapshots[7].loss
    assert session.showing_recorded  # showing a past step keeps the file's data on screen
    qtbot.keyClick(window, Qt.Key.Key_Space)  # Play: live, and training starts afresh from step 0
    assert session.shown_step is None
    qtbot.waitUntil(lambda: not session.showing_recorded, timeout=TIMEOUT)
    session.pause()
    qtbot.waitUntil(lambda: session.state == "paused", timeout=TIMEOUT)


def test_a_live_setting_changed_during_a_replay_keeps_the_step_and_shows_the_setting(make_window, qtbot):
    window = make_window()
    session = window.session
    for expected in (1, 2, 3):
        session.step_once()
        qtbot.waitUntil(lambda: len(session.histories[0].steps) == expected, timeout=TIMEOUT)
    session.show_step(2)
    session.apply_configs([SMALL.replace(lr=0.02)])  # a live setting: no rebuild
    qtbot.waitUntil(lambda: session.shown_histories()[0].info.config.lr == 0.02, timeout=TIMEOUT)
    assert session.shown_step == 2 and session.shown_histories()[0].latest.step == 2
    session.apply_configs([SMALL.replace(lr=0.02, hidden=6)])  # a structural one rebuilds: live again
    qtbot.waitUntil(lambda: session.shown_step is None, timeout=TIMEOUT)


def test_the_live_mark_reads_in_either_theme(make_window, qtbot):
    """The LIVE mark has a style sheet of its own (bold, and REPLAY's colours): its text took the colours of the theme
    it was styled in, black on the dark theme's grey and pale grey on the light one's (every render of a lesson)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QColor
    window = make_window()
    mark = window.replay.mark
    for name in ("light", "dark", "light"):  # as docs/render_lessons.py goes: each theme normal, then lecture
        window.set_theme(name)
        for lecture in (False, True):
            window.set_lecture(lecture)  # (the mark's style sheet set again, in the theme of the moment)
            qtbot.waitUntil(lambda: mark.text() == "LIVE")
            corner = mark.mapTo(window, QPoint(0, 0))  # (as the window is grabbed: the mark's own grab polishes it)
            image = window.grab().toImage().copy(corner.x(), corner.y(), mark.width(), mark.height())
            levels = [QColor(image.pixel(x, y)).lightness() for x in range(image.width()) for y in range(image.height())]
            background = max(set(levels), key=levels.count)
            text = max(levels, key=lambda level: abs(level - background))
            assert abs(text - background) > 150, (name, lecture, background, text)
        window.set_lecture(False)
