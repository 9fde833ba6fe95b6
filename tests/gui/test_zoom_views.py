"""The zoomed-in views (units, answers), the one-sequence lens, and the live path that feeds them:
what they draw is checked against the StepDetail they were given (itself checked against an
independent reference in tests/engine/test_detail.py), and the window's worker is shown to measure
details only while a view wants them."""
from __future__ import annotations

import numpy as np

from engine.config import Config
from engine.detail import DetailRequest
from engine.trainer import Trainer
from engine.worker import run_info
from gui.display import detail_request
from gui.history import RunHistory
from gui.one_sequence import SequenceHistory
from gui.history_at_step import history_at
from gui.theme import LIGHT
from gui.views.answers import AnswersView
from gui.views.units import REACH_SHARE, UnitsView, reach, unit_order

TIMEOUT = 30_000
COPY = Config(task="copy", cell="lstm", seq_len=6, hidden=8, batch=4, layers=2)


def trained(config: Config, steps: int, request=DetailRequest(layer=None)) -> tuple[RunHistory, Trainer]:
    trainer = Trainer(config)
    trainer.keep_last_batch = True
    history = RunHistory(run_info(0, trainer))
    for _ in range(steps):
        history.extend([trainer.step()])
        history.add_detail(trainer.detail(request))
    return history, trainer


def made(view_class, qtbot, histories):
    view = view_class()
    qtbot.addWidget(view)
    view.resize(700, 450)
    view.set_runs([h.info for h in histories])
    view.refresh(histories)
    view.grab()
    return view


def drawn(values, levels):
    """What a heatmap of gradient norms holds: log10, exact zeros (the forget gate at timestep 0 multiplies
    a cell state of 0; an answer before an input) pinned to the lowest colour."""
    with np.errstate(divide="ignore"):
        logs = np.log10(values)
    return np.where(np.isneginf(logs), levels[0], logs)


# ----------------------------------------------------------------------------- reach and order

def test_reach_counts_back_to_the_earliest_strong_timestep():
    values = np.full((5, 3), 1e-9)
    values[:, 0] = 1.0                  # strong all the way back
    values[3:, 1] = REACH_SHARE * 1.01  # strong in the last two timesteps
    #                                     unit 2: nowhere
    assert reach(values).tolist() == [5, 2, 0]
    assert unit_order(values, by_reach=True).tolist() == [0, 1, 2]
    assert unit_order(values[:, ::-1], by_reach=True).tolist() == [2, 1, 0]
    assert unit_order(values, by_reach=False).tolist() == [0, 1, 2]
    assert reach(np.zeros((4, 2))).tolist() == [0, 0]


# ----------------------------------------------------------------------------- the views

def test_the_units_view_draws_each_unit_of_the_chosen_layer_and_gate(qtbot):
    history, _ = trained(COPY, 3)
    detail = history.detail
    view = made(UnitsView, qtbot, [history])
    assert [view.gate_combo.itemText(i) for i in range(view.gate_combo.count())] == [
        "hidden state h", "input gate", "forget gate", "cell candidate", "output gate"]
    for layer in (0, 1):
        for gate in (0, 2):
            view.selectors.layer_spin.setValue(layer + 1)
            view.gate_combo.setCurrentIndex(gate)
            view.sort_combo.setCurrentIndex(1)  # by unit number: unit 1 on top
            values = detail.units[layer, gate]  # (T, H)
            picture = view.image.image  # row 0 at the bottom: the last unit
            np.testing.assert_allclose(picture[::-1], drawn(values.T, view.levels), rtol=1e-6)
            view.sort_combo.setCurrentIndex(0)
            np.testing.assert_allclose(view.image.image[::-1], drawn(values[:, unit_order(values, True)].T, view.levels),
                                       rtol=1e-6)
    assert view.title_label.text().startswith("layer 2, forget gate: ")
    assert view.detail_wish() == {"layer": 1}


