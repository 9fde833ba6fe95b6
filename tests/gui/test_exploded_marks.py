"""A run that explodes (its loss passes engine.diagnosis.EXPLODED_LOSS times the baseline, finite) is
marked in the Loss view in the warning colour, and the status bar's diagnosis names the step."""
from __future__ import annotations

from engine.config import Config
from engine.diagnosis import diagnose
from engine.trainer import Trainer
from engine.worker import run_info
from gui.history import RunHistory
from gui.theme import DARK
from gui.views.loss import LossView

IRNN = Config(seq_len=150, activation="relu", init="identity", lr=0.01, batch=16, hidden=32, device="cpu")


def test_an_exploded_run_is_marked_in_the_loss_view_and_badged(qtbot):
    trainer = Trainer(IRNN)
    history = RunHistory(run_info(0, trainer))
    history.extend([trainer.step() for _ in range(4)])
    assert not trainer.diverged and history.exploded_at_step == trainer.exploded_at_step is not None
    view = LossView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.set_runs([history.info])
    view.refresh([history])
    view.grab()
    (top, _), = [m for m in view.markers if m[0].isVisible()]
    assert top.value() == history.exploded_at_step
    assert top.pen.color().name() == DARK.warning and top.full_text == "exploded"
    assert top.label.fill.color().name() == DARK.background  # readable where the loss curve crosses it
    tooltip = top.toolTip()
    assert tooltip.startswith(f"step {history.exploded_at_step}: exploded: loss ") and "x the baseline" in tooltip
    badge = diagnose(history)[0]
    assert badge.text == f"run exploded at step {history.exploded_at_step}" and badge.severity == "error"
