"""Phase diagram view: how many orders of magnitude the gradient loses at initialisation, over spectral
radius and sequence length, for the current cell and activation, with the line where it neither shrinks
nor grows, a dot at the current settings, and a click that applies a point's settings. A sweep's folder
(`main.py sweep`, engine/sweep.py) opens here too, its first two grid keys on the axes; and
`write_phase_png` draws a sweep's phase.png with this same view, offscreen.

GUI thread, except the map itself: engine.sweep.measure_at_init runs in a Python thread of its own (torch
only, no Qt there; the stacked networks take a second or two) whose result comes back through a queued
signal. A newer request supersedes an older one, which stops at its next stack of networks.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QPushButton

from engine import sweep
from engine.sweep_batched import shape_key
from engine.config import ConfigError
from gui.theme import DARK, LOG_GRAD_LEVELS
from gui.views._common import (TitleLabel, brush, heatmap_plot, heatmap_ready, pen,
                               style_heatmap_plot, vbox, widened_levels)
from gui.views.base import View

BAR_LABEL = "gradient at the first timestep ÷ at the last (log scale)"
PNG_SIZE = (960, 720)


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
    _measured = Signal(object, object)  # (request number, PhaseMap or an exception), from the thread

    def __init__(self, parent=None):
        super().__init__(parent)
        self.phase: sweep.PhaseMap | None = None
        self.sweep_folder: str | None = None
        self.config = None
        self.levels = LOG_GRAD_LEVELS
        self.maps_drawn = 0  # (the current network's and sweeps' maps shown so far)
        self._map_key = None
        self._request = 0
        self._thread: threading.Thread | None = None
        self._radius_for = (None, None)  # (config, its initial spectral radius)
        layout = vbox(self)
        self.title_label = TitleLabel("Phase diagram: waiting for the network's settings")
        layout.addWidget(self.title_label)
        self.back_button = QPushButton("Back to the current network's map")
        self.back_button.setToolTip("Leave the sweep and show the map of the network being trained.")
        self.back_button.clicked.connect(self.show_current)
        self.back_button.hide()
        layout.addWidget(self.back_button)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.contour = pg.PlotDataItem(connect="finite")
        self.dot = pg.ScatterPlotItem(size=12)
        for item in (self.contour, self.dot):
            self.plot.addItem(item)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self._measured.connect(self._on_measured)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        if infos:
            self.config = infos[0].config
            self._want_map()

    def refresh(self, histories):
        if histories and histories[0].info.config != self.config:
            self.config = histories[0].info.config
            self._want_map()

    def showEvent(self, event):
        super().showEvent(event)
        self._want_map()

    def hideEvent(self, event):  # turned off, or the window closes: a map being measured stops
        super().hideEvent(event)
        self.stop()

    def stop(self):
        """Stop a map being measured (it ends at its next stack of networks) and wait for its thread."""
        self._request += 1
        self._map_key = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def apply_theme(self, theme):
        self.theme = theme
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme, self._labels(), BAR_LABEL)
        self.title_label.apply_theme(theme)
        self.contour.setPen(pen(theme.accent, theme, 1.5))
        self.dot.setPen(pen(theme.background, theme, 1.0))
        self.dot.setBrush(brush(theme.warning))
        if self.phase is not None:
            self.show_map(self.phase)

    # ------------------------------------------------------------------ the map of the current network
    def _want_map(self):
        """Measure the current network's map if it is not the one shown (only while this view is on screen)."""
        if self.config is None or self.sweep_folder is not None:
            return
        base = sweep.map_base(self.config).replace(spectral_radius=None, seq_len=2)
        key = (shape_key(base), base.init, base.seed, base.forget_bias)
        if key != self._map_key and self.isVisible():
            self._map_key = key
            self._request += 1
            self.title_label.set_text("Phase diagram: measuring the map at initialisation…")
            self._thread = threading.Thread(target=self._measure, args=(self._request, self.config), daemon=True,
                                            name="phase-diagram")
            self._thread.start()
        self._place_dot()

    def _measure(self, request: int, config):  # the map's thread: engine only, the result by signal
        try:
            result = sweep.measure_at_init(config, cancelled=lambda: request != self._request)
            radius = sweep.initial_radius(config.replace(spectral_radius=None))  # (the dot, when unset)
            result = None if result is None else (result, config, radius)
        except Exception as exc:  # shown in the title, never lost
            result = exc
        try:
            self._measured.emit(request, result)
        except RuntimeError:  # the view was deleted meanwhile (the window closed)
            pass

    def _on_measured(self, request: int, result):
        if request != self._request or result is None or self.sweep_folder is not None:
            return
        if isinstance(result, Exception):
            self.title_label.set_text(f"Phase diagram: could not measure ({type(result).__name__}: {result})")
            return
        phase, config, radius = result
        self._radius_for = (config, radius)
        self.show_map(phase, self._network_title(config))

    def _network_title(self, config) -> str:
        cell = f"{config.activation} RNN" if config.cell == "rnn" else config.cell.upper()
        return f"{cell}, {config.hidden} units: orders of magnitude lost at initialisation"

    def show_current(self):
        """Back from a sweep to the current network's map."""
        self.sweep_folder = None
        self.back_button.hide()
        self._map_key = None
        self._want_map()

    # ------------------------------------------------------------------ a sweep's folder
    def show_sweep(self, folder) -> None:
        """A sweep folder's map (engine.sweep.load); SweepError when it cannot be read."""
        spec, phase = sweep.load(folder)
        self.sweep_folder = str(folder)
        self._request += 1  # (a map of the network still being measured is not wanted now)
        self.back_button.show()
        what = "at initialisation" if spec["steps"] == 0 else f"at the first of {spec['steps']} training steps"
        note = f" ({phase.note})" if phase.note else ""
        self.show_map(phase, f"{Path(folder).name}: orders of magnitude lost {what}{note}")

    # ------------------------------------------------------------------ drawing
    def show_map(self, phase: sweep.PhaseMap, title: str | None = None):
        self.phase = phase
        picture = -phase.values  # log10(first / last): dark where the gradient vanishes, as the waterfall
        self.levels = widened_levels(LOG_GRAD_LEVELS, picture)
        self.colorbar.setLevels(self.levels)
        rows, columns = picture.shape
        self.image.setImage(np.ascontiguousarray(heatmap_ready(picture, self.levels)), autoLevels=False,
                            levels=self.levels)
        self.image.setRect(QRectF(0, 0, columns, rows))
        self.contour.setData(*contour_lines(picture))
        self.plot.setRange(xRange=(0, columns), yRange=(0, rows), padding=0)
        for name, texts in (("bottom", phase.x_texts), ("left", phase.y_texts)):
            self.plot.getAxis(name).setTicks([[(k + 0.5, t) for k, t in enumerate(texts)]])
        style_heatmap_plot(self.area, self.plot, self.colorbar, self.theme, self._labels(), BAR_LABEL)
        if title:
            self.title_label.set_text(title)
            self.title_label.setToolTip("The line: where the gradient neither shrinks nor grows (nothing lost). "
                                        "The dot: the current settings. Click a cell to train with its settings.")
        self._place_dot()
        self.maps_drawn += 1

    def _labels(self) -> dict:
        keys = (self.phase.x_key, self.phase.y_key) if self.phase is not None else ("spectral_radius", "seq_len")
        return {"bottom": ((keys[0] or "").replace("_", " "),), "left": ((keys[1] or "").replace("_", " "),)}

    def dot_position(self) -> tuple[float, float] | None:
        """Where the current settings sit on the map shown (cell coordinates), or None."""
        phase, config = self.phase, self.config
        if phase is None or config is None:
            return None
        values = {}
        for key in (phase.x_key, phase.y_key):
            if key == "spectral_radius" and config.spectral_radius is None:
                known, radius = self._radius_for
                values[key] = sweep.value_text(radius) if known is not None and _same_network(known, config) else None
            elif key is not None:
                values[key] = sweep.value_text(getattr(config, key))
        x = _position(values.get(phase.x_key), phase.x_texts)
        y = _position(values.get(phase.y_key), phase.y_texts) if phase.y_key else 0.5
        return None if x is None or y is None else (x, y)

    def _place_dot(self):
        where = self.dot_position()
        self.dot.setData(*(([where[0]], [where[1]]) if where else ([], [])))

    # ------------------------------------------------------------------ clicks
    def choose(self, column: int, row: int):
        """Apply the settings of a cell (what a click on it does)."""
        if self.phase is not None and 0 <= column < len(self.phase.x_texts) and 0 <= row < len(self.phase.y_texts):
            self.settings_chosen.emit(self.phase.settings_at(column, row))

    def _clicked(self, event):
        box = self.plot.getViewBox()
        if event.button() != Qt.MouseButton.LeftButton or not box.sceneBoundingRect().contains(event.scenePos()):
            return
        point = box.mapSceneToView(event.scenePos())
        self.choose(int(np.floor(point.x())), int(np.floor(point.y())))

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


def _same_network(a, b) -> bool:
    """Two configs whose initial recurrent weights are the same (the map's dot: the initializer's radius)."""
    return sweep.map_base(a).replace(seq_len=2, spectral_radius=None) == \
        sweep.map_base(b).replace(seq_len=2, spectral_radius=None)


def write_phase_png(folder, theme=DARK, size=PNG_SIZE) -> Path:
    """A sweep folder's phase.png: its map drawn by this view, offscreen (`main.py sweep` calls it after
    the numbers are written)."""
    from PySide6.QtWidgets import QApplication
    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture for a file: no screen needed, none used
        from gui.app import quiet_offscreen_warnings
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
