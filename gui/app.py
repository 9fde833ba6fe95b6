"""Window entry point: `python main.py [--lesson NAME] [--config FILE] [--set KEY=VALUE ...] ...`.

Runs on the GUI thread of the main process. Bad arguments or settings print one clear message and
exit with status 2, never a traceback; so does a missing display (Qt would abort). The training
worker is started before the window is built, so its torch start-up overlaps window construction.
`--quit-after` runs a timed, self-closing session (training starts at once) and `--stats` writes
its performance figures as JSON; such scripted sessions neither read nor change what the window
remembers between sessions (geometry, theme, last experiment), so they are reproducible.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

from engine.args import ArgumentParser, add_file_options, decimal_number, probe_writable
from gui.offscreen import quiet_offscreen_warnings

START = time.perf_counter()
MAX_QUIT_AFTER = 2_000_000  # seconds (23 days): Qt's timers count milliseconds in 32 bits
SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="main.py", description="RNN Gradient Lab: watch gradients vanish and explode while a "
                "recurrent network trains. Other commands: `main.py train --help` (headless training), "
                "`main.py lessons` (list the lessons), `main.py record --help` (lesson videos with no screen).")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="open a file: an experiment (.rgl), a settings file (.json, .toml), your model (.pt, .pth, "
                        ".ckpt) or your data (.npz, .csv, .txt), as --config, --model or --data would")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--lesson", help="start from a guided lesson (list them with `main.py lessons`)")
    source.add_argument("--config", help="start from a JSON or TOML settings file, or an experiment file (.rgl: all "
                                         "its runs, its lesson and any data it carries)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set cell=lstm; repeatable (the last of the same KEY wins)")
    add_file_options(p)
    p.add_argument("--quit-after", type=decimal_number, metavar="SECONDS",
                   help="start training at once and close the window after this many seconds")
    p.add_argument("--stats", metavar="FILE", help="with --quit-after: write frame rate, training speed and "
                   "UI responsiveness figures to this JSON file")
    p.add_argument("--screenshot", metavar="FILE", help="with --quit-after: save an image of the window just before quitting (.png, .jpg, .jpeg or .bmp)")
    p.add_argument("--theme", choices=("dark", "light"),
                   help="colour theme: dark, or high-contrast light for a bright room (default: the last one used)")
    p.add_argument("--lecture", action="store_true",
                   help="start in lecture mode: full screen, large text, settings hidden (F11, L or Esc leave it)")
    p.add_argument("--follow", metavar="DIR", help="follow a run folder that engine.watching.watch() writes from "
                   "your own training script: the views show it as it grows (or the whole run, once it ended)")
    p.add_argument("--in-process", action="store_true",
                   help="train in a thread of this process instead of a worker process (for debugging)")
    return p


class StallMeter:
    """Measures how late a 10 ms heartbeat timer fires on the GUI thread: the UI's responsiveness."""

    INTERVAL_MS = 10

    def __init__(self):
        from PySide6.QtCore import Qt, QTimer
        self.lateness_ms: list[float] = []
        self.beat_times: list[float] = []
        self.long_stalls: list[tuple[float, float]] = []  # (seconds since start, ms late), for diagnosis
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(self.INTERVAL_MS)
        self.timer.timeout.connect(self._beat)
        self.last = None

    def start(self):
        self.last = time.perf_counter()
        self.timer.start()

    def _beat(self):
        now = time.perf_counter()
        late = max(0.0, (now - self.last) * 1000.0 - self.INTERVAL_MS)
        self.lateness_ms.append(late)
        self.beat_times.append(now)
        if late >= 50.0:
            self.long_stalls.append((round(now - START, 3), round(late, 1)))
        self.last = now

    def percentile(self, q: float, since: float | None = None) -> float:
        values = self.lateness_ms if since is None else \
            [late for t, late in zip(self.beat_times, self.lateness_ms) if t >= since]
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def collect_stats(window, stall: StallMeter, session_start: float, session_end: float) -> dict:
    session = window.session
    duration = max(session_end - session_start, 1e-9)
    training_time = (session.last_data_time - session.first_data_time
                     if session.first_data_time is not None and session.last_data_time is not None else 0.0)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    first_frame, frames = window.display.first_frame_time, window.display.frames
    return {
        "frames": frames,
        # frames per second while there was something to draw (the worker's start-up excluded)
        "fps": frames / max(session_end - first_frame, 1e-9) if first_frame is not None else 0.0,
        "fps_whole_session": frames / duration,
        "training_steps": session.training_steps,
        # steps over the time steps were arriving (excludes the worker's torch start-up)
        "steps_per_second": session.training_steps / training_time if training_time > 0 else 0.0,
        "worker_steps_per_second": session.steps_per_second,
        "runs": len(session.configs),
        "configs": [c.to_dict() for c in session.configs],  # what was trained (a lesson's runs, --set on each)
        "ui_stall_ms_p50": stall.percentile(50),
        "ui_stall_ms_p99": stall.percentile(99),
        "ui_stall_ms_max": max(stall.lateness_ms, default=0.0),
        # the same, from one second after the first frame: start-up (views building their plots) excluded
        "ui_stall_ms_p99_steady": None if first_frame is None else stall.percentile(99, since=first_frame + 1.0),
        "peak_rss_mb": (self_kb + children_kb) / 1024.0,
        "peak_rss_gui_mb": self_kb / 1024.0,
        "peak_rss_worker_mb": children_kb / 1024.0,
        "start_to_first_frame_s": None if first_frame is None else first_frame - START,
        "seconds": duration,
        "ui_stalls_over_50ms": stall.long_stalls[:50],
    }


