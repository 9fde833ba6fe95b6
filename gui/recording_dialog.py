"""File → Recording settings: frame size, frame rate, format (MP4 or GIF) and the folder videos go to.

GUI thread only. `RecordingOptions` is what the window keeps; the dialog edits a copy and hands
it back through `accepted_options`, so a cancelled dialog changes nothing. File names carry the
date and time, so one recording never overwrites another.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSpinBox, QWidget)

from gui.accessibility import name_for_screen_readers
from gui.recording import check_output, parse_size
from gui.theme import DIALOG_ERROR_TEXT

SIZES = ("1280x720", "1920x1080", "854x480", "640x360")
FORMATS = {"MP4 (H.264 video)": "mp4", "GIF (animated image)": "gif"}


def default_folder() -> Path:
    """The desktop's videos folder when it exists (~/Videos on Linux, under its translated name where
    the desktop uses one; ~/Movies on macOS), else the current folder."""
    videos = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or ".")
    return videos if videos.is_dir() else Path.cwd()


@dataclass(frozen=True)
class RecordingOptions:
    size: tuple = (1280, 720)
    fps: float = 30.0
    format: str = "mp4"
    folder: Path | None = None      # None: default_folder() at the time of recording

    def next_path(self, now: datetime.datetime | None = None) -> Path:
        now = now or datetime.datetime.now()
        folder = self.folder or default_folder()
        return folder / f"rnn-gradient-lab-{now:%Y-%m-%d-%H%M%S}.{self.format}"


class RecordingDialog(QDialog):
    """Edits RecordingOptions; emits `accepted_options` with the new ones when the user presses OK."""
    accepted_options = Signal(object)

    def __init__(self, options: RecordingOptions, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Recording settings")
        self.options = options
        self.size_box = QComboBox()
        self.size_box.setEditable(True)
        self.size_box.addItems(SIZES)
        self.size_box.setCurrentText(f"{options.size[0]}x{options.size[1]}")
        self.size_box.setToolTip("Every frame has exactly this size (even numbers); the views are scaled "
                                 "to fit, so resizing the window never changes the video.")
        self.fps_box = QSpinBox()
        self.fps_box.setRange(1, 60)
        self.fps_box.setValue(int(options.fps))
        self.fps_box.setSuffix(" frames/s")
        self.format_box = QComboBox()
        for label, suffix in FORMATS.items():
            self.format_box.addItem(label, suffix)
        self.format_box.setCurrentIndex(list(FORMATS.values()).index(options.format))
        self.folder_edit = QLineEdit(str(options.folder or default_folder()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Frame size", self.size_box)
        form.addRow("Frame rate", self.fps_box)
        form.addRow("Format", self.format_box)
        form.addRow("Save to folder", folder_row)
        form.addRow("", QLabel("Files are named rnn-gradient-lab-DATE-TIME.mp4 (or .gif)."))
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {DIALOG_ERROR_TEXT};")
        form.addRow(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        name_for_screen_readers(self)

    def _browse(self):
        folder = QFileDialog.getExistingDirectory(self, "Save recordings to", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def chosen(self) -> RecordingOptions:
        """The options as entered; raises RecordingError (naming the field) when one is not allowed."""
        size = parse_size(self.size_box.currentText().strip())
        fps = float(self.fps_box.value())
        suffix = self.format_box.currentData()
        folder = Path(self.folder_edit.text().strip() or ".").expanduser()
        check_output(folder / f"check.{suffix}", size, fps)
        return replace(self.options, size=size, fps=fps, format=suffix, folder=folder)

    def _accept(self):
        from gui.recording import RecordingError
        try:
            options = self.chosen()
        except RecordingError as exc:
            self.error.setText(str(exc).replace("--size", "frame size").replace("--fps", "frame rate"))
            return
        self.accepted_options.emit(options)
        self.accept()
