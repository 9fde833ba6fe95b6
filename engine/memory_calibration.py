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


def _status_bytes(field: str) -> int | None:
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure_peak(settings: dict, steps: int = 2) -> int:
    """Peak resident bytes of `steps` training steps of `settings`, over the process after imports.
    On Linux the peak is reset first (/proc/self/clear_refs), so a high-water mark left by the imports
    cannot hide the steps' own; elsewhere (ru_maxrss never goes down) run it in a fresh process."""
    registry.TASKS["digits"].data()
    torch.set_num_threads(1)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # resets VmHWM to the current resident size
        reset = True
    except OSError:
        reset = False
    before = _status_bytes("VmRSS") if reset else None
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    if before is None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    trainer = Trainer(Config(**settings), check_memory=False)
    for _ in range(steps):
        trainer.step()
    peak = _status_bytes("VmHWM") if reset else None
    return (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit) - before


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
