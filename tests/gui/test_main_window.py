"""The main window end to end: views fed, controls live, pause/step/reset, compare, errors, closing."""
import math
import os
import signal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox

from engine.config import Config

TIMEOUT = 30_000
SMALL = Config(seq_len=12, hidden=8, batch=4)  # the make_window fixture's default run


def steps(window, run=0):
    return len(window.session.histories[run].steps) if len(window.session.histories) > run else 0


def wait_state(qtbot, window, state):
    qtbot.waitUntil(lambda: window.session.state == state, timeout=TIMEOUT)


def drain(window):
    """Feed everything the worker has said so far into the histories now, and draw it."""
    window.session.drain()
    window.display.tick()


def test_window_opens_with_controls_toolbar_and_views(make_window):
    window = make_window()
    assert window.windowTitle() == "RNN Gradient Lab"
    assert "recording" in window.views
    assert set(window.actions_by_name) >= {"play", "step", "reset", "compare"}
    assert window.session.histories[0].info.config == SMALL
    assert window.controls.config() == SMALL


def test_snapshots_reach_every_view(make_window, qtbot):
    from gui.views import ALL_VIEWS
    window = make_window(view_classes=list(ALL_VIEWS) + [make_window.RecordingView])
    for action in window.view_actions.values():  # the views the View menu leaves off at first too
        action.setChecked(True)
    window.resize(2560, 1600)  # room for every view side by side (a smaller window puts some in tabs, undrawn)
    qtbot.waitUntil(lambda: all(window.views[k].isVisible() for k in window.views), timeout=TIMEOUT)
    fed = {key: 0 for key in window.views}
    for key, view in window.views.items():
        original = view.refresh

        def spy(histories, key=key, original=original):
            if histories and len(histories[0].steps):
                fed[key] += 1
            original(histories)
        view.refresh = spy
    window.session.play()
    qtbot.waitUntil(lambda: all(n >= 2 for n in fed.values()), timeout=TIMEOUT)
    window.session.pause()
    assert window.views["recording"].max_steps >= 1
    assert not window.display.broken_views


# Each control, a new value, in an order that keeps every intermediate config valid.
CHANGES = [("task", "copy"), ("seq_len", 20), ("batch", 8), ("activation", "relu"), ("layers", 2),
           ("hidden", 16), ("skip", True), ("attention", True), ("init", "orthogonal"),
           ("spectral_radius", 0.9), ("optimizer", "sgd"), ("lr", 0.01), ("clip", "norm"),
           ("clip_threshold", 0.5), ("seed", 3), ("device", "cpu"), ("cell", "lstm"), ("forget_bias", 1.0),
           ("cell", "lru"), ("lru_r_min", 0.5), ("lru_r_max", 0.99), ("lru_gamma", False), ("cell", "ssm"),
           ("ssm_state", 8)]


def set_control(window, key, value):
    control = window.controls.controls[key]
    if isinstance(control, QComboBox):
        control.setCurrentIndex(control.findData(value))
    elif isinstance(control, QCheckBox):
        control.setChecked(value)
    elif key in window.controls.enabled_boxes:
        control.setValue(value)
        window.controls.enabled_boxes[key].setChecked(True)
    else:
        control.setValue(value)


def test_every_control_changes_the_running_config(make_window, qtbot):
    # every key has a control, but the user's own files: File > Open model / data (test_user_files.py)
    assert {k for k, _ in CHANGES} == set(Config().to_dict()) - {"model", "data", "target"}
    window = make_window()
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) > 0, timeout=TIMEOUT)
    for key, value in CHANGES:
        set_control(window, key, value)
        assert getattr(window.session.configs[0], key) == value, key
        assert window.controls.error_text(key) == ""
        # The trainer in the worker picked it up: it records an event naming the key.
        qtbot.waitUntil(lambda: any(e.detail.startswith(key + " ") or f", {key} " in e.detail
                                    for e in window.session.histories[0].events), timeout=TIMEOUT)
    window.session.pause()
    wait_state(qtbot, window, "paused")
    expected = Config(**{**SMALL.to_dict(), **dict(CHANGES)})
    assert window.session.configs == [expected]
    assert window.session.histories[0].info.config == expected


