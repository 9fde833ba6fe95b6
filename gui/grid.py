"""The views grid: every view in its frame, in resizable rows, and which of them are shown.

GUI thread only. A vertical splitter of horizontal splitters: all the views the View menu leaves
on (and the one a lesson points at), GRID_COLUMNS to a row, more for more than eight views so that
they keep to two rows, or lecture mode's four in 2x2 (the one the lesson points at first).
The grid knows its views and frames; what they show comes from the display scheduler.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter

from gui.view_frames import ViewFrame
from gui.lecture import pick_views

GRID_COLUMNS = 4
HIGHLIGHT_SHARE = 1.6  # the full grid's width for the lesson's view, against 1 for each other view


class ViewGrid(QSplitter):
    def __init__(self, view_classes, theme):
        super().__init__(Qt.Orientation.Vertical)
        self.setChildrenCollapsible(False)
        self.rows: list[QSplitter] = []
        self.views: dict = {}
        self.frames: dict[str, ViewFrame] = {}
        for view_class in view_classes:
            view = view_class()
            view.apply_theme(theme)
            key = view.view_id or view_class.__name__
            self.views[key] = view
            frame = ViewFrame(view, theme)
            frame.setMinimumSize(160, 120)
            self.frames[key] = frame
        self.order = list(self.views)
        self.shown = {key: view.shown_at_start for key, view in self.views.items()}  # the View menu's choice
        self.lecture = False
        if not view_classes:
            self.addWidget(QLabel("No views are installed yet (gui/views/__init__.py ALL_VIEWS is empty)."))
        self.arrange()

    def highlight(self, key: str):
        """Frame the view a lesson points at ("" : none); lecture mode then shows it first."""
        for view_key, frame in self.frames.items():
            frame.highlight(view_key == key)
        self.arrange()  # (a view the View menu left off comes in while a lesson points at it)

    def highlighted(self) -> str | None:
        return next((key for key, frame in self.frames.items() if frame.highlighted), None)

    def lecture_views(self) -> list[str]:
        """The four views lecture mode shows large: the one the lesson points at, then the classics."""
        return pick_views(self.highlighted() or "", self.order)

    def show_view(self, key: str, on: bool):
        self.shown[key] = on
        self.arrange()

    def set_lecture(self, on: bool):
        self.lecture = on
        self.arrange()

    def arrange(self):
        """Lay the shown views out in rows: all of them (GRID_COLUMNS a row), or lecture mode's four in 2x2."""
        if not self.frames:
            return
        if self.lecture:
            keys, columns = self.lecture_views(), 2
        else:
            lesson = self.highlighted()  # a view a lesson points at is shown, whatever the View menu says
            keys = [k for k in self.order if self.shown[k] or k == lesson]
            columns = max(GRID_COLUMNS, -(-len(keys) // 2))  # two rows: up to 10 views in 5 columns
        while len(self.rows) * columns < max(len(keys), 1):
            row = QSplitter(Qt.Orientation.Horizontal)
            row.setChildrenCollapsible(False)
            self.addWidget(row)
            self.rows.append(row)
        shown = set(keys)
        for key in self.order:
            self.frames[key].setVisible(key in shown)
        for index, key in enumerate(keys):
            row = self.rows[index // columns]
            row.insertWidget(index % columns, self.frames[key])
            row.setStretchFactor(index % columns, 1)
        for key in self.order:  # hidden ones go to the last row, out of the way
            if key not in shown:
                self.rows[-1].addWidget(self.frames[key])
        used_rows = max(1, -(-len(keys) // columns))
        for index, row in enumerate(self.rows):
            row.setVisible(index < used_rows)
        self.equalize()

    def equalize(self):
        """Equal cells; in the full grid the view a lesson points at gets HIGHLIGHT_SHARE more of its row
        and its row more of the height, so that at 1280x720 it is not as cramped as the rest."""
        grow = 1.0 if self.lecture else HIGHLIGHT_SHARE
        for row in self.rows:  # (hidden views take no room)
            row.setSizes([round(10_000 * (grow if getattr(row.widget(i), "highlighted", False) else 1.0))
                          for i in range(row.count())])
        self.setSizes([round(10_000 * (grow ** 0.5 if any(getattr(row.widget(i), "highlighted", False)
                                                           and row.widget(i).isVisible() for i in range(row.count()))
                                       else 1.0)) for row in self.rows])
