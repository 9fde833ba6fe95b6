"""The Eigenvalues view: what it draws is the snapshot's eigenvalues (or step factors), in the complex plane
with the unit circle; off at the start, offered by the View menu."""
from __future__ import annotations

import numpy as np
import pytest

from engine.config import Config
from engine.trainer import Trainer
from engine.worker import run_info
from gui.history import RunHistory
from gui.theme import LIGHT
from gui.views import ALL_VIEWS
from gui.views.eigen import EMPTY, SPREAD, EigenView, factor, spread

SMALL = dict(seq_len=20, hidden=8, batch=4)


def trained(config: Config, steps: int = 3, eigenvalues: bool = True) -> RunHistory:
    trainer = Trainer(config)
    trainer.take_eigenvalues = eigenvalues  # as the worker does while this view is visible
    history = RunHistory(run_info(0, trainer))
    for _ in range(steps):
        history.extend([trainer.step()])
    return history


def made(qtbot, histories) -> EigenView:
    view = EigenView()
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.set_runs([h.info for h in histories])
    view.refresh(histories)
    view.grab()
    return view


@pytest.mark.parametrize("cell", ["rnn", "lru", "indrnn"])
def test_fixed_eigenvalues_are_drawn_where_they_are(qtbot, cell):
    history = trained(Config(cell=cell, layers=2, **SMALL))
    view = made(qtbot, [history])
    for k in range(2):
        x, y = view.layer_items[k]["now"].getData()
        values = history.latest.eigenvalues[k]
        np.testing.assert_allclose(x, values.real, rtol=1e-6, atol=1e-7)
        # IndRNN's u are real: spread off the axis by unit, as the step factors are, so they do not hide each other
        np.testing.assert_allclose(y, spread(8) if cell == "indrnn" else values.imag, rtol=1e-6, atol=1e-7)
        trail_x, _ = view.layer_items[k]["trail"][-1].getData()
        assert len(trail_x) == 8  # the step before, fading
    sigma_x, _ = view.layer_items[0]["sigma"].getData()
    assert (sigma_x is not None and len(sigma_x) > 0) == (cell == "rnn")  # the largest singular value: tanh RNN only
    assert "|λ|" in view.title_label.text()


@pytest.mark.parametrize("cell", ["mingru", "ssm"])
def test_step_factors_are_each_units_median_with_its_range(qtbot, cell):
    history = trained(Config(cell=cell, **SMALL))
    view = made(qtbot, [history])
    x, y = view.layer_items[0]["now"].getData()
    np.testing.assert_allclose(x, history.latest.step_factors[0, :, 1], rtol=1e-6)
    np.testing.assert_allclose(y, spread(8))
    assert np.all(np.abs(y) <= SPREAD) and "decided by the input" in view.title_label.text()


def test_a_factor_near_one_keeps_the_digits_that_tell_it_from_one():
    assert [factor(v) for v in (0.63, 0.9987, 0.99972, 0.99)] == ["0.63", "0.9987", "0.99972", "0.99"]
    assert factor(np.float32(0.99995)) != "1"


def test_gated_cells_say_they_have_no_fixed_factors_and_the_view_starts_hidden(qtbot):
    view = made(qtbot, [trained(Config(cell="lstm", **SMALL), 1)])
    assert view.title_label.text() == EMPTY
    assert EigenView in ALL_VIEWS and not EigenView.shown_at_start
    view.apply_theme(LIGHT)
    view.clear()


def test_a_tanh_rnn_step_without_eigenvalues_says_when_they_are_taken(qtbot):
    from gui.views.eigen import NOT_TAKEN, TOO_LARGE
    view = made(qtbot, [trained(Config(**SMALL), 1, eigenvalues=False)])
    assert view.title_label.text() == NOT_TAKEN and view.layer_items[0]["now"].getData()[0] is not None
    assert len(view.layer_items[0]["now"].getData()[0]) == 0  # nothing drawn for the step, nothing stale
    view = made(qtbot, [trained(Config(seq_len=4, hidden=257, batch=2), 1)])
    assert view.title_label.text() == TOO_LARGE.format(hidden=257)


def test_the_window_takes_eigenvalues_only_while_the_view_is_on_screen(make_window, qtbot):
    window = make_window([Config(**SMALL)], view_classes=ALL_VIEWS)
    window.resize(1600, 1000)
    session, history = window.session, lambda: window.session.histories[0]
    assert not window.grid.frames["eigen"].isVisible() and not session.controller.eigenvalues
    session.step_once()
    qtbot.waitUntil(lambda: len(history().steps) == 1, timeout=30_000)
    assert history().latest.eigenvalues is None  # an eigenvalue problem a step nobody looks at: not taken
    window.view_actions["eigen"].setChecked(True)
    qtbot.waitUntil(lambda: session.controller.eigenvalues, timeout=30_000)
    session.step_once()
    qtbot.waitUntil(lambda: len(history().steps) == 2, timeout=30_000)
    assert history().latest.eigenvalues.shape == (1, SMALL["hidden"])
    view = window.grid.views["eigen"]
    qtbot.waitUntil(lambda: "|λ|" in view.title_label.text(), timeout=30_000)
    window.view_actions["eigen"].setChecked(False)
    qtbot.waitUntil(lambda: not session.controller.eigenvalues, timeout=30_000)
    session.step_once()
    qtbot.waitUntil(lambda: len(history().steps) == 3, timeout=30_000)
    assert history().latest.eigenvalues is None
