"""Milliseconds per `refresh()` of every view, fed with real training snapshots.

Runs on the GUI thread of an offscreen Qt application. For each setting it trains a short run,
builds every view at 900x600, then times `refresh()` alone and `refresh()` plus a repaint
(`grab()`), which is what the display timer costs per frame. Frames alternate between the run
after N and after N+1 steps, so data and axis ranges change as they do live. Median over repeats.
pyqtgraph defers most work to the paint, so the second column is the honest cost of a frame.

    python benchmarks/bench_views.py            # default (rnn tanh, T=100, 1 layer) and heavier settings
    python benchmarks/bench_views.py --quick    # the default setting only
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from engine.worker import run_info  # noqa: E402
from gui.history import RunHistory  # noqa: E402
from gui.views import ALL_VIEWS  # noqa: E402

SETTINGS = {
    "default (T=100, 1 layer)": ([Config(device="cpu")], 300),
    "T=1000, 8 layers": ([Config(device="cpu", seq_len=1000, layers=8, hidden=16, batch=4)], 20),
    "LSTM, 3 layers": ([Config(device="cpu", cell="lstm", layers=3)], 100),
    "compare 3 runs": ([Config(device="cpu"), Config(device="cpu", cell="lstm"),
                        Config(device="cpu", activation="relu", init="identity")], 100),
}


def histories_for(configs, steps):
    """Two lists of histories: after `steps` steps and after one step more (same runs)."""
    histories, later = [], []
    for index, config in enumerate(configs):
        trainer = Trainer(config)
        history = RunHistory(run_info(index, trainer))
        after = RunHistory(history.info)
        for _ in range(steps):
            if trainer.diverged:
                break
            snap = trainer.step()
            history.extend([snap])
            after.extend([snap])
        if not trainer.diverged:
            after.extend([trainer.step()])
        histories.append(history)
        later.append(after)
    return histories, later


def time_ms(fn, repeats):
    fn()  # warm up (first refresh builds items)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the default setting only")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication([])
    settings = list(SETTINGS.items())[:1] if args.quick else list(SETTINGS.items())
    for name, (configs, steps) in settings:
        histories, later = histories_for(configs, steps)
        frames = [histories, later]
        print(f"\n{name}  ({steps} steps trained)")
        print(f"  {'view':<14} {'refresh ms':>10} {'refresh+paint ms':>17}")
        for view_class in ALL_VIEWS:
            view = view_class()
            view.resize(900, 600)
            view.show()
            view.set_runs([h.info for h in histories])
            def refresh_only():
                frames.reverse()
                view.refresh(frames[0])

            def frame():
                frames.reverse()
                view.refresh(frames[0])
                view.grab()
            refresh = time_ms(refresh_only, args.repeats)
            painted = time_ms(frame, max(5, args.repeats // 5))
            print(f"  {view.view_id:<14} {refresh:>10.2f} {painted:>17.1f}")
            view.close()
            app.processEvents()


if __name__ == "__main__":
    main()
