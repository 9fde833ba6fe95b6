"""Layers view: the gradient size of the latest step in every stacked layer at every timestep.

GUI thread only. Reads `RunHistory.latest.grad_h`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (TIMESTEP_LABEL, PlotArea, Selectors, TitleLabel, add_plot, heatmap_ready,
                               log_grad, make_colorbar, set_grid, style_colorbar, style_plot, vbox)
from gui.views.base import View


class LayersView(View):
    view_id = "layers"
    title = "Layers"
    explanation = ("The gradient of the latest training step in every stacked layer (rows, top layer at the "
                   "top) at every timestep (columns). The colour scale is fixed, so a dark region really "
                   "means a vanished gradient.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._infos = []
        self._histories = []
        self._layers = 0
        layout = vbox(self)
        self.title_label = TitleLabel("Latest step, all layers")
        layout.addWidget(self.title_label)
        self.selectors = Selectors(self, layer=False)
        layout.addWidget(self.selectors)
        self.area = PlotArea()
        layout.addWidget(self.area)
        self.plot = add_plot(self.area)
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = make_colorbar(self.theme, self.plot, self.image)
        self.selectors.run_combo.currentIndexChanged.connect(self._run_changed)
        self.apply_theme(self.theme)

    def set_runs(self, infos):
        self._infos = list(infos)
        self.selectors.set_runs(self._infos)

    def refresh(self, histories):
        self._histories = histories
        infos = [h.info for h in histories]
        if infos != self._infos:
            self.set_runs(infos)
        snap = histories[self.selectors.run_index(len(histories))].latest if histories else None
        if snap is None:
            self.image.clear()
            return
        image = np.ascontiguousarray(heatmap_ready(log_grad(snap.grad_h)))
        self.image.setImage(image, autoLevels=False, levels=LOG_GRAD_LEVELS)
        L, T = image.shape
        self.image.setRect(QRectF(-0.5, -0.5, T, L))
        if L != self._layers:
            self._layers = L
            self._set_layer_ticks(L)

    def _set_layer_ticks(self, L):
        # plain numbers keep the axis narrow; the axis label says which end is which
        self.plot.getAxis("left").setTicks([[(float(layer), str(layer + 1)) for layer in range(L)]])

    def _run_changed(self, *_):
        if self._histories:
            self.refresh(self._histories)

    def clear(self):
        self._histories = []
        self.image.clear()

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, {"bottom": TIMESTEP_LABEL, "left": ("layer (1 = input side)", "layer")})
        set_grid(self.plot, theme, show=False)
        self.title_label.apply_theme(theme)
        self.colorbar.setColorMap(pg.colormap.get(theme.colormap))
        style_colorbar(self.colorbar, theme, "gradient size (log scale)")
        self.selectors.apply_theme(theme)