def main(argv: list[str]) -> int:
    from engine.cli import resolve_config
    from engine.errors import ConfigError, UsageError
    try:
        args = build_parser().parse_args(argv)
        _take_file_argument(args)
        config = resolve_config(args.lesson, args.config, args.set, model=args.model, data=args.data)
        from engine import admission, user_files
        lesson_runs = user_files.lesson_with_files(args.lesson, args.set, args.model, args.data) if args.lesson else None
        # sizes that do not fit together are refused here, as `train` refuses them, not after the window opens
        admission.admit(lesson_runs or [config])
        if args.quit_after is not None and not 0 < args.quit_after <= MAX_QUIT_AFTER:
            raise ConfigError("--quit-after", args.quit_after, f"a number of seconds above 0, at most {MAX_QUIT_AFTER}")
        if (args.stats or args.screenshot) and args.quit_after is None:
            raise UsageError("--stats and --screenshot need --quit-after SECONDS")
        if args.screenshot and Path(args.screenshot).suffix.lower() not in SCREENSHOT_SUFFIXES:
            suffix = Path(args.screenshot).suffix
            raise ConfigError("--screenshot", args.screenshot, "a file name ending in " + ", ".join(SCREENSHOT_SUFFIXES),
                              f"is not an image type the window saves ({suffix})" if suffix else "has no image suffix")
        for option, path in (("--stats", args.stats), ("--screenshot", args.screenshot)):
            problem = path and probe_writable(Path(path))
            if problem:  # refused now, not after the whole session
                raise ConfigError(option, path, "a file in a folder you may write to", problem)
        if args.follow is not None:
            _check_run_folder(args.follow)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not _display_available():
        if args.quit_after is not None:  # a scripted session needs no screen: draw off-screen
            os.environ["QT_QPA_PLATFORM"] = offscreen_platform()
        else:
            print("error: no display found: run under xvfb-run, or set QT_QPA_PLATFORM=offscreen", file=sys.stderr)
            return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from gui.session import RunSession

    quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("RNN Gradient Lab")
    # Ctrl-C in the terminal closes the window as its close button would (a timed session finishes
    # early, writing its stats and screenshot), once the event loop runs; Python runs the handler
    # between two of its own callbacks, which the wake-up timer below guarantees when all is quiet
    closer = {"close": app.quit}
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, lambda: closer["close"]()))
    _apply_style(app)
    # Start the worker first: its torch import overlaps building the window and the views.
    session = RunSession([config], in_process=args.in_process)
    if args.lesson:  # every run of the lesson (the user's files and --set overrides on each), pausing at its step
        session.load_lesson(args.lesson, args.set, runs=lesson_runs)

    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    scripted = args.quit_after is not None
    private = keep_settings_private() if scripted else None  # noqa: F841 (removed when main returns)
    window = MainWindow(session, theme=args.theme, settings=None if scripted else AppSettings())
    if args.lesson:
        window.lesson_dock.show()  # the lesson's card, even where the last session had closed it
    if scripted:  # a timed session trains at once (to a lesson's point, as Play would)
        session.play()
    if args.follow is not None:
        window.follower.follow(args.follow)
    elif not scripted and not args.lesson and not args.config and not args.set:
        window.files.restore_last_experiment()
    if _is_experiment(args.config) and not args.set and not args.model and not args.data:
        window.files.open(args.config)  # (checked above) every run, the lesson, the recorded data
    if args.lecture:
        window.set_lecture(True)
    else:
        window.show()

    stall = StallMeter()
    stall.start()
    session_start = time.perf_counter()
    outcome = {"code": 0}

    def finish():
        if outcome.get("finished"):
            return
        outcome["finished"] = True
        if args.screenshot:
            app.processEvents()
            if not window.grab().save(args.screenshot):
                print(f"error: could not write the screenshot {args.screenshot}", file=sys.stderr)
                outcome["code"] = 1
        session_end = time.perf_counter()
        stall.timer.stop()
        window.close()  # stops the worker process and the driver thread
        if args.stats:
            stats = collect_stats(window, stall, session_start, session_end)
            try:
                Path(args.stats).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
            except OSError as exc:  # writable when the session started; no longer
                print(f"error: could not write the stats {args.stats} ({exc.strerror or exc})", file=sys.stderr)
                outcome["code"] = 1
        app.quit()

    if args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), finish)
    closer["close"] = finish if scripted else window.close
    if scripted:  # once the event loop runs: the worker is up and Ctrl-C is the window's
        QTimer.singleShot(0, lambda: print(f"session running: it closes after {args.quit_after:g} s, "
                                           "or now with Ctrl-C", flush=True))
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    from gui.collection import CollectionPacer
    collector = CollectionPacer()  # garbage collected between frames, on this thread (gui/collection.py)
    collector.start()
    code = app.exec()
    collector.stop()
    wake.stop()
    window.shutdown()
    _destroy_now(window)
    return outcome["code"] or code


