"""Parameter-gradient view: how large the weights' gradient is per layer over training, before
(solid) and after (dashed) clipping, with the clip threshold and a mark wherever clipping fired.

GUI thread only. Reads `RunHistory.steps/grad_norm(_clipped)/grad_norm_layer(_clipped)/clipped` and the
clipping settings the run trains with now (`RunHistory.info.config`, live changes included).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from gui.views._common import (STEP_LABEL, LogAxis, PlotArea, TitleLabel, TrainingCurve, add_plot, brush, font, pen,
                               lesson_run_labels, positive_finite, run_labels, structure_key, style_plot, vbox)
from gui.views._legends import LegendRoomViewBox, add_layer_entries, add_legend, style_legend
from gui.views.base import View

MAX_MARKS = 400  # clip marks drawn per run; thinned evenly beyond this so refresh stays cheap
RUG_PX = 8       # height of a row of clip ticks along the plot's bottom edge (one row per run)


def clipping_text(histories) -> str:
    """How many steps clipping changed the gradient, counted since the run started (reset), across
    rebuilds and setting changes, as the step numbers are. The view's title and the status bar
    both say it in these words, so the two numbers on screen are the same number."""
    if len(histories) == 1:
        h = histories[0]
        return f"clipping fired in {h.clip_count} of {h.steps_seen} steps since start"
    names = lesson_run_labels([h.info.config for h in histories]) or [f"run {i + 1}" for i in range(len(histories))]
    return "clipping fired since start: " + ", ".join(
        f"{name}: {h.clip_count} of {h.steps_seen} steps" for name, h in zip(names, histories))


class ParamGradsView(View):
    view_id = "param_grads"
    title = "Weight gradients"
    explanation = ("How large the gradient of the weights is, per layer, over training (log scale). Solid: "
                   "as computed; dashed: after clipping. Clipping caps the total at the threshold line; "
                   "a red tick along the bottom marks each step where it had to (one row per run).")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._key = None
        self.series = []      # (run, layer or None for all weights, before curve, after curve)
        self.marks = []       # (run, ScatterPlotItem of ticks along the bottom edge)
        self._fired = {}      # run -> steps where clipping fired (thinned to MAX_MARKS)
        self.thresholds = []  # (run, InfiniteLine)
        self._clip_in_legend = False
        layout = vbox(self)
        self.title_label = TitleLabel("Weight gradients over training")
        layout.addWidget(self.title_label)
        self.area = PlotArea()
        layout.addWidget(self.area)
        # clipping sets in where the gradient is largest: at the top of the plot, under the legend
        self.plot = add_plot(self.area, left=LogAxis, viewBox=LegendRoomViewBox())
        self.plot.setMenuEnabled(False)
        self.plot.setLogMode(x=False, y=True)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.getViewBox().growing_x = True  # training steps: the range moves in jumps (_legends.py)
        self.legend = add_legend(self.plot)
        box = self.plot.getViewBox()
        box.make_room_for(self.legend)
        box.sigYRangeChanged.connect(self._place_rug)
        box.sigResized.connect(self._place_rug)
        self._between_key = pg.PlotDataItem()  # no data: the legend's "layers 2-7 recurrent" entry
        self._layers = 1
        self.apply_theme(self.theme)

    def set_runs(self, infos):
        self._build(list(infos))

    def _build(self, infos):
        for _, _, before, after in self.series:
            self.plot.removeItem(before)
            self.plot.removeItem(after)
        for _, item in self.marks + self.thresholds:
            self.plot.removeItem(item)
        self.legend.clear()
        self.series, self.marks, self.thresholds = [], [], []
        self._fired = {}
        compare = len(infos) > 1
        labels = run_labels(infos)
        for run, info in enumerate(infos):
            L = info.config.layers
            rows = [None] if compare else [None] + list(range(L))
            for layer in rows:
                before, after = TrainingCurve(), TrainingCurve()
                self.plot.addItem(before)
                self.plot.addItem(after)
                self.series.append((run, layer, before, after))
            if compare:
                self.legend.addItem(self.series[-1][2], labels[run])
            else:
                self.legend.addItem(self.series[0][2], "all weights")
                add_layer_entries(self.legend, [before for _, _, before, _ in self.series[1:]],
                                  lambda layer: f"layer {layer + 1} recurrent", self._between_key, " recurrent")
            # a rug, not marks on the curve: clipping that fires on most steps would bury the curve
            mark = pg.ScatterPlotItem(symbol="|", size=RUG_PX, pxMode=True)
            mark.setZValue(20)
            self.plot.addItem(mark, ignoreBounds=True)  # placed in pixels from the bottom: no say in the range
            self.marks.append((run, mark))
            line = pg.InfiniteLine(angle=0, movable=False, label="",
                                   labelOpts={"position": 0.02, "anchors": [(0, 1), (0, 1)]})
            line.setZValue(15)  # its label over the curves (fix-gru's 'clip at 1' lay under them)
            self.plot.addItem(line)
            line.hide()
            self.thresholds.append((run, line))
        self._after_legend = pg.PlotDataItem()
        self._clip_in_legend = False  # the two clipping entries join the legend once clipping is on
        self._layers = 1 if compare else infos[0].config.layers if infos else 1
        self._style_items()

    def _style_items(self):
        t = self.theme
        compare = len(self.marks) > 1
        for run, layer, before, after in self.series:
            if compare:
                color = t.run_colors[run % len(t.run_colors)]
            else:
                color = t.foreground if layer is None else t.layer_color(layer, self._layers)
            width = 1.0 if (compare or layer is None) else 0.7
            before.setPen(pen(color, t, width))
            after.setPen(pen(color, t, width, dashed=True))
        self._between_key.setPen(pen(t.layer_color((self._layers - 1) / 2, self._layers), t, 0.7))
        for run, mark in self.marks:  # compared runs' rows of ticks in their colours
            color = t.run_colors[run % len(t.run_colors)] if compare else t.warning
            mark.setBrush(brush(color))
            mark.setPen(pen(color, t, 0.8))
        for run, line in self.thresholds:
            color = t.run_colors[run % len(t.run_colors)] if compare else t.accent
            line.setPen(pen(color, t, 0.7, dashed=True))
            line.label.setColor(t.foreground)
            line.label.setFont(font(t, -1))
            line.label.fill = brush(t.background, 0.75)  # readable where a curve crosses it
        if hasattr(self, "_after_legend"):
            self._after_legend.setPen(pen(t.foreground, t, 0.7, dashed=True))

    def refresh(self, histories):
        key = structure_key(histories)
        if key != self._key:
            self._key = key
            self._build([h.info for h in histories])
        clip_modes = [h.info.config.clip for h in histories]
        for run, layer, before, after in self.series:
            h = histories[run]
            steps = h.steps.view()
            if layer is None:
                b, a = h.grad_norm.view(), h.grad_norm_clipped.view()
            else:
                b, a = h.grad_norm_layer.view()[:, layer], h.grad_norm_layer_clipped.view()[:, layer]
                steps = steps[len(steps) - len(b):]  # a rebuild to another depth restarts the per-layer rings
            before.setData(*positive_finite(steps, b))
            if clip_modes[run] == "none" and not h.clip_count:
                after.setData([], [])
            else:
                after.setData(*positive_finite(steps, a))
        compare = len(histories) > 1
        for run, mark in self.marks:
            h = histories[run]
            if not h.clip_count:
                self._fired[run] = np.zeros(0)
                continue
            steps = h.steps.view()[h.clipped.view()]
            if len(steps) > MAX_MARKS:
                steps = steps[np.round(np.linspace(0, len(steps) - 1, MAX_MARKS)).astype(int)]
            self._fired[run] = steps
        self._place_rug()
        names = lesson_run_labels([h.info.config for h in histories]) or [f"run {k + 1}" for k in range(len(histories))]
        clipping = {run: histories[run].info.config.clip_threshold for run, _ in self.thresholds
                    if clip_modes[run] == "norm" and (histories[run].info.config.clip_threshold or 0) > 0}
        for run, line in self.thresholds:
            if run not in clipping:
                line.hide()
                continue
            threshold = clipping[run]
            sharing = [r for r in clipping if clipping[r] == threshold]  # runs on one line: one label, not texts on texts
            if run != sharing[0]:
                text = ""
            elif compare and len(sharing) < len(histories):
                text = f"{', '.join(names[r] for r in sharing)}: clip at {threshold:g}"
            else:
                text = f"clip at {threshold:g}"
            if line.value() != np.log10(threshold):
                line.setPos(np.log10(threshold))
            if line.label.format != text:  # (a new format lays the text out again)
                line.label.setFormat(text)
            line.label.setVisible(bool(text))
            line.show()
        self._update_clip_legend(any(m != "none" for m in clip_modes) or any(h.clip_count for h in histories))
        self._update_title(histories, clip_modes)

    def _place_rug(self, *_):
        """Each run's clip ticks in a row along the bottom edge, whatever the y range (log10 units)."""
        box = self.plot.getViewBox()
        height = box.height()
        if height <= 0:
            return
        bottom, top = box.viewRange()[1]
        per_px = (top - bottom) / height
        for row, (run, mark) in enumerate(self.marks):
            steps = self._fired.get(run, np.zeros(0))
            mark.setData(x=steps, y=np.full(len(steps), bottom + per_px * RUG_PX * (row + 0.5)))

    def _update_clip_legend(self, clipping: bool):
        if clipping == self._clip_in_legend or not self.marks:
            return
        self._clip_in_legend = clipping
        mark = self.marks[0][1]
        if clipping:
            self.legend.addItem(mark, "clipping fired (ticks)")
            self.legend.addItem(self._after_legend, "dashed: after clipping")
        else:
            self.legend.removeItem(mark)
            self.legend.removeItem(self._after_legend)

    def _update_title(self, histories, clip_modes):
        if not histories:
            text = "Weight gradients over training"
        elif not any(h.clip_count for h in histories) and all(m == "none" for m in clip_modes):
            text = "No clipping"
        elif len(histories) == 1:
            h, mode = histories[0], clip_modes[0]
            text = "C" + clipping_text(histories)[1:] + (" (now off)" if mode == "none" else f" (by {mode})")
            shown = len(h.clipped)
            if h.steps_seen > shown:  # the ticks cover only the steps still in the ring buffer
                text += f"; {int(h.clipped.view().sum())} of the last {shown} in the plot"
        else:
            text = "C" + clipping_text(histories)[1:]
        self.title_label.set_text(text)

    def clear(self):
        for _, _, before, after in self.series:
            before.setData([], [])
            after.setData([], [])
        self._fired = {}
        for _, mark in self.marks:
            mark.setData([], [])

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, {"bottom": STEP_LABEL, "left": ("weight gradient (log scale)", "weight gradient", "gradient")})
        style_legend(self.legend, theme)
        self.title_label.apply_theme(theme)
        self._style_items()
