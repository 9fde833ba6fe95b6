"""Milliseconds to build the histories a replay shows (gui/history_at_step.py) when the handle moves.

No Qt. Each run's history is filled to what the window keeps (EXPORT_ROWS full snapshots, more
curve rows) with one real training snapshot repeated under new step numbers: the cost depends on
the shapes and the counts, not on the values. Then `history_at` is timed at steps spread over the
kept range, for every run of the setting together (what one move of the handle costs before the
views redraw). Median and worst over those steps.

    python benchmarks/bench_replay.py
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from engine.worker import run_info  # noqa: E402
from gui.history import EXPORT_ROWS, RunHistory  # noqa: E402
from gui.history_at_step import history_at  # noqa: E402

SETTINGS = {
    "default (T=100, 1 layer)": [Config(device="cpu")],
    "T=1000, 8 layers": [Config(device="cpu", seq_len=1000, layers=8, hidden=16, batch=4)],
    "compare 4 runs": [Config(device="cpu", seed=s) for s in range(4)],
}
STEPS = EXPORT_ROWS + 1000   # the oldest 1,000 are no longer kept in full


def filled(config: Config) -> RunHistory:
    trainer = Trainer(config)
    snap = trainer.step()
    history = RunHistory(run_info(0, trainer))
    history.extend([dataclasses.replace(snap, step=i, events=()) for i in range(1, STEPS + 1)])
    return history


def main():
    print(f"{'setting':28s} {'median ms':>10s} {'worst ms':>10s}   (all runs, one move of the handle)")
    for name, configs in SETTINGS.items():
        histories = [filled(c) for c in configs]
        times = []
        for step in range(STEPS - EXPORT_ROWS + 1, STEPS, 97):
            start = time.perf_counter()
            for history in histories:
                history_at(history, step)
            times.append((time.perf_counter() - start) * 1000)
        print(f"{name:28s} {statistics.median(times):10.1f} {max(times):10.1f}")


if __name__ == "__main__":
    main()
