"""Recording the views to MP4 (H.264) or GIF at a fixed, even frame size and a steady frame rate.

`VideoWriter` encodes numpy frames on a background thread (imageio-ffmpeg's bundled ffmpeg for
MP4, Pillow for GIF), so the GUI thread only grabs pixels. `FrameGrabber` lives on the GUI
thread: a timer grabs a widget at the chosen rate, letterboxes it onto a canvas of the fixed
output size (so window resizes never change the video), and writes one extra copy of the last
frame for every tick the event loop missed, so the video's clock stays the wall clock.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget

from engine.args import probe_writable
from gui.theme import LETTERBOX

FORMATS = (".mp4", ".gif")


class RecordingError(ValueError):
    pass


def check_output(path, size, fps) -> tuple[Path, tuple[int, int], float]:
    """Validate a recording's file name, frame size and rate; the message names what is wrong."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise RecordingError(f"--out: {str(path)!r} is not allowed; allowed: a file name ending in .mp4 or .gif")
    if path.is_dir():
        raise RecordingError(f"--out: {str(path)!r} is a folder; allowed: a file name ending in .mp4 or .gif")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise RecordingError(f"--out: {str(path)!r} cannot be written: {str(blocking)!r} is a file, not a folder; "
                             "allowed: a path whose folders are folders")
    w, h = size
    if not (16 <= w <= 7680 and 16 <= h <= 4320) or w % 2 or h % 2:
        raise RecordingError(f"--size: '{w}x{h}' is not allowed; allowed: even width and height, "
                             "from 16x16 to 7680x4320 (for example 1280x720)")
    if not 1 <= fps <= 120:
        raise RecordingError(f"--fps: {fps!r} is not allowed; allowed: a rate from 1 to 120 frames per second")
    return path, (int(w), int(h)), float(fps)


def check_writable(path: Path) -> None:
    """Make the file's folders and try the file itself, so a recording that could not be saved is
    refused before it starts, not after its last frame. The message names the path and the reason."""
    problem = probe_writable(path)
    if problem:
        raise RecordingError(f"--out: {str(path)!r} {problem}; allowed: a file in a folder you may write to")


def _one_line(exc: Exception) -> str:
    """An encoder's error in one line (ffmpeg's come with its whole log)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise RecordingError(f"--size: {text!r} is not allowed; allowed: WIDTHxHEIGHT, for example 1280x720") from None


def gif_frame_durations(frames: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms, whole 10 ms steps, that keep the GIF on the wall clock.

    GIF stores delays in centiseconds, so a constant 1000/fps would be truncated on every frame
    (15 fps would play at 16.7). Instead frame k (1-based) ends at 1000*k/fps rounded to the
    nearest 10 ms (halves up), so any prefix is within 5 ms of frames/fps: 15 fps gives
    70, 60, 70, 70, 60, 70, ... and 10 fps gives 100 throughout.
    """
    ends_cs = [math.floor(k * 100 / fps + 0.5) for k in range(frames + 1)]
    return [(end - start) * 10 for start, end in zip(ends_cs, ends_cs[1:])]


