"""Calibrating engine/memory.py's estimate against measured peak memory: `python -m engine.memory_calibration`.

Runs each configuration of memory.CALIBRATION in a fresh process (ru_maxrss never goes down) and
prints measured against estimated bytes. Kept apart from engine/memory.py, which the trainer
imports: this module imports the trainer.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import torch

from engine import registry
from engine.config import Config
from engine.memory import CALIBRATION, estimate_bytes
from engine.trainer import Trainer


def measure_peak(settings: dict, steps: int = 2) -> int:
    """Peak resident bytes of `steps` training steps of `settings`, over the process after imports.
    Meant for a fresh process (ru_maxrss never goes down)."""
    registry.TASKS["digits"].data()
    torch.set_num_threads(1)
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainer = Trainer(Config(**settings), check_memory=False)
    for _ in range(steps):
        trainer.step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * unit


def calibrate():
    print(f"  {'config (adding task unless named)':46} {'measured':>9} {'estimate':>9}   estimate / measured")
    for label, settings in CALIBRATION:
        code = (f"import json, engine.memory_calibration as m; "
                f"print(m.measure_peak(json.loads({json.dumps(settings)!r})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        measured = int(out.stdout.split()[-1])
        estimate = estimate_bytes(Config(**settings))["total"]
        print(f"  {label:46} {measured / 1e6:6,.0f} MB {estimate / 1e6:6,.0f} MB   {estimate / measured:.2f}",
              flush=True)


if __name__ == "__main__":
    calibrate()
