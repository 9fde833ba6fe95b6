"""A run whose loss or gradient passes the documented bounds while staying finite is flagged
"exploded" (engine.diagnosis.EXPLODED_LOSS, EXPLODED_GRAD_NORM), keeps training, and says so in
summary.json; a NaN or infinity is still "diverged" and stops the run."""
import json
import math

import numpy as np

from engine import cli
from engine.config import Config
from engine.diagnosis import EXPLODED_GRAD_NORM, EXPLODED_LOSS, diagnose
from engine.lessons import LESSONS
from engine.trainer import Trainer

# ReLU with identity weights (IRNN) over 150 steps at lr 0.01: the first Adam step lifts the loop's
# weights past 1, and the second step's loss is about 1e18 times the baseline, every number finite
IRNN = Config(seq_len=150, activation="relu", init="identity", lr=0.01, batch=16, hidden=32)


def test_irnn_loss_passes_the_bound_finite_is_flagged_once_and_training_goes_on():
    trainer = Trainer(IRNN)
    baseline = trainer.task.baseline_loss
    snaps = [trainer.step() for _ in range(4)]
    flagged = [s.step for s in snaps if s.exploded]
    assert flagged and flagged[0] > 1 and not snaps[0].exploded
    first = snaps[flagged[0] - 1]
    assert math.isfinite(first.loss) and first.loss > EXPLODED_LOSS * baseline
    assert not trainer.diverged and not any(s.diverged for s in snaps)
    assert trainer.exploded_at_step == flagged[0]
    for s in snaps:  # the flag is exactly the documented bounds, step by step
        assert s.exploded == (s.loss > EXPLODED_LOSS * baseline or s.grad_norm_clipped > EXPLODED_GRAD_NORM)
    events = [e for s in snaps for e in s.events if e.kind == "exploded"]
    assert [e.step for e in events] == [flagged[0]]  # one event, at the first step past a bound
    assert "x the baseline" in events[0].detail and events == [e for e in trainer.events if e.kind == "exploded"]


def test_a_rebuild_clears_the_flag():
    trainer = Trainer(IRNN)
    while trainer.exploded_at_step is None:
        trainer.step()
    trainer.update_config(IRNN.replace(seed=1, lr=0.001))
    assert trainer.exploded_at_step is None and not trainer.step().exploded


def test_a_huge_gradient_alone_is_flagged_and_ordinary_runs_are_not():
    exploding, = LESSONS["exploding"].runs()  # spectral radius 3: the gradient grows 3x per step back
    snap = Trainer(exploding).step()
    assert snap.grad_norm > EXPLODED_GRAD_NORM and snap.loss < EXPLODED_LOSS * (1 / 6)
    assert snap.exploded and "gradient norm" in snap.events[-1].detail
    clipped = Trainer(exploding.replace(clip="norm")).step()  # the same gradient, tamed by clipping
    assert clipped.grad_norm > EXPLODED_GRAD_NORM and not clipped.exploded
    for name in ("vanishing-tanh", "fix-irnn", "fix-lstm", "fix-clipping"):
        for config in LESSONS[name].runs():
            trainer = Trainer(config)
            for _ in range(3):  # (fix-clipping's unclipped run diverges: a NaN is not an explosion)
                if not trainer.diverged:
                    assert not trainer.step().exploded, (name, config)


def test_a_nan_is_diverged_not_exploded():
    trainer = Trainer(Config(seq_len=20, hidden=16, batch=8, optimizer="sgd", lr=1.0, activation="linear",
                             init="orthogonal", spectral_radius=3.0))
    while not trainer.diverged:
        snap = trainer.step()
    assert snap.diverged and not snap.exploded


def test_summary_json_says_whether_and_when_it_exploded(tmp_path):
    summary = cli.train(IRNN, 3, tmp_path / "irnn", progress=False)
    written = json.loads((tmp_path / "irnn" / "summary.json").read_text())
    assert written["exploded"] is True and written["exploded_at_step"] == 2 == summary["exploded_at_step"]
    assert not written["diverged"]
    calm = cli.train(Config(seq_len=10, hidden=8, batch=4), 3, tmp_path / "calm", progress=False)
    assert calm["exploded"] is False and calm["exploded_at_step"] is None


class _History:
    """What diagnose() reads of a run history."""

    def __init__(self, trainer, snap, exploded_at):
        self.latest, self.diverged_at_step, self.exploded_at_step = snap, None, exploded_at
        self.info = type("Info", (), {"config": trainer.config, "baseline_loss": trainer.task.baseline_loss,
                                      "gate_names": trainer.gate_names})
        self.loss = np.array([snap.loss])


def test_the_badge_names_the_step_and_the_bounds():
    trainer = Trainer(IRNN)
    snaps = [trainer.step() for _ in range(3)]
    badge = diagnose(_History(trainer, snaps[-1], trainer.exploded_at_step))[0]
    assert badge.text == f"run exploded at step {trainer.exploded_at_step}" and badge.severity == "error"
    assert "1e+08" in badge.tooltip and "1e+08" in badge.tooltip and badge.short == "exploded"
    assert not any("exploded" in b.text for b in diagnose(_History(trainer, snaps[-1], None)))