def test_the_answers_view_draws_the_map_and_the_chosen_answer(qtbot):
    history, _ = trained(COPY, 3)
    detail = history.detail
    view = made(AnswersView, qtbot, [history])
    np.testing.assert_allclose(view.image.image, drawn(detail.connectivity, view.levels), rtol=1e-6)
    x, y = view.curve.xData, view.curve.yData
    last = detail.connectivity[-1]
    np.testing.assert_allclose(y, last[last > 0], rtol=1e-6)
    assert f"Answer at timestep {detail.output_steps[-1]}" in view.title_label.text()
    view.answer_spin.setValue(2)  # the second answer
    x, y = view.curve.xData, view.curve.yData
    second = detail.connectivity[1]
    np.testing.assert_allclose(y, second[second > 0], rtol=1e-6)
    assert x.max() == detail.output_steps[1]  # a causal network: nothing after its own timestep
    view.apply_theme(LIGHT)
    view.grab()


def test_without_a_detail_the_views_say_what_to_do(qtbot):
    trainer = Trainer(COPY)
    history = RunHistory(run_info(0, trainer))
    for view_class in (UnitsView, AnswersView):
        view = made(view_class, qtbot, [history])
        assert view.title_label.text().startswith("Press Step")
    history.extend([trainer.step()])
    view = made(UnitsView, qtbot, [history])
    assert view.title_label.text().startswith("Measuring")


# ----------------------------------------------------------------------------- one sequence alone

def test_without_a_detail_a_replay_and_a_small_batch_say_why(qtbot):
    trainer = Trainer(COPY)
    trainer.keep_last_batch = True
    history = RunHistory(run_info(0, trainer))
    for _ in range(4):
        history.extend([trainer.step()])
    history.add_detail(trainer.detail(DetailRequest(layer=None)))  # only the last step seen closely
    for view_class in (UnitsView, AnswersView):
        view = made(view_class, qtbot, [history_at(history, 2)])
        assert view.title_label.text().startswith("Step 2 was not seen closely") and "End" in view.title_label.text()
        view.refresh([SequenceHistory(history, 6)])
        assert view.title_label.text() == "This run's batch holds 4 sequences: choose one of them"
        assert not view.plot.getAxis("bottom")._tickLevels  # no characters of another sequence left behind


def test_a_diverged_run_is_not_said_to_be_measured(qtbot):
    trainer = Trainer(Config(optimizer="sgd", lr=10.0, activation="linear", init="orthogonal", spectral_radius=3.0,
                             hidden=16, batch=8, seq_len=100))
    trainer.keep_last_batch = True
    history = RunHistory(run_info(0, trainer))
    while not trainer.diverged:
        history.extend([trainer.step()])
    assert trainer.detail() is None
    for view_class in (UnitsView, AnswersView):
        view = made(view_class, qtbot, [history])
        assert view.title_label.text().startswith(f"The run diverged at step {trainer.diverged_at_step}")


def test_the_lens_shows_one_sequence_of_the_latest_detail(qtbot):
    history, trainer = trained(COPY, 4)
    lens = SequenceHistory(history, 2)
    detail = history.detail
    np.testing.assert_allclose(lens.latest.grad_h, detail.sequence_grad_h[2], rtol=1e-6)
    np.testing.assert_allclose(lens.latest.grad_c, detail.sequence_grad_c[2], rtol=1e-6)
    np.testing.assert_allclose(lens.latest.grad_x, detail.sequence_grad_x[2], rtol=1e-6)
    assert lens.latest.step == detail.step and lens.loss is history.loss  # the rest is the history's
    assert SequenceHistory(history, 9).latest is None  # no such sequence
    past = history_at(history, 2)  # a replay shows the detail of its own step
    assert past.detail.step == 2 and SequenceHistory(past, 1).latest.step == 2
    view = made(UnitsView, qtbot, [lens])  # the units of sequence 0 were measured, not of sequence 2
    assert view.title_label.text().startswith("Measuring")
    history.add_detail(trainer.detail(DetailRequest(layer=None, sequence=2)))
    lens = SequenceHistory(history, 2)
    view.refresh([lens])
    assert view.title_label.text().startswith("sequence 3: ")
    labels = detail.input_labels[2]
    ticks = view.plot.getAxis("bottom")._tickLevels[0]
    assert [text for _, text in ticks][:3] == [labels[0], labels[1], labels[2]]