def test_digits_sets_length_and_bad_values_keep_the_last_valid_config(make_window):
    window = make_window()
    set_control(window, "cell", "lstm")
    assert not window.controls.controls["activation"].isEnabled()
    set_control(window, "task", "digits")
    assert window.session.configs[0].task == "digits"
    assert window.session.configs[0].seq_len == 64
    assert window.controls.controls["seq_len"].value() == 64
    running = window.session.configs[0]
    set_control(window, "seq_len", 100)
    message = window.controls.error_text("seq_len")
    assert "seq_len" in message and "100" in message and "64" in message
    assert window.session.configs[0] == running
    set_control(window, "seq_len", 8)
    assert window.controls.error_text("seq_len") == ""
    assert window.session.configs[0].seq_len == 8


def test_pause_step_and_reset(make_window, qtbot):
    window = make_window([SMALL, SMALL.replace(cell="gru")])
    # the window opens paused: once the runs are built it says so, not "starting" for ever
    assert window.session.state == "paused" and window.status.state.text() == "paused"
    qtbot.keyClick(window, Qt.Key.Key_Space)
    wait_state(qtbot, window, "running")
    qtbot.waitUntil(lambda: steps(window) >= 3, timeout=TIMEOUT)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    wait_state(qtbot, window, "paused")
    drain(window)
    before = [steps(window, r) for r in range(2)]
    assert before[0] == before[1]
    for expected in (1, 2):
        qtbot.keyClick(window, Qt.Key.Key_S)
        qtbot.waitUntil(lambda: steps(window, 1) == before[1] + expected, timeout=TIMEOUT)
        drain(window)
        assert [steps(window, r) for r in range(2)] == [b + expected for b in before]
    last = int(window.session.histories[0].steps.view()[-1])
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: steps(window) == before[0] + 3, timeout=TIMEOUT)
    assert int(window.session.histories[0].steps.view()[-1]) == last + 1
    old = window.session.histories[0]
    with qtbot.waitSignal(window.session.runs_rebuilt, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: window.session.histories[0] is not old, timeout=TIMEOUT)
    assert steps(window) == 0 and window.session.state == "paused"
    qtbot.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: steps(window) == 1, timeout=TIMEOUT)
    assert int(window.session.histories[0].steps.view()[-1]) == 1


def test_shortcuts_work_while_a_number_box_has_focus(make_window, qtbot):
    window = make_window()
    spin = window.controls.controls["seq_len"]
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5_000)
    qtbot.keyClick(spin, Qt.Key.Key_Space)
    wait_state(qtbot, window, "running")
    qtbot.keyClick(spin, Qt.Key.Key_Space)
    wait_state(qtbot, window, "paused")
    assert spin.value() == SMALL.seq_len