class VideoWriter:
    """Encodes RGB frames (H, W, 3 uint8) to MP4 or GIF on a background thread."""

    def __init__(self, path, size=(1280, 720), fps=30.0):
        self.path, self.size, self.fps = check_output(path, size, fps)
        self.frames_written = 0
        self.error: Exception | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=120)
        self._ended = False  # the encoder has taken the end marker off the queue
        check_writable(self.path)
        self._thread = threading.Thread(target=self._encode, name="video-encoder", daemon=True)
        self._thread.start()

    def write(self, frame: np.ndarray):
        h, w = frame.shape[:2]
        if (w, h) != self.size:
            raise RecordingError(f"frame size {w}x{h} differs from the recording's {self.size[0]}x{self.size[1]}")
        if self.error is not None:
            raise RecordingError(f"recording failed: {_one_line(self.error)}")
        self._queue.put(np.ascontiguousarray(frame, dtype=np.uint8))

    def close(self) -> int:
        """Finish encoding every queued frame and close the file; returns the frame count."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise RecordingError(f"recording failed: {_one_line(self.error)}")
        return self.frames_written

    def _frames(self):
        """The queued frames up to the end marker."""
        while (frame := self._queue.get()) is not None:
            yield frame
        self._ended = True

    def _encode(self):
        try:
            if self.path.suffix.lower() == ".mp4":
                self._encode_mp4()
            else:
                self._encode_gif()
        except Exception as exc:  # reported by write()/close() on the caller's thread
            self.error = exc
            # drain, so writers never block, up to the end marker unless the encoder already took it
            # (a GIF fails only when saved, after the end marker: waiting for another hung close())
            while not self._ended and self._queue.get() is not None:
                pass

    def _encode_mp4(self):
        import imageio_ffmpeg
        gen = imageio_ffmpeg.write_frames(str(self.path), self.size, fps=self.fps, codec="libx264",
                                          pix_fmt_out="yuv420p", macro_block_size=2, quality=7,
                                          ffmpeg_log_level="error")
        gen.send(None)
        try:
            for frame in self._frames():
                gen.send(frame.tobytes())
                self.frames_written += 1
        finally:
            gen.close()

    def _encode_gif(self):
        from PIL import Image
        images = []
        for frame in self._frames():
            images.append(Image.fromarray(frame).quantize(colors=255, method=Image.Quantize.MEDIANCUT))
            self.frames_written += 1
        if not images:
            raise RecordingError("no frames were recorded")
        # Pillow merges identical consecutive frames (the grabber's repeats) and adds their delays,
        # so the clock survives the merge.
        images[0].save(self.path, save_all=True, append_images=images[1:],
                       duration=gif_frame_durations(len(images), self.fps), loop=0, optimize=False, disposal=1)


def gif_stored_frames(path) -> int:
    """How many frames a GIF file holds. Pillow stores a run of equal consecutive frames once, shown
    for their added time, so a GIF of a paused lesson holds fewer frames than were written (0.5 s at
    7 fps: 4 written, 2 stored) while it plays just as long."""
    from PIL import Image
    with Image.open(path) as image:
        return image.n_frames


def qimage_to_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, :w * 3].reshape(h, w, 3).copy()


def render_fixed(widget: QWidget, size: tuple[int, int], background=LETTERBOX) -> np.ndarray:
    """The widget scaled to fit `size` (aspect kept, letterboxed), as an RGB array."""
    w, h = size
    canvas = QImage(QSize(w, h), QImage.Format.Format_RGB888)
    canvas.fill(QColor(background))
    pixmap = widget.grab()
    if not pixmap.isNull():
        scaled = pixmap.scaled(QSize(w, h), Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
        painter = QPainter(canvas)
        painter.drawPixmap(QPoint((w - scaled.width()) // 2, (h - scaled.height()) // 2), scaled)
        painter.end()
    return qimage_to_rgb(canvas)


class FrameGrabber(QObject):
    """Records a widget live: fixed size, steady rate. Signals: started, finished(path, frames), errored(msg)."""
    finished = Signal(str, int)
    errored = Signal(str)

    def __init__(self, widget: QWidget, path, size=(1280, 720), fps=30.0, background=LETTERBOX, parent=None):
        super().__init__(parent)
        self.widget, self.background = widget, background
        self.writer = VideoWriter(path, size, fps)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._start = 0.0
        self._due_written = 0
        self._last = None
        self.duration = 0.0  # seconds from start to stop: the video holds int(duration * fps) + 1 frames

    @property
    def recording(self) -> bool:
        return self._timer.isActive()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start if self.recording else 0.0

    def start(self):
        self._start = time.perf_counter()
        self._timer.start(max(1, int(1000 / self.writer.fps / 2)))  # tick twice per frame
        self._tick()

    def _tick(self):
        due = int((time.perf_counter() - self._start) * self.writer.fps) + 1
        if due <= self._due_written:
            return
        try:
            frame = render_fixed(self.widget, self.writer.size, self.background)
            # Missed ticks repeat the previous frame, so the video keeps the wall-clock rate.
            while self._due_written < due - 1 and self._last is not None:
                self.writer.write(self._last)
                self._due_written += 1
            self.writer.write(frame)
            self._due_written = due
            self._last = frame
        except RecordingError as exc:
            self._timer.stop()
            self.errored.emit(str(exc))

    def stop(self) -> int:
        """Stop, encode what is queued, and close the file. Returns the frame count: the frames due at the
        moment of stopping, int(duration * fps) + 1, the last one repeated for any tick missed at the end."""
        if self.recording:
            self.duration = time.perf_counter() - self._start
            due = int(self.duration * self.writer.fps) + 1
            try:
                while self._due_written < due and self._last is not None:
                    self.writer.write(self._last)
                    self._due_written += 1
            except RecordingError as exc:
                self._timer.stop()
                self.errored.emit(str(exc))
                return 0
        self._timer.stop()
        try:
            frames = self.writer.close()
        except RecordingError as exc:
            self.errored.emit(str(exc))
            return 0
        self.finished.emit(str(self.writer.path), frames)
        return frames