def test_the_views_wishes_make_one_request():
    assert detail_request([None, None]) is None
    assert detail_request([{"layer": 1}, None]) == DetailRequest(layer=1, sequence=0, connectivity=False)
    assert detail_request([{"layer": 1}, {"connectivity": True}, {"sequence": 3}]) == DetailRequest(1, 3, True)
    assert detail_request([{"layer": 0}, {"layer": 1}]).layer is None  # every layer
    assert detail_request([{"connectivity": True}]).layer == 0


# ----------------------------------------------------------------------------- live, in the window

def test_the_window_measures_details_only_while_a_view_wants_them(make_window, qtbot):
    from gui.views import ALL_VIEWS
    window = make_window([COPY], view_classes=ALL_VIEWS)
    window.resize(1600, 1000)  # room for both in the grid (a smaller window keeps one in its tabs)
    session = window.session
    assert not window.grid.frames["units"].isVisible() and session.controller.detail_request is None
    window.view_actions["units"].setChecked(True)
    window.view_actions["answers"].setChecked(True)
    qtbot.waitUntil(lambda: session.controller.detail_request is not None, timeout=TIMEOUT)
    session.play()
    qtbot.waitUntil(lambda: session.histories[0].detail is not None and session.histories[0].detail.step >= 3,
                    timeout=TIMEOUT)
    session.pause()
    qtbot.waitUntil(lambda: session.state == "paused", timeout=TIMEOUT)
    request = session.controller.detail_request
    assert request.connectivity and request.layer == COPY.layers - 1  # the units view follows the top layer
    # one sequence alone: every view of the latest step follows it
    window.replay.sequence.setValue(2)
    assert session.shown_sequence == 1
    qtbot.waitUntil(lambda: session.histories[0].detail.sequence == 1, timeout=TIMEOUT)  # measured again, paused
    detail = session.histories[0].detail
    units, answers = window.grid.views["units"], window.grid.views["answers"]
    qtbot.waitUntil(lambda: units.title_label.text().startswith("sequence 2: ")
                    and answers.title_label.text().startswith("sequence 2: "), timeout=TIMEOUT)
    profile = window.grid.views["profile"]
    qtbot.waitUntil(lambda: profile.curves[-1][2].yData is not None and np.allclose(
        profile.curves[-1][2].yData, detail.sequence_grad_h[1, -1], rtol=1e-6), timeout=TIMEOUT)
    window.replay.sequence.setValue(4)  # the last sequence; then a smaller batch: its last sequence
    session.apply_configs([COPY.replace(batch=2)])
    qtbot.waitUntil(lambda: session.histories[0].info.config.batch == 2, timeout=TIMEOUT)
    assert session.shown_sequence == 1 and window.replay.sequence.value() == 2
    window.replay.sequence.setValue(0)
    assert session.shown_sequence is None
    window.view_actions["units"].setChecked(False)
    window.view_actions["answers"].setChecked(False)
    qtbot.waitUntil(lambda: session.controller.detail_request is None, timeout=TIMEOUT)


def test_an_answer_with_no_gradient_says_so():
    from gui.views.answers import answer_title
    assert answer_title(np.zeros(10), 9) == "Answer at timestep 9: no input moves its loss (its gradient is 0)"
    assert answer_title(np.logspace(-8, 0, 10), 9).startswith("Answer at timestep 9: recent inputs dominate")
