"""Phase diagram view: how many orders of magnitude the gradient loses at initialisation, over spectral
radius and sequence length, for the current cell and activation, with the line where it neither shrinks
nor grows, a dot at the current settings, and a click that applies a point's settings. Compared runs of
different networks (a linear and a tanh RNN) get a map each, side by side, named as the runs are; runs of
one network share its map, a dot for each run (the multiply lesson's three radii). A sweep's folder
(`main.py sweep`, engine/sweep.py) opens here too, its first two grid keys on the axes; and
`write_phase_png` draws a sweep's phase.png with this same view, offscreen.

GUI thread, except the map itself: engine.phase_maps.MapProcess measures it in a process of its own, at a lower
priority (torch only; the stacked networks take a second or two, after the process's first start), and its
result comes back through a queued signal. A newer request supersedes an older one, which stops at its next
stack of networks. The process starts at the first map wanted and lives until the window closes
(`shutdown`); hiding the view stops a map being measured, and keeps a map that arrived.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QAction, QFontMetricsF
from PySide6.QtWidgets import QFileDialog, QPushButton

from engine import phase_maps, sweep
from engine.sweep_batched import shape_key
from engine.config import ConfigError
from gui.theme import DARK, LOG_GRAD_LEVELS
from gui.views._axes import add_plot, font
from gui.views._common import (PlotArea, TitleLabel, brush, heatmap_ready, make_colorbar, pen, place, run_labels,
                               set_title, style_heatmap_plot, vbox, widened_levels)
from gui.views.base import View

BAR_LABEL = "gradient at the first timestep ÷ at the last (log scale)"
PNG_SIZE = (960, 720)
MAX_MAPS = 4  # compare mode's most runs


class Panel:
    """One map's plot items, made once: the image, its line, the dots of the runs it is the map of."""

    def __init__(self, area, column: int):
        self.column = column
        self.plot = add_plot(area, row=0, col=column)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.contour = pg.PlotDataItem(connect="finite")
        self.dot = pg.ScatterPlotItem(size=12)
        for item in (self.image, self.contour, self.dot):
            self.plot.addItem(item)
        self.runs: list[int] = []  # the runs (indexes into the view's configs) this map is drawn for


def map_key(config) -> tuple:
    """What the map of a network depends on: runs of equal keys share one map."""
    base = phase_maps.map_base(config).replace(spectral_radius=None, seq_len=2)
    return (shape_key(base), base.init, base.seed, base.forget_bias)


def contour_lines(values: np.ndarray, level: float = 0.0):
    """x, y (NaN between pieces) of the line where `values` (rows x columns, cell centres at index + 0.5)
    crosses `level`. NaN cells (a diverged network: the gradient left float range growing) count as growing."""
    data = np.nan_to_num(np.asarray(values, np.float64), nan=1e3, posinf=1e3, neginf=-1e3)
    if data.shape[0] < 2 or data.shape[1] < 2:
        return np.zeros(0), np.zeros(0)
    xs, ys = [], []
    for line in pg.functions.isocurve(data.T, level, connected=True, extendToEdge=True):  # (cell i at i + 0.5)
        points = np.asarray(line, np.float64)
        xs += list(points[:, 0]) + [np.nan]
        ys += list(points[:, 1]) + [np.nan]
    return np.asarray(xs), np.asarray(ys)


def _is_one(text) -> bool:
    try:
        return float(text) == 1.0
    except ValueError:
        return False


def _position(text_value, texts) -> float | None:
    """Where a value sits along an axis of `texts` (cell centres at index + 0.5), between cells for a number
    between two; None when it is not on the axis."""
    if text_value in texts:
        return texts.index(text_value) + 0.5
    try:
        numbers = [float(t) for t in texts]
        value = float(text_value)
    except (TypeError, ValueError):
        return None
    if len(numbers) < 2 or not all(b > a for a, b in zip(numbers, numbers[1:])):
        return None
    return float(np.interp(value, numbers, np.arange(len(numbers)) + 0.5, left=0.0, right=len(numbers)))


