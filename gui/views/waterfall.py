"""Waterfall view: the per-timestep gradient size of every recent training step as one scrolling image.

GUI thread only. Reads `RunHistory.waterfall` (log10 grad_h, one row per step) and `waterfall_steps`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (STEP_LABEL, TIMESTEP_LABEL, TitleLabel, heatmap_plot, heatmap_ready,
                               style_heatmap_plot, vbox)
from gui.views.base import OneRunView

BAR_LABEL = "gradient size (log scale)"


class WaterfallView(OneRunView):
    view_id = "waterfall"
    title = "Waterfall"
    explanation = ("Each row is one training step, each column one timestep of the sequence; the colour is "
                   "how large the gradient still is there. Dark on the left means the gradient never "
                   "reaches the early inputs. New steps appear at the top.")

    def __init__(self, parent=None):
        super().__init__(parent, layer=True)
        layout = vbox(self)
        self.title_label = TitleLabel()
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.selectors.layer_spin.valueChanged.connect(self._selection_changed)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        self._update_title()

    def refresh(self, histories):
        h = self.shown_history(histories)
        if h is None:
            self.image.clear()
            return
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
        super().clear()
        self.image.clear()

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme,
                           {"bottom": TIMESTEP_LABEL, "left": STEP_LABEL}, BAR_LABEL)
        self.title_label.apply_theme(theme)
        self._update_title()

    # ------------------------------------------------------------------ internals
    def _selection_changed(self, *_):
        """Another run or layer was chosen; the layer chooser follows the chosen run's depth."""
        self.selectors.update_layers(self._infos)
        self._update_title()
        super()._selection_changed()

    def _update_title(self):
        text = "Every step's gradient, newest on top"
        if self._infos:
            info = self._infos[self.selectors.run_index(len(self._infos))]
            if info.config.layers > 1:
                text += f" (layer {self.selectors.layer_index(info.config.layers) + 1})"
        self.title_label.set_text(text)
