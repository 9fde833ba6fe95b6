"""Shared helpers for the views: theming of pyqtgraph plots, finite-value filtering, run labels.

GUI thread only. Nothing here holds state about runs; the views own their plot items.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from gui.theme import DARK, LOG_GRAD_LEVELS

TIMESTEP_LABEL = "timestep (earlier ←)"
STEP_LABEL = "training step"


# ----------------------------------------------------------------------------- numbers

def positive_finite(x: np.ndarray, y: np.ndarray):
    """Only the points a log axis can show: finite x, finite y > 0 (a diverged run has NaN/Inf)."""
    keep = np.isfinite(y) & (y > 0)
    if x is not None:
        keep &= np.isfinite(x)
    if keep.all():
        return x, y
    return (None if x is None else x[keep]), y[keep]


def finite(x: np.ndarray, y: np.ndarray):
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.all():
        return x, y
    return x[keep], y[keep]


def log_grad(values: np.ndarray) -> np.ndarray:
    """log10 of gradient norms without warnings; 0 gives -inf, NaN stays NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(values)


def heatmap_ready(log_values: np.ndarray) -> np.ndarray:
    """Log-gradient image for a fixed-level ImageItem: -inf (exactly zero) and +inf pinned to the
    ends of LOG_GRAD_LEVELS, NaN (diverged) left as NaN, which the ImageItem leaves transparent."""
    lo, hi = LOG_GRAD_LEVELS
    out = np.asarray(log_values, dtype=np.float32)
    if not np.isfinite(out).all():
        out = out.copy()
        out[np.isneginf(out)] = lo
        out[np.isposinf(out)] = hi
    return out


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(exponent: int) -> str:
    return "10" + str(int(exponent)).translate(SUPERSCRIPT)


def sample_columns(n: int, max_columns: int) -> np.ndarray:
    """At most `max_columns` evenly spread indices into range(n), always the first and the last."""
    if n <= max_columns:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_columns)).astype(int))


# ----------------------------------------------------------------------------- runs

_DESCRIBE_KEYS = ("cell", "activation", "init", "spectral_radius", "layers", "seq_len", "hidden",
                  "skip", "attention", "clip", "clip_threshold", "optimizer", "lr", "task", "seed", "batch")


def run_labels(infos) -> list[str]:
    """Short labels that tell compared runs apart: the settings in which they differ."""
    if not infos:
        return []
    if len(infos) == 1:
        return [describe_config(infos[0].config)]
    differing = [k for k in _DESCRIBE_KEYS
                 if len({repr(getattr(i.config, k)) for i in infos}) > 1]
    labels = []
    for info in infos:
        parts = [_short(k, getattr(info.config, k)) for k in differing[:3]]
        labels.append(f"run {info.index + 1}" + (": " + ", ".join(parts) if parts else ""))
    return labels


def _short(key: str, value) -> str:
    if key == "cell":
        return value.upper()
    if key == "activation":
        return str(value)
    if key == "init":
        return f"{value} init"
    if isinstance(value, bool):
        return f"{key} {'on' if value else 'off'}"
    return f"{key} {value}"


def describe_config(c) -> str:
    cell = f"{c.activation} RNN" if c.cell == "rnn" else c.cell.upper()
    return f"{cell}, {c.layers} layer{'s' if c.layers > 1 else ''}, {c.seq_len} steps"


# ----------------------------------------------------------------------------- theming

def font(theme, delta: int = 0) -> QFont:
    f = QFont()
    f.setPointSize(max(6, theme.font_pt + delta))
    return f


def pen(color, theme, width: float = 1.0, dashed: bool = False, alpha: float = 1.0):
    c = QColor(color)
    c.setAlphaF(alpha)
    p = pg.mkPen(c, width=max(0.5, theme.line_width * width))
    if dashed:
        p.setStyle(Qt.DashLine)
    p.setCosmetic(True)
    return p


def brush(color, alpha: float = 1.0):
    c = QColor(color)
    c.setAlphaF(alpha)
    return pg.mkBrush(c)


def style_plot(plot: pg.PlotItem, theme, labels: dict, title: str | None = None):
    """Colours, fonts and labels of a PlotItem from the theme. `labels`: {axis name: text}."""
    fg = theme.foreground
    tick_font = font(theme, -1)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(fg)
        axis.setTextPen(fg)
        axis.setTickFont(tick_font)
        axis.enableAutoSIPrefix(False)  # "(x0.001)" on a log axis only confuses
        if name in labels:
            axis.setLabel(labels[name], **{"color": fg, "font-size": f"{theme.font_pt}pt"})
    set_grid(plot, theme)
    if title is not None:
        set_title(plot, title, theme)


def set_grid(plot: pg.PlotItem, theme, show: bool = True):
    """A light grid behind the data. pyqtgraph's own axis grid (showGrid) costs 8-17 ms per repaint
    in Qt's raster engine; a GridItem in the view costs under 1 ms. On a log axis its lines fall on
    the powers of ten."""
    grid = getattr(plot, "_lab_grid", None)
    if grid is None:
        grid = pg.GridItem(textPen=None)
        grid.setZValue(-100)
        plot.addItem(grid, ignoreBounds=True)
        plot._lab_grid = grid
    color = QColor(theme.foreground)
    color.setAlphaF(theme.grid_alpha * 0.6)
    grid.setPen(pg.mkPen(color, width=1, cosmetic=True))
    grid.setVisible(show)


def set_title(plot: pg.PlotItem, title: str, theme):
    plot.setTitle(title, color=theme.foreground, size=f"{theme.font_pt + 1}pt")


