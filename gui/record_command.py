"""`python main.py record`: render a lesson's views to MP4 or GIF with no screen, for lecture material.

Runs on the main thread of its own process with Qt's offscreen platform. Training runs in this
same process (no worker needed: nothing is interactive), and the video's frame count is exact:
`frame_count(seconds, fps)` frames; the lesson's training steps are spread over them
(`steps_before_frame`), or a fixed number per frame.
"""
from __future__ import annotations

import math
import os
import sys
import time

from engine import user_files
from engine.args import ArgumentParser, add_file_options, decimal_number, whole_number
from engine.cli import use_one_thread
from engine.errors import ConfigError, UsageError
from engine.lessons import LESSONS
from gui.lecture import pick_views

MAP_WAIT_S = 120  # the longest the first frame waits for a filmed Phase diagram's map (measured in a process of its own)

def frame_count(seconds: float, fps: float) -> int:
    """The video's frame count: seconds x fps rounded to the nearest whole frame (halves up), at least 1.

    For example 0.5 s at 7 fps is 3.5 frames, so 4; 0.1 s at 2 fps is 0.2 frames, so 1.
    """
    # Rounding to 6 decimals first drops binary noise: 2.05 s at 30 fps is 61.4999… in floats, but 62 frames.
    return max(1, math.floor(round(seconds * fps, 6) + 0.5))


