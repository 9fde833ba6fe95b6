"""Waterfall view: the per-timestep gradient size of every recent training step as one scrolling image,
one image per run when runs are compared (stacked, run 1 on top, on one colour scale).

GUI thread only. Reads `RunHistory.waterfall` (log10 grad_h, one row per step) and `waterfall_steps`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (STEP_LABEL, TIMESTEP_LABEL, TitleLabel, add_plot, brush, font, heatmap_plot,
                               heatmap_ready, place, run_labels, set_axis_label, set_grid, style_heatmap_plot,
                               style_plot, vbox, widened_levels)
from gui.views.base import OneRunView

BAR_LABEL = "gradient size (log scale)"
MAX_RUNS = 4  # compared runs shown one under the other (the compare panel allows four)


class WaterfallView(OneRunView):
    view_id = "waterfall"
    title = "Waterfall"
    explanation = ("Each row is one training step, each column one timestep of the sequence; the colour is "
                   "how large the gradient still is there. Dark on the left means the gradient never "
                   "reaches the early inputs. New steps appear at the top. Compared runs are shown one "
                   "under the other, each named on its left, on one colour scale.")

    def __init__(self, parent=None):
        # every run is shown, so there is no run chooser; the layer chooser picks the layer of each
        super().__init__(parent, layer=True, run=False)
        layout = vbox(self)
        self.title_label = TitleLabel()
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        # runs 2.. in compare mode: a plot and an image each, under run 1's, sharing its timestep axis
        self.more = []
        for row in range(1, MAX_RUNS):
            plot = add_plot(self.area, row=row, col=0)
            plot.setMenuEnabled(False)
            plot.setXLink(self.plot)
            image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(image)
            place(self.area, plot, row, 0, False)
            self.more.append((plot, image))
        # one colour bar beside all of them, setting the levels and colours of every image
        self.colorbar.setImageItem([self.image] + [image for _, image in self.more])
        self.plot.layout.removeItem(self.colorbar)
        self.area.ci.addItem(self.colorbar, row=0, col=1, rowspan=MAX_RUNS)
        # compared runs are named inside each strip's top right corner (the newest step's latest
        # timesteps, which are bright in every lesson): a strip is too short for the name on its axis
        self.names = []
        for plot in [self.plot] + [plot for plot, _ in self.more]:
            name = pg.TextItem("", anchor=(1, 0))
            name.setParentItem(plot.getViewBox())  # in the box's pixels: it stays in the corner
            name.setZValue(20)
            name.hide()
            plot.getViewBox().sigResized.connect(lambda box, name=name: name.setPos(box.width() - 2, 2))
            self.names.append(name)
        self.levels = LOG_GRAD_LEVELS
        self._shown_runs = 1
        self.selectors.layer_spin.valueChanged.connect(self._selection_changed)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS  # a new run set: the colour scale starts from the fixed one again
        self._arrange(list(infos))
        self._update_title()

    def images(self) -> list:
        """The image of each shown run, run 1 first."""
        return [self.image] + [image for _, image in self.more[:self._shown_runs - 1]]

    def refresh(self, histories):
        self.shown_history(histories)  # follows a new run set
        shown = list(histories[:MAX_RUNS])
        if len(shown) != self._shown_runs:
            self._arrange([h.info for h in shown])
        slices = []
        for h in shown:
            rows = h.waterfall.view()
            if len(rows) == 0:
                slices.append(None)
                continue
            layer = self.selectors.layer_index(rows.shape[1])
            slices.append((rows[:, layer, :], h.waterfall_steps.view()))
        for data in slices:
            if data is not None:
                self.levels = widened_levels(self.levels, data[0])
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        for image, data in zip(self.images(), slices):
            if data is None:
                image.clear()
                continue
            rows, steps = data
            picture = np.ascontiguousarray(heatmap_ready(rows, self.levels))
            image.setImage(picture, autoLevels=False, levels=self.levels)
            T = picture.shape[1]
            first, last = float(steps[0]), float(steps[-1])
            # one row per step: stretch the rows over the steps they came from (gaps after a reset)
            image.setRect(QRectF(-0.5, first - 0.5, T, max(last - first + 1.0, 1.0)))
        if not histories:
            self.image.clear()

    def clear(self):
        super().clear()
        for image in [self.image] + [image for _, image in self.more]:
            image.clear()
        self.levels = LOG_GRAD_LEVELS
        self.colorbar.setLevels(self.levels)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme, {}, BAR_LABEL)
        for plot, _ in self.more:
            style_plot(plot, theme, {})
            set_grid(plot, theme, show=False)
        self._label_axes()
        self.title_label.apply_theme(theme)
        self._update_title()

    # ------------------------------------------------------------------ internals
    def _arrange(self, infos):
        """One plot per run (up to MAX_RUNS), the timestep axis under the lowest only."""
        runs = max(1, min(len(infos), MAX_RUNS))
        self._shown_runs = runs
        self._run_names = run_labels(infos) if len(infos) > 1 else []
        for k, (plot, image) in enumerate(self.more, start=1):
            place(self.area, plot, k, 0, k < runs)
            if k >= runs:
                image.clear()
        self._label_axes()

    def _label_axes(self):
        runs = getattr(self, "_shown_runs", 1)
        names = getattr(self, "_run_names", [])
        plots = [self.plot] + [plot for plot, _ in self.more[:runs - 1]]
        for k, plot in enumerate(plots):
            last = k == len(plots) - 1
            plot.showAxis("bottom", last)
            if last:
                set_axis_label(plot.getAxis("bottom"), TIMESTEP_LABEL, self.theme)
            set_axis_label(plot.getAxis("left"), STEP_LABEL if len(plots) == 1 else ("step",), self.theme)
        for k, name in enumerate(getattr(self, "names", [])):
            shown = k < len(names) and k < runs
            name.setVisible(shown)
            if shown:
                name.setText(names[k])
                name.setColor(self.theme.foreground)
                name.fill = brush(self.theme.background, 0.75)
                name.setFont(font(self.theme, -1))
                box = name.parentItem()
                name.setPos(box.width() - 2, 2)

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
