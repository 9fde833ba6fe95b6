"""The views grid: every view in its frame, in resizable rows, and which of them are shown.

GUI thread only. A vertical splitter of horizontal splitters: all the views the View menu leaves
on (and the one a lesson points at), GRID_COLUMNS to a row, more for more than eight views so that
they keep to two rows, or lecture mode's four in 2x2 (the one the lesson points at first).

Never squeezed: each view has a smallest readable size (`View.readable_size`, its plot, tick labels
and legend at the theme's font; larger in lecture mode, and taller for more compared runs in a view
with a strip per run: `View.readable_for`). Where the grid's room would shrink its cells
below that, it shows fewer views, the lesson's first, then those the user turned on, then the usual
order, and the last cell becomes tabs holding the rest, one click away (a view on a hidden tab is not
drawn, so it costs nothing). The grid knows its views and frames; what they show comes from the
display scheduler.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSplitter, QTabWidget

from gui.lecture import pick_views
from gui.view_frames import ViewFrame

GRID_COLUMNS = 4
HIGHLIGHT_SHARE = 1.6  # the full grid's width for the lesson's view, against 1 for each other view
READABLE_SIZE = (280, 190)  # a view's frame at the normal font, where the view does not say (View.readable_size)
FRAME_MINIMUM = (160, 120)


def readable_size(view, scale: float = 1.0, runs: int = 1) -> tuple[int, int]:
    """The smallest frame in which `view` stays readable with `runs` compared runs, at a font `scale` (lecture
    mode: its text grows by the scale; its plot area need not, so the size grows by half as much)."""
    w, h = view.readable_for(runs) or READABLE_SIZE  # (View.readable_for: its readable_size, or None)
    grow = 0.5 + 0.5 * max(scale, 1.0)
    return round(w * grow), round(h * grow)


def plan(count: int, room: tuple[int, int], cell: tuple[int, int], columns: int,
         grow: float = 1.0) -> tuple[int, int, int]:
    """(columns, rows, views in the grid) for `count` views in `room` pixels, each cell at least `cell`,
    `columns` to a row where there is room; `grow`: the lesson's view takes that many cells' width (and
    its row the square root of it in height). With too little room, fewer views: the last of the cells
    then holds tabs of the rest (views in the grid < count)."""
    if count <= 0:
        return 1, 1, 0
    width, height = room
    if width < 50 or height < 50:  # not laid out yet: as if there were room
        return columns, -(-count // columns), count
    fit_columns = max(1, int(width / cell[0] + 1 - grow))
    fit_rows = max(1, int(height / cell[1] + 1 - grow ** 0.5))
    columns = max(1, min(columns, fit_columns, count))
    rows = -(-count // columns)
    if rows <= fit_rows:
        # as few to a row as fill the rows evenly: nine views 3+3+3, not 4+4+1 with the ninth a
        # full-width strip (the edge-of-chaos lesson's Phase diagram at 1600x1000)
        return -(-count // rows), rows, count
    rows = fit_rows
    return columns, rows, columns * rows - 1 if columns * rows > 1 else 0


class ViewGrid(QSplitter):
    def __init__(self, view_classes, theme, session=None):
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
            frame.setMinimumSize(*FRAME_MINIMUM)
            self.frames[key] = frame
        self.order = list(self.views)
        self.shown = {key: view.shown_at_start for key, view in self.views.items()}  # the View menu's choice
        self.chosen: list[str] = []   # views the user turned on, latest first: in the grid before the rest
        self.lecture = False
        self.runs = 1                 # compared runs: a view with a strip per run needs more height for more
        self.tabs = QTabWidget()      # the last cell, holding the views the room leaves out
        self.tabs.setDocumentMode(True)
        self.tabs.setUsesScrollButtons(True)
        self.tabs.setMinimumSize(*FRAME_MINIMUM)
        self.tabs.hide()
        self.in_tabs: list[str] = []
        self._plan = None
        if not view_classes:
            self.addWidget(QLabel("No views are installed yet (gui/views/__init__.py ALL_VIEWS is empty)."))
        self.arrange()
        if session is not None:
            self.follow(session)

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
        if key in self.chosen:
            self.chosen.remove(key)
        if on:
            self.chosen.insert(0, key)
        self.arrange()

    def set_lecture(self, on: bool):
        self.lecture = on
        self.arrange()

    def follow(self, session):
        """The session's run set: its number of runs (see set_runs)."""
        session.runs_rebuilt.connect(lambda _fresh: self.set_runs(len(session.configs)))
        self.set_runs(len(session.configs))

    def set_runs(self, runs: int):
        """The run set holds `runs` runs: where that changes a view's readable size, the grid plans again."""
        if runs != self.runs:
            self.runs = runs
            self._rearrange_if_needed()

    def wanted(self) -> tuple[list[str], int]:
        """The views to show, in their order, and the columns a row holds where there is room."""
        if self.lecture:
            return self.lecture_views(), 2
        lesson = self.highlighted()  # a view a lesson points at is shown, whatever the View menu says
        keys = [k for k in self.order if self.shown[k] or k == lesson]
        return keys, max(GRID_COLUMNS, -(-len(keys) // 2))  # two rows: up to 10 views in 5 columns

    def priority(self, keys: list[str]) -> list[str]:
        """`keys` in the order they claim a cell: the lesson's view, the user's choices, then the rest."""
        lesson = self.highlighted()
        first = ([lesson] if lesson in keys else []) + [k for k in self.chosen if k in keys and k != lesson]
        if self.lecture:
            first += keys  # lecture mode's own order (the lesson's view, then the classics)
        return list(dict.fromkeys(first + [k for k in keys]))

    def current_plan(self, keys: list[str], columns: int) -> tuple[int, int, int]:
        scale = max((v.theme.font_pt / 10.0 for v in self.views.values() if getattr(v, "theme", None)), default=1.0)
        cells = [readable_size(self.views[k], scale, self.runs) for k in keys] or [READABLE_SIZE]
        cell = (max(c[0] for c in cells), max(c[1] for c in cells))
        room = (self.width(), self.height())
        self._grow = HIGHLIGHT_SHARE if not self.lecture and self.highlighted() in keys else 1.0
        wide = plan(len(keys), room, cell, columns, self._grow)
        even = plan(len(keys), room, cell, columns)
        # room for more views where the lesson's view takes no more than its share, or for as many in fewer
        # rows: at 1600x1000 the wider cell made a third row, 3x3, whose views were squeezed into 200 px
        # (a two-plot view's plots into strips of 35 px) where 4x2 gives them 330
        if even[2] > wide[2] or (even[2] == wide[2] and even[1] < wide[1]):
            self._grow = 1.0
            return even
        return wide

    def arrange(self):
        """Lay the shown views out in rows (GRID_COLUMNS a row, or lecture mode's 2x2), as many as the
        room keeps readable; the rest in the last cell's tabs."""
        if not self.frames:
            return
        keys, columns = self.wanted()
        columns, rows, fitting = self.current_plan(keys, columns)
        self._plan = (tuple(keys), columns, rows, fitting)
        if fitting < len(keys):
            in_grid = set(self.priority(keys)[:fitting])
            grid_keys = [k for k in keys if k in in_grid]
            tab_keys = [k for k in self.priority(keys) if k not in in_grid]
        else:
            grid_keys, tab_keys = keys, []
        self._fill_tabs(tab_keys)
        if not grid_keys and self.highlighted() in tab_keys:  # no room but the tabs: the lesson's view in front
            self.show_in_tabs(self.highlighted())
        cells = grid_keys + (["(tabs)"] if tab_keys else [])
        while len(self.rows) * columns < max(len(cells), 1):
            row = QSplitter(Qt.Orientation.Horizontal)
            row.setChildrenCollapsible(False)
            self.addWidget(row)
            self.rows.append(row)
        shown = set(grid_keys)
        for key in self.order:
            if key not in self.in_tabs:
                self.frames[key].setVisible(key in shown)
        for index, key in enumerate(cells):
            row = self.rows[index // columns]
            widget = self.tabs if key == "(tabs)" else self.frames[key]
            row.insertWidget(index % columns, widget)
            row.setStretchFactor(index % columns, 1)
        self.tabs.setVisible(bool(tab_keys))
        for key in self.order:  # hidden ones go to the last row, out of the way
            if key not in shown and key not in self.in_tabs:
                self.rows[-1].addWidget(self.frames[key])
        if not tab_keys:
            self.rows[-1].addWidget(self.tabs)
        used_rows = max(1, -(-len(cells) // columns))
        for index, row in enumerate(self.rows):
            row.setVisible(index < used_rows)
        self.equalize()

    def _fill_tabs(self, keys: list[str]):
        """The tabs hold `keys` (the one on show stays on show where it is still among them)."""
        if keys == self.in_tabs:
            return
        current = self.in_tabs[self.tabs.currentIndex()] if self.in_tabs and self.tabs.currentIndex() >= 0 else None
        while self.tabs.count():
            self.tabs.removeTab(0)  # (the frame stays; it is placed again below or in arrange)
        self.in_tabs = list(keys)
        for key in keys:
            frame = self.frames[key]
            self.tabs.addTab(frame, frame.title.text())
        if current in keys:
            self.tabs.setCurrentIndex(keys.index(current))

    def show_in_tabs(self, key: str) -> bool:
        """Bring `key` to the front of the tabs (False where it is not in them)."""
        if key not in self.in_tabs:
            return False
        self.tabs.setCurrentIndex(self.in_tabs.index(key))
        return True

    def resizeEvent(self, event):
        super().resizeEvent(event)
        QTimer.singleShot(0, self._rearrange_if_needed)

    def _rearrange_if_needed(self):
        if not self.frames:
            return
        keys, columns = self.wanted()
        if self._plan != (tuple(keys),) + self.current_plan(keys, columns):
            self.arrange()

    def equalize(self):
        """Equal cells; in the full grid the view a lesson points at gets HIGHLIGHT_SHARE more of its row
        and its row more of the height, so that at 1280x720 it is not as cramped as the rest."""
        grow = 1.0 if self.lecture else getattr(self, "_grow", HIGHLIGHT_SHARE)
        for row in self.rows:  # (hidden views take no room)
            row.setSizes([round(10_000 * (grow if getattr(row.widget(i), "highlighted", False) else 1.0))
                          for i in range(row.count())])
        self.setSizes([round(10_000 * (grow ** 0.5 if any(getattr(row.widget(i), "highlighted", False)
                                                           and row.widget(i).isVisible() for i in range(row.count()))
                                       else 1.0)) for row in self.rows])