def test_compare_mode_trains_every_run(make_window, qtbot):
    window = make_window()
    panel = window.compare_panel
    panel.set_compare("cell", ["lstm", "gru"])
    with qtbot.waitSignal(window.session.runs_rebuilt, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.actions_by_name["compare"].isChecked()
    qtbot.waitUntil(lambda: len(window.session.histories) == 3, timeout=TIMEOUT)
    assert [c.cell for c in window.session.configs] == ["rnn", "lstm", "gru"]
    assert len({c.replace(cell="rnn") for c in window.session.configs}) == 1  # only the cell differs
    window.session.play()
    qtbot.waitUntil(lambda: all(steps(window, r) >= 2 for r in range(3)), timeout=TIMEOUT)
    # A change to run 1's settings applies to every run; the compared key stays different.
    set_control(window, "lr", 0.01)
    assert [c.lr for c in window.session.configs] == [0.01] * 3
    assert [c.cell for c in window.session.configs] == ["rnn", "lstm", "gru"]
    # A bad compared value is reported and the runs keep training.
    panel.values[0].setCurrentText("transformer")
    panel._edited()
    assert "transformer" in panel.error.text() and "lstm" in panel.error.text()
    assert len(window.session.configs) == 3
    window.session.pause()
    wait_state(qtbot, window, "paused")
    drain(window)
    assert "run 3" in window.status.ratios.text()
    qtbot.keyClick(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(window.session.histories) == 1, timeout=TIMEOUT)


def test_lesson_sets_config_and_shows_narration(make_window, qtbot):
    from engine.lessons import LESSONS
    window = make_window()
    name, lesson = next(iter(LESSONS.items()))
    window.load_lesson(name)
    assert window.session.configs[0] == lesson.config()
    assert window.controls.config() == lesson.config()
    panel = window.lesson_panel
    assert window.lesson_dock.isVisible() and panel.isVisible() and lesson.narration[:20] in panel.narration.text()


def test_a_lesson_pauses_training_where_its_point_shows(make_window, qtbot):
    """Play in a lesson trains the lesson's `steps` and pauses there (the learning-rate lesson: 30 steps,
    where the three curves part; at 300 steps/s it raced to thousands and squashed them flat), says so on
    the card, and trains on at the next Play. Reset arms the stop again; changing a setting disarms it."""
    from engine.lessons import LESSONS
    window = make_window()
    window.load_lesson("learning-rate")
    stop = LESSONS["learning-rate"].steps
    note = window.lesson_panel.pause_note
    assert note.isVisible() and f"Play trains {stop} steps" in note.text()
    qtbot.waitUntil(lambda: steps(window) == 0 and window.session.state == "paused", timeout=TIMEOUT)
    with qtbot.waitSignal(window.session.stopped_at_lesson, timeout=TIMEOUT) as stopped:
        qtbot.keyClick(window, Qt.Key.Key_Space)
    assert stopped.args == [stop]
    wait_state(qtbot, window, "paused")
    drain(window)
    assert steps(window) == stop and window.session.histories[0].steps.view()[-1] == stop  # exactly there
    assert f"Paused at step {stop}" in note.text() and window.session.lesson_stop is None
    qtbot.keyClick(window, Qt.Key.Key_Space)  # and on
    qtbot.waitUntil(lambda: steps(window) > stop + 5, timeout=TIMEOUT)
    assert not note.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    wait_state(qtbot, window, "paused")
    with qtbot.waitSignal(window.session.runs_rebuilt, timeout=TIMEOUT):
        window.reset()
    assert window.session.lesson_stop == stop and f"Play trains {stop} steps" in note.text()
    set_control(window, "lr", 0.02)  # a setting of one's own: the lesson's point no longer applies
    assert window.session.lesson_stop is None and not note.isVisible()


def test_worker_exception_is_reported_and_the_app_stays_usable(make_window, qtbot, monkeypatch):
    from engine import trainer
    window = make_window()
    original = trainer.Trainer.step
    calls = {"n": 0}

    def failing_step(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom in the trainer")
        return original(self)
    monkeypatch.setattr(trainer.Trainer, "step", failing_step)
    with qtbot.waitSignal(window.session.errored, timeout=TIMEOUT) as blocker:
        window.session.play()
    assert "boom in the trainer" in blocker.args[0] and "Traceback" in blocker.args[1]
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert "boom" in window.banner.message.text()
    wait_state(qtbot, window, "paused")
    drain(window)
    before = steps(window)
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) > before + 2, timeout=TIMEOUT)
    window.session.pause()


def test_a_bad_config_reaching_the_worker_is_reported(make_window, qtbot):
    window = make_window()
    with qtbot.waitSignal(window.session.errored, timeout=TIMEOUT) as blocker:
        window.session.controller.set_configs([SMALL.replace(device="cuda")])  # no CUDA here
        window.session.controller.step()
    assert "device" in blocker.args[0]
    window.session.apply_configs([SMALL.replace(hidden=10)])
    window.session.step_once()
    qtbot.waitUntil(lambda: steps(window) >= 1 and window.session.histories[0].info.config.hidden == 10, timeout=TIMEOUT)


