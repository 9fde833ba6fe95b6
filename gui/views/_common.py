"""Shared helpers for the views: theming of pyqtgraph plots, the plot layouts several views share, finite-value
filtering, run labels.

GUI thread only. Nothing here holds state about runs; the views own their plot items.
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from engine.config import KEYS, LIVE_KEYS
from engine.schema import DESCRIBE_KEYS
from gui.theme import LOG_GRAD_LEVELS
from gui.views._axes import LabAxis, LogAxis, add_plot, font, power_of_ten
from gui.views._legends import LegendRoomViewBox

TIMESTEP_LABEL = ("timestep (earlier ←)", "timestep")   # axis labels: alternatives, longest first
STEP_LABEL = ("training step", "step")
STRUCTURAL_KEYS = tuple(k for k in KEYS if k not in LIVE_KEYS)  # the settings a run's plot items are built for


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


def heatmap_ready(log_values: np.ndarray, levels=LOG_GRAD_LEVELS) -> np.ndarray:
    """Log-gradient image for a fixed-level ImageItem: -inf (exactly zero) and +inf pinned to the
    ends of `levels`, NaN (diverged) left as NaN, which the ImageItem leaves transparent."""
    lo, hi = levels
    out = np.asarray(log_values, dtype=np.float32)
    if not np.isfinite(out).all():
        out = out.copy()
        out[np.isneginf(out)] = lo
        out[np.isposinf(out)] = hi
    return out


WIDEST_LOG_GRAD_LEVELS = (-46.0, 15.0)  # float32's smallest gradient; well past exploding's 10¹³


def widened_levels(levels, log_values) -> tuple[float, float]:
    """Colour levels that cover `log_values` too: `levels` (at least LOG_GRAD_LEVELS) widened to the
    whole powers of ten of the finite values beyond them, never narrowed. An exploding run's 10¹³
    is not one saturated block at 10², nor a tanh run's 10⁻²¹ flattened at 10⁻¹²; the levels still
    never follow the data down, so what vanishes stays dark."""
    lo, hi = min(levels[0], LOG_GRAD_LEVELS[0]), max(levels[1], LOG_GRAD_LEVELS[1])
    values = np.asarray(log_values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = min(lo, float(np.floor(values.min()))), max(hi, float(np.ceil(values.max())))
    # a diverging run's 10³⁷ would leave every other run one flat colour: beyond 10¹⁵ is saturated
    return (max(lo, WIDEST_LOG_GRAD_LEVELS[0]), min(hi, WIDEST_LOG_GRAD_LEVELS[1]))


def factor_text(factor: float) -> str:
    """A per-step factor as a legend reads it: '0.55' or '12.34', and past 1000 '1.3·10²⁴' (the log
    axes' notation, `log_tick_text`, with one decimal kept), not all twenty-five digits of a float
    printed with two decimals."""
    if factor < 1000:
        return f"{factor:.2f}"
    exponent = int(np.floor(np.log10(factor)))
    mantissa = factor / 10.0 ** exponent
    if round(mantissa, 1) >= 10:  # 9.97 would read 10.0
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}·{power_of_ten(exponent)}"


def sample_columns(n: int, max_columns: int) -> np.ndarray:
    """At most `max_columns` evenly spread indices into range(n), always the first and the last."""
    if n <= max_columns:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_columns)).astype(int))


# ----------------------------------------------------------------------------- runs

_DESCRIBE_KEYS = DESCRIBE_KEYS  # the settings named in compared runs' labels, in the schema's order of rank


def run_labels(infos) -> list[str]:
    """Short labels that tell compared runs apart: a lesson's own names for its runs while they are
    that lesson's (`lesson_run_labels`), else the settings in which they differ."""
    if not infos:
        return []
    if len(infos) == 1:
        return [describe_config(infos[0].config)]
    named = lesson_run_labels([info.config for info in infos])
    if named is not None:
        return named
    differing = [k for k in _DESCRIBE_KEYS
                 if len({repr(getattr(i.config, k)) for i in infos}) > 1]
    labels = []
    for info in infos:
        parts = [_short(k, getattr(info.config, k)) for k in differing[:3]]
        labels.append(f"run {info.index + 1}" + (": " + ", ".join(parts) if parts else ""))
    return labels


def lesson_run_labels(configs) -> list[str] | None:
    """The lesson's words for these runs ("factor 0.9", "tanh RNN (before)": Lesson.run_labels) when
    they are a lesson's runs: run 1 has the lesson's settings, and every other run differs from run 1
    exactly as the lesson's compare dict for it says (settings the lesson leaves alone, such as a
    --set seed=3 or a live change of the learning rate on every run, may differ from the lesson's).
    None when they are not (a run edited on its own: the names would no longer be true)."""
    from engine.lessons import LESSONS
    base = configs[0] if configs else None
    for lesson in LESSONS.values():
        if len(lesson.run_labels) != len(configs) or len(lesson.compare) + 1 != len(configs):
            continue
        if any(getattr(base, key, None) != value for key, value in lesson.settings.items()):
            continue
        try:
            if all(config == base.replace(**changes) for config, changes in zip(configs[1:], lesson.compare)):
                return list(lesson.run_labels)
        except (ValueError, TypeError):  # the compare dict does not fit this run 1 (e.g. another --set)
            continue
    return None


def first_run_name(infos) -> str:
    """What titles call run 1 in compare mode: its lesson name ("LSTM") where the runs are a lesson's,
    else "Run 1"."""
    named = lesson_run_labels([info.config for info in infos]) if len(infos) > 1 else None
    return named[0] if named else "Run 1"


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


def no_si_prefix(axis: pg.AxisItem):
    """Turn off pyqtgraph's automatic SI scaling for good. enableAutoSIPrefix(False) still computes
    a scale from the current range (pyqtgraph 0.13-0.14), so an axis re-themed while it showed
    small values would keep labelling them x1000 (a loss of 0.2 read as 2x10^2)."""
    axis.enableAutoSIPrefix(False)
    axis.autoSIPrefixScale = 1.0
    axis.labelUnitPrefix = ""
    axis.picture = None  # redraw the tick labels with the corrected scale


def style_plot(plot: pg.PlotItem, theme, labels: dict, title: str | None = None):
    """Colours, fonts and labels of a PlotItem from the theme. `labels`: {axis name: text}."""
    fg = theme.foreground
    tick_font = font(theme, -1)
    axis_pen = pg.mkPen(fg, width=max(1.0, theme.line_width / 2))
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(axis_pen)
        axis.setTextPen(fg)
        axis.setTickFont(tick_font)
        axis.setStyle(tickLength=-max(4, theme.font_pt // 2), tickTextOffset=max(3, theme.font_pt // 3))
        no_si_prefix(axis)  # "(x0.001)" on a log axis only confuses
        if name in labels:
            set_axis_label(axis, labels[name], theme)
    set_grid(plot, theme)
    if title is not None:
        set_title(plot, title, theme)


def set_axis_label(axis: pg.AxisItem, text, theme):
    """`text`: one label, or alternatives longest first (the longest that fits the axis is shown);
    "" or () hides the label."""
    options = (text,) if isinstance(text, str) else tuple(text)
    options = tuple(o for o in options if o)
    if isinstance(axis, LabAxis):
        axis.whole_numbers = any("step" in o for o in options)  # "training step", "timestep"
        axis.set_label_options(options, theme)
    elif options:
        axis.setLabel(options[0], color=theme.foreground, **{"font-size": f"{theme.font_pt}pt"})
    else:
        axis.showLabel(False)


def set_grid(plot: pg.PlotItem, theme, show: bool = True):
    """A light grid behind the data. pyqtgraph's own axis grid (showGrid) costs 8-17 ms per repaint
    in Qt's raster engine; a GridItem in the view costs under 1 ms. On a log axis its lines fall on
    the powers of ten."""
    grid = getattr(plot, "_lab_grid", None)
    if grid is None:
        grid = pg.GridItem(textPen=None)
        # two levels of lines (about 1 and 10 across), not GridItem's three: its finest level, ~100 lines
        # too faint to see in a view's cell, was most of the 2-7 ms it took to redraw at every new range
        grid.setTickSpacing(x=[None, None], y=[None, None])
        grid.setZValue(-100)
        plot.addItem(grid, ignoreBounds=True)
        plot._lab_grid = grid
    color = QColor(theme.foreground)
    color.setAlphaF(theme.grid_alpha * 0.6)
    grid.setPen(pg.mkPen(color, width=1, cosmetic=True))
    grid.setVisible(show)


def set_title(plot: pg.PlotItem, title: str, theme):
    """A short title inside the plot (a word or two: it sets the plot's minimum width). Longer,
    changing titles go in a TitleLabel above the plot, which wraps instead."""
    plot.setTitle(title, color=theme.foreground, size=f"{theme.font_pt}pt")


class TitleLabel(QLabel):
    """The line of plain words above a plot (\"Shrinks 10²⁴× going back in time\"). It wraps onto a
    second line instead of making the view wider, and only relayouts when its text changes."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignHCenter | Qt.AlignVCenter)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMinimumWidth(0)

    def set_text(self, text: str):
        if text != self.text():
            self.setText(text)

    def minimumSizeHint(self):
        return QSize(0, super().minimumSizeHint().height())

    def apply_theme(self, theme):
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.setStyleSheet(f"TitleLabel {{ background: {theme.background}; color: {theme.foreground};"
                           f" padding: 2px 4px 0px 4px; }}")
        self.setFont(font(theme, 1))



def style_colorbar(bar: pg.ColorBarItem, theme, text: str):
    axis = bar.axis
    axis.setPen(theme.foreground)
    axis.setTextPen(theme.foreground)
    axis.setTickFont(font(theme, -1))
    no_si_prefix(axis)
    # ColorBarItem fixes its axis at 45 px: room for the widest label at this font instead
    widest = QFontMetricsF(font(theme, -1)).horizontalAdvance(power_of_ten(-12))
    axis.setWidth(int(np.ceil(widest + axis.style["tickTextOffset"][0] + 8)))


def make_colorbar(theme, plot: pg.PlotItem, image: pg.ImageItem) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(values=LOG_GRAD_LEVELS, colorMap=pg.colormap.get(theme.colormap),
                          interactive=False, width=14, colorMapMenu=False)
    bar.setImageItem(image, insert_in=plot)
    axis = bar.axis
    # every second power of ten, or fewer when the bar is short or the font large (never a gap
    # in the labels that looks like the scale ends early)
    axis.tickValues = lambda lo, hi, size: _colorbar_ticks(axis, lo, hi, size)
    axis.tickStrings = lambda values, scale, spacing: [power_of_ten(round(v)) for v in values]
    return bar


def _colorbar_ticks(axis, lo, hi, size):
    height = QFontMetricsF(axis.style.get("tickFont") or QFont()).height()
    top, bottom = int(np.floor(hi)), int(np.ceil(lo))
    for step in (2, 3, 4, 7, 14):
        values = [float(v) for v in range(top, bottom - 1, -step)]
        if len(values) * height * 1.3 <= size:
            return [(float(step), values)]
    return [(14.0, values[:1])]  # a bar too short for two labels: the top one alone


def tall_enough(area, theme, lines: int) -> bool:
    """Whether a PlotArea has `lines` lines of the theme's font in height: room for a second plot under the
    first (the profile's ratio plot, the loss's task score); yes while it is not laid out (under 50 px)."""
    height = area.height()
    return height < 50 or height >= lines * QFontMetricsF(font(theme)).height()


def place(area, item, row: int, col: int, show: bool):
    """Show or hide a plot of a GraphicsLayoutWidget. A hidden item would keep its share of the
    layout (an empty band), so it leaves the layout and comes back."""
    grid = area.ci
    inside = item in grid.items
    if show and not inside:
        grid.addItem(item, row=row, col=col)
    elif not show and inside:
        grid.removeItem(item)
    item.setVisible(show)


class TrainingCurve(pg.PlotDataItem):
    """A curve over training steps, drawn downsampled (pyqtgraph's auto mode, `setDownsampling`),
    whose automatic range still comes from all its data. pyqtgraph bounds a curve by the points it
    draws, and draws every ds-th of them, with ds set by how many steps each pixel of the current range
    holds: so the range moved what was drawn and what was drawn moved the range. In a narrow plot,
    where ds sits near a whole number, the two flipped between two ranges at every paint, and the
    repaints never stopped (a window on an 800x800 screen starved its quit timer)."""

    POINT_PX = 7  # a curve of one point (a one-step run, a run that diverged at its first step) is a dot
    # steps per drawn point: at least one pixel's worth (pyqtgraph's default, a fifth of a pixel, drew five times
    # the points, each costing a wide-pen stroke, for a picture no different: 'peak' keeps each bin's min and max)
    DOWNSAMPLE_PER_PIXEL = 1.0
    ceiling = None  # data value above which the curve leaves the automatic y range (off the top), or None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.opts["autoDownsampleFactor"] = self.DOWNSAMPLE_PER_PIXEL

    def setData(self, *args, **kwargs):
        super().setData(*args, **kwargs)
        single = self.xData is not None and len(self.xData) == 1
        if single != (self.opts["symbol"] is not None):
            self.setSymbol("o" if single else None)
            if single:
                self.setSymbolSize(self.POINT_PX)
                self.setSymbolPen(None)
                self.setSymbolBrush(self.opts["pen"].color())

    def setPen(self, *args, **kwargs):
        super().setPen(*args, **kwargs)
        if self.opts["symbol"] is not None:  # a new theme: the dot takes the line's new colour
            self.setSymbolBrush(self.opts["pen"].color())

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        rect = self.dataRect()  # of all the data given, unmapped (cached by pyqtgraph)
        if frac != 1.0 or orthoRange is not None or rect is None or not self.curve.isVisible():
            return super().dataBounds(ax, frac, orthoRange)
        lo, hi = (rect.left(), rect.right()) if ax == 0 else (rect.top(), rect.bottom())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return (None, None)
        if ax == 1 and self.ceiling is not None and lo <= self.ceiling < hi:
            hi = self.ceiling
        if self.opts["logMode"][ax]:
            if lo <= 0:  # log10 leaves out what is not positive: only the drawn data can say
                return super().dataBounds(ax, frac, orthoRange)
            lo, hi = np.log10(lo), np.log10(hi)
        return (float(lo), float(hi))


def set_font(widgets, f: QFont) -> None:
    """`f` on each widget, and on a spin box's own text field: it kept the font it was built with (lecture mode's
    "layer:" box showed its value at 9 px beside an 18 pt label)."""
    for widget in widgets:
        widget.setFont(f)
        if hasattr(widget, "lineEdit") and widget.lineEdit() is not None:
            widget.lineEdit().setFont(f)


class PlotArea(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget whose minimum size is that of the plots in it (a plain QGraphicsView
    reports a tiny one and then draws its plots clipped when they need more room). It times its paints:
    `painted_ms`, the last one's milliseconds, is what the display scheduler learns a view's cost from."""

    painted_ms = 0.0

    def paintEvent(self, event):
        start = time.perf_counter()
        try:
            return super().paintEvent(event)
        finally:
            self.painted_ms = (time.perf_counter() - start) * 1000.0

    def minimumSizeHint(self):
        hint = self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)
        return QSize(int(np.ceil(hint.width())), int(np.ceil(hint.height())))


def log_over_linear_plots() -> tuple[PlotArea, pg.PlotItem, pg.PlotItem]:
    """A PlotArea with a log-scale plot on top and a linear plot below a third its height, the x
    axes linked so that zooming one zooms both (the loss over its task score, the influence of the
    inputs over the attention). Both view boxes can make room for a legend in their top corner
    (LegendRoomViewBox.make_room_for). Returns (area, log plot, linear plot)."""
    area = PlotArea()
    log_plot = add_plot(area, row=0, col=0, left=LogAxis, viewBox=LegendRoomViewBox())
    linear_plot = add_plot(area, row=1, col=0, viewBox=LegendRoomViewBox())
    area.ci.layout.setRowStretchFactor(0, 3)
    area.ci.layout.setRowStretchFactor(1, 1)
    for plot in (log_plot, linear_plot):
        plot.setMenuEnabled(False)
        plot.getAxis("bottom").whole_numbers = True  # x is always training steps or timesteps
    log_plot.setLogMode(x=False, y=True)
    linear_plot.setXLink(log_plot)
    return area, log_plot, linear_plot


def heatmap_plot(theme) -> tuple[PlotArea, pg.PlotItem, pg.ImageItem, pg.ColorBarItem]:
    """A PlotArea with one plot of a log-gradient image (row-major: rows as given) and its colour
    bar on the fixed LOG_GRAD_LEVELS. Returns (area, plot, image, colour bar)."""
    area = PlotArea()
    plot = add_plot(area)
    plot.setMenuEnabled(False)
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    return area, plot, image, make_colorbar(theme, plot, image)


def style_heatmap_plot(area: PlotArea, plot: pg.PlotItem, colorbar: pg.ColorBarItem, theme, labels: dict,
                       bar_label: str):
    """Theme a `heatmap_plot`. No grid: its lines would cross the image's cells."""
    area.setBackground(theme.background)
    style_plot(plot, theme, labels)
    set_grid(plot, theme, show=False)
    colorbar.setColorMap(pg.colormap.get(theme.colormap))
    style_colorbar(colorbar, theme, bar_label)


def vbox(widget: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    return layout


def structure_key(histories) -> tuple:
    """What the views' plot items depend on: changes when a run set is (re)built, and when a live
    setting changes what a compared run is called (its legend label, e.g. "run 2: lr 0.01"). Not on
    other live changes (engine.config.LIVE_KEYS): those apply without rebuilding any plot item."""
    infos = [h.info for h in histories]
    runs = tuple((i.index, tuple(getattr(i.config, key) for key in STRUCTURAL_KEYS), i.n_steps, i.gate_names)
                 for i in infos)
    return runs + tuple(run_labels(infos) if len(infos) > 1 else ())
