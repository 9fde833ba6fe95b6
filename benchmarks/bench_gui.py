"""The live window against the headless runner, at the same settings, in the same run.

Starts `main.py --quit-after S --stats F` (the window trains at full speed and draws every view),
then `main.py train` for the same number of seconds' worth of steps, and prints frames/s, UI stall
percentiles, start-to-first-frame, peak memory, and the window's training speed as a fraction of
the headless runner's. Targets (issue 3): >= 30 fps, stall p99 < 50 ms, >= 70% of headless,
first frame < 3 s, memory flat (see --soak).

    .venv/bin/python benchmarks/bench_gui.py                     # default settings, 15 s
    .venv/bin/python benchmarks/bench_gui.py --seconds 30 --set cell=lstm
    .venv/bin/python benchmarks/bench_gui.py --soak 1800         # RSS of window and worker every 30 s
    .venv/bin/python benchmarks/bench_gui.py --model big.pt --data resources/sunspots_monthly.csv --set seq_len=200

Runs offscreen unless a display is set (or under Xvfb with --xvfb). Other load on the machine moves
every figure.

Against the starting commit, side by side, interleaved (base, this tree; this tree, base; ...):

    git worktree add /tmp/base <commit>          # never switch this checkout
    .venv/bin/python benchmarks/bench_gui.py --base /tmp/base --rounds 3 --all-views --xvfb 1920x1080
    .venv/bin/python benchmarks/bench_gui.py --base /tmp/base --rounds 3 --all-views --xvfb 1920x1080 --lecture

--all-views turns every view on (the View menu's off-at-start ones too); --xvfb WxH runs each window
under `xvfb-run` on a screen of that size (the window opens at 1600x1000 on a 1920x1080 screen; lecture
mode fills it). Both trees run with the same wrapper, which counts each view's refreshes: `frames/s` is
display ticks that redrew at least one view; `view updates/s` is how often each shown view was redrawn
(the mean over the shown views): 60 would be every view at every display frame.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES: list[str] = []  # --model FILE / --data FILE, passed to the window and the headless runner alike
WITHOUT: list[str] = []  # --without ID,ID: views left off (after --all-views)


SCREEN = {"synchronousWindowSystemEvents": False, "windowFrameMargins": False,
          "screens": [{"name": "desktop", "x": 0, "y": 0, "width": 1920, "height": 1080,
                       "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}


def _env():
    """Offscreen on a 1920x1080 screen (Qt's default offscreen screen is 800x800, on which the window,
    which keeps within the screen, would open smaller than the 1600x1000 it opens at on a desktop)."""
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        screen = Path(tempfile.gettempdir()) / "rnn-gradient-lab-bench-screen.json"
        screen.write_text(json.dumps(SCREEN))
        env["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
    return env


# Runs the window of the tree it is started in, every view on where asked, and adds to its stats how often
# each view was redrawn (counted around DisplayScheduler._refresh, which every tree since issue 3 has).
WRAPPER = """
import json, os, sys, collections, time
sys.path.insert(0, os.getcwd())
import gui.display, gui.app
counts = collections.Counter()
spent = collections.Counter()
refresh = gui.display.DisplayScheduler._refresh
first_refresh = []  # (wall, the GUI thread's CPU) at the first redraw
def counted(self, key, view):
    if not first_refresh:
        first_refresh.append((time.perf_counter(), time.thread_time()))
    counts[key] += 1
    start = time.perf_counter()
    try:
        return refresh(self, key, view)
    finally:
        spent[key] += time.perf_counter() - start
gui.display.DisplayScheduler._refresh = counted
if os.environ.get("BENCH_ALL_VIEWS"):
    from gui.views import ALL_VIEWS
    for view_class in ALL_VIEWS:
        view_class.shown_at_start = True
if os.environ.get("BENCH_WITHOUT"):  # --without ID,ID: these views off
    from gui.views import ALL_VIEWS
    for view_class in ALL_VIEWS:
        if view_class.view_id in os.environ["BENCH_WITHOUT"].split(","):
            view_class.shown_at_start = False