def test_closing_mid_training_stops_thread_and_process(make_window, qtbot):
    window = make_window(in_process=False)
    controller = window.session.controller
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) >= 3, timeout=TIMEOUT)
    process = controller._process
    assert process.is_alive()
    window.close()  # returns once the worker process and the driver thread have stopped
    assert not controller._driver.isRunning()
    assert not process.is_alive() and process.exitcode is not None


def test_killed_worker_is_reported_and_reset_recovers(make_window, qtbot):
    window = make_window(in_process=False)
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) >= 1, timeout=TIMEOUT)
    old_process = window.session.controller._process
    with qtbot.waitSignal(window.session.errored, timeout=TIMEOUT) as blocker:
        os.kill(old_process.pid, signal.SIGKILL)
    assert "stopped unexpectedly" in blocker.args[0] and "exit code -9" in blocker.args[0]
    wait_state(qtbot, window, "stopped")
    assert window.status.state.text() == "worker stopped"
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert "Reset" in window.banner.message.text()
    old = window.session.histories[0]
    window.actions_by_name["reset"].trigger()
    qtbot.waitUntil(lambda: window.session.histories[0] is not old, timeout=TIMEOUT)
    assert window.session.controller._process is not old_process and window.session.controller.alive()
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) >= 2, timeout=TIMEOUT)
    window.session.pause()


def test_clipping_count_in_view_title_and_status_bar_agree_after_pause(make_window, qtbot):
    """The badge used to come from the diagnosis, which runs every quarter second: once paused, it
    stayed a few dozen steps behind the parameter-gradient view's title."""
    import re
    from gui.views.param_grads import ParamGradsView
    clipping = SMALL.replace(activation="linear", spectral_radius=1.5, clip="norm", clip_threshold=0.01)
    window = make_window([clipping], view_classes=[ParamGradsView])
    history = window.session.histories[0]
    fed = []
    original = history.extend

    def spy(snapshots):
        fed.extend(snapshots)
        original(snapshots)
    history.extend = spy
    window.session.play()
    qtbot.waitUntil(lambda: len(fed) >= 300, timeout=TIMEOUT)
    window.session.pause()
    wait_state(qtbot, window, "paused")
    view = window.views["param_grads"]

    def quoted():
        title = re.search(r"fired in (\d+) of (\d+) steps since start", view.title_label.text())
        badges = [re.search(r"fired in (\d+) of (\d+) steps since start", t) for t in window.status.badge_texts()]
        badges = [b.groups() for b in badges if b]
        return title.groups() if title else None, badges

    def expected():  # counted from the snapshots themselves; a last batch may still be on its way
        return str(sum(s.clipped for s in fed)), str(len(fed))

    qtbot.waitUntil(lambda: quoted() == (expected(), [expected()]), timeout=5_000)
    assert int(expected()[0]) > 0
    assert not any(t.startswith("clipping fired ") and " of " not in t for t in window.status.badge_texts())


@pytest.mark.parametrize("log10_ratio, text", [
    (-14.06, "10⁻¹⁴"), (-13.5, "10⁻¹⁴"), (3.0, "10³"),
    (-0.04, "10⁰"), (-0.0, "10⁰"),   # no "10^-0" for a gradient that kept its size
    (-math.inf, "0 (none reaches it: below 10⁻³⁰⁰, or cut off)"), (math.nan, "n/a")])
def test_first_last_ratio_text(log10_ratio, text):
    from gui.status import ratio_text
    assert ratio_text(log10_ratio) == text


