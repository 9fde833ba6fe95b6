"""The interface every view implements. GUI thread only.

A view is a QWidget that is created once, builds its plot items once, and updates them in place.
The main window calls:
  set_runs(infos)      when a run set is (re)built: list[engine.worker.RunInfo], one per run
  refresh(histories)   at display rate when new data arrived: list[gui.history.RunHistory] (in a
                       replay gui.history_at_step.PastHistory, which reads the same, as of the step shown)
  apply_theme(theme)   when the theme or lecture scale changes: gui.theme.Theme
  clear()              on reset
  detail_wish()        what of a step seen closely (engine.detail) the view would show now: a dict of
                       `layer` and `connectivity`, or None (most views); the display scheduler
                       gathers the visible views' wishes and asks the session, which asks the worker
  settle()             right after refresh (the display scheduler calls it): lays out now what the refresh
                       changed, so that the next paint is the only one
  painted_ms()         how long its plots took at their last paint (the scheduler's estimate of its cost)
  shutdown()           the window closes: end what the view runs off the GUI thread (the phase map's process)
  reads_eigenvalues    (class attribute) True for a view that draws the tanh RNN's eigenvalues, which the
                       worker takes only while such a view is visible (or a lesson's claim reads them)
Views only read histories; they never talk to the controller or the worker. `shown_at_start`: False
for the views the View menu leaves off until asked for (a lesson that points at one shows it).

`ChooserView` is the base of the views with choosers above their plot: which run (a view of one run
at a time, `shows_every_run` False: in compare mode the chooser says which) and which layer.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.theme import DARK
from gui.views._common import PlotArea
from gui.views._selectors import Selectors


class View(QWidget):
    view_id = ""        # stable id used by lessons' `look_at` and exports (e.g. "waterfall")
    title = ""          # shown on the dock / tab
    explanation = ""    # one or two plain-language sentences, shown as the tooltip
    shown_at_start = True
    shows_every_run = True  # every compared run is drawn (a video of a comparison can film it)
    # the smallest frame (w, h px at the normal font) in which the plot, its tick labels and its legend stay
    # readable; the grid shows fewer views rather than squeeze one below it (None: gui/grid.py's default)
    readable_size: tuple[int, int] | None = None
    reads_eigenvalues = False  # the worker takes the tanh RNN's eigenvalues while a visible view reads them

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip(self.explanation)
        self.theme = DARK   # until the window calls apply_theme

    def readable_for(self, runs: int) -> tuple[int, int] | None:
        """The smallest readable frame with `runs` compared runs shown (a view with a strip per run needs
        more height for more runs)."""
        return self.readable_size

    def set_runs(self, infos) -> None:
        pass

    def refresh(self, histories) -> None:
        raise NotImplementedError

    def apply_theme(self, theme) -> None:
        pass

    def clear(self) -> None:
        pass

    def detail_wish(self) -> dict | None:
        return None

    def settle(self) -> None:
        """Fit the plots' automatic ranges to the data just given, before the paint. pyqtgraph fits them at the
        start of a paint (`GraphicsScene.prepareForPaint`), and a range moved there re-lays the axes and asks
        for a second paint of the whole plot: a plot over training steps, whose range moves as the run grows,
        was painted twice for most refreshes (the loss, the weight gradients, the waterfall)."""
        for area in self.findChildren(pg.GraphicsView):
            area.scene().prepareForPaint()

    def painted_ms(self) -> float:
        return sum(area.painted_ms for area in self.findChildren(PlotArea))

    def shutdown(self) -> None:
        pass

    def in_window(self, window) -> None:
        """Once the window is built: anything the view adds to it (a menu entry, a click's action)."""


class ChooserView(View):
    """A view with choosers (`self.selectors`): a run chooser where it shows one run at a time (compare
    mode), a layer chooser where it shows one layer. The subclass places `self.selectors` in its layout
    and calls `shown_history` at the top of `refresh`; choosing another run refreshes the view with the
    histories it last showed. A subclass drawing every run (run=False) sets `shows_every_run`."""
    shows_every_run = False

    def __init__(self, parent=None, layer: bool = False, run: bool = True):
        super().__init__(parent)
        self._infos = []
        self._histories = []
        self.selectors = Selectors(self, layer=layer, run=run)
        self.selectors.run_combo.currentIndexChanged.connect(self._selection_changed)

    def set_runs(self, infos):
        self._infos = list(infos)
        self.selectors.set_runs(self._infos)

    def shown_history(self, histories):
        """The history of the chosen run (None without runs). Remembers `histories` for a later
        change of run, and refills the chooser when the run set changed without a `set_runs`."""
        self._histories = histories
        infos = [h.info for h in histories]
        if infos != self._infos:
            self.set_runs(infos)
        return histories[self.selectors.run_index(len(histories))] if histories else None

    def shown_snapshot(self, histories):
        """The chosen run's latest snapshot, or None."""
        history = self.shown_history(histories)
        return history.latest if history is not None else None

    def clear(self):
        self._histories = []

    def apply_theme(self, theme):
        self.theme = theme
        self.selectors.apply_theme(theme)

    def _selection_changed(self, *_):
        if self._histories:
            self.refresh(self._histories)
