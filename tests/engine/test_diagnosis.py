"""The diagnosis badges from a stand-in run history: the diagnosis needs neither Qt nor the GUI's
history, only what its docstring lists. (tests/gui/test_views.py runs it on real RunHistory objects.)"""
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine.config import Config
from engine.diagnosis import Badge, diagnose
from engine.model import GATE_NAMES
from engine.trainer import Trainer


@pytest.fixture(scope="module")
def snapshot():
    return Trainer(Config(seq_len=6, hidden=4, batch=2, cell="lstm")).step()


class Losses:
    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def __len__(self):
        return len(self.values)

    def view(self):
        return self.values


def history(snap, top=None, losses=(), baseline=1.0, diverged_at=None, cell="lstm"):
    if top is not None:
        snap = dataclasses.replace(snap, grad_h=np.array([top], dtype=np.float64))
    return SimpleNamespace(latest=snap, diverged_at_step=diverged_at, loss=Losses(losses),
                           info=SimpleNamespace(config=SimpleNamespace(cell=cell), baseline_loss=baseline,
                                                        gate_names=GATE_NAMES[cell]))


def texts(badges):
    return [b.text for b in badges]


@pytest.mark.parametrize("first, expected", [
    (1e-12, "vanishing: 12 orders of magnitude lost"), (1e-4, "vanishing: 4 orders of magnitude lost"),
    (0.09, "fading: 1 order of magnitude lost"),  # under 4 orders (engine.api.VANISHING_ORDERS): not vanishing
    (20.0, "growing: 1 order of magnitude gained"), (2e5, "exploding: 5 orders of magnitude gained"),
    (0.0, "vanished: no gradient reaches the first step")])
def test_the_gradient_badge_names_the_orders_of_magnitude_between_the_last_step_and_the_first(snapshot, first, expected):
    gradient = [b for b in diagnose(history(snapshot, top=[first, 0.5, 1.0])) if "order" in b.text or "vanished" in b.text]
    assert texts(gradient) == [expected]


def test_a_step_that_diverged_gets_the_diverged_badge_and_no_gradient_reading(snapshot):
    badges = diagnose(history(snapshot, top=[math.inf, 1.0, 1.0], diverged_at=7))
    assert badges[0] == Badge("run diverged at step 7", badges[0].tooltip, "error")
    assert not any("order" in text for text in texts(badges))


def test_saturation_and_the_loss_against_its_baseline(snapshot):
    saturated = dataclasses.replace(snapshot, saturation=np.array([0.6], dtype=np.float32))
    assert "60% of gates saturated" in texts(diagnose(history(saturated, top=[1.0, 1.0, 1.0])))
    assert "60% of units saturated" in texts(diagnose(history(saturated, top=[1.0, 1.0, 1.0], cell="rnn")))
    # IndRNN's saturation counts its activation's units (it has no gates); minGRU's its update gate
    assert "60% of units saturated" in texts(diagnose(history(saturated, top=[1.0, 1.0, 1.0], cell="indrnn")))
    assert "60% of gates saturated" in texts(diagnose(history(saturated, top=[1.0, 1.0, 1.0], cell="mingru")))
    steady = history(snapshot, top=[1.0, 1.0, 1.0], losses=[1.0] * 60, baseline=1.0)
    assert "loss still at baseline" in texts(diagnose(steady))
    assert "loss far above baseline" in texts(diagnose(history(snapshot, top=[1.0] * 3, losses=[3.0] * 60)))
    assert diagnose(history(snapshot, top=[1.0] * 3, losses=[1.0] * 49)) == []  # too early to judge the loss


def test_several_runs_are_numbered_most_severe_first(snapshot):
    runs = [history(snapshot, top=[0.5, 1.0, 1.0]), history(snapshot, top=[1e-9, 1.0, 1.0], diverged_at=3)]
    assert texts(diagnose(runs)) == ["run 2: run diverged at step 3", "run 2: vanishing: 9 orders of magnitude lost"]
