"""Live setting changes through the controls, one after another: does the thousandth cost what the first did?

Opens the real window offscreen (every view, the worker in its own process), presses Play, then sets
the learning-rate box to a new value every `--interval-ms` (as a user dragging through values would)
until `--changes` changes have been applied. Prints, per hundred changes: the seconds they took (at
60 ms apart, 6.0 s when nothing holds the GUI thread up), the display ticks that drew, the median and
95th-percentile milliseconds of such a tick, the median milliseconds of the loss view's refresh, and
the change markers the loss view holds and shows. Then: whether the last learning rate reached the
run info (`history.info.config.lr`) and how long after it was set.

    .venv/bin/python benchmarks/bench_live_changes.py                  # 1,000 changes, 60 ms apart
    .venv/bin/python benchmarks/bench_live_changes.py --changes 400    # the issue's first vs fourth hundred
    .venv/bin/python benchmarks/bench_live_changes.py --in-process     # worker in a thread of this process

Other load on the machine (this is a shared 2-core machine) moves every figure; the ratio of the
last hundred's seconds to the first's is the figure to read.
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

from PySide6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.config import Config  # noqa: E402


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def lr_for(change: int) -> float:
    """A different learning rate every change (never the one before), within the box's range."""
    return round(0.001 * (1.0 + (change % 97 + 1) / 100.0), 8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--interval-ms", type=int, default=60)
    parser.add_argument("--in-process", action="store_true", help="the worker in a thread, not a process")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from gui.main_window import MainWindow
    from gui.session import RunSession

    session = RunSession([Config(device="cpu")], in_process=args.in_process)
    window = MainWindow(session, settings=None)
    window.resize(1600, 1000)
    window.show()
    display, loss_view = window.display, window.views["loss"]

    # every display tick that drew, every view's refresh and every change's handling (setting the box:
    # the controls, the window, the session) timed (ms), tagged with the change count
    ticks, applies = [], []
    refreshes = {key: [] for key in window.views}
    state = {"changes": 0, "times": [], "last_lr": None, "last_set": None, "shown_after": None}
    original_tick = display.tick

    def timed_tick():
        frames = display.frames
        start = time.perf_counter()
        original_tick()
        if display.frames != frames:
            ticks.append((state["changes"], (time.perf_counter() - start) * 1000))

    def timed(key, refresh):
        def timed_refresh(histories):
            start = time.perf_counter()
            refresh(histories)
            refreshes[key].append((state["changes"], (time.perf_counter() - start) * 1000))
        return timed_refresh

    display.timer.timeout.disconnect(display.tick)
    display.timer.timeout.connect(timed_tick)
    for key, view in window.views.items():
        view.refresh = timed(key, view.refresh)
    loss_refreshes = refreshes["loss"]

    lr_box = window.controls.controls["lr"]
    changer = QTimer()
    changer.setTimerType(Qt.TimerType.PreciseTimer)
    changer.setInterval(args.interval_ms)
    clock = QElapsedTimer()

    def change():
        if state["changes"] >= args.changes:
            changer.stop()
            return
        lr = lr_for(state["changes"])
        start = time.perf_counter()
        lr_box.setValue(lr)  # the controls emit config_changed: the window applies it to the session
        applies.append((state["changes"] + 1, (time.perf_counter() - start) * 1000))
        state["changes"] += 1
        state["times"].append(time.perf_counter())
        state["last_lr"], state["last_set"] = lr, time.perf_counter()

    def watch_applied():
        if state["last_set"] is None or state["changes"] < args.changes or state["shown_after"] is not None:
            return
        if session.histories and session.histories[0].info.config.lr == state["last_lr"]:
            state["shown_after"] = time.perf_counter() - state["last_set"]

    watcher = QTimer()
    watcher.setInterval(5)
    watcher.timeout.connect(watch_applied)
    watcher.start()
    changer.timeout.connect(change)

    def begin():
        if session.training_steps < 50:  # the worker is up and training before the first change
            QTimer.singleShot(100, begin)
            return
        clock.start()
        changer.start()

    session.play()
    QTimer.singleShot(100, begin)
    print(f"{args.changes} learning-rate changes through the controls, {args.interval_ms} ms apart; "
          f"worker {'in a thread' if args.in_process else 'in a process'}", flush=True)
    deadline = time.perf_counter() + args.changes * args.interval_ms / 1000 * 20 + 60
    while (state["changes"] < args.changes or state["shown_after"] is None
           and time.perf_counter() - state["last_set"] < 5.0) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.001)
        if state["changes"] and state["changes"] % 100 == 0 and state.get("printed") != state["changes"]:
            state["printed"] = state["changes"]
            print(f"  {state['changes']} changes after {time.perf_counter() - state['times'][0]:.1f} s", flush=True)

    times = state["times"]
    print()
    print("| changes   | seconds | apply ms median | ticks drawn | tick ms median | tick ms p95 "
          "| loss refresh ms median | p95 | all views' refresh ms, median sum |")
    print("|-----------|---------|-----------------|-------------|----------------|-------------"
          "|------------------------|-----|-----------------------------------|")

    def in_hundred(samples, first, last):
        return [ms for n, ms in samples if first < n <= last]

    def median(values):
        return statistics.median(values) if values else float("nan")

    for first in range(0, len(times), 100):
        last = min(first + 100, len(times))
        end = times[last] if last < len(times) else times[-1] + args.interval_ms / 1000
        seconds = end - times[first]
        drawn = in_hundred(ticks, first, last)
        loss = in_hundred(loss_refreshes, first, last)
        all_views = sum(median(in_hundred(samples, first, last)) for samples in refreshes.values()
                        if in_hundred(samples, first, last))
        print(f"| {first + 1:4d}-{last:<4d} | {seconds:7.1f} | {median(in_hundred(applies, first, last)):15.2f} "
              f"| {len(drawn):11d} | {median(drawn):14.1f} | {percentile(drawn, 0.95):11.1f} | "
              f"{median(loss):22.1f} | {percentile(loss, 0.95):3.0f} | {all_views:33.1f} |")
    for label, (first, last) in (("first", (0, 100)), ("last", ((len(times) - 1) // 100 * 100, len(times)))):
        medians = {key: median(in_hundred(samples, first, last)) for key, samples in refreshes.items()}
        print(f"{label} hundred, median refresh ms per view: "
              + ", ".join(f"{key} {ms:.1f}" for key, ms in medians.items()))
    if len(times) >= 200:
        first = times[100] - times[0]
        last_start = (len(times) - 1) // 100 * 100
        last = (times[-1] + args.interval_ms / 1000) - times[last_start] if last_start else float("nan")
        print(f"\nfirst hundred {first:.1f} s, last hundred {last:.1f} s (x{last / first:.2f}); "
              f"all {len(times)} in {times[-1] - times[0] + args.interval_ms / 1000:.1f} s "
              f"(nominal {len(times) * args.interval_ms / 1000:.1f} s); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    markers = getattr(loss_view, "markers", [])
    shown = sum(1 for top, _ in markers if top.isVisible())
    print(f"loss view: {len(markers)} marker line pairs held, {shown} shown; "
          f"events in the run's history: {len(session.histories[0].events) if session.histories else 0}")
    if state["shown_after"] is not None:
        print(f"the last learning rate ({state['last_lr']}) shown as applied in the run info "
              f"{state['shown_after'] * 1000:.0f} ms after it was set")
    else:
        shown_lr = session.histories[0].info.config.lr if session.histories else None
        print(f"the last learning rate ({state['last_lr']}) NOT shown as applied: the run info says lr {shown_lr}")
    watcher.stop()
    window.close()
    window.shutdown()


if __name__ == "__main__":
    main()
