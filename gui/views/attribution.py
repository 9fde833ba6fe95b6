"""Attribution view: how much each input timestep still influences the loss (the gradient with
respect to the input, newest step), and where the attention readout looks, if it is on.

GUI thread only. Reads `RunHistory.latest.grad_x` and `.attention`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.probes import orders_lost
from gui.views._common import (TIMESTEP_LABEL, TitleLabel, brush, finite, log_over_linear_plots, pen, place,
                               first_run_name, positive_finite, power_of_ten, run_labels, structure_key, style_plot, vbox)
from gui.views._legends import add_legend, move_legend_off_the_curves, style_legend
from gui.views.base import View

ATTENTION_LABEL = "attention: where the answer looks"


def influence_title(grad_x) -> str:
    """Plain words for how the last input's influence compares with the first's."""
    g = np.asarray(grad_x, dtype=np.float64)
    if len(g) < 2 or not np.isfinite(g).all() or g[-1] <= 0:
        return "Influence of each input on the loss"
    orders = orders_lost(g)
    if g[0] == 0:
        return "Recent inputs dominate: the first has no influence"
    # a factor of 10 reads as a tilt on a log axis that spans many decades, not as domination
    word = "dominate" if abs(orders) >= 2 else "count more"
    if orders >= 1:
        return f"Recent inputs {word}: last counts {power_of_ten(round(orders))}× the first"
    if orders <= -1:
        return f"Early inputs {word}: first counts {power_of_ten(round(-orders))}× the last"
    return "Early and recent inputs count about equally"


class AttributionView(View):
    view_id = "attribution"
    readable_size = (280, 230)  # with attention its two plots, 40 px each
    title = "Input influence"
    explanation = ("How strongly each input of the sequence still affects the loss (the gradient with respect "
                   "to that input, log scale). When it falls off to the left, the network cannot learn from "
                   "early inputs. With attention on, the lower plot shows where the readout looks.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._key = None
        self._title_text = "Influence of each input on the loss"
        self.curves, self.attention_curves = [], []
        self._any_attention = False
        layout = vbox(self)
        self.title_label = TitleLabel(self._title_text)
        layout.addWidget(self.title_label)
        self.area, self.plot, self.attention_plot = log_over_linear_plots()
        layout.addWidget(self.area)
        self.legend = add_legend(self.plot)
        self.plot.getViewBox().make_room_for(self.legend, when_needed=True)
        # the lower plot is too short for its axis label: its one legend entry names it
        self.attention_legend = add_legend(self.attention_plot)
        self.attention_plot.getViewBox().make_room_for(self.attention_legend)
        self.x = np.zeros(0)
        self._n_steps = 0
        self.apply_theme(self.theme)

    def set_runs(self, infos):
        self._build(list(infos))

    def _build(self, infos):
        for curve in self.curves:
            self.plot.removeItem(curve)
        for curve in self.attention_curves:
            self.attention_plot.removeItem(curve)
        self.legend.clear()
        self.plot.getViewBox().forget_room()  # new curves: a free corner first
        self.curves, self.attention_curves = [], []
        labels = run_labels(infos) if len(infos) > 1 else ["input influence"]
        for run, info in enumerate(infos):
            curve = pg.PlotDataItem()
            self.plot.addItem(curve)
            self.legend.addItem(curve, labels[run])
            self.curves.append(curve)
            attention = pg.PlotDataItem()
            self.attention_plot.addItem(attention)
            self.attention_curves.append(attention)
        any_attention = any(i.config.attention for i in infos)
        self.attention_legend.clear()
        if any_attention:
            first = next(run for run, info in enumerate(infos) if info.config.attention)
            self.attention_legend.addItem(self.attention_curves[first], ATTENTION_LABEL)
        place(self.area, self.attention_plot, 1, 0, any_attention)
        self._any_attention = any_attention
        self._style_items()

    def _style_items(self):
        t = self.theme
        any_attention = self._any_attention
        single = len(self.curves) == 1
        for run, (curve, attention) in enumerate(zip(self.curves, self.attention_curves)):
            color = t.run_colors[run % len(t.run_colors)]
            curve.setPen(pen(color, t))
            attention.setPen(pen(color, t, 0.8))
            if single:
                attention.setFillLevel(0)
                attention.setBrush(brush(color, 0.3))
        style_plot(self.plot, t, {"left": ("influence (log scale)", "influence"),
                                  "bottom": "" if any_attention else TIMESTEP_LABEL})
        style_plot(self.attention_plot, t, {"left": "attention", "bottom": TIMESTEP_LABEL})

    def refresh(self, histories):
        key = structure_key(histories)
        if key != self._key:
            self._key = key
            self._build([h.info for h in histories])
        for run, h in enumerate(histories):
            snap = h.latest
            if snap is None:
                self.curves[run].setData([], [])
                self.attention_curves[run].setData([], [])
                continue
            g = snap.grad_x
            self.curves[run].setData(*positive_finite(self._xs(len(g)), g))
            if snap.attention is None:
                self.attention_curves[run].setData([], [])
            else:
                self.attention_curves[run].setData(*finite(self._xs(len(snap.attention)), snap.attention))
        longest = max((len(h.latest.grad_x) for h in histories if h.latest is not None), default=0)
        if longest and longest != self._n_steps:
            self._n_steps = longest
            self.plot.setXRange(-0.5, longest - 0.5, padding=0.01)  # always the whole of every sequence
        first = histories[0].latest if histories else None
        move_legend_off_the_curves(self.legend, self.curves, None if first is None else first.grad_x)
        text = influence_title(first.grad_x) if first is not None else "Influence of each input on the loss"
        if len(histories) > 1 and first is not None:
            text = f"{first_run_name([h.info for h in histories])}: " + text[0].lower() + text[1:]
        self._title_text = text
        self.title_label.set_text(text)

    def _xs(self, n):
        if len(self.x) != n:
            self.x = np.arange(n, dtype=np.float64)
        return self.x

    def clear(self):
        for curve in self.curves + self.attention_curves:
            curve.setData([], [])

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_legend(self.legend, theme)
        style_legend(self.attention_legend, theme)
        self._style_items()
        self.title_label.apply_theme(theme)
