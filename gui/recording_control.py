"""Recording control: start and stop recording a widget (the views grid) to a video, the REC clock,
and the recording options dialog.

GUI thread only. It knows the widget it records and nothing else of the window: it says what
happened in signals (`toggled`, `clock_ticked`, `failed`, `saved`) that the window shows in its record
action, status bar and banner. The frames themselves are grabbed and encoded by gui/recording.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from gui.recording import FrameGrabber, RecordingError
from gui.recording_dialog import RecordingDialog, RecordingOptions


class RecordingControl(QObject):
    toggled = Signal(bool)      # recording started (True) or stopped (False)
    clock_ticked = Signal(object)  # seconds recorded so far, every quarter second; None once stopped
    failed = Signal(str)        # could not start, or failed part-way (what was recorded is closed)
    saved = Signal(str, int)    # path, frames: a finished recording

    def __init__(self, target: QWidget, background: Callable[[], str], parent=None):
        super().__init__(parent)
        self.target = target
        self.background = background          # the colour behind the views now (the theme's)
        self.options = RecordingOptions()
        self.grabber: FrameGrabber | None = None
        self.last_recording: tuple[str, int] | None = None   # (path, frames) of the last finished one
        self.dialog: RecordingDialog | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._show_clock)

    @property
    def recording(self) -> bool:
        return self.grabber is not None and self.grabber.recording

    def set_recording(self, on: bool):
        self.start() if on else self.stop()

    def start(self, path=None) -> bool:
        """Record the target at the fixed size and rate of the recording options."""
        if self.recording:
            return True
        path = Path(path) if path is not None else self.options.next_path()
        try:
            self.grabber = FrameGrabber(self.target, path, self.options.size, self.options.fps,
                                        background=self.background(), parent=self)
        except (RecordingError, OSError) as exc:
            self.grabber = None
            self.toggled.emit(False)
            self.failed.emit(f"Could not start recording to {path}: {exc}")
            return False
        self.grabber.errored.connect(self._on_errored)
        self.grabber.finished.connect(self._on_finished)
        self.grabber.start()
        self.toggled.emit(True)
        self.timer.start()
        self._show_clock()
        return True

    def stop(self) -> int:
        """Stop, encode every queued frame and close the file; returns the frame count (0: nothing saved)."""
        grabber, self.grabber = self.grabber, None
        self.timer.stop()
        self.clock_ticked.emit(None)
        self.toggled.emit(False)
        if grabber is None:
            return 0
        return grabber.stop()

    def edit_options(self, parent: QWidget):
        self.dialog = RecordingDialog(self.options, parent)
        self.dialog.accepted_options.connect(self._set_options)
        self.dialog.open()  # not exec(): training and redraws go on behind it

    def _set_options(self, options: RecordingOptions):
        self.options = options

    def _show_clock(self):
        if self.recording:
            self.clock_ticked.emit(self.grabber.elapsed)

    def _on_errored(self, message: str):
        if self.grabber is not None and not self.grabber.recording:  # failed mid-recording: tidy up
            self.grabber = None
            self.timer.stop()
            self.clock_ticked.emit(None)
            self.toggled.emit(False)
        self.failed.emit(f"Recording failed: {message}")

    def _on_finished(self, path: str, frames: int):
        self.last_recording = (path, frames)
        self.saved.emit(path, frames)
