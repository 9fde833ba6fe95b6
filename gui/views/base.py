"""The interface every view implements. GUI thread only.

A view is a QWidget that is created once, builds its plot items once, and updates them in place.
The main window calls:
  set_runs(infos)      when a run set is (re)built: list[engine.worker.RunInfo], one per run
  refresh(histories)   at display rate when new data arrived: list[gui.history.RunHistory]
  apply_theme(theme)   when the theme or lecture scale changes: gui.theme.Theme
  clear()              on reset
Views only read histories; they never talk to the controller or the worker.
"""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from gui.theme import DARK


class View(QWidget):
    view_id = ""        # stable id used by lessons' `look_at` and exports (e.g. "waterfall")
    title = ""          # shown on the dock / tab
    explanation = ""    # one or two plain-language sentences, shown as the tooltip

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip(self.explanation)
        self.theme = DARK   # until the window calls apply_theme

    def set_runs(self, infos) -> None:
        pass

    def refresh(self, histories) -> None:
        raise NotImplementedError

    def apply_theme(self, theme) -> None:
        pass

    def clear(self) -> None:
        pass