def keep_settings_private():
    """A scripted session writes nothing that lasts: whatever Qt itself remembers (the file dialog's
    history in QtProject.conf) goes to a temporary folder, removed when the returned object is."""
    import tempfile

    from PySide6.QtCore import QSettings
    folder = tempfile.TemporaryDirectory(prefix="rnn-gradient-lab-session-")
    for form in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(form, QSettings.Scope.UserScope, folder.name)
    return folder


def _take_file_argument(args) -> None:
    """FILE given without an option is what its kind says: --config (an experiment or settings file),
    --model or --data; given beside that same option, it is refused."""
    if args.file is None:
        return
    from engine.errors import UsageError
    from engine.experiment import kind_of
    kind = kind_of(Path(args.file))
    option = {"experiment": "config", "model": "model", "data": "data"}[kind]
    if getattr(args, option) is not None or (option == "config" and args.lesson is not None):
        raise UsageError(f"FILE {args.file} is a {'settings or experiment' if kind == 'experiment' else kind} file, "
                         f"and --{option if option == 'config' or not args.lesson else 'lesson'} is given too; "
                         "allowed: one of them")
    setattr(args, option, args.file)


def _is_experiment(path) -> bool:
    from engine.experiment import is_experiment_file
    return path is not None and is_experiment_file(Path(path))


def _check_run_folder(folder: str) -> None:
    """--follow DIR: a folder that holds a run this version reads, or none yet (the script has not started:
    the window waits for it); anything else is refused before the window opens."""
    from engine.errors import ConfigError
    from engine.run_folder import HEADER, RunFormatError, read_header
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError("--follow", folder, "a run folder written by engine.watching.watch()", "is a file, not a folder")
    if (path / HEADER).exists():
        try:
            read_header(path)
        except RunFormatError as exc:
            raise ConfigError("--follow", folder, "a run folder written by engine.watching.watch()",
                              f"cannot be followed ({exc})") from None


def _destroy_now(window):
    """Destroy the window (and with it every view) now, while Python is whole. Left to PySide's
    at-exit teardown, a view with pending layout work (e.g. after lecture mode re-arranged the
    grid) calls back into pyqtgraph's Python overrides during interpreter finalization and
    crashes (SIGSEGV)."""
    import shiboken6
    if shiboken6.isValid(window):
        shiboken6.delete(window)


OFFSCREEN_SCREEN = (1920, 1080)  # a screen-less session's screen: a common desktop's, not Qt's 800x800


def offscreen_platform() -> str:
    """Qt's offscreen platform on a 1920x1080 screen. On its default 800x800 screen the window, which
    keeps within the screen but cannot be narrower than its docks and views, opened at 994x800 with
    a strip-thin waterfall; a screenshot of a timed session should show the window as a desktop does."""
    import tempfile
    width, height = OFFSCREEN_SCREEN
    screen = {"synchronousWindowSystemEvents": False, "windowFrameMargins": False,
              "screens": [{"name": "offscreen", "x": 0, "y": 0, "width": width, "height": height,
                           "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}
    path = Path(tempfile.gettempdir()) / f"rnn-gradient-lab-screen-{os.getuid()}.json"
    try:
        path.write_text(json.dumps(screen))
    except OSError:
        return "offscreen"
    return f"offscreen:configfile={path}"


def _display_available(environ=None, platform=None) -> bool:
    """False on Linux with no X11 or Wayland display and no Qt platform chosen (Qt would abort)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _apply_style(app):
    """Fusion (LabStyle), whose colours follow the palette the window sets for its theme (dark or light); the
    app's icon on every window, and the desktop entry it belongs to (so a Wayland desktop shows the
    launcher's icon and name for it)."""
    from PySide6.QtGui import QIcon

    from resources import ICON
    from gui.theme import LabStyle
    app.setStyle(LabStyle())
    app.setWindowIcon(QIcon(str(ICON)))
    app.setDesktopFileName("rnn-gradient-lab")
