"""Shared helpers for the views: theming of pyqtgraph plots, the plot layouts several views share, finite-value
filtering, run labels.

GUI thread only. Nothing here holds state about runs; the views own their plot items.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from engine.config import KEYS, LIVE_KEYS
from gui.theme import LOG_GRAD_LEVELS
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


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(exponent: int) -> str:
    """'10⁻¹⁴' in superscript characters, which keep to the line (a rich-text <sup> rises above it)."""
    return "10" + str(int(exponent)).translate(SUPERSCRIPT)


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

_DESCRIBE_KEYS = ("cell", "activation", "init", "spectral_radius", "layers", "seq_len", "hidden",
                  "skip", "attention", "clip", "clip_threshold", "optimizer", "lr", "task", "seed", "batch")


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


class LabAxis(pg.AxisItem):
    """An axis whose label never runs past the axis: of the alternatives it is given (longest
    first) it shows the longest that fits its length, or none.

    The label's room is kept when no alternative fits (the label is then blank): an axis whose label
    came and went changed its own width (or height), so the other axes' lengths, and so their labels,
    which changed its length in turn. In a small plot they went round for ever: a left axis squeezed
    to nothing by the step label below it, whose own axis then shrank too short for that label, which
    gave the room back, and so on (a layout loop inside one processEvents, starving every timer)."""

    _label_options = ()
    _label_theme = None
    _label_shown = None
    whole_numbers = False  # ticks only at whole numbers (a step axis; set by set_axis_label)

    def set_label_options(self, options, theme):
        self._label_options, self._label_theme, self._label_shown = tuple(options), theme, None
        self._fit_label()

    def resizeEvent(self, ev=None):
        self._fit_label()
        super().resizeEvent(ev)

    def tickSpacing(self, minVal, maxVal, size):
        """pyqtgraph's spacing, widened on a short axis until the labels fit between the ticks (see
        `_crowded`): pyqtgraph picks the spacing from the axis length alone and always labels the
        major ticks, so a 160-pixel axis over 600 steps read "0 200400600". On a log axis, the same
        for spacings of whole decades."""
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels or self._tickSpacing is not None or size <= 0 or (self.logMode and levels[0][0] < 1):
            return levels
        if self.whole_numbers:  # steps count in ones: no "training step 0.8", nor a minor level at 0.5
            levels = [level for level in levels if level[0] >= 1] or [(1.0, 0)]
        lo, hi = min(minVal, maxVal), max(minVal, maxVal)
        px = size / (hi - lo)

        def ticks(spacing):
            first = np.ceil(lo / spacing) * spacing
            return list(first + spacing * np.arange(max(int((hi - first) / spacing) + 1, 0)))

        major = levels[0][0]
        for _ in range(12):  # 1, 2, 5 x 10^k upwards: a dozen steps cover four decades
            values = ticks(major)
            if len(values) <= 1:
                return self._one_tick(ticks(levels[0][0]), levels[0][0], lo, hi, px) or levels[:0]
            if not self._crowded(values, self.tickStrings(values, 1.0, major), px):
                break
            major = _next_nice(major)
        if major == levels[0][0]:
            return levels
        return [(major, 0), (major / (5 if _mantissa(np.log10(major)) == 5 else 2), 0)]

    def _tick_metrics(self) -> QFontMetricsF:
        return QFontMetricsF(self.style.get("tickFont") or QFont())

    def _crowded(self, values, strings, px_per_unit: float) -> bool:
        """Whether any two neighbouring tick labels come closer than a gap of two spaces (along a
        horizontal axis) or a quarter line (along a vertical one)."""
        metrics = self._tick_metrics()
        horizontal = self.orientation in ("top", "bottom")
        ticks = sorted(zip(values, strings))
        for (a, text_a), (b, text_b) in zip(ticks, ticks[1:]):
            if horizontal:
                need = (metrics.horizontalAdvance(text_a) + metrics.horizontalAdvance(text_b)) / 2 \
                    + metrics.horizontalAdvance("  ")
            else:
                need = metrics.height() * 1.25
            if (b - a) * px_per_unit < need:
                return True
        return False

    def _one_tick(self, values, spacing, lo, hi, px_per_unit):
        """Room for one label: of `values`, the one nearest the middle whose text stays on the axis
        (pyqtgraph drops a label that would run past either end), as a tick level; [] if none does."""
        metrics = self._tick_metrics()
        horizontal = self.orientation in ("top", "bottom")
        fitting = []
        for value, text in zip(values, self.tickStrings(list(values), 1.0, spacing)):
            x = (value - lo) * px_per_unit
            half = (metrics.horizontalAdvance(text) if horizontal else metrics.height()) / 2
            if half <= x <= (hi - lo) * px_per_unit - half:
                fitting.append(value)
        if not fitting:
            return []
        best = min(fitting, key=lambda v: abs(v - (lo + hi) / 2))
        self._lone_tick = (2 * (hi - lo), spacing)  # see tickStrings
        return [(2 * (hi - lo), float(best))]

    _lone_tick = (None, None)  # (the one-tick level's spacing, the spacing its value was picked from)

    def tickStrings(self, values, scale, spacing):
        """pyqtgraph's labels, except that a lone tick (see _one_tick) is written to the precision of
        the spacing it was picked from: its level's own spacing is the whole axis and more, to which
        pyqtgraph rounded 0.98 on a 0.95-1.0 axis to "1.0"."""
        if spacing == self._lone_tick[0]:
            spacing = self._lone_tick[1]
        return super().tickStrings(values, scale, spacing)

    def _updateMaxTextSize(self, x):
        """A horizontal axis keeps a line's room for tick labels even when none fits (see tickSpacing):
        its height would otherwise depend on its length, through the other axes on its own length.
        (A tick label is measured as 0.8 of a line, as pyqtgraph measures it; and pyqtgraph ignores a
        change of under 10 pixels, so rounding between the two cannot make the height flicker.)"""
        if self.orientation in ("top", "bottom"):
            x = max(x, self._tick_metrics().height() * 0.8)
        super()._updateMaxTextSize(x)

    def _fit_label(self):
        theme = self._label_theme
        if theme is None:
            return
        length = self.size().height() if self.orientation in ("left", "right") else self.size().width()
        metrics = QFontMetricsF(font(theme))
        # the label is a text item with a 4-pixel document margin each side, and its rendering ran up to
        # 13 pixels wider than this measure (a chosen label was cut at the axis's end): 16 pixels to spare
        choice = next((o for o in self._label_options if metrics.horizontalAdvance(o) <= length - 16), "")
        if choice == self._label_shown:
            return
        self._label_shown = choice
        if self._label_options:  # a blank label keeps its room (see above)
            self.setLabel(choice or "\u00a0", color=theme.foreground, **{"font-size": f"{theme.font_pt}pt"})
        else:
            self.showLabel(False)


def add_plot(area, row=None, col=None, left=None, **kwargs) -> pg.PlotItem:
    """A PlotItem whose left and bottom axes fit their labels (see LabAxis)."""
    axes = {"left": (left or LabAxis)(orientation="left"), "bottom": LabAxis(orientation="bottom")}
    return area.addPlot(row=row, col=col, axisItems=axes, **kwargs)


class LogAxis(LabAxis):
    """A log axis that stays readable over any span. Over two decades or more only powers of ten
    are labelled (pyqtgraph's spacing, widened where the labels would crowd); over less, pyqtgraph
    would label every 2..9 in between, so here only 1, 2 and 5 are labelled (or, where they would
    crowd, the powers of ten, or one label) and the rest are unlabelled minor ticks."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        decades = [(spacing, values) for spacing, values in stdTicks if spacing >= 1.0]
        whole = [float(v) for v in range(int(np.ceil(minVal)), int(np.floor(maxVal)) + 1)]
        px_per_decade = size / max(maxVal - minVal, 1e-9)
        if len(whole) >= 2 and decades:
            if px_per_decade <= 30:  # no room for the 2..9 ticks in between
                return decades
            return decades + [(None, _minor_ticks(minVal, maxVal))]
        minor = _minor_ticks(minVal, maxVal)
        every = sorted(minor + whole)
        labelled = [x for x in every if _mantissa(x) in (1, 2, 5)]
        if len(labelled) < 2:
            labelled = every
        if self._crowded(labelled, self.logTickStrings(labelled, 1.0, 0.5), px_per_decade):
            ones = [x for x in labelled if _mantissa(x) == 1]  # 1, 10, 100 (1 and 5 crowd as 2 and 5 do)
            if len(ones) < 2 or self._crowded(ones, self.logTickStrings(ones, 1.0, 0.5), px_per_decade):
                one = self._one_tick(labelled, 0.5, minVal, maxVal, px_per_decade)
                ones = [one[0][1]] if one else []
            labelled = ones
        rest = [x for x in every if x not in labelled]
        return [(0.5, labelled), (None, rest)]

    def logTickStrings(self, values, scale, spacing):
        if spacing is None:
            return [""] * len(values)
        return [log_tick_text(v + np.log10(scale)) for v in values]


def log_tick_text(log_value: float) -> str:
    """A log axis's label in one notation from end to end: 0.01 to 900 as plain numbers, beyond as
    powers of ten (10⁻⁵, 2·10⁻⁵, 10³); pyqtgraph wrote 0.0001 but 10⁻⁵, and 10¹ but 100."""
    exponent = int(np.floor(log_value + 1e-9))
    mantissa = int(round(10 ** (log_value - exponent)))
    if mantissa == 10:
        exponent, mantissa = exponent + 1, 1
    if -2 <= exponent <= 2:
        return f"{mantissa * 10.0 ** exponent:g}"
    return ("" if mantissa == 1 else f"{mantissa}·") + power_of_ten(exponent)


def _minor_ticks(lo: float, hi: float) -> list:
    """log10 of 2..9 times every power of ten between lo and hi (log10 units)."""
    values = [v + np.log10(m) for v in range(int(np.floor(lo)), int(np.ceil(hi))) for m in range(2, 10)]
    return [float(x) for x in values if lo < x < hi]


def _mantissa(log_value: float) -> int:
    return int(round(10 ** (log_value - np.floor(log_value + 1e-9))))


def _next_nice(spacing: float) -> float:
    """The next tick spacing up the 1, 2, 5 x 10^k ladder (from 20 to 50, from 50 to 100)."""
    power = 10.0 ** np.floor(np.log10(spacing) + 1e-9)
    return float(next(m * power for m in (2, 5, 10) if m * power > spacing * (1 + 1e-9)))


class PowerAxis(LabAxis):
    """A linear axis over log10 values, labelled as the factor they stand for: 10², 1, 10⁻²."""

    def tickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            if abs(v - round(v)) < 1e-9:
                out.append("1" if round(v) == 0 else power_of_ten(round(v)))
            else:
                out.append(f"{10 ** v:.2g}")
        return out


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
    ceiling = None  # data value above which the curve leaves the automatic y range (off the top), or None

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


class PlotArea(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget whose minimum size is that of the plots in it (a plain QGraphicsView
    reports a tiny one and then draws its plots clipped when they need more room)."""

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