collect = gui.app.collect_stats
def collect_stats(window, *args):
    stats = collect(window, *args)
    shown = [k for k, v in window.display.views.items() if v.isVisibleTo(window)]  # (the window is closed)
    stats["view_refreshes"] = dict(counts)
    stats["view_refresh_ms"] = {k: 1000 * v / max(counts[k], 1) for k, v in spent.items()}
    stats["views_shown"] = shown
    if first_refresh:  # (collect_stats runs on the GUI thread)
        wall, cpu = first_refresh[0]
        stats["gui_thread_cpu_share"] = (time.thread_time() - cpu) / max(time.perf_counter() - wall, 1e-9)
    return stats
gui.app.collect_stats = collect_stats
sys.argv = ["main.py"] + sys.argv[1:]
import main
if os.environ.get("BENCH_STALLS"):  # what the GUI thread was doing whenever it stopped answering for 40 ms or more
    import gc, threading, traceback
    from PySide6.QtCore import QTimer
    beat = [time.perf_counter()]
    stalls, collections_ = [], []
    gc_start = {}
    def on_gc(phase, info):
        if phase == "start":
            gc_start[0] = (time.perf_counter(), time.thread_time(), gc.get_count())
        elif 0 in gc_start:
            wall, cpu, counts = gc_start.pop(0)
            collections_.append((info["generation"], time.perf_counter() - wall, time.thread_time() - cpu, counts,
                                 info["collected"]))
    gc.callbacks.append(on_gc)
    main_id = threading.get_ident()
    def heartbeat_timer():
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: beat.__setitem__(0, time.perf_counter()))
        timer.start()
        return timer
    def watch():
        seen = None
        while True:
            time.sleep(0.01)
            late = time.perf_counter() - beat[0]
            if late > 0.04 and seen != beat[0]:
                seen = beat[0]
                frame = sys._current_frames().get(main_id)
                stack = traceback.extract_stack(frame)[-14:] if frame is not None else []
                stalls.append([f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in stack])
    threading.Thread(target=watch, daemon=True).start()
    import pyqtgraph as pg
    from gui.views.base import View
    paints, paint_time = collections.Counter(), collections.Counter()
    paint_event = pg.GraphicsView.paintEvent
    def timed_paint(self, event):
        start = time.perf_counter()
        try:
            return paint_event(self, event)
        finally:
            owner = self.parentWidget()
            while owner is not None and not isinstance(owner, View):
                owner = owner.parentWidget()
            key = owner.view_id if owner is not None else "other"
            paints[key] += 1
            paint_time[key] += time.perf_counter() - start
    pg.GraphicsView.paintEvent = timed_paint
    collect_before = gui.app.collect_stats
    def collect_stats_with_stalls(window, *args):
        stats = collect_before(window, *args)
        stats["stall_stacks"] = stalls
        stats["gc"] = collections_
        stats["paints"] = {k: [paints[k], 1000 * paint_time[k] / paints[k]] for k in paints}
        return stats
    gui.app.collect_stats = collect_stats_with_stalls
    from PySide6.QtWidgets import QApplication
    QTimer.singleShot(0, lambda: setattr(QApplication.instance(), "_bench_beat", heartbeat_timer()))
if os.environ.get("BENCH_PROFILE"):  # the GUI thread's own time, by function (cProfile), for --profile
    import cProfile
    profiler = cProfile.Profile(time.thread_time)  # the GUI thread's CPU time: descheduled time does not count
    profiler.enable()
    try:
        code = main.main()
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE"])
    sys.exit(code)
