"""What a lesson change holds the window up: the longest turn of the GUI thread's event loop after each change.

Opens the real window offscreen at 1600x1000 (default views, the worker in its own process, training), then loads
lessons one after another, as Lessons > Next would, and prints for each the milliseconds `load_lesson` took and the
longest single turn of the event loop in the 1.5 s after it (the views' new curves, legends and labels, the first
paint of the new run set, the grid and the lesson card laid out again). With --base, a second checkout is measured
the same way, interleaved, round after round.

    .venv/bin/python benchmarks/bench_lesson_switch.py                         # 16 lessons, this tree
    .venv/bin/python benchmarks/bench_lesson_switch.py --base /tmp/base --rounds 2

Other load on the machine moves every figure; compare trees in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(lessons: int) -> dict:
    """In this process: the window, then each lesson in turn (this tree's or --tree's code)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])
    from engine.config import Config
    from engine.lessons import LESSONS
    from gui.main_window import MainWindow
    from gui.session import RunSession
    session = RunSession([Config()])
    window = MainWindow(session)
    window.resize(1600, 1000)
    window.show()
    window.display.start()

    def pump(seconds: float) -> float:
        worst, end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            app.processEvents()
            worst = max(worst, time.perf_counter() - start)
        return worst * 1000.0

    from gui.collection import CollectionPacer
    collector = CollectionPacer()  # garbage collected between frames, as the window's own process does (gui/app.py)
    collector.start()
    session.play()
    pump(6.0)  # the worker up, the first run set drawn
    loads, worsts = [], []
    for name in list(LESSONS)[:lessons]:
        start = time.perf_counter()
        window.load_lesson(name)
        session.play()
        loads.append((time.perf_counter() - start) * 1000.0)
        worsts.append(pump(1.5))
    window.close()
    collector.stop()
    return {"lessons": list(LESSONS)[:lessons], "load_ms": loads, "worst_turn_ms": worsts}


def run_tree(tree: Path, lessons: int) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(tree), "--lessons", str(lessons)],
                         capture_output=True, text=True, timeout=600, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(figures: dict) -> str:
    worst = figures["worst_turn_ms"]
    return (f"worst turn median {statistics.median(worst):.0f} ms, max {max(worst):.0f} ms; "
            f"load_lesson median {statistics.median(figures['load_ms']):.0f} ms, max {max(figures['load_ms']):.0f} ms")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lessons", type=int, default=16, help="how many lessons, in order (default 16)")
    p.add_argument("--base", help="another checkout to measure the same way, interleaved")
    p.add_argument("--rounds", type=int, default=1, help="rounds of each tree (default 1)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # measure the tree at this path, in this process
    args = p.parse_args(argv)
    if args.child:
        sys.path.insert(0, args.child)
        print(json.dumps(measure(args.lessons)))
        return 0
    trees = {"now": ROOT} if not args.base else {"start": Path(args.base).resolve(), "now": ROOT}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
        for name in order:
            figures = run_tree(trees[name], args.lessons)
            print(f"round {round_ + 1} {name}: {summary(figures)}", flush=True)
            print("    worst turn (ms): " + " ".join(f"{v:.0f}" for v in figures["worst_turn_ms"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