def test_a_badge_too_long_for_the_status_bar_ends_at_a_word_with_an_ellipsis(qtbot):
    from gui.status import BadgeLabel as Badge, StatusBar
    bar = StatusBar()
    qtbot.addWidget(bar)
    text = "gradient at the first timestep is 22 orders of magnitude above the last"
    badge = Badge(text, "The gradient grows on its way back.", "warning")
    qtbot.addWidget(badge)
    badge.show()  # a hidden widget gets its resize events only when shown
    badge.resize(badge.sizeHint())
    assert badge.text() == text and badge.toolTip() == "The gradient grows on its way back."
    from PySide6.QtWidgets import QLabel
    assert QLabel.sizeHint(badge).width() <= badge.width()  # Qt's own measure of the room the text takes:
    #   with the style sheet's padding QLabel indented the text, and the last letter was cut off
    badge.resize(badge.fontMetrics().horizontalAdvance("gradient at the first timest"), badge.height())
    shown = badge.text()
    assert shown.endswith("\u2026") and len(shown) < len(text)
    assert text.startswith(shown[:-1]) and text[len(shown) - 1] == " "  # cut between words
    assert badge.fontMetrics().horizontalAdvance(shown) <= badge.contentsRect().width()
    assert badge.toolTip().startswith(text + "\n\n")   # the whole text is still there to read
    assert badge.full_text == text
    badge.resize(badge.sizeHint())
    assert badge.text() == text


def test_a_badge_with_no_room_to_say_anything_is_counted_not_squeezed_to_a_letter(qtbot):
    """With no room for any badge's shortest form, the most severe was shown squeezed, however little room was
    left: learning-rate in lecture mode read "a…". Below four letters' room it is counted in "+N more" too."""
    from PySide6.QtWidgets import QApplication
    from gui.status import StatusBar
    from engine.diagnosis import Badge
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.set_scale(1.6)
    bar.show()
    bar.set_badges([(0, Badge("about right (0.05), too large (1.0): loss still at baseline", "tip", "warning",
                              "at baseline")), (1, Badge("vanishing: 2 orders of magnitude lost", "tip", "info", "vanishing"))])
    seen = set()
    for width in range(1200, 300, -20):
        bar.resize(width, 40)
        QApplication.processEvents()
        shown = [label for label in bar._badge_labels if label.isVisible()]
        for label in shown:
            assert label.width() >= label.fontMetrics().horizontalAdvance("MMMM…"), (width, label.text())
        seen.add(len(shown))
        if not shown:
            assert bar.more.text() == "+2 more" and len(bar.more.toolTip().split("\n")) == 2
    assert 0 in seen and 1 in seen  # (the widths reach both cases)


def test_a_crowded_status_bar_keeps_each_finding_and_its_runs(qtbot):
    """Four compare badges in a lecture-size status bar used to read "runs…", "run 1…", "run 2…":
    dropping words from the end took the finding first, and the layout squeezed every badge alike.
    Now each shown badge keeps at least its finding's short form behind the run numbers ("1, 2, 3:
    at baseline"); those without that much room, the least severe, are counted in "+N more", whose
    tooltip lists them."""
    from PySide6.QtWidgets import QApplication
    from gui.status import StatusBar
    from engine.diagnosis import Badge
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.set_scale(1.6)
    bar.show()
    findings = [(0, Badge("vanishing: 23 orders of magnitude lost", "tip", "warning", "vanishing")),
                (1, Badge("vanishing: 2 orders of magnitude lost", "tip", "info", "vanishing"))]
    findings += [(run, Badge("loss still at baseline", "tip", "warning", "at baseline")) for run in (0, 1, 2)]
    findings += [(2, Badge("64% of units saturated", "tip", "warning", "64% saturated"))]
    bar.set_badges(findings)
    whole = ["run 1: vanishing: 23 orders of magnitude lost", "run 2: vanishing: 2 orders of magnitude lost",
             "runs 1, 2, 3: loss still at baseline", "run 3: 64% of units saturated"]
    assert bar.badge_texts() == whole
    shortest = ["1: vanishing", "2: vanishing", "1, 2, 3: at baseline", "3: 64% saturated"]
    counts = []
    for width in (3000, 1400, 1000, 700, 500):
        bar.resize(width, 40)
        QApplication.processEvents()
        shown = [label for label in bar._badge_labels if label.isVisible()]
        counts.append(len(shown))
        if width == 3000:
            assert [label.text() for label in shown] == whole  # room for every whole text
        assert [label.full_text for label in shown] == whole[:len(shown)]     # the most severe first
        for label, short in zip(shown[1:], shortest[1:]):  # each a shortening that keeps the finding
            assert label.text() in label.shortenings() and len(label.text()) >= len(short), label.text()
            assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
        left = whole[len(shown):]
        assert bar.more.isVisible() == bool(left)
        assert bar.more.text() == (f"+{len(left)} more" if left else "")
        assert bar.more.toolTip().split("\n") == (left or [""])
        assert not left or bar.more.geometry().right() < bar.badges.width()  # the count itself is never cut
    assert counts == sorted(counts, reverse=True) and counts[-1] < 4  # narrower: fewer, never squeezed
    bar.set_scale(1.0)  # leaving lecture mode while paused (no new diagnosis): the badges shrink at once
    assert {label.font().pointSizeF() for label in bar._badge_labels} == {bar.state.font().pointSizeF()}