sys.exit(main.main())
"""


def window(seconds: float, sets: list[str], root: Path = ROOT, all_views: bool = False, xvfb: str | None = None,
           lecture: bool = False, profile: str | None = None, stalls: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-c", WRAPPER, "--quit-after", str(seconds), "--stats", str(stats)]
        for s in sets:
            cmd += ["--set", s]
        if lecture:
            cmd.append("--lecture")
        env = _env() if not xvfb else dict(os.environ, QT_QPA_PLATFORM="xcb")
        if all_views:
            env["BENCH_ALL_VIEWS"] = "1"
        if WITHOUT:
            env["BENCH_WITHOUT"] = ",".join(WITHOUT)
        if profile:
            env["BENCH_PROFILE"] = str(Path(profile).absolute())
        if stalls:
            env["BENCH_STALLS"] = "1"
        if xvfb:
            cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {xvfb}x24"] + cmd
        subprocess.run(cmd + FILES, cwd=root, env=env, check=True, capture_output=True, timeout=seconds + 180)
        result = json.loads(stats.read_text())
        span = max(result["seconds"] - (result["start_to_first_frame_s"] or 0.0), 1e-9)
        shown = result.get("views_shown") or []
        counts = result.get("view_refreshes", {})
        result["view_updates_per_s"] = (sum(counts.get(k, 0) for k in shown) / len(shown) / span) if shown else 0.0
        return result


def headless(steps: int, sets: list[str], root: Path = ROOT, all_views: bool = False) -> float:
    """The headless runner's steps/s. With every view on, the window's worker also takes the tanh RNN's
    eigenvalues (the Eigenvalues view is on screen), so the runner does too, where its tree can say so
    (`train --eigenvalues`; a tree from before took them at every step anyway). The Units and Answers views'
    detail, at most 4% of the worker's time, has no headless counterpart and is not matched."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "main.py", "train", "--steps", str(steps), "--out", tmp]
        if all_views and '"--eigenvalues"' in (root / "engine" / "cli.py").read_text():
            cmd.append("--eigenvalues")
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd + FILES, cwd=root, check=True, capture_output=True, timeout=600)
        return json.loads((Path(tmp) / "summary.json").read_text())["steps_per_second"]


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def side_by_side(args):
    """Each round: the window and the headless runner of each tree, the order alternating by round."""
    trees = {"start": Path(args.base).resolve(), "now": ROOT}
    figures = {name: [] for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
        for name in order:
            load = _load()
            w = window(args.seconds, args.set, trees[name], args.all_views, args.xvfb, args.lecture)
            h = headless(max(50, int(w["steps_per_second"] * 5)), args.set, trees[name], args.all_views)
            w["headless"], w["load"] = h, load
            figures[name].append(w)
            print(f"round {round_ + 1} {name}: load {load}, {w['fps']:.1f} frames/s, "
                  f"{w['view_updates_per_s']:.1f} view updates/s over {len(w.get('views_shown') or [])} views, "
                  f"p99 stall {w['ui_stall_ms_p99']:.1f} ms, {w['steps_per_second']:.1f} / {h:.1f} steps/s", flush=True)

    def cell(name, fn):
        return " / ".join(fn(w) for w in figures[name])
    rows = [
        ("frames/s (ticks drawing)", lambda w: f"{w['fps']:.1f}", "60"),
        ("view updates/s, mean per shown view", lambda w: f"{w['view_updates_per_s']:.1f}", "60"),
        ("UI stall p99 (ms)", lambda w: f"{w['ui_stall_ms_p99']:.1f}", "<= 20"),
        ("UI stall p99 from 1 s after the first frame (ms)",
         lambda w: f"{w['ui_stall_ms_p99_steady']:.1f}" if w.get("ui_stall_ms_p99_steady") is not None else "-", "<= 20"),
        ("UI stall max (ms)", lambda w: f"{w['ui_stall_ms_max']:.0f}", ""),
        ("GUI thread's CPU, share of a core", lambda w: f"{w.get('gui_thread_cpu_share', float('nan')):.0%}", ""),
        ("training steps/s, window", lambda w: f"{w['steps_per_second']:.1f}", ""),
        ("training steps/s, headless", lambda w: f"{w['headless']:.1f}", ""),
        ("window / headless", lambda w: f"{w['steps_per_second'] / w['headless']:.0%}", ">= 95%"),
        ("load average at the start", lambda w: w["load"], ""),
    ]
    where = f"xvfb {args.xvfb}" if args.xvfb else "offscreen 1920x1080"
    print(f"\nsettings: {' '.join(FILES + args.set) or 'defaults'}; {'every view' if args.all_views else 'default views'}; "
          f"{'lecture' if args.lecture else 'normal'} mode; {where}; {args.seconds:g} s windows; rounds 1 / 2 / 3\n")
    print("| figure | starting commit | now | goal |\n|---|---:|---:|---|")
    for label, fn, goal in rows:
        print(f"| {label} | {cell('start', fn)} | {cell('now', fn)} | {goal} |")


def _print_stalls(w: dict):
    """Where the GUI thread was at its stalls, grouped by the innermost frame of the lab's own code (gui/, engine/)
    and the innermost frame of all; and the garbage collections by generation."""
    import collections
    by_ours, by_last = collections.Counter(), collections.Counter()
    for stack in w["stall_stacks"]:
        ours = [f for f in stack if f.split(":")[0].startswith(("gui/", "views/", "engine/")) or "/gui/" in f
                or f.startswith(("display.py", "session.py", "main_window.py", "worker_client.py", "history"))]
        by_ours[ours[-1] if ours else "(no frame of ours)"] += 1
        by_last[stack[-1] if stack else "(in C++, no Python frame)"] += 1
    print(f"\n{len(w['stall_stacks'])} stalls of 40 ms or more; the innermost frame of the lab's code:")
    for where, n in by_ours.most_common(15):
        print(f"  {n:4d}  {where}")
    print("the innermost frame:")
    for where, n in by_last.most_common(15):
        print(f"  {n:4d}  {where}")
    by_gen = collections.defaultdict(list)
    for generation, wall, cpu, *_ in w.get("gc", []):
        by_gen[generation].append((wall * 1000, cpu * 1000))
    slowest = sorted(w.get("gc", []), key=lambda c: -c[2])[:5]
    for generation, wall, cpu, counts, collected in slowest:
        print(f"  a collection of generation {generation}: {cpu * 1000:.1f} ms of CPU, counts before {counts}, "
              f"{collected} freed")
    for generation, times in sorted(by_gen.items()):
        walls, cpus = [t[0] for t in times], [t[1] for t in times]
        print(f"garbage collections of generation {generation}: {len(times)}, {sum(walls):.0f} ms in all "
              f"({sum(cpus):.0f} ms of CPU), longest {max(walls):.1f} ms ({max(cpus):.1f} ms of CPU)")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def soak(seconds: float, sets: list[str], every: float = 30.0, settle: float = 120.0):
    """RSS of the window (GUI process) and of the worker every `every` seconds; at the end, each one's
    growth from the first sample after `settle` seconds (start-up and the first plots allocated) to
    the last. Target (issue 17): under 5% over 30 minutes."""
    cmd = [sys.executable, "main.py", "--quit-after", str(seconds)]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.time()
    samples = []
    print("| minute | window (MB) | worker (MB) | together (MB) |\n|---:|---:|---:|---:|")
    while proc.poll() is None:
        time.sleep(every)
        if proc.poll() is None:
            gui = _rss_mb(proc.pid)
            worker = sum(_rss_mb(child) for child in _children(proc.pid))
            minute = (time.time() - start) / 60
            samples.append((minute, gui, worker))
            print(f"| {minute:.1f} | {gui:.0f} | {worker:.0f} | {gui + worker:.0f} |", flush=True)
    proc.wait()
    settled = [s for s in samples if s[0] * 60 >= settle]
    if len(settled) >= 2:
        first, last = settled[0], settled[-1]
        for name, k in (("window", 1), ("worker", 2)):
            growth = (last[k] - first[k]) / first[k] if first[k] else float("nan")
            print(f"{name}: {first[k]:.0f} MB at minute {first[0]:.1f} -> {last[k]:.0f} MB at minute "
                  f"{last[0]:.1f} ({growth:+.1%})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--soak", type=float, default=None, metavar="SECONDS", help="sample memory over a long run instead")
    p.add_argument("--model", help="a model of your own (as main.py --model)")
    p.add_argument("--data", help="data of your own (as main.py --data)")
    p.add_argument("--base", help="a checkout of the starting commit (git worktree add /tmp/base COMMIT): both, side by side")
    p.add_argument("--rounds", type=int, default=3, help="with --base: interleaved rounds")
    p.add_argument("--all-views", action="store_true", help="every view on, the View menu's off-at-start ones too")
    p.add_argument("--xvfb", metavar="WxH", help="run each window under xvfb-run on a screen of this size")
    p.add_argument("--lecture", action="store_true", help="the window in lecture mode")
    p.add_argument("--without", default="", metavar="ID,ID", help="these views off (after --all-views): e.g. units,answers")
    p.add_argument("--stalls", action="store_true", help="without --base: what the GUI thread was doing at each stall of "
                   "40 ms or more (its stack, sampled by a watching thread) and every garbage collection's time")
    p.add_argument("--profile", metavar="FILE", help="without --base: the GUI thread under cProfile, its stats to FILE "
                   "(read them with benchmarks/frame_budget.py FILE)")
    args = p.parse_args()
    WITHOUT.extend(v for v in args.without.split(",") if v)
    for option in ("model", "data"):
        if getattr(args, option):
            FILES.extend([f"--{option}", str(Path(getattr(args, option)).absolute())])
    if args.soak:
        soak(args.soak, args.set)
        return
    if args.base:
        side_by_side(args)
        return
    w = window(args.seconds, args.set, ROOT, args.all_views, args.xvfb, args.lecture, args.profile, args.stalls)
    h = headless(max(50, int(w["steps_per_second"] * 5)), args.set, ROOT, args.all_views)
    rows = [
        ("frames/s", f"{w['fps']:.1f}", "60"),
        ("view updates/s, mean per shown view", f"{w['view_updates_per_s']:.1f}", "60"),
        ("GUI thread's CPU, share of a core", f"{w.get('gui_thread_cpu_share', float('nan')):.0%}", ""),
        ("UI stall p50 / p99 / max (ms)",
         f"{w['ui_stall_ms_p50']:.1f} / {w['ui_stall_ms_p99']:.1f} / {w['ui_stall_ms_max']:.0f}", "p99 <= 20"),
        ("start to first frame (s)", f"{w['start_to_first_frame_s']:.2f}", "< 3"),
        ("training steps/s in the window", f"{w['steps_per_second']:.1f}", ""),
        ("training steps/s headless", f"{h:.1f}", ""),
        ("window / headless", f"{w['steps_per_second'] / h:.0%}", ">= 95%"),
        ("peak RSS, window + worker (MB)", f"{w['peak_rss_mb']:.0f}", "flat over time (--soak)"),
    ]
    print(f"settings: {' '.join(FILES + args.set) or 'defaults'}; {args.seconds:g} s window session\n")
    print("| figure | measured | target |\n|---|---:|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    if "stall_stacks" in w:
        _print_stalls(w)
    if "paints" in w:
        print("\n| view | paints | ms per paint (pyqtgraph's GraphicsView.paintEvent) |\n|---|---:|---:|")
        for key, (n, ms) in sorted(w["paints"].items(), key=lambda kv: -kv[1][0] * kv[1][1]):
            print(f"| {key} | {n} | {ms:.1f} |")
    counts, spent = w.get("view_refreshes", {}), w.get("view_refresh_ms", {})
    if counts:
        span = max(w["seconds"] - (w["start_to_first_frame_s"] or 0.0), 1e-9)
        print("\n| view | updates/s | ms per update | ms per second |\n|---|---:|---:|---:|")
        for key in sorted(counts, key=lambda k: -counts[k] * spent.get(k, 0)):
            print(f"| {key} | {counts[key] / span:.1f} | {spent.get(key, 0):.1f} | "
                  f"{counts[key] * spent.get(key, 0) / span:.0f} |")


if __name__ == "__main__":
    main()
