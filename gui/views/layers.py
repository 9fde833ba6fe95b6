"""Layers view: the gradient size of the latest step in every stacked layer at every timestep.

GUI thread only. Reads `RunHistory.latest.grad_h`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (TIMESTEP_LABEL, TitleLabel, heatmap_plot, heatmap_ready, log_grad,
                               style_heatmap_plot, vbox, widened_levels)
from gui.views.base import OneRunView


class LayersView(OneRunView):
    view_id = "layers"
    title = "Layers"
    explanation = ("The gradient of the latest training step in every stacked layer (rows, top layer at the "
                   "top) at every timestep (columns). The colour scale is fixed, so a dark region really "
                   "means a vanished gradient.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layers = 0
        self.levels = LOG_GRAD_LEVELS  # widened to what the run set shows, never narrowed (widened_levels)
        layout = vbox(self)
        self.title_label = TitleLabel("Latest step, all layers")
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.apply_theme(self.theme)

    def refresh(self, histories):
        snap = self.shown_snapshot(histories)
        if snap is None:
            self.image.clear()
            return
        log_values = log_grad(snap.grad_h)
        self.levels = widened_levels(self.levels, log_values)  # an exploding run's 10¹³ is not all one colour
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        image = np.ascontiguousarray(heatmap_ready(log_values, self.levels))
        self.image.setImage(image, autoLevels=False, levels=self.levels)
        L, T = image.shape
        self.image.setRect(QRectF(-0.5, -0.5, T, L))
        if L != self._layers:
            self._layers = L
            self._set_layer_ticks(L)

    def _set_layer_ticks(self, L):
        # plain numbers keep the axis narrow; the axis label says which end is which
        self.plot.getAxis("left").setTicks([[(float(layer), str(layer + 1)) for layer in range(L)]])

    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS

    def clear(self):
        super().clear()
        self.image.clear()

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme,
                           {"bottom": TIMESTEP_LABEL, "left": ("layer (1 = input side)", "layer")},
                           "gradient size (log scale)")
        self.title_label.apply_theme(theme)