def test_a_refused_compare_value_is_named_as_typed(qtbot):
    """Compare mode reads its values as `--set` does, and names a refused one as the user typed it:
    1e-400 reads as 0.0, which is not what was typed; 2.0 layers are 2."""
    from engine.config import ConfigError
    from gui.compare_panel import ComparePanel
    panel = ComparePanel()
    qtbot.addWidget(panel)
    panel.setChecked(True)
    panel.set_compare("lr", ["0.01", "1e-400"], base=SMALL)
    with pytest.raises(ConfigError) as info:
        panel.configs(SMALL)
    assert str(info.value).startswith("run 3 lr: 1e-400 is not allowed; allowed: a number greater than 0")
    panel.set_compare("layers", ["2.0"], base=SMALL)
    assert [c.layers for c in panel.configs(SMALL)] == [SMALL.layers, 2]


def test_a_lesson_loaded_mid_training_starts_from_step_1_and_pauses_at_its_own_step(make_window, qtbot):
    """The lesson's runs are a fresh run set even when their number matches the runs before: its
    stop counts the lesson's own steps, not the steps free play had already trained (after 45 steps
    of free play, the one-run `loop` lesson used to go on from step 46 and pause at 100)."""
    from engine.lessons import LESSONS
    window = make_window()
    window.session.play()
    qtbot.waitUntil(lambda: steps(window) >= 40, timeout=TIMEOUT)
    lesson = window.load_lesson("loop")  # one run, as before it
    with qtbot.waitSignal(window.session.stopped_at_lesson, timeout=TIMEOUT) as stopped:
        window.session.play()
    assert stopped.args == [lesson.steps] == [LESSONS["loop"].steps]
    wait_state(qtbot, window, "paused")
    trained = lambda h: h.diverged_at_step if h.diverged_at_step is not None else lesson.steps  # noqa: E731
    qtbot.waitUntil(lambda: all(len(h.steps) == trained(h) for h in window.session.histories), timeout=TIMEOUT)
    for history in window.session.histories:  # (a diverged run would not hold up the stop)
        assert list(history.steps.view()) == list(range(1, trained(history) + 1))
    assert len(window.session.histories) == 1 and window.session.histories[0].diverged_at_step is None


def test_after_reset_the_status_bar_shows_no_figure_of_the_run_before(make_window, qtbot):
    window = make_window()
    for _ in range(3):
        window.session.step_once()
    qtbot.waitUntil(lambda: steps(window) >= 3, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "10" in window.status.ratios.text() and bool(window.status.badge_texts()), timeout=TIMEOUT)
    assert window.status.step.text() == "step 3"  # the step the views show, counted in the status bar
    old = window.session.histories[0]
    window.reset()
    qtbot.waitUntil(lambda: window.session.histories[0] is not old, timeout=TIMEOUT)
    drain(window)
    assert "n/a" in window.status.ratios.text() and "10" not in window.status.ratios.text()
    assert window.status.badge_texts() == [] and window.status.step.text() == "step 0"


def test_free_play_keeps_the_highlighted_view(make_window, qtbot):
    from gui.views import ALL_VIEWS
    window = make_window(view_classes=ALL_VIEWS)
    window.load_lesson("fix-lstm")
    assert window.grid.highlighted() == "waterfall"
    window.lesson_panel.picker.activated.emit(0)  # "Free play (no lesson)"
    assert window.session.lesson is None and window.grid.highlighted() == "waterfall"


