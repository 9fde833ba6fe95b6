"""Python's garbage collector, paced by the GUI thread instead of set off by allocations.

Left to itself the collector runs whenever allocations pass a threshold, on whichever thread allocates, and a
full collection walks every object the process holds: torch's and Qt's modules, pyqtgraph's items, every kept
snapshot. Under Xvfb with every view on, one full collection took 422 ms (the window frozen for that long) and the
young ones up to 22 ms at unforeseeable moments. So the window's process (gui/app.py, never a test's) freezes what
is alive once the window is built (`gc.freeze`: never walked again), turns automatic collection off, and collects
from a GUI-thread timer: the youngest generation every YOUNG_INTERVAL_MS, the middle one every fourth time, and
everything not frozen every FULL_EVERY_S. Collection then happens only on the GUI thread, between frames, which
also keeps Qt wrappers from being freed on a reading thread (gui/files.py). GUI thread only.
"""
from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

YOUNG_INTERVAL_MS = 250
FULL_EVERY_S = 60.0


class CollectionPacer(QObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setInterval(YOUNG_INTERVAL_MS)
        self.timer.timeout.connect(self.collect)
        self.ticks = 0
        self._last_full = 0.0
        self._was_enabled = True

    def start(self):
        """Collect once, freeze what survives (the modules, the window), and from now collect on the timer."""
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._last_full = time.perf_counter()
        self.timer.start()

    def stop(self):
        """Automatic collection again, as before `start`; the frozen objects become collectable again."""
        self.timer.stop()
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def collect(self):
        self.ticks += 1
        now = time.perf_counter()
        if now - self._last_full >= FULL_EVERY_S:
            self._last_full = now
            gc.collect(2)
        else:
            gc.collect(1 if self.ticks % 4 == 0 else 0)
