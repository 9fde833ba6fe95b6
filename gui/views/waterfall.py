"""Waterfall view: the per-timestep gradient size of every recent training step as one scrolling image,
one image per run when runs are compared (stacked, run 1 on top, on one colour scale: see _strips.py).

GUI thread only. Reads `RunHistory.waterfall` (log10 grad_h, one row per step) and `waterfall_steps`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import STEP_LABEL, TitleLabel, heatmap_plot, heatmap_ready, style_heatmap_plot, vbox, widened_levels
from gui.views._strips import MAX_RUNS, RunStrips, readable_for
from gui.views.base import ChooserView

BAR_LABEL = "gradient size (log scale)"


def step_label(strips: int):
    return STEP_LABEL if strips == 1 else ("step",)


class WaterfallView(ChooserView):
    shows_every_run = True  # one strip per run; the chooser picks the layer
    view_id = "waterfall"
    title = "Waterfall"
    explanation = ("Each row is one training step, each column one timestep of the sequence; the colour is "
                   "how large the gradient still is there. Dark on the left means the gradient never "
                   "reaches the early inputs. New steps appear at the top. Compared runs are shown one "
                   "under the other, each named in its corner, on one colour scale.")

    def readable_for(self, runs):
        return readable_for(runs)  # taller for more runs: a strip each

    def __init__(self, parent=None):
        # every run is shown, so there is no run chooser; the layer chooser picks the layer of each
        super().__init__(parent, layer=True, run=False)
        layout = vbox(self)
        self.title_label = TitleLabel()
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.strips = RunStrips(self.area, self.plot, self.image, self.colorbar)
        self.names = self.strips.names
        self.levels = LOG_GRAD_LEVELS
        self._drawn: list = []  # per strip: (ring, rows, newest step, layer, levels) it shows
        self.selectors.layer_spin.valueChanged.connect(self._selection_changed)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS  # a new run set: the colour scale starts from the fixed one again
        self._drawn = []
        self.strips.arrange(list(infos), self.theme, step_label)
        self._update_title()

    def images(self) -> list:
        return self.strips.images()

    def refresh(self, histories):
        self.shown_history(histories)  # follows a new run set
        shown = list(histories[:MAX_RUNS])
        if len(shown) != self.strips.runs:
            self.strips.arrange([h.info for h in shown], self.theme, step_label)
        # what each strip shows: a strip whose rows, layer and colour levels are those it drew last is left
        # alone (a refresh for another view's news, a paused run), and the levels widen from new rows only
        keys = [(id(h.waterfall), len(h.waterfall), float(h.waterfall_steps.last()),
                 self.selectors.layer_index(h.info.config.layers)) for h in shown]
        slices = []
        for h, key, drawn in zip(shown, keys, self._drawn + [None] * (len(shown) - len(self._drawn))):
            if len(h.waterfall) == 0:
                slices.append(None)
                continue
            rows = h.waterfall.view()
            layer = self.selectors.layer_index(rows.shape[1])
            if drawn is None or drawn[:2] != key[:2] or drawn[3] != key[3] or not len(h.waterfall_steps):
                self.levels = widened_levels(self.levels, rows[:, layer, :])
            else:  # the same ring, further on: only the rows since cover new ground
                newer = h.waterfall_steps.view() > drawn[2]
                self.levels = widened_levels(self.levels, rows[newer, layer, :])
            slices.append((rows[:, layer, :], h.waterfall_steps.view()))
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        drawn_keys = [key + (self.levels,) for key in keys]
        for k, (image, data) in enumerate(zip(self.images(), slices)):
            self.strips.note_blank(k, None if data is None else data[0], shown[k])
            if data is None:
                image.clear()
                continue
            if k < len(self._drawn) and self._drawn[k] == drawn_keys[k] and image.image is not None:
                continue
            rows, steps = data
            picture = np.ascontiguousarray(heatmap_ready(rows, self.levels))
            image.setImage(picture, autoLevels=False, levels=self.levels)
            T = picture.shape[1]
            first, last = float(steps[0]), float(steps[-1])
            # one row per step: stretch the rows over the steps they came from (gaps after a reset)
            image.setRect(QRectF(-0.5, first - 0.5, T, max(last - first + 1.0, 1.0)))
        self._drawn = drawn_keys
        self.strips.span_timesteps([data[0].shape[1] for data in slices if data is not None])
        if not histories:
            self.image.clear()

    def clear(self):
        super().clear()
        for image in self.strips.all_images():
            image.clear()
        self._drawn = []
        self.levels = LOG_GRAD_LEVELS
        self.colorbar.setLevels(self.levels)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme, {}, BAR_LABEL)
        self.strips.apply_theme(theme, step_label)
        self.title_label.apply_theme(theme)
        self._update_title()

    # ------------------------------------------------------------------ internals
    def _selection_changed(self, *_):
        """Another layer was chosen; the layer chooser follows run 1's depth."""
        self.selectors.update_layers(self._infos)
        self._update_title()
        super()._selection_changed()

    def _update_title(self):
        text = "Every step's gradient, newest on top"
        if self._infos:
            info = self._infos[0]
            if info.config.layers > 1:
                text += f" (layer {self.selectors.layer_index(info.config.layers) + 1})"
        self.title_label.set_text(text)
