"""Activation view: the activation function and its slope, with a histogram of where the current
inputs to it fall, so saturation (inputs out where the slope is flat) is visible; for LSTM and GRU
also the mean value of every gate.

GUI thread only. Reads `RunHistory.latest.preact_hist/saturation/gate_means`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from engine import registry
from engine.diagnosis import saturated_what
from engine.probes import HIST_EDGES
from engine.schema import BY_NAME, applies
from gui.views._common import (PlotArea, TitleLabel, add_plot, brush, font, lesson_run_labels, pen, place, structure_key,
                               style_plot, vbox)
from gui.views._legends import add_legend, style_legend
from gui.views._selectors import Selectors
from gui.views.base import View

XS = np.linspace(-6.0, 6.0, 241)
Y_RANGE = (-1.25, 1.6)
# Where the slope falls below 10% of its largest (the zones engine.probes.flat_slope_mask counts as saturated).
FLAT_REGIONS = {"tanh": [(-6.0, -1.8184), (1.8184, 6.0)], "sigmoid": [(-6.0, -3.6369), (3.6369, 6.0)],
                "relu": [(-6.0, 0.0)]}
CANDIDATE_CELLS = ("lstm", "gru")  # cells whose histogram is of their tanh candidate's input, not the activation setting
NO_ACTIVATION = "no activation on its memory"  # (LRU, minGRU, the selective SSM: their gates are below, if any)
LEGEND_SHARE = 0.6  # of the activation plot's height that the legend, below y = 0, may take
SIDE_BY_SIDE_EM = 55  # the gate plot goes beside the activation plot from this many font sizes wide, else below
SHORT_EM = 24         # ... and in a view shorter than this many font sizes from SIDE_BY_SIDE_SHORT_EM wide: below,
SIDE_BY_SIDE_SHORT_EM = 36  # the activation plot was a strip 50 px high (a row of nine views at 1600x1000)


def activation_name(config) -> str | None:
    """The function the pre-activation histogram feeds: the activation setting where it applies (the RNN, IndRNN:
    IndRNN's ReLU was drawn as tanh), the LSTM's and GRU's tanh candidate; None for a cell whose memory passes
    through no activation (LRU, minGRU, the selective SSM: they were drawn with a tanh they do not have)."""
    if config.cell in CANDIDATE_CELLS:
        return "tanh"
    return config.activation if applies(BY_NAME["activation"], config) else None


class ActivationView(View):
    view_id = "activation"
    readable_size = (280, 260)  # a title of two lines, and where the cell has gates, the curves over them at 40 px each
    title = "Activation"
    explanation = ("The activation function (solid) and its slope (dashed). The shaded histogram shows where "
                   "the network's inputs to it fall right now. Inputs in the flat, shaded zones have almost "
                   "zero slope: the gradient passing through them is nearly erased (saturation).")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._key = None
        self._infos = []
        self._histories = []
        self._title_text = "Activation function and where its inputs fall"
        self.series = []     # (run, activation curve, slope curve, histogram curve)
        self.gate_bars = []  # (run, BarGraphItem, gate positions): horizontal bars, one row per gate
        self.regions = []
        layout = vbox(self)
        self.title_label = TitleLabel(self._title_text)
        layout.addWidget(self.title_label)
        self.selectors = Selectors(self, layer=True, run=False)
        layout.addWidget(self.selectors)
        self.area = PlotArea()
        layout.addWidget(self.area)
        self.plot = add_plot(self.area, row=0, col=0)
        self.gate_plot = add_plot(self.area, row=1, col=0)
        self._side_by_side = False
        self._gated = True
        self.area.ci.layout.setRowStretchFactor(0, 2)
        self.area.ci.layout.setRowStretchFactor(1, 1)
        for plot in (self.plot, self.gate_plot):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
        self.plot.setRange(xRange=(-6, 6), yRange=Y_RANGE, padding=0)
        self.gate_plot.setRange(xRange=(-1, 1), padding=0.04)
        self.gate_plot.getAxis("bottom").setTicks([[(-1.0, "-1"), (0.0, "0"), (1.0, "1")], [(0.5, ""), (-0.5, "")]])
        self.gate_plot.getAxis("left").setStyle(tickLength=0)
        self.gate_plot.invertY(True)  # the first gate on top, as listed
        self.gate_zero = pg.InfiniteLine(pos=0, angle=90, movable=False)
        self.gate_plot.addItem(self.gate_zero)
        # bottom right: every activation rises through the origin and slopes and histograms are never
        # negative, so x > 0, y < 0 is the one corner no curve or bar ever enters; where that half of
        # the width is too narrow, the whole width below the lowest curve (see _fit_y_range)
        self._floor = -1.0  # the lowest point of the activations drawn
        self._fitting = False
        self.legend = add_legend(self.plot, offset=(-6, -6), room=(0.5, LEGEND_SHARE))
        self.legend.geometryChanged.connect(self._fit_y_range)
        self.legend.visibleChanged.connect(self._fit_y_range)
        self.plot.getViewBox().sigResized.connect(self._fit_y_range)
        # no data: the compare legend's keys to what each run's colour draws
        self._compare_key = pg.PlotDataItem()
        self._bars_key = pg.PlotDataItem(stepMode="center", fillLevel=0)
        for _ in range(2):
            region = pg.LinearRegionItem(movable=False)
            region.setZValue(-10)
            self.plot.addItem(region)
            region.hide()
            self.regions.append(region)
        self.selectors.layer_spin.valueChanged.connect(self._layer_changed)
        self.apply_theme(self.theme)

    KEYS = (("_compare_key", "dashed: slope"), ("_bars_key", "bars: inputs now"))

    def _show_keys(self, show: bool):
        """The compare legend's two keys to the line styles, which a view too small for them goes without."""
        for attr, text in self.KEYS:
            item = getattr(self, attr)
            if show and self.legend.getLabel(item) is None:
                self.legend.addItem(item, text)
            elif not show and self.legend.getLabel(item) is not None:
                self.legend.removeItem(item)

    def _fit_y_range(self, *_):
        """Make room for the legend at the bottom, clear of every curve and bar. It takes the right half
        below y = 0 where it fits there at 60% of its size or more; else, if the activations drawn stay
        above -1.1 (all but linear and PReLU), the whole width below them. Where it is taller than the
        part of the plot it may take (a small view, the gate plot below), Y_RANGE reaches further down."""
        box, legend = self.plot.getViewBox(), self.legend
        if box.height() <= 0 or self._fitting:  # (adding or removing a key calls back here)
            return
        self._fitting = True
        try:
            self._fit_y_range_now(box, legend)
        finally:
            self._fitting = False

    def _entry_height(self) -> float:
        """One legend entry's height at full size, in this font, whatever the number of entries: judged
        from the legend's whole height it changed as the keys came and went, and so the judgement, which
        added and removed them for ever (a recursion that crashed a small compare view)."""
        text = max(label.item.boundingRect().height() for _, label in self.legend.items)
        return max(text, 20.0) + self.legend.layout.verticalSpacing()  # (pyqtgraph's samples are 20 px)

    def _fit_y_range_now(self, box, legend):
        if len(self._infos) > 1 and legend.items:  # keys only where the legend with them keeps 70% of its size
            rows = len(self._infos) + len(self.KEYS)
            self._show_keys((box.height() * LEGEND_SHARE - 10) / (self._entry_height() * rows + 4) >= 0.7)
        natural = legend.boundingRect()
        if natural.width() <= 1:
            return
        half = self.plot.width() * 0.8 * 0.5 - abs(legend.opts["offset"][0]) - 4
        wide = half < 0.6 * natural.width() and self._floor >= -1.1
        room = (0.9 if wide else 0.5, LEGEND_SHARE)
        if legend.room != room:
            legend.room = room
            legend.fit()
        floor = self._floor - 0.05 if wide else 0.0  # the legend's top stays below this
        bottom = Y_RANGE[0]
        if legend.isVisible():
            rect = legend.mapRectToParent(legend.boundingRect())
            share = min((box.height() - rect.top() + 2) / box.height(), LEGEND_SHARE)  # from the bottom up
            bottom = min(bottom, (floor - share * Y_RANGE[1]) / (1 - share))  # floor at that height
        if abs(box.viewRange()[1][0] - bottom) > 1e-6:
            self.plot.setYRange(bottom, Y_RANGE[1], padding=0)

    @staticmethod
    def _run_entry(infos, run: int, label: str) -> str:
        """A run's legend entry: the lesson's name for it ("ReLU", "pause 60: tanh") or "run 2: tanh"."""
        names = lesson_run_labels([info.config for info in infos])
        if names is None:
            return f"run {run + 1}: {label}"
        return names[run] if label.lower() in names[run].lower() else f"{names[run]}: {label}"

    def set_runs(self, infos):
        self._build(list(infos))

    def _build(self, infos):
        for _, act, slope, hist in self.series:
            for item in (act, slope, hist):
                self.plot.removeItem(item)
        for _, bars, _ in self.gate_bars:
            self.gate_plot.removeItem(bars)
        self._infos = []  # no legend keys while the legend is rebuilt (see _fit_y_range)
        self.legend.clear()
        self.series, self.gate_bars = [], []
        self.selectors.set_runs(infos)
        compare = len(infos) > 1
        shown = set()
        self._floor = 0.0
        for run, info in enumerate(infos):
            name = activation_name(info.config)
            act, slope = pg.PlotDataItem(), pg.PlotDataItem()
            if name is not None:
                y, dy = registry.activation_curve(name, XS)
                self._floor = min(self._floor, float(y.min()), float(dy.min()))
                if name not in shown:  # runs with the same function share one drawing
                    shown.add(name)
                    act.setData(XS, np.clip(y, -50, 50))
                    slope.setData(XS, np.clip(dy, -50, 50))
            hist = pg.PlotDataItem(stepMode="center", fillLevel=0)
            for item in (hist, act, slope):
                self.plot.addItem(item)
            label = (NO_ACTIVATION if name is None else registry.ACTIVATIONS[name].label
                     + (" (cell input)" if info.config.cell in CANDIDATE_CELLS else ""))
            if compare:  # one entry per run (its colour marks its curve, slope and bars), one key for all
                self.legend.addItem(act if act.xData is not None else hist, self._run_entry(infos, run, label))
            elif name is None:
                self.legend.addItem(act, f"{registry.CELLS[info.config.cell].label}: {NO_ACTIVATION}")
            else:
                self.legend.addItem(act, label)
                self.legend.addItem(slope, f"slope of {label.split(' (')[0]}")
                self.legend.addItem(hist, "inputs right now")
            self.series.append((run, act, slope, hist))
        if compare:
            self._show_keys(True)
        self._infos = infos
        # gate bars: one slot per distinct gate name, so LSTM and GRU runs can be compared side by side
        gate_names = []
        for info in infos:
            gate_names += [g for g in info.gate_names if g not in gate_names]
        self._gate_names = gate_names
        gated = [run for run, info in enumerate(infos) if info.gate_names]
        # each gate's row is shared by the runs that have that gate (LSTM and GRU gates differ)
        owners = {g: [run for run in gated if g in infos[run].gate_names] for g in gate_names}
        for run in gated:
            positions, thickness = [], []
            for g in infos[run].gate_names:
                share = 0.8 / len(owners[g])
                positions.append(gate_names.index(g) - 0.4 + share * (owners[g].index(run) + 0.5))
                thickness.append(share * 0.9)
            positions = np.array(positions)
            bars = pg.BarGraphItem(x0=np.zeros(len(positions)), y=positions, width=np.zeros(len(positions)),
                                   height=np.array(thickness))
            self.gate_plot.addItem(bars)
            self.gate_bars.append((run, bars, positions))
        self._fit_gate_plot()
        self._gated = bool(gated)
        self._side_by_side = None  # place the gate plot again (or take it out)
        self._arrange()
        self.gate_plot.getAxis("left").setTicks([[(float(i), g) for i, g in enumerate(gate_names)]])
        self.gate_plot.setYRange(-0.5, max(len(gate_names), 1) - 0.5, padding=0)
        names = {activation_name(i.config) for i in infos}
        flat = FLAT_REGIONS.get(names.pop(), []) if len(names) == 1 else []
        for region, span in zip(self.regions, flat + [None] * 2):
            if span is None:
                region.hide()
            else:
                region.setRegion(span)
                region.show()
        self._style_items()
        self._fit_y_range()

    def _style_items(self):
        t = self.theme
        compare = len(self.series) > 1
        for run, act, slope, hist in self.series:
            color = t.run_colors[run % len(t.run_colors)]
            act.setPen(pen(t.foreground if not compare else color, t))
            slope.setPen(pen(t.accent if not compare else color, t, 0.8, dashed=True))
            hist.setPen(pen(color, t, 0.6))
            hist.setBrush(brush(color, 0.35 if not compare else 0.2))
        for run, bars, _ in self.gate_bars:
            color = t.run_colors[run % len(t.run_colors)]
            bars.setOpts(brush=brush(color, 0.8), pen=pen(color, t, 0.5))
        for region in self.regions:
            region.setBrush(brush(t.warning, 0.12))
            for line in region.lines:
                line.setPen(pg.mkPen(None))

    def refresh(self, histories):
        self._histories = histories
        key = structure_key(histories)
        if key != self._key:
            self._key = key
            self._build([h.info for h in histories])
        centres = HIST_EDGES
        for run, _, _, hist in self.series:
            snap = histories[run].latest
            if snap is None:
                hist.setData([], [])
                continue
            counts = snap.preact_hist[self._layer(snap.preact_hist.shape[0])].astype(np.float64)
            peak = counts.max() if len(counts) else 0.0
            if not np.isfinite(peak) or peak <= 0:
                hist.setData([], [])
                continue
            hist.setData(centres, np.nan_to_num(counts / peak))
        for run, bars, positions in self.gate_bars:
            snap = histories[run].latest
            if snap is None or snap.gate_means.shape[1] != len(positions):
                heights = np.zeros(len(positions))
            else:
                heights = np.nan_to_num(snap.gate_means[self._layer(snap.gate_means.shape[0])].astype(float))
            bars.setOpts(width=heights)
        self._update_title(histories)

    def _layer(self, n_layers):
        return self.selectors.layer_index(n_layers)

    def _layer_changed(self, *_):
        if self._histories:
            self.refresh(self._histories)

    def _update_title(self, histories):
        parts = []
        for run, h in enumerate(histories):
            snap = h.latest
            if snap is None:
                continue
            sat = float(snap.saturation[self._layer(len(snap.saturation))])
            if np.isfinite(sat):
                parts.append((run, sat, saturated_what(h.info)))
        if not parts and histories and all(activation_name(h.info.config) is None for h in histories):
            text = "No activation on the memory: only the gates" if any(h.info.gate_names for h in histories) \
                else "No activation on the memory"
        elif not parts:
            text = "Activation function and where its inputs fall"
        elif len(histories) == 1:
            _, sat, what = parts[0]
            text = f"{sat * 100:.0f}% of {what} saturated (slope under 10%)"
        else:
            names = lesson_run_labels([h.info.config for h in histories]) or [f"run {k + 1}" for k in range(len(histories))]
            text = "Saturated: " + ", ".join(f"{names[run]} {sat * 100:.0f}%" for run, sat, _ in parts)
        self._title_text = text
        self.title_label.set_text(text)

    def clear(self):
        for _, _, _, hist in self.series:
            hist.setData([], [])

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, {"bottom": ("input to the activation", "input"), "left": ("output / slope", "")})
        style_plot(self.gate_plot, theme, {"bottom": ("mean gate value (0 = closed)", "mean gate value", "mean")})
        self.gate_plot.getAxis("left").setStyle(tickLength=0)
        self.gate_zero.setPen(pen(theme.foreground, theme, 0.4, alpha=0.6))
        style_legend(self.legend, theme)
        self._compare_key.setPen(pen(theme.foreground, theme, 0.8, dashed=True))
        self._bars_key.setPen(pen(theme.foreground, theme, 0.6))
        self._bars_key.setBrush(brush(theme.foreground, 0.25))
        self.selectors.apply_theme(theme)
        self.title_label.apply_theme(theme)
        self._style_items()
        self._fit_gate_plot()
        self._arrange()

    def _fit_gate_plot(self):
        """Tall enough that the gate names do not overlap, but never more than half the view below
        the activation plot: when that is too little, the names get a smaller font."""
        n = len(getattr(self, "_gate_names", ()))
        axis = self.gate_plot.getAxis("left")
        if not n:
            self.gate_plot.setMinimumHeight(0)
            return
        tick_font = font(self.theme, -1)
        line = QFontMetricsF(tick_font).height()
        room = (self.area.height() * 0.5 if not self._side_by_side else self.area.height()) - line * 2.6
        while n * line * 1.1 > room and tick_font.pointSize() > 6:
            tick_font.setPointSize(tick_font.pointSize() - 1)
            line = QFontMetricsF(tick_font).height()
        axis.setTickFont(tick_font)
        self.gate_plot.setMinimumHeight(min(n * line * 1.1 + line * 2.6, max(room, 0) + line * 2.6))

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._arrange()
        self._fit_gate_plot()

    def _arrange(self):
        """Gates beside the activation plot when the view is wide (or short and not narrow), below it when
        narrow, so neither gets squeezed until its tick labels overlap."""
        pt = self.theme.font_pt
        side = self.width() >= SIDE_BY_SIDE_EM * pt or (0 < self.height() < SHORT_EM * pt
                                                         and self.width() >= SIDE_BY_SIDE_SHORT_EM * pt)
        if side == self._side_by_side:
            return
        self._side_by_side = side
        grid = self.area.ci
        place(self.area, self.gate_plot, 0, 0, False)
        if not self._gated:
            return
        if side:
            place(self.area, self.gate_plot, 0, 1, True)
            grid.layout.setRowStretchFactor(1, 0)
            grid.layout.setColumnStretchFactor(0, 2)
            grid.layout.setColumnStretchFactor(1, 1)
        else:
            place(self.area, self.gate_plot, 1, 0, True)
            grid.layout.setColumnStretchFactor(1, 0)
            grid.layout.setRowStretchFactor(0, 2)
            grid.layout.setRowStretchFactor(1, 1)