@pytest.mark.parametrize("content", [b"", b"PK\x05\x06" + b"\0" * 18, b'{"seq_len": ' + b"[" * 100_000])
def test_a_bad_file_is_named_in_the_banner_and_changes_nothing(make_window, qtbot, tmp_path, content):
    window = make_window()
    before = list(window.session.configs)
    for name in ("bad.rgl", "bad.json"):
        path = tmp_path / name
        path.write_bytes(content)
        assert window.files.open(path) is False
        assert window.banner.isVisible() and name in window.banner.message.text()
        assert len(window.banner.message.text()) < 400 and window.session.configs == before


def test_a_run_set_the_worker_refuses_leaves_the_runs_and_the_controls_as_they_were(make_window, qtbot):
    window = make_window()
    huge = SMALL.replace(hidden=2048, seq_len=5000, batch=64, layers=8)
    with qtbot.waitSignal(window.session.errored, timeout=TIMEOUT) as blocker:
        window.session.apply_configs([SMALL, huge])
    assert "memory" in blocker.args[0] and "\n" not in blocker.args[0]
    qtbot.waitUntil(lambda: window.session.configs == [SMALL], timeout=TIMEOUT)
    assert [h.info.config for h in window.session.histories] == [SMALL]
    assert not window.compare_panel.isChecked() and window.controls.config() == SMALL
    window.session.step_once()  # the runs before train on
    qtbot.waitUntil(lambda: steps(window) == 1, timeout=TIMEOUT)


def test_the_status_bar_names_a_lessons_runs_as_the_views_do(qtbot):
    """A comparison lesson's runs are "sigmoid" and "tanh" in every legend; the status bar said "run 1",
    "run 2". It now uses the lesson's names while the runs are the lesson's, and numbers otherwise."""
    from engine.lessons import LESSONS
    from engine.trainer import Trainer
    from engine.worker import run_info
    from gui.history import RunHistory
    from gui.status import StatusBar
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.resize(3000, 40)
    bar.show()

    def histories(configs):
        out = []
        for i, config in enumerate(configs):
            trainer = Trainer(config)
            history = RunHistory(run_info(i, trainer))
            history.extend([trainer.step()])
            out.append(history)
        return out

    lesson = histories(LESSONS["vanishing-sigmoid"].runs())
    bar.set_ratios(lesson)
    bar.update_diagnosis(lesson)
    assert "sigmoid: 10" in bar.ratios.text() and "tanh: 10" in bar.ratios.text()
    assert any(t.startswith("sigmoid: vanishing") for t in bar.badge_texts())
    edited = histories([c.replace(seq_len=12) if i else c for i, c in enumerate(LESSONS["vanishing-sigmoid"].runs())])
    bar.set_ratios(edited)
    bar.update_diagnosis(edited)  # no longer the lesson's runs: numbered
    assert "run 1: 10" in bar.ratios.text() and any(t.startswith("run 1: vanishing") for t in bar.badge_texts())


def test_the_device_box_says_what_auto_chose_and_why(qtbot, monkeypatch):
    import torch

    from gui.controls import ControlPanel
    panel = ControlPanel(SMALL)
    qtbot.addWidget(panel)
    assert panel.controls["device"].toolTip().endswith("device auto: cpu (no CUDA device on this machine)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    panel.set_config(SMALL.replace(hidden=512, batch=64, cell="lstm"))
    panel._update_enabled()
    assert "device auto: cuda (a large model" in panel.controls["device"].toolTip()


def test_a_theme_change_recolours_the_runs_ratios_in_the_status_bar_at_once(make_window):
    """The status bar's ratios were written in the theme of the last step: a paused lesson kept the other theme's run
    colours (a pale blue on the light theme's white) until it trained on."""
    from gui.theme import DARK, LIGHT
    window = make_window(configs=[SMALL, SMALL.replace(hidden=6)])
    for theme in (LIGHT, DARK, LIGHT):
        window.set_theme(theme.name)
        text = window.status.ratios.text()
        assert all(f"color:{color}" in text for color in theme.run_colors[:2]), (theme.name, text)
