"""Render every lesson at its pause step into a folder of PNGs, for looking at what a class will see.

    .venv/bin/python docs/render_lessons.py                       # all lessons, sizes, modes, themes
    .venv/bin/python docs/render_lessons.py --out /tmp/lessons --lessons multiply,fix-lstm \\
        --sizes 1280x720 --themes dark --modes lecture

For each screen size this starts one child process on Qt's offscreen platform with a screen of that
size (so lecture mode scales its text for that screen, as on a projector), opens the real window,
and for every lesson trains its runs (in the window's own session, in-process) until the lesson
pauses itself, then saves the window in each theme and mode:

    OUT/<lesson>-<WxH>-<theme>-<mode>.png     mode: normal, lecture, or back (normal after leaving
                                              lecture mode, with --back: should look like normal)

The window fills the screen in normal mode too (a maximized window). Training the 300-step lessons
takes a while (a few minutes per size on a laptop); the filters make a quick look quick. Prints one
line per file; exits 1 if a lesson did not reach its pause step within --timeout seconds.
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
SIZES = ("1280x720", "1600x1000", "1920x1080")
MODES = ("normal", "lecture")
THEMES = ("dark", "light")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="lesson-renders", help="folder for the PNGs (default: lesson-renders)")
    p.add_argument("--lessons", default="", help="comma-separated lesson names (default: all)")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated WIDTHxHEIGHT (default: {','.join(SIZES)})")
    p.add_argument("--modes", default=",".join(MODES), help="normal, lecture or both (default: both)")
    p.add_argument("--themes", default=",".join(THEMES), help="dark, light or both (default: both)")
    p.add_argument("--back", action="store_true", help="also save normal mode after leaving lecture mode")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a lesson may take to reach its pause step")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one size, in this process
    return p.parse_args(argv)


def _names(text: str, allowed, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit(f"error: unknown {what} {', '.join(bad)}; allowed: {', '.join(allowed)}")
    return names or list(allowed)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: size {text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (640 <= w <= 7680 and 480 <= h <= 4320):
        raise SystemExit(f"error: size {text} is outside 640x480 .. 7680x4320")
    return w, h


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from engine.lessons import LESSONS
    lessons = _names(args.lessons, list(LESSONS), "lesson")
    modes = _names(args.modes, MODES, "mode")
    themes = _names(args.themes, THEMES, "theme")
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.child:
        return render_size(sizes[0], lessons, modes, themes, out, args.back, args.timeout)
    code = 0
    for w, h in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            screen = Path(tmp) / "screen.json"
            screen.write_text(json.dumps({
                "synchronousWindowSystemEvents": False, "windowFrameMargins": False,
                "screens": [{"name": "screen", "x": 0, "y": 0, "width": w, "height": h,
                             "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
            env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screen}")
            env.setdefault("OMP_NUM_THREADS", "1")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--out", str(out),
                   "--lessons", ",".join(lessons), "--sizes", f"{w}x{h}", "--modes", ",".join(modes),
                   "--themes", ",".join(themes), "--timeout", str(args.timeout)] + (["--back"] if args.back else [])
            code = max(code, subprocess.run(cmd, cwd=ROOT, env=env).returncode)
    return code


# ----------------------------------------------------------------------------- one size, in a child

def _wait(ms: int):
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _settle(window, ms: int = 400):
    """Let the layout, the redraw timer and the legends' placement finish (a few display ticks)."""
    window.display.mark_all_dirty()
    for _ in range(3):
        _wait(ms // 3)


def render_size(size, lessons, modes, themes, out: Path, back: bool, timeout: float) -> int:
    from PySide6.QtWidgets import QApplication

    from engine.lessons import LESSONS
    from gui.app import _apply_style, quiet_offscreen_warnings
    from gui.main_window import MainWindow
    from gui.session import RunSession

    quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    _apply_style(app)
    w, h = size
    session = RunSession(LESSONS[lessons[0]].runs(), in_process=True)
    window = MainWindow(session, theme=themes[0], settings=None)
    window.setGeometry(0, 0, w, h)
    window.show()
    stopped = []
    session.stopped_at_lesson.connect(stopped.append)
    code = 0
    try:
        for name in lessons:
            stopped.clear()
            window.load_lesson(name)
            _wait(100)
            session.play()
            deadline = time.monotonic() + timeout
            while not stopped and time.monotonic() < deadline:
                if session.state == "diverged" and all(h.diverged_at_step is not None for h in session.histories):
                    break  # every run blew up: nothing trains to the lesson's step
                _wait(100)
            if not stopped and session.state != "diverged":
                print(f"error: {name} did not reach step {LESSONS[name].steps} in {timeout:g} s", file=sys.stderr)
                code = 1
            session.pause()
            _settle(window, 600)  # (each view is given the run set at a draw of its own: then a map is asked for)
            while any(getattr(view, "measuring", False) for view in window.views.values()) and \
                    time.monotonic() < deadline:  # (the Phase diagram's map, measured in a process of its own)
                _wait(100)
            _settle(window, 600)
            for theme in themes:
                window.set_theme(theme)
                _settle(window)
                for mode in modes:
                    if mode == "lecture":
                        window.set_lecture(True)
                        _settle(window, 900)
                    _save(window, out / f"{name}-{w}x{h}-{theme}-{mode}.png")
                    if mode == "lecture":
                        window.set_lecture(False)
                        window.setGeometry(0, 0, w, h)
                        _settle(window, 900)
                        if back:
                            _save(window, out / f"{name}-{w}x{h}-{theme}-back.png")
    finally:
        window.close()
        app.processEvents()
    return code


def _save(window, path: Path):
    window.grab().save(str(path))
    print(path, flush=True)


if __name__ == "__main__":
    sys.exit(main())