def style_legend(legend: pg.LegendItem, theme):
    legend.setLabelTextColor(theme.foreground)
    legend.setLabelTextSize(f"{max(6, theme.font_pt - 1)}pt")
    bg = QColor(theme.background)
    bg.setAlphaF(0.8)
    legend.setBrush(pg.mkBrush(bg))
    legend.setPen(pg.mkPen(QColor(theme.foreground).darker(150) if theme.name == "dark" else "#888888"))


def style_colorbar(bar: pg.ColorBarItem, theme, text: str):
    axis = bar.axis
    axis.setPen(theme.foreground)
    axis.setTextPen(theme.foreground)
    axis.setTickFont(font(theme, -1))
    axis.enableAutoSIPrefix(False)


def make_colorbar(theme, plot: pg.PlotItem, image: pg.ImageItem) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(values=LOG_GRAD_LEVELS, colorMap=pg.colormap.get(theme.colormap),
                          interactive=False, width=14, colorMapMenu=False)
    bar.setImageItem(image, insert_in=plot)
    lo, hi = int(LOG_GRAD_LEVELS[0]), int(LOG_GRAD_LEVELS[1])
    bar.axis.setTicks([[(float(v), power_of_ten(v)) for v in range(hi, lo - 1, -2)]])
    return bar


def decade_ticks(lo: float, hi: float, step: int = 2):
    return [[(float(v), f"10^{v}") for v in range(int(np.floor(lo)), int(np.ceil(hi)) + 1, step)]]


class PlotArea(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that does not steal the view's tooltip."""


class Selectors(QWidget):
    """A thin row above a plot: a run chooser (compare mode) and a layer chooser (stacked layers)."""

    def __init__(self, parent=None, layer: bool = True, run: bool = True):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 0)
        self.run_label = QLabel("run:")
        self.run_combo = QComboBox()
        self.run_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.layer_label = QLabel("layer:")
        self.layer_spin = QSpinBox()
        self.layer_spin.setRange(1, 1)
        self.layer_spin.setToolTip("Which stacked layer to show (1 = bottom, nearest the input).")
        row.addWidget(self.run_label)
        row.addWidget(self.run_combo)
        row.addSpacing(12)
        row.addWidget(self.layer_label)
        row.addWidget(self.layer_spin)
        row.addStretch(1)
        self._has_layer, self._has_run = layer, run
        self.set_runs([])

    def set_runs(self, infos):
        labels = run_labels(infos) if len(infos) > 1 else []
        old = self.run_combo.currentIndex()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.addItems(labels)
        self.run_combo.setCurrentIndex(old if 0 <= old < len(labels) else 0)
        self.run_combo.blockSignals(False)
        many_runs = self._has_run and len(infos) > 1
        self.run_label.setVisible(many_runs)
        self.run_combo.setVisible(many_runs)
        self.update_layers(infos)

    def update_layers(self, infos):
        idx = self.run_index(len(infos))
        layers = infos[idx].config.layers if infos else 1
        was_top = self.layer_spin.value() >= self.layer_spin.maximum()
        self.layer_spin.blockSignals(True)
        self.layer_spin.setMaximum(max(1, layers))
        if was_top:
            self.layer_spin.setValue(layers)  # follow the top layer unless the user picked another
        self.layer_spin.blockSignals(False)
        show = self._has_layer and layers > 1
        self.layer_label.setVisible(show)
        self.layer_spin.setVisible(show)
        self.setVisible((self._has_run and len(infos) > 1) or show)

    def run_index(self, n_runs: int) -> int:
        if not self._has_run:
            return 0
        i = self.run_combo.currentIndex()
        return i if 0 <= i < n_runs else 0

    def layer_index(self, n_layers: int) -> int:
        return min(max(self.layer_spin.value() - 1, 0), n_layers - 1)

    def apply_theme(self, theme):
        self.setAttribute(Qt.WA_StyledBackground, True)
        edge = "#777777"
        self.setStyleSheet(
            f"Selectors, QLabel {{ background: {theme.background}; color: {theme.foreground}; }}"
            f"QComboBox, QSpinBox {{ background: {theme.background}; color: {theme.foreground};"
            f" border: 1px solid {edge}; padding: 1px 4px; }}"
            f"QComboBox QAbstractItemView {{ background: {theme.background}; color: {theme.foreground}; }}")
        f = font(theme)
        for w in (self.run_label, self.run_combo, self.layer_label, self.layer_spin):
            w.setFont(f)


def vbox(widget: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    return layout


DEFAULT_THEME = DARK


def current_setting(history, key: str):
    """A setting's value now. Live changes (lr, clip, clip_threshold, optimizer) do not rebuild the
    run, so its RunInfo keeps the old config; the change events say what it is now."""
    value = getattr(history.info.config, key)
    prefix = key + " "
    for event in history.events:
        if event.kind == "diverged":
            continue
        for part in event.detail.split(", "):
            if part.startswith(prefix) and " -> " in part:
                value = _parse_like(part.split(" -> ", 1)[1], value)
    return value


def _parse_like(text: str, like):
    if isinstance(like, bool):
        return text == "True"
    if isinstance(like, (int, float)) or like is None:
        try:
            return float(text)
        except ValueError:
            return None if text == "None" else like
    return text


def structure_key(histories) -> tuple:
    """What the views' plot items depend on: changes only when a run set is (re)built."""
    return tuple((h.info.index, h.info.config, h.info.n_steps, h.info.gate_names) for h in histories)
