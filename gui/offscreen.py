"""Drawing with no screen: Qt's offscreen platform, as tests, `--screenshot` runs, `record` and
phase.png use it. Imported by any of them without importing the window (gui/app.py imports the window)."""
from __future__ import annotations

import os
import sys


def quiet_offscreen_warnings():
    """The offscreen platform warns about window-size hints it cannot honour ("This plugin does not
    support propagateSizeHints()"); nothing is wrong, so that one message is dropped and every other Qt
    message still reaches stderr."""
    if not os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode, context, message):
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")
    qInstallMessageHandler(handler)
