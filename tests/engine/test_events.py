"""Events are stamped with the first step trained under the new settings."""
import subprocess
import sys
import pathlib

from engine.config import Config
from engine.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_change_event_step_is_the_first_step_trained_under_the_new_settings():
    """engine/trainer.py, Event.step is documented as 'the first step trained under the new settings'
    and the 'diverged' event uses the snapshot's step number; update_config uses self.step_count, which
    is the number of the last step trained under the *old* settings (off by one)."""
    config = Config(seq_len=6, hidden=4, batch=2)
    trainer = Trainer(config)
    trainer.step()
    trainer.step()
    (event,) = trainer.update_config(config.replace(lr=0.01))
    snap = trainer.step()
    assert snap.events == (event,)
    assert event.step == snap.step  # fails: event.step == 2, snap.step == 3


def test_tiny_gradients_are_measured_not_rounded_to_zero():
    """Entries near 1e-24 square to 0 in float32; the norm must still come out near 1e-24 * sqrt(n)."""
    import torch
    from engine.config import Config as C
    trainer = Trainer(C(seq_len=100, hidden=64, batch=32, seed=0))
    snap = trainer.step()
    top = snap.grad_h[-1]
    # tanh at default init loses ~20 orders over 100 steps, so the earliest entries are ~1e-24 each:
    # their float32 squares underflow and a float32 norm would read exactly 0 there
    assert (top > 0).all() and top.min() < 1e-20
    entries = torch.full((32 * 64,), float(top.min()) / (32 * 64) ** 0.5)
    assert float(entries.norm()) == 0.0  # what the float32 norm would have said
    assert str(snap.grad_h.dtype) == "float64"
