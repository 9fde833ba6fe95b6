"""Waterfall view: the per-timestep gradient size of every recent training step as one scrolling image.

GUI thread only. Reads `RunHistory.waterfall` (log10 grad_h, one row per step) and `waterfall_steps`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (STEP_LABEL, TIMESTEP_LABEL, PlotArea, Selectors, TitleLabel,
                               add_plot, heatmap_ready, make_colorbar, set_grid, style_colorbar, style_plot, vbox)
from gui.views.base import View

BAR_LABEL = "gradient size (log scale)"


class WaterfallView(View):
    view_id = "waterfall"
    title = "Waterfall"
    explanation = ("Each row is one training step, each column one timestep of the sequence; the colour is "
                   "how large the gradient still is there. Dark on the left means the gradient never "
                   "reaches the early inputs. New steps appear at the top.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._histories = []
        self._infos = []
        layout = vbox(self)
        self.title_label = TitleLabel()
        layout.addWidget(self.title_label)
        self.selectors = Selectors(self)
        layout.addWidget(self.selectors)
        self.area = PlotArea()
        layout.addWidget(self.area)
        self.plot = add_plot(self.area)
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = make_colorbar(self.theme, self.plot, self.image)
        self.selectors.run_combo.currentIndexChanged.connect(self._selection_changed)
        self.selectors.layer_spin.valueChanged.connect(self._selection_changed)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        self._infos = list(infos)
        self.selectors.set_runs(self._infos)
        self._update_title()

    def refresh(self, histories):
        self._histories = histories
        infos = [h.info for h in histories]
        if infos != self._infos:
            self.set_runs(infos)
        if not histories:
            self.image.clear()
            return
        h = histories[self.selectors.run_index(len(histories))]
        rows = h.waterfall.view()
        if len(rows) == 0:
            self.image.clear()
            return
        layer = self.selectors.layer_index(rows.shape[1])
        steps = h.waterfall_steps.view()
        image = np.ascontiguousarray(heatmap_ready(rows[:, layer, :]))
        self.image.setImage(image, autoLevels=False, levels=LOG_GRAD_LEVELS)
        T = image.shape[1]
        first, last = float(steps[0]), float(steps[-1])
        # one row per step: stretch the rows over the steps they came from (gaps after a reset)
        self.image.setRect(QRectF(-0.5, first - 0.5, T, max(last - first + 1.0, 1.0)))

    def clear(self):
        self._histories = []
        self.image.clear()

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, {"bottom": TIMESTEP_LABEL, "left": STEP_LABEL})
        set_grid(self.plot, theme, show=False)
        self.colorbar.setColorMap(pg.colormap.get(theme.colormap))
        style_colorbar(self.colorbar, theme, BAR_LABEL)
        self.selectors.apply_theme(theme)
        self.title_label.apply_theme(theme)
        self._update_title()

    # ------------------------------------------------------------------ internals
    def _selection_changed(self, *_):
        self.selectors.update_layers(self._infos)
        self._update_title()
        if self._histories:
            self.refresh(self._histories)

    def _update_title(self):
        text = "Every step's gradient, newest on top"
        if self._infos:
            info = self._infos[self.selectors.run_index(len(self._infos))]
            if info.config.layers > 1:
                text += f" (layer {self.selectors.layer_index(info.config.layers) + 1})"
        self.title_label.set_text(text)
