"""Layers view: the gradient size of the latest step in every stacked layer at every timestep, one
image per run when runs are compared (stacked, run 1 on top, on one colour scale: see _strips.py).

GUI thread only. Reads `RunHistory.latest.grad_h`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (TitleLabel, heatmap_plot, heatmap_ready, log_grad, style_heatmap_plot, vbox,
                               widened_levels)
from gui.views._strips import MAX_RUNS, RunStrips, readable_for
from gui.views.base import ChooserView


def layer_label(strips: int):
    return ("layer (1 = input side)", "layer") if strips == 1 else ("layer",)


def layer_ticks(layers: int) -> list:
    """The left axis's ticks: the end layers always named, those between on a second level, which
    pyqtgraph names only where they fit (a short strip of a six-layer stack in lecture mode overprinted
    its numbers). Plain numbers keep the axis narrow; the axis label says which end is which."""
    ends = sorted({0, layers - 1})
    return [[(float(layer), str(layer + 1)) for layer in ends],
            [(float(layer), str(layer + 1)) for layer in range(1, layers - 1)]]


class LayersView(ChooserView):
    shows_every_run = True  # one strip per run, no chooser
    view_id = "layers"
    title = "Layers"
    explanation = ("The gradient of the latest training step in every stacked layer (rows, top layer at the "
                   "top) at every timestep (columns). The colour scale is fixed, so a dark region really "
                   "means a vanished gradient. Compared runs are shown one under the other.")

    def readable_for(self, runs):
        return readable_for(runs)  # taller for more runs: a strip each

    def __init__(self, parent=None):
        super().__init__(parent, run=False)  # every run is shown: no run chooser
        self._layers = {}  # strip index -> layers its ticks are for
        self.levels = LOG_GRAD_LEVELS  # widened to what the run set shows, never narrowed (widened_levels)
        layout = vbox(self)
        self.title_label = TitleLabel("Latest step, all layers")
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.strips = RunStrips(self.area, self.plot, self.image, self.colorbar)
        self.apply_theme(self.theme)

    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS
        self.strips.arrange(list(infos), self.theme, layer_label)

    def images(self) -> list:
        return self.strips.images()

    def refresh(self, histories):
        self.shown_history(histories)  # follows a new run set
        shown = list(histories[:MAX_RUNS])
        if len(shown) != self.strips.runs:
            self.strips.arrange([h.info for h in shown], self.theme, layer_label)
        if not shown:
            self.image.clear()
            return
        logs = [None if h.latest is None else log_grad(h.latest.grad_h) for h in shown]
        for log_values in logs:
            if log_values is not None:  # an exploding run's 10¹³ is not all one colour
                self.levels = widened_levels(self.levels, log_values)
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        self.strips.span_timesteps([v.shape[1] for v in logs if v is not None])
        for k, (image, strip, log_values) in enumerate(zip(self.images(), self.strips.plots(), logs)):
            self.strips.note_blank(k, log_values, shown[k])
            if log_values is None:
                image.clear()
                continue
            picture = np.ascontiguousarray(heatmap_ready(log_values, self.levels))
            image.setImage(picture, autoLevels=False, levels=self.levels)
            L, T = picture.shape
            image.setRect(QRectF(-0.5, -0.5, T, L))
            if self._layers.get(k) != L:
                self._layers[k] = L
                strip.getAxis("left").setTicks(layer_ticks(L))

    def clear(self):
        super().clear()
        for image in self.strips.all_images():
            image.clear()

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme, {}, "gradient size (log scale)")
        self.strips.apply_theme(theme, layer_label)
        self.title_label.apply_theme(theme)
