"""Profile view: the gradient size at every timestep right now, on a log scale, with a fading
trail of the previous steps and the decay the recurrent matrix predicts. When runs are compared,
a small plot below shows each run's gradient divided by run 1's, timestep by timestep.

GUI thread only. Reads `RunHistory.latest` and `RunHistory.trail`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

from gui.views._axes import PowerAxis
from gui.views._common import (TIMESTEP_LABEL, LogAxis, PlotArea, TitleLabel, add_plot, brush, factor_text, finite,
                               first_run_name, font, pen, place, positive_finite, power_of_ten, run_labels,
                               set_axis_label, structure_key, style_plot, tall_enough, vbox)
from gui.views._legends import (LegendRoomViewBox, add_layer_entries, add_legend, move_legend_off_the_curves,
                                style_legend)
from gui.views._notes import BoxNote, diverged_words
from gui.views.base import View

DIFFERENT_LENGTHS_LABEL = ("timestep (lengths differ: aligned at the end)", "timestep (aligned at the end)",
                           "timestep")
LOG_LIMIT = 300.0   # the theory line is drawn in float64: keep 10**x finite and non-zero
RATIO_ROOM_LINES = 12  # the plots' height, in lines of the theme's font, that the profile and the ratio plot need


def theory_line(snapshot, layer: int = -1):
    """The steepest decay (or growth) the recurrent matrix allows, anchored at the last timestep:
    grad_h[layer, -1] * factor ** (T - 1 - t), with factor = sigma_max * max_slope.
    Returns (factor, values) or (factor, None) when it cannot be drawn (non-finite numbers)."""
    factor = float(snapshot.sigma_max[layer]) * float(snapshot.max_slope[layer])
    anchor = float(snapshot.grad_h[layer, -1])
    if not (np.isfinite(factor) and factor > 0 and np.isfinite(anchor) and anchor > 0):
        return factor, None
    T = snapshot.grad_h.shape[1]
    steps_back = np.arange(T - 1, -1, -1, dtype=np.float64)
    log_values = np.log10(anchor) + steps_back * np.log10(factor)
    return factor, 10.0 ** np.clip(log_values, -LOG_LIMIT, LOG_LIMIT)


def ratio_to_first(first, other):
    """log10(other / first) of two runs' top-layer gradients per timestep, over the timesteps both
    have, aligned at the last one (runs of different lengths both end where the loss is read).
    Returns (offset, values): values[i] belongs to timestep offset + i of the first run, or
    to the last len(values) timesteps of both. Non-finite ratios (a zero or diverged gradient)
    are NaN."""
    a = np.asarray(first.grad_h[-1], dtype=np.float64)
    b = np.asarray(other.grad_h[-1], dtype=np.float64)
    n = min(len(a), len(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log10(b[len(b) - n:]) - np.log10(a[len(a) - n:])
    values[~np.isfinite(values)] = np.nan
    return len(a) - n, values


def layer_name(layers: int):
    """The profile's legend name of each layer's curve."""
    def name(layer: int) -> str:
        if layers == 1:
            return "gradient now"
        return f"layer {layer + 1}" + (" (top)" if layer == layers - 1 else " (input side)" if layer == 0 else "")
    return name


class ProfileView(View):
    view_id = "profile"
    title = "Gradient profile"
    explanation = ("How large the gradient is at each timestep of the sequence right now, on a log scale: "
                   "every grid line is ten times smaller. The dashed line is the limit the recurrent weights "
                   "set: one step back, the gradient can at most be multiplied by the weights' largest "
                   "singular value times the activation's steepest slope, so where the gradient only travels "
                   "back through the recurrence (one answer at the end, no attention) the curve stays under "
                   "the line, and a limit below 1 forces it to vanish. Faint lines are earlier steps.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._key = None
        self.curves = []        # (run, layer, PlotDataItem) current profiles
        self.cell_curves = []   # (run, PlotDataItem) LSTM cell-state gradient, top layer
        self.trails = []        # (run, [PlotDataItem, ...]) newest earlier step first
        self.theories = []      # (run, PlotDataItem)
        self.ratios = []        # (run, PlotDataItem) log10(run / run 1) per timestep, runs 2.. in compare mode
        self._theory_labels = {}
        self._theory_key = None  # the legend sample standing for every run's theory line in compare mode
        layout = vbox(self)
        self.title_label = TitleLabel("Gradient size at each timestep (now)")
        layout.addWidget(self.title_label)
        self.area = PlotArea()
        layout.addWidget(self.area)
        self.plot = add_plot(self.area, row=0, col=0, left=LogAxis, viewBox=LegendRoomViewBox())
        self.plot.setMenuEnabled(False)
        self.plot.setLogMode(x=False, y=True)
        self.legend = add_legend(self.plot)
        self.plot.getViewBox().make_room_for(self.legend, when_needed=True)
        self._between_key = pg.PlotDataItem()  # no data: the legend's "layers 2-7" entry
        # compare mode only: each run against run 1, in powers of ten (0 = the same size)
        self.ratio_plot = add_plot(self.area, row=1, col=0, left=PowerAxis)
        self.ratio_plot.setMenuEnabled(False)
        self.ratio_plot.setXLink(self.plot)
        self.area.ci.layout.setRowStretchFactor(0, 3)
        self.area.ci.layout.setRowStretchFactor(1, 2)
        self.same_line = pg.InfiniteLine(pos=0, angle=0, movable=False, label="same as run 1",
                                         labelOpts={"position": 0.03, "anchors": [(0, 1), (0, 1)]})
        self.same_line.setZValue(20)  # its label above the ratio curves that cross it
        self.ratio_plot.addItem(self.same_line)
        place(self.area, self.ratio_plot, 1, 0, False)
        self._ratio_x_label = TIMESTEP_LABEL
        self._main_x_label = TIMESTEP_LABEL  # "" where the ratio plot below carries it
        # early timesteps whose gradient is exactly 0 (below float32's smallest number) have no
        # point on a log axis: shade them so the gap reads as "vanished", not "missing"
        self.underflow = pg.LinearRegionItem(movable=False)
        self.underflow.setZValue(-10)
        self.plot.addItem(self.underflow, ignoreBounds=True)
        self.underflow.hide()
        # named inside the shaded stretch, where no curve of the latest step can be (see _place_underflow_label)
        self.underflow_label = pg.TextItem("gradient is exactly 0 here", anchor=(0.5, 0.5))
        self.plot.addItem(self.underflow_label, ignoreBounds=True)
        self.underflow_label.hide()
        self.plot.getViewBox().sigResized.connect(self._place_underflow_label)
        # a compared run that diverged has no curve (its last numbers, 10^-100 to 10^50 in the learning-rate lesson,
        # flattened the others' into a line): said in the ratio plot, or in the profile where that has no room
        self.notes = {self.plot: BoxNote(self.plot.getViewBox()),
                      self.ratio_plot: BoxNote(self.ratio_plot.getViewBox(), right_of=self.same_line.label)}
        self.plot.getViewBox().sigRangeChanged.connect(self._place_underflow_label)
        self._n_steps = 0
        self._tmax = 0
        self.x = np.zeros(0)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ building
    def set_runs(self, infos):
        self._build(list(infos))

    def _build(self, infos):
        for item in self._all_items():
            self.plot.removeItem(item)
        for _, curve in self.ratios:
            self.ratio_plot.removeItem(curve)
        self.legend.clear()
        self.plot.getViewBox().forget_room()  # new curves: a free corner first
        self.curves, self.cell_curves, self.trails, self.theories, self.ratios = [], [], [], [], []
        self._theory_labels = {}
        self._theory_key = None
        compare = len(infos) > 1
        labels = run_labels(infos)
        for run, info in enumerate(infos):
            L = info.config.layers
            layers = [L - 1] if compare else range(L)
            for layer in layers:
                curve = pg.PlotDataItem()
                curve.setZValue(10)
                self.plot.addItem(curve)
                self.curves.append((run, layer, curve))
            if compare:
                self.legend.addItem(self.curves[-1][2], labels[run])
            else:
                add_layer_entries(self.legend, [c for _, _, c in self.curves], layer_name(L), self._between_key)
            if compare and run > 0:
                ratio = pg.PlotDataItem()
                self.ratio_plot.addItem(ratio)
                self.ratios.append((run, ratio))
            if info.config.cell == "lstm" and (not compare or run == 0):
                curve = pg.PlotDataItem()
                curve.setZValue(9)
                self.plot.addItem(curve)
                self.legend.addItem(curve, "cell state (top layer)")
                self.cell_curves.append((run, curve))
            trail = []
            for _ in range(7):
                item = pg.PlotDataItem()
                self.plot.addItem(item)
                trail.append(item)
            self.trails.append((run, trail))
            theory = pg.PlotDataItem()
            theory.setZValue(11)
            self.plot.addItem(theory, ignoreBounds=True)  # may run far off the data: never rescale for it
            if not compare:
                self.legend.addItem(theory, "limit")
            self.theories.append((run, theory))
        if compare:  # one entry for all runs' theory lines keeps the legend small
            self._theory_key = pg.PlotDataItem()
            self.legend.addItem(self._theory_key, "dashed: limit")
        self._key_infos = infos
        name = first_run_name(infos)  # the ratio plot's zero line and axis name run 1 as the lesson does
        self.same_line.label.setFormat("same as run 1" if name == "Run 1" else f"same as {name}")
        self._ratio_y_label = ("÷ run 1",) if name == "Run 1" else (f"÷ {name}", "÷ run 1")
        set_axis_label(self.ratio_plot.getAxis("left"), self._ratio_y_label, self.theme)
        self._fit_ratio_plot()
        self._style_items()

    def _fit_ratio_plot(self):
        """Compare mode's ratio plot below the profile where the view is tall enough for both
        (RATIO_ROOM_LINES); in a shorter one (a row of the 3x3 grid at 1600x1000) both were squeezed to
        strips 35 px high, so there the profile, whose curves compare the runs too, keeps the room.
        The timestep axis's name goes under the lower plot."""
        show = bool(self.ratios) and tall_enough(self.area, self.theme, RATIO_ROOM_LINES)
        if show != self.ratio_plot.isVisible():
            place(self.area, self.ratio_plot, 1, 0, show)
            if show:  # pyqtgraph does not set a hidden line label's text (setFormat): it said "same as run 1"
                self.same_line.label.valueChanged()
        label = "" if show else self._ratio_x_label if self.ratios else TIMESTEP_LABEL
        if label != self._main_x_label:
            self._main_x_label = label
            set_axis_label(self.plot.getAxis("bottom"), label, self.theme)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit_ratio_plot()

    def _all_items(self):
        yield from (c for _, _, c in self.curves)
        yield from (c for _, c in self.cell_curves)
        for _, trail in self.trails:
            yield from trail
        yield from (c for _, c in self.theories)

    def _color(self, run, layer):
        compare = len(self.trails) > 1
        if compare:
            return self.theme.run_colors[run % len(self.theme.run_colors)]
        return self.theme.layer_color(layer, self._key_infos[run].config.layers)

    def _style_items(self):
        t = self.theme
        infos = getattr(self, "_key_infos", [])
        for run, layer, curve in self.curves:
            curve.setPen(pen(self._color(run, layer), t))
        if infos:
            layers = infos[0].config.layers
            self._between_key.setPen(pen(t.layer_color((layers - 1) / 2, layers), t))
        for run, curve in self.cell_curves:
            curve.setPen(pen(self._color(run, infos[run].config.layers - 1), t, 0.8, dashed=True))
        for run, trail in self.trails:
            color = self._color(run, infos[run].config.layers - 1)
            for i, item in enumerate(trail):
                item.setPen(pen(color, t, 0.6, alpha=0.45 * (1 - i / len(trail)) + 0.05))
        compare = len(self.trails) > 1
        for run, curve in self.theories:
            curve.setPen(pen(self._color(run, 0) if compare else t.accent, t, 0.9, dashed=True))
        if self._theory_key is not None:
            self._theory_key.setPen(pen(t.foreground, t, 0.9, dashed=True))
        for run, curve in self.ratios:
            curve.setPen(pen(self._color(run, 0), t))

    # ------------------------------------------------------------------ refresh
    def refresh(self, histories):
        key = structure_key(histories)
        if key != self._key:
            self._key = key
            self._build([h.info for h in histories])
        # runs of different lengths are drawn aligned at their last timestep, where the answer is read, on
        # the longest run's timesteps (a run of 5 at 45..49 beside one of 50), in both plots alike
        self._tmax = max((h.latest.grad_h.shape[1] for h in histories if h.latest is not None), default=0)
        gone = [run for run, h in enumerate(histories)
                if len(histories) > 1 and getattr(h, "diverged_at_step", None) is not None]
        for run, layer, curve in self.curves:
            snap = histories[run].latest
            if snap is None or run in gone:
                curve.setData([], [])
                continue
            self._set_profile(curve, snap.grad_h[layer])
        for run, curve in self.cell_curves:
            snap = histories[run].latest
            if snap is None or snap.grad_c is None or run in gone:
                curve.setData([], [])
            else:
                self._set_profile(curve, snap.grad_c[-1])
        for run, trail in self.trails:
            earlier = list(histories[run].trail)[:-1][::-1] if run not in gone else []
            for i, item in enumerate(trail):
                if i < len(earlier) and earlier[i].grad_h.shape[0] > 0:
                    self._set_profile(item, earlier[i].grad_h[-1])
                else:
                    item.setData([], [])
        compare = len(self.theories) > 1
        for run, curve in self.theories:
            snap = histories[run].latest
            if snap is None or run in gone:
                curve.setData([], [])
                self._label_theory(run, curve, "limit")
                continue
            factor, values = theory_line(snap)
            if values is None:
                curve.setData([], [])
            else:
                curve.setData(self._xs(len(values)), values)
            if not compare:
                text = f"limit: ×{factor_text(factor)} per step" if np.isfinite(factor) else "limit: n/a"
                self._label_theory(run, curve, text)
        first = histories[0].latest if histories else None
        # the limit lines matter less than the gradients: rather over a stretch of one than over a curve
        move_legend_off_the_curves(self.legend, [c for _, _, c in self.curves] + [c for _, c in self.cell_curves]
                                   + [(c, 0.25) for _, c in self.theories], None if first is None else first.grad_h[-1])
        self._update_ratios(histories, gone)
        self._note_diverged(histories, gone)
        self._update_underflow(histories)
        self._update_title(histories)

    def _note_diverged(self, histories, gone):
        texts = ()
        if gone:  # (run names only then: this runs at every refresh)
            labels = run_labels([h.info for h in histories])
            texts = tuple("\n".join(lines) for lines in zip(*(diverged_words(histories[run].diverged_at_step,
                                                                              labels[run]) for run in gone)))
        where = self.ratio_plot if self.ratio_plot.isVisible() else self.plot
        for plot, note in self.notes.items():
            if plot is where:
                note.say(texts)
            elif note.texts:
                note.say(())

    def _update_ratios(self, histories, gone=()):
        if not self.ratios:
            return
        first = histories[0].latest if 0 not in gone else None
        lengths = set()
        above = 0  # timesteps where a run's gradient is larger than run 1's, minus where smaller
        for run, curve in self.ratios:
            snap = histories[run].latest
            if first is None or snap is None or run in gone:
                curve.setData([], [])
                continue
            _, values = ratio_to_first(first, snap)  # the last len(values) timesteps of both
            lengths.add(snap.grad_h.shape[1])
            x, y = finite(self._tmax - len(values) + np.arange(len(values), dtype=np.float64), values)
            curve.setData(x, y)
            above += int(np.sum(y > 0)) - int(np.sum(y < 0))
        # the zero line sits at the edge the curves leave free: its label goes on their side, inside the plot
        anchors = [(0, 1), (0, 1)] if above >= 0 else [(0, 0), (0, 0)]
        if anchors != self.same_line.label.anchors:
            self.same_line.label.anchors = anchors
            self.same_line.label.updatePosition()
        if first is not None:
            lengths.add(first.grad_h.shape[1])
        text = TIMESTEP_LABEL if len(lengths) <= 1 else DIFFERENT_LENGTHS_LABEL
        if text != self._ratio_x_label:
            self._ratio_x_label = text
            set_axis_label(self.ratio_plot.getAxis("bottom"), text, self.theme)
            self._fit_ratio_plot()  # (the profile carries it where the ratio plot has no room)

    def _update_underflow(self, histories):
        snap = histories[0].latest if histories else None
        T = self._tmax
        if T != self._n_steps and T > 0:
            self._n_steps = T
            self.plot.setXRange(-0.5, T - 0.5, padding=0.01)  # always the whole (longest) sequence
        zero = 0
        if snap is not None:
            g = snap.grad_h[-1]
            positive = np.flatnonzero(g > 0)
            zero = int(positive[0]) if len(positive) and np.isfinite(g).all() else 0
        if zero > 0:
            start = T - snap.grad_h.shape[1]  # run 1's first timestep in the aligned frame
            self.underflow.setRegion((start - 0.5, start + zero - 0.5))
            self.underflow.show()
        else:
            self.underflow.hide()
        self._place_underflow_label()

    UNDERFLOW_MARGIN_PX = 6

    def _place_underflow_label(self, *_):
        """The label sits in the middle of the shaded stretch, or of the part of it above or below the
        legend where the two meet: across where it fits, else upright; hidden where even that won't fit."""
        label, box, m = self.underflow_label, self.plot.getViewBox(), self.UNDERFLOW_MARGIN_PX
        (x0, x1), (y0, y1) = box.viewRange()
        width, height = box.width(), box.height()
        if not self.underflow.isVisible() or width <= 0 or height <= 0 or x1 <= x0 or y1 <= y0:
            label.hide()
            return
        lo, hi = self.underflow.getRegion()  # the stretch, in pixels of the data box
        left, right = max((lo - x0) / (x1 - x0) * width, 0.0), min((hi - x0) / (x1 - x0) * width, width)
        top, bottom = 0.0, height
        legend = self.legend.mapRectToParent(self.legend.boundingRect()) if self.legend.isVisible() else None
        if legend is not None and legend.width() > 0 and legend.left() < right + m:
            above, below = legend.top(), height - legend.bottom()
            top, bottom = (0.0, legend.top()) if above >= below else (legend.bottom(), height)
        text = label.textItem.boundingRect()
        across, upright = right - left - 2 * m, bottom - top - 2 * m
        if across >= text.width() and upright >= text.height():
            angle = 0
        elif across >= text.height() and upright >= text.width():
            angle = 90
        else:
            label.hide()
            return
        if label.angle != angle:
            label.setAngle(angle)
        centre = box.mapToView(QPointF((left + right) / 2, (top + bottom) / 2))
        label.setPos(centre)
        label.show()

    def _xs(self, n):
        """x of a profile of n timesteps: aligned at the end with the longest run's (see refresh)."""
        start = max(self._tmax - n, 0)
        if len(self.x) != n or (n and self.x[0] != start):
            self.x = np.arange(start, start + n, dtype=np.float64)
        return self.x

    def _set_profile(self, curve, values):
        x, y = positive_finite(self._xs(len(values)), values)
        curve.setData(x, y)

    def _label_theory(self, run, curve, text):
        if self._theory_labels.get(run) != text:
            self._theory_labels[run] = text
            label = self.legend.getLabel(curve)
            if label is not None:
                label.setText(text)

    def _update_title(self, histories):
        text = "Gradient size at each timestep (now)"
        snap = histories[0].latest if histories else None
        if snap is not None:
            g = snap.grad_h[-1]
            orders = snap.orders_of_magnitude
            if np.isfinite(g).all() and g[-1] > 0 and g[0] == 0:
                text = "Dies out completely before the first timestep"
            elif np.isfinite(orders) and orders >= 1:
                text = f"Shrinks {power_of_ten(round(orders))}× going back in time"
            elif np.isfinite(orders) and orders <= -1:
                text = f"Grows {power_of_ten(round(-orders))}× going back in time"
            elif not np.isfinite(g).all():
                text = "Not a finite number: the run diverged"
            if len(histories) > 1:
                text = f"{first_run_name([h.info for h in histories])}: " + text[0].lower() + text[1:]
        self.title_label.set_text(text)

    def clear(self):
        for item in self._all_items():
            item.setData([], [])
        for note in self.notes.values():
            note.say(())
        for _, curve in self.ratios:
            curve.setData([], [])

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, {"bottom": self._main_x_label,
                                      "left": ("gradient size (log scale)", "gradient (log scale)", "gradient")})
        style_plot(self.ratio_plot, theme, {"left": getattr(self, "_ratio_y_label", "÷ run 1"), "bottom": self._ratio_x_label})
        style_legend(self.legend, theme)
        self.same_line.setPen(pen(theme.foreground, theme, 0.5, alpha=0.7))
        self.same_line.label.setColor(theme.foreground)
        self.same_line.label.setFont(font(theme, -2))
        self.same_line.label.fill = brush(theme.background, 0.75)  # readable where a ratio curve crosses it
        self.underflow.setBrush(brush(theme.warning, 0.10))
        for line in self.underflow.lines:
            line.setPen(pg.mkPen(None))
        for note in self.notes.values():
            note.apply_theme(theme)
        self.underflow_label.setColor(theme.foreground)
        self.underflow_label.setFont(font(theme, -1))
        self.title_label.apply_theme(theme)
        self._style_items()
        self._fit_ratio_plot()  # (a lecture font needs more room)