def steps_before_frame(frame: int, frames: int, steps: int) -> int:
    """Training steps taken before frame `frame` (0-based) when `steps` are spread evenly over `frames`
    frames: by frame k (1-based) ceil(k * steps / frames) are done, so the first frame already shows a
    trained step and the last shows the lesson's last; with more frames than steps, some frames show
    the same step as the one before."""
    def done_by(k):
        return -(-k * steps // frames)  # ceil(k * steps / frames) in whole numbers
    return done_by(frame + 1) - done_by(frame)


def build_parser():
    p = ArgumentParser(prog="main.py record", description="Render a lesson's live views to a video file, with no screen.")
    p.add_argument("--lesson", required=True, help="lesson name (see `main.py lessons`)")
    p.add_argument("--seconds", type=decimal_number, required=True,
                   help="length of the video in seconds; the video has seconds x fps frames, "
                        "rounded to the nearest whole frame (halves up), at least 1")
    p.add_argument("--out", required=True, help="output file, .mp4 (H.264) or .gif")
    p.add_argument("--size", default="1280x720", help="frame size WIDTHxHEIGHT, even numbers (default 1280x720)")
    p.add_argument("--fps", type=decimal_number, default=None, help="frames per second (default 30 for MP4, 15 for GIF)")
    p.add_argument("--steps-per-frame", type=whole_number, default=None,
                   help="training steps between frames (default: spread the lesson's steps over the video)")
    p.add_argument("--theme", choices=("dark", "light"), default="dark", help="colour theme (default dark)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting in every run of the lesson, e.g. --set seed=3; repeatable")
    add_file_options(p)
    return p


LAYOUT_MIN = (640, 480)  # frames smaller than this are drawn at this size (aspect kept) and scaled down


def record(lesson_name: str, seconds: float, out, size=(1280, 720), fps=30.0, steps_per_frame=None,
           theme_name="dark", progress=None, overrides=(), runs=None) -> int:
    """Train the lesson's runs and write exactly frame_count(seconds, fps) frames. Returns the frame count."""
    from PySide6.QtWidgets import QApplication, QGridLayout, QLabel, QVBoxLayout, QWidget

    from engine.trainer import Trainer
    from engine.worker import run_info
    from gui.display import detail_request
    from gui.history import RunHistory
    from gui.recording import VideoWriter, render_fixed
    from gui.theme import THEMES
    from gui.views import ALL_VIEWS

    app = QApplication.instance() or QApplication([])
    lesson = LESSONS[lesson_name]
    theme = THEMES[theme_name]
    writer = VideoWriter(out, size, fps)
    frames = frame_count(seconds, fps)

    trainers = [Trainer(c) for c in runs or lesson.runs(list(overrides))]  # runs: with the user's files
    infos = [run_info(i, t) for i, t in enumerate(trainers)]
    histories = [RunHistory(info) for info in infos]

    # a small frame is laid out larger and scaled down (render_fixed): at 320x240 the views' own
    # layout crowds every axis label and legend into its neighbours
    grow = max(1.0, LAYOUT_MIN[0] / size[0], LAYOUT_MIN[1] / size[1])
    layout_size = (round(size[0] * grow), round(size[1] * grow))
    canvas = QWidget()
    canvas.setStyleSheet(f"background: {theme.background}; color: {theme.foreground};")
    outer = QVBoxLayout(canvas)
    header = QLabel()
    header.setStyleSheet(f"font-size: {max(14, layout_size[1] // 36)}px; font-weight: bold;")
    outer.addWidget(header)
    grid = QGridLayout()
    outer.addLayout(grid)
    by_id = {cls.view_id: cls for cls in ALL_VIEWS}
    views = []
    for k, view_id in enumerate(filmed_views(lesson.look_at, ALL_VIEWS, len(infos))):
        view = by_id[view_id]()
        view.apply_theme(theme)
        view.set_runs(infos)
        grid.addWidget(view, k // 2, k % 2)
        views.append(view)
    canvas.resize(*layout_size)
    canvas.show()
    wait_for_maps(views, MAP_WAIT_S)
    request = detail_request([view.detail_wish() for view in views])  # the units and answers views: a step seen closely
    eigenvalues = lesson.reads_eigenvalues or any(view.reads_eigenvalues for view in views)
    for trainer in trainers:
        trainer.keep_last_batch = request is not None
        trainer.take_eigenvalues = eigenvalues
    try:
        for frame in range(frames):
            for trainer, history in zip(trainers, histories):
                batch = []
                per_frame = steps_per_frame or steps_before_frame(frame, frames, lesson.steps)
                for _ in range(per_frame):
                    if trainer.diverged:
                        break
                    batch.append(trainer.step())
                history.extend(batch)
                if request is not None and batch:
                    history.add_detail(trainer.detail(request))
            step = max(t.step_count for t in trainers)
            header.setText(f"{lesson.title}  —  training step {step}")
            for view in views:
                view.refresh(histories)
            app.processEvents()
            writer.write(render_fixed(canvas, writer.size, theme.background))
            if progress:
                progress(frame + 1, frames)
    finally:
        written = writer.close()
        for view in views:
            view.shutdown()
        canvas.close()
    return written


def wait_for_maps(views, seconds: float) -> None:
    """Let a filmed Phase diagram's map arrive before the first frame (the edge-of-chaos video was its
    'measuring…' title throughout): the views that say they are `measuring`, waited for in the event loop."""
    from PySide6.QtCore import QEventLoop, QTimer
    deadline = time.monotonic() + seconds
    while any(getattr(view, "measuring", False) for view in views) and time.monotonic() < deadline:
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()


def filmed_views(look_at: str, view_classes, runs: int) -> list[str]:
    """The views a lesson's video films: a video cannot use a run chooser, so a comparison is filmed in
    the views that draw every run (and the one the lesson points at)."""
    available = [cls.view_id for cls in view_classes if runs == 1 or cls.shows_every_run or cls.view_id == look_at]
    return pick_views(look_at, available)


def main(argv: list[str]) -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # renders with no screen, even where one exists
    from gui.recording import RecordingError, check_output, check_writable, parse_size
    try:
        args = build_parser().parse_args(argv)
        if args.lesson not in LESSONS:
            raise ConfigError("--lesson", args.lesson, " | ".join(LESSONS))
        # a bad --set or file is refused now, not after the window is built
        runs = user_files.lesson_with_files(args.lesson, args.set, args.model, args.data)
        if not args.seconds > 0 or args.seconds > 3600:
            raise ConfigError("--seconds", args.seconds, "a length greater than 0 and at most 3600")
        if args.steps_per_frame is not None and args.steps_per_frame < 1:
            raise ConfigError("--steps-per-frame", args.steps_per_frame, "an integer of at least 1")
        fps = args.fps if args.fps is not None else (15.0 if args.out.lower().endswith(".gif") else 30.0)
        path, size, fps = check_output(args.out, parse_size(args.size), fps)
        check_writable(path)
    except (UsageError, ConfigError, RecordingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    use_one_thread()
    from gui.offscreen import quiet_offscreen_warnings
    quiet_offscreen_warnings()

    def show(done, total):
        if done == total or done % 10 == 0:
            sys.stderr.write(f"\rrecording {done}/{total} frames")
            sys.stderr.flush()

    try:
        frames = record(args.lesson, args.seconds, path, size, fps, args.steps_per_frame, args.theme, progress=show,
                        overrides=args.set, runs=runs)
    except (RecordingError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # (sizes that turn out not to fit once training starts)
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    sys.stderr.write("\n")
    note = ""
    if path.suffix.lower() == ".gif":
        from gui.recording import gif_stored_frames
        stored = gif_stored_frames(path)
        if stored != frames:
            note = (f"; the GIF stores {stored} of them: equal frames in a row are kept once, "
                    "shown for their added time")
    print(f"wrote {path} ({frames} frame{'' if frames == 1 else 's'}, {size[0]}x{size[1]}, {fps:g} fps{note})")
    return 0
