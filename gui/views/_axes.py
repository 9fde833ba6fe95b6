"""The plots' axes: labels that never run past the axis, readable log and power-of-ten ticks, and the
PlotItem that uses them (`add_plot`). GUI thread only. Split from _common.py, which re-exports them."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(exponent: int) -> str:
    """'10⁻¹⁴' in superscript characters, which keep to the line (a rich-text <sup> rises above it)."""
    return "10" + str(int(exponent)).translate(SUPERSCRIPT)


def font(theme, delta: int = 0) -> QFont:
    f = QFont()
    f.setPointSize(max(6, theme.font_pt + delta))
    return f


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