class PhaseView(View):
    view_id = "phase"
    title = "Phase diagram"
    shown_at_start = False
    explanation = ("Orders of magnitude the gradient loses from the last timestep back to the first, at "
                   "initialisation, for the current cell and activation over spectral radius and sequence length "
                   "(colour: the gradient at the first timestep relative to the last, on the waterfall's log "
                   "scale). The line marks where it neither shrinks nor grows; the dot is where the current "
                   "settings are. Click a cell to train with its settings. File > Open sweep folder shows a "
                   "sweep of main.py sweep here instead.")
    settings_chosen = Signal(object)   # dict: settings of a clicked cell
    _measured = Signal(object, object)  # (request number, (maps, radii, configs) or an exception), from the pool

    def __init__(self, parent=None):
        super().__init__(parent)
        self.phase: phase_maps.PhaseMap | None = None  # the first map shown (run 1's, or the sweep's)
        self.phases: list[phase_maps.PhaseMap] = []    # every map shown, left to right
        self.sweep_folder: str | None = None
        self.configs: list = []                   # the runs' configs (run 1 first)
        self.names: list[str] = []                # ... and their names, as the other views name them
        self.levels = LOG_GRAD_LEVELS
        self.maps_drawn = 0  # (the current network's and sweeps' maps shown so far)
        self.measuring = False  # a map is being measured (docs/render_lessons.py waits for it)
        self._map_keys = None
        self._request = 0
        self._process = phase_maps.MapProcess()
        self._radii: dict = {}  # map key -> the initializer's spectral radius (the dot, when unset)
        self._keys = None       # the map key of each map shown (None: a sweep's)
        layout = vbox(self)
        self.title_label = TitleLabel("Phase diagram: waiting for the network's settings")
        layout.addWidget(self.title_label)
        self.back_button = QPushButton("Back to the current network's map")
        self.back_button.setToolTip("Leave the sweep and show the map of the network being trained.")
        self.back_button.clicked.connect(self.show_current)
        self.back_button.hide()
        layout.addWidget(self.back_button)
        self.area = PlotArea()
        self.panels = [Panel(self.area, column) for column in range(MAX_MAPS)]
        # one colour bar for every map, right of the last (the maps shown are the last ones)
        self.colorbar = make_colorbar(self.theme, self.panels[-1].plot, [p.image for p in self.panels])
        self.shown: list[Panel] = []
        self._show_panels(1)
        layout.addWidget(self.area)
        self.area.scene().sigMouseClicked.connect(self._clicked)
        self._measured.connect(self._on_measured)
        self.apply_theme(self.theme)

    # the first map's items (run 1's)
    plot = property(lambda self: self.shown[0].plot)
    image = property(lambda self: self.shown[0].image)
    contour = property(lambda self: self.shown[0].contour)
    dot = property(lambda self: self.shown[0].dot)
    config = property(lambda self: self.configs[0] if self.configs else None)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        if infos:
            self._runs_are([info.config for info in infos], run_labels(infos))

    def refresh(self, histories):
        configs = [h.info.config for h in histories]
        if configs and configs != self.configs:
            self._runs_are(configs, run_labels([h.info for h in histories]))

    def _runs_are(self, configs, names):
        self.configs, self.names = list(configs[:MAX_MAPS]), list(names[:MAX_MAPS])
        self._want_map()

    def showEvent(self, event):
        super().showEvent(event)
        self._want_map()

    def hideEvent(self, event):  # turned off, in a tab behind another, minimised: a map being measured stops
        super().hideEvent(event)
        if self.measuring:
            self._forget_request()  # (measured again when shown; a map that arrived is kept)
            self._process.cancel()

    def closeEvent(self, event):  # (a view of its own: the tests', write_phase_png's)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self):
        """The window closes: stop a map being measured and end the map's process (waiting for it: it stops at
        its next stack of networks)."""
        self._forget_request()
        self._process.close()

    def _forget_request(self):
        """No answer to the map requested last is taken any more; the next map wanted is measured anew."""
        self._request += 1
        self._map_keys = None
        self.measuring = False

    def apply_theme(self, theme):
        self.theme = theme
        self.title_label.apply_theme(theme)
        for panel in self.panels:
            style_heatmap_plot(self.area, panel.plot, self.colorbar, theme, self._labels(), BAR_LABEL)
            panel.contour.setPen(pen(theme.accent, theme, 1.5))
            panel.dot.setPen(pen(theme.background, theme, 1.0))
        if self.phases:
            self.show_maps(self.phases, None, self._keys)

    # ------------------------------------------------------------------ the map of the current network
    def _want_map(self):
        """Measure the maps of the runs' networks if they are not the ones shown (only while this view is on
        screen)."""
        if not self.configs or self.sweep_folder is not None:
            return
        keys = [map_key(c) for c in self.configs]
        if keys != self._map_keys and self.isVisible():
            self._map_keys = keys
            self._request += 1
            self.title_label.set_text("Phase diagram: measuring the map at initialisation…")
            self.measuring = True
            configs = list(self.configs)
            try:
                self._process.submit(self._request, list(zip(keys, configs)),
                                     lambda request, result: self._measured_in_process(request, result, configs))
            except Exception as exc:  # no process to measure in (none could start): said in the title
                self._on_measured(self._request, exc)
                self._map_keys = None  # (tried again at the next change or show)
        self._place_dots()

    def _measured_in_process(self, request: int, result, configs):  # on a thread of the map process's pool
        if result is not None and not isinstance(result, BaseException):
            result = (*result, configs)
        try:
            self._measured.emit(request, result)
        except RuntimeError:  # the view was deleted meanwhile (the window closed)
            pass

    def _on_measured(self, request: int, result):
        if request != self._request or result is None or self.sweep_folder is not None:
            return
        self.measuring = False
        if isinstance(result, BaseException):
            self.title_label.set_text(f"Phase diagram: could not measure ({type(result).__name__}: {result})")
            return
        maps, radii, configs = result
        self._radii.update(radii)
        self.show_maps(list(maps.values()), self._network_title(configs), list(maps))

    def _network_title(self, configs) -> str:
        cells = dict.fromkeys(f"{c.activation} RNN" if c.cell == "rnn" else c.cell.upper() for c in configs)
        sizes = dict.fromkeys(f"{c.hidden}" for c in configs)
        units = f"{' or '.join(sizes)} units"
        if len(set(map(map_key, configs))) > 1:  # (each map's title names its run)
            return "Orders of magnitude lost at initialisation" + (f" ({units})" if len(sizes) > 1 else "")
        return f"{' and '.join(cells)}, {units}: orders of magnitude lost at initialisation"

    def show_current(self):
        """Back from a sweep to the current network's map."""
        self.sweep_folder = None
        self.back_button.hide()
        self._map_keys = None
        self._want_map()

    # ------------------------------------------------------------------ a sweep's folder
    def show_sweep(self, folder) -> None:
        """A sweep folder's map (engine.phase_maps.load); SweepError when it cannot be read."""
        spec, phase = phase_maps.load(folder)
        self.sweep_folder = str(folder)
        self._request += 1  # (a map of the network still being measured is not wanted now)
        self.back_button.show()
        what = "at initialisation" if spec["steps"] == 0 else f"at the first of {spec['steps']} training steps"
        note = f" ({phase.note})" if phase.note else ""
        self.show_map(phase, f"{Path(folder).name}: orders of magnitude lost {what}{note}")

    # ------------------------------------------------------------------ drawing
    def _show_panels(self, count: int):
        """The last `count` panels on screen (the colour bar is the last one's), the others out of the layout."""
        self.shown = self.panels[MAX_MAPS - count:]
        for panel in self.panels:
            place(self.area, panel.plot, 0, panel.column, panel in self.shown)

    def show_map(self, phase: phase_maps.PhaseMap, title: str | None = None):
        """One map (a sweep's), every run's dot on it."""
        self.show_maps([phase], title)

    def show_maps(self, phases: list, title: str | None = None, keys: list | None = None):
        """The maps side by side; `keys[k]` (map_key) says which runs map k is drawn for (None: every run's)."""
        self.phases, self.phase, self._keys = list(phases), phases[0], keys
        self._show_panels(len(phases))
        pictures = [-phase.values for phase in phases]  # log10(first / last): dark where it vanishes
        levels = LOG_GRAD_LEVELS
        for picture in pictures:
            levels = widened_levels(levels, picture)
        self.levels = levels
        self.colorbar.setLevels(self.levels)
        run_keys = [map_key(c) for c in self.configs]
        for k, (panel, phase, picture) in enumerate(zip(self.shown, phases, pictures)):
            panel.runs = [r for r, key in enumerate(run_keys) if keys is None or key == keys[k]]
            rows, columns = picture.shape
            panel.image.setImage(np.ascontiguousarray(heatmap_ready(picture, self.levels)), autoLevels=False,
                                 levels=self.levels)
            panel.image.setRect(QRectF(0, 0, columns, rows))
            panel.contour.setData(*contour_lines(picture))
            panel.plot.setRange(xRange=(0, columns), yRange=(0, rows), padding=0)
            labels = self._labels()
            if k:  # the maps share the left axis: its labels once, at the left
                labels["left"] = ()
            style_heatmap_plot(self.area, panel.plot, self.colorbar, self.theme, labels, BAR_LABEL)
            panel.plot.getAxis("left").setStyle(showValues=k == 0)
            names = [self.names[r] for r in panel.runs if r < len(self.names)]
            if len(phases) > 1 and names:
                set_title(panel.plot, " / ".join(names), self.theme)
            else:
                panel.plot.setTitle(None)
        if title:
            self.title_label.set_text(title)
            self.title_label.setToolTip("The line: where the gradient neither shrinks nor grows (nothing lost). "
                                        "The dot: the current settings (a dot per run, in its colour, when runs "
                                        "are compared). Click a cell to train with its settings.")
        self._place_dots()
        self._label_ticks()
        self.maps_drawn += 1

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._label_ticks()

    def _label_ticks(self):
        """A tick at every cell; a label at every k-th, k as small as lets the labels fit the maps' width
        (and height), always labelling a spectral radius of 1."""
        if not self.phases:
            return
        metrics = QFontMetricsF(font(self.theme, -1))
        width = max(self.area.width() - 130, 60) / len(self.phases)  # (less the left axis and the colour bar)
        height = max(self.area.height() - 90, 40)                    # (less the bottom axis and a title)
        for panel, phase in zip(self.shown, self.phases):
            for name, texts, room, size in (
                    ("bottom", phase.x_texts, width, lambda t: metrics.horizontalAdvance(t) + metrics.averageCharWidth()),
                    ("left", phase.y_texts, height, lambda t: metrics.height())):
                need = max((size(t) for t in texts), default=0) * len(texts)
                stride = max(1, int(np.ceil(need / max(room, 1))))
                ones = [j for j, t in enumerate(texts) if _is_one(t)]
                offset = ones[0] % stride if ones else 0
                panel.plot.getAxis(name).setTicks([
                    [(j + 0.5, t) for j, t in enumerate(texts) if j % stride == offset],
                    [(j + 0.5, "") for j, t in enumerate(texts) if j % stride != offset]])

    def _labels(self) -> dict:
        keys = (self.phase.x_key, self.phase.y_key) if self.phase is not None else ("spectral_radius", "seq_len")
        return {"bottom": ((keys[0] or "").replace("_", " "),), "left": ((keys[1] or "").replace("_", " "),)}

    def dot_position(self, run: int = 0, phase: phase_maps.PhaseMap | None = None) -> tuple[float, float] | None:
        """Where run `run`'s settings sit on `phase` (default: the first map shown), in cell coordinates, or None."""
        phase = phase or self.phase
        config = self.configs[run] if run < len(self.configs) else None
        if phase is None or config is None:
            return None
        values = {}
        for key in (phase.x_key, phase.y_key):
            if key == "spectral_radius" and config.spectral_radius is None:
                radius = self._radii.get(map_key(config))
                values[key] = None if radius is None else sweep.value_text(radius)
            elif key is not None:
                values[key] = sweep.value_text(getattr(config, key))
        x = _position(values.get(phase.x_key), phase.x_texts)
        y = _position(values.get(phase.y_key), phase.y_texts) if phase.y_key else 0.5
        return None if x is None or y is None else (x, y)

    def _place_dots(self):
        """Each map's runs' dots: the warning colour for one run, each run's own colour when runs are compared."""
        colours = self.theme.run_colors
        for panel, phase in zip(self.shown, self.phases):
            runs = panel.runs if self.sweep_folder is None else [0]
            spots = [(where, r) for r in runs if (where := self.dot_position(r, phase)) is not None]
            panel.dot.setData([w[0] for w, _ in spots], [w[1] for w, _ in spots],
                              brush=[brush(self.theme.warning if len(self.configs) < 2 else colours[r % len(colours)])
                                     for _, r in spots])

    # ------------------------------------------------------------------ clicks
    def choose(self, column: int, row: int, phase: phase_maps.PhaseMap | None = None):
        """Apply the settings of a cell of `phase` (default: the first map; what a click on it does)."""
        phase = phase or self.phase
        if phase is not None and 0 <= column < len(phase.x_texts) and 0 <= row < len(phase.y_texts):
            self.settings_chosen.emit(phase.settings_at(column, row))

    def _clicked(self, event):
        if event.button() != Qt.MouseButton.LeftButton:
            return
        for panel, phase in zip(self.shown, self.phases):
            box = panel.plot.getViewBox()
            if box.sceneBoundingRect().contains(event.scenePos()):
                point = box.mapSceneToView(event.scenePos())
                self.choose(int(np.floor(point.x())), int(np.floor(point.y())), phase)
                return

    # ------------------------------------------------------------------ the window's hooks
    def in_window(self, window) -> None:
        """A clicked cell's settings go to the settings panel as if typed there (compare mode keeps its
        runs' differences); File > Open sweep folder… after Open data…, and a sweep folder File > Open or a
        drop finds, show here, turning the view on."""
        def apply(values: dict):
            try:
                config = window.controls.config().replace(**values)
            except ConfigError as exc:
                window.banner.show_message(f"The phase diagram's point cannot be used: {exc}")
                return
            window.controls.set_config(config)
            window.controls.config_changed.emit(config)

        def open_sweep(folder):
            try:
                self.show_sweep(folder)
            except sweep.SweepError as exc:
                window.banner.show_message(f"Could not open the sweep: {exc}")
                return
            window.view_actions[self.view_id].setChecked(True)

        def dialog():
            folder = QFileDialog.getExistingDirectory(window, "Open a sweep folder", str(window.files.start_folder()))
            if folder:
                open_sweep(folder)
        self.settings_chosen.connect(apply)
        window.files.sweep_opened.connect(open_sweep)
        action = QAction("Open sweep folder…", window)
        action.setToolTip("Show a folder of main.py sweep (sweep.npz) in the Phase diagram view")
        action.triggered.connect(dialog)
        window.actions_by_name["open_sweep"] = action
        window.menus["file"].insertAction(window.actions_by_name["close_files"], action)


def write_phase_png(folder, theme=DARK, size=PNG_SIZE) -> Path:
    """A sweep folder's phase.png: its map drawn by this view, offscreen (`main.py sweep` calls it after
    the numbers are written)."""
    from PySide6.QtWidgets import QApplication
    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture for a file: no screen needed, none used
        from gui.offscreen import quiet_offscreen_warnings
        quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication([])
    view = PhaseView()
    view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    view.apply_theme(theme)
    view.resize(*size)
    view.show_sweep(folder)
    view.back_button.hide()
    view.show()
    app.processEvents()
    path = Path(folder) / sweep.PICTURE_FILE
    if not view.grab().save(str(path)):
        raise OSError(f"{path} could not be written")
    view.close()
    view.deleteLater()
    return path
