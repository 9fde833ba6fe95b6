"""One heatmap strip per compared run, one under the other, on one colour bar: for the views that
show a run as an image (waterfall, layers), so that a compare lesson pointing at them shows every run
it compares, with no run chooser.

GUI thread only. The view keeps its own first plot, image and colour bar (`heatmap_plot`); `RunStrips`
adds the plots of runs 2.. under it, names each strip in its top right corner, and arranges them.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.schema import MAX_RUNS  # compared runs shown one under the other
from gui.views._common import (TIMESTEP_LABEL, add_plot, brush, font, place, run_labels, set_axis_label, set_grid,
                               style_plot)
from gui.views._notes import BoxNote, diverged_words

STRIP_PX = 30           # a strip's smallest readable height: its colours, and the run's name in its corner
STRIPS_CHROME_PX = 140  # the rest of the frame: its title bar, the view's title, the timestep axis under the strips


def readable_for(runs: int) -> tuple[int, int]:
    """The smallest readable frame of a view with a strip per run: at 1600x1000 the factor-per-step lesson's
    three runs were 25 px strips in a 190 px frame, its Waterfall and Layers a stack of name tags."""
    return 280, max(190, STRIPS_CHROME_PX + STRIP_PX * max(1, min(runs, MAX_RUNS)))



class RunStrips:
    def __init__(self, area, plot: pg.PlotItem, image: pg.ImageItem, colorbar: pg.ColorBarItem):
        self.area, self.plot, self.image, self.colorbar = area, plot, image, colorbar
        self.more = []   # (plot, image) of runs 2.., sharing run 1's timestep axis
        for row in range(1, MAX_RUNS):
            more_plot = add_plot(area, row=row, col=0)
            more_plot.setMenuEnabled(False)
            more_plot.setXLink(plot)
            more_image = pg.ImageItem(axisOrder="row-major")
            more_plot.addItem(more_image)
            place(area, more_plot, row, 0, False)
            self.more.append((more_plot, more_image))
        # one colour bar beside all of them, setting the levels and colours of every image
        colorbar.setImageItem([image] + [i for _, i in self.more])
        plot.layout.removeItem(colorbar)
        area.ci.addItem(colorbar, row=0, col=1, rowspan=MAX_RUNS)
        # each strip named inside its top right corner (the latest timesteps, bright in every lesson):
        # a strip is too short for a name along its axis
        self.names = []
        for strip in self.plots(MAX_RUNS):
            name = pg.TextItem("", anchor=(1, 0))
            name.setParentItem(strip.getViewBox())  # in the box's pixels: it stays in the corner
            name.setZValue(20)
            name.hide()
            strip.getViewBox().sigResized.connect(lambda box, k=len(self.names): self._fit_name(k))
            self.names.append(name)
        # a strip's word where its image shows nothing (a run that diverged: its gradient is NaN, left transparent)
        self.notes = [BoxNote(strip.getViewBox()) for strip in self.plots(MAX_RUNS)]
        self.runs = 1
        self._names: list[str] = []
        self._widest = 0  # timesteps of the longest run shown: run 1's plot spans them (span_timesteps)

    def plots(self, runs=None) -> list:
        return [self.plot] + [p for p, _ in self.more[:(self.runs if runs is None else runs) - 1]]

    def images(self) -> list:
        """The image of each shown run, run 1 first."""
        return [self.image] + [i for _, i in self.more[:self.runs - 1]]

    def all_images(self) -> list:
        return [self.image] + [i for _, i in self.more]

    def arrange(self, infos, theme, left_label):
        """One strip per run (up to MAX_RUNS), the timestep axis under the lowest only."""
        self.runs = max(1, min(len(infos), MAX_RUNS))
        self._names = run_labels(infos) if len(infos) > 1 else []
        for k, (more_plot, more_image) in enumerate(self.more, start=1):
            place(self.area, more_plot, k, 0, k < self.runs)
            if k >= self.runs:
                more_image.clear()
        for note in self.notes[self.runs:]:
            note.say(())
        self.label(theme, left_label)

    def label(self, theme, left_label):
        plots = self.plots()
        for k, strip in enumerate(plots):
            last = k == len(plots) - 1
            strip.showAxis("bottom", last)
            if last:
                set_axis_label(strip.getAxis("bottom"), TIMESTEP_LABEL, theme)
            set_axis_label(strip.getAxis("left"), left_label(len(plots)), theme)
        for note in self.notes:
            note.apply_theme(theme)
        for k, name in enumerate(self.names):
            shown = k < len(self._names) and k < self.runs
            name.setVisible(shown)
            if shown:
                name.setColor(theme.foreground)
                name.fill = brush(theme.background, 0.75)
                name.setFont(font(theme, -1))
                self._fit_name(k)

    def span_timesteps(self, widths) -> None:
        """Run 1's plot, whose timestep axis the other strips share, spans the longest run's `widths`
        (timesteps per strip). By itself it fitted run 1's image, so a longer run under it showed only
        its first timesteps (slow-convergence's 50 steps under 5: timesteps 0-4 of 50)."""
        widest = max((w for w in widths if w), default=0)
        if widest and widest != self._widest:
            self._widest = widest
            self.plot.setXRange(-0.5, widest - 0.5)

    NAME_SHARE = 0.6   # of a strip's width its name may cover; past that, without its "(...)", its first part, "run 2", "2"
    WIDE_SHARE = 0.85  # ... but a name's shortest form may cover this much before it gives way to "run 2"

    def _fit_name(self, k: int):
        name = self.names[k]
        if k >= len(self._names):
            return
        box = name.parentItem()
        whole = self._names[k]
        short = whole.split(" (")[0]  # "tanh RNN (before)": "tanh RNN"; "LRU, ring at 0.99": "LRU" (not "run 3")
        shortest = short.split(", ")[0]
        # the name in up to NAME_SHARE of the strip; its shortest form in up to WIDE_SHARE before "run 1", which no
        # legend says (fix-clipping's "clipped by norm" at 1600x1000)
        tries = [(whole, self.NAME_SHARE), (short, self.NAME_SHARE), (shortest, self.NAME_SHARE),
                 (shortest, self.WIDE_SHARE), (f"run {k + 1}", self.NAME_SHARE), (f"{k + 1}", self.NAME_SHARE)]
        for text, share in tries:
            if name.textItem.toPlainText() != text:
                name.setText(text)
            if name.textItem.boundingRect().width() <= box.width() * share:
                break
        name.setPos(box.width() - 2, 2)

    def note_blank(self, k: int, values, history) -> None:
        """Strip k's note: where none of its `values` (log gradients; None: no step yet) is a number, what the empty
        strip means (a diverged run's NaN gradient is left transparent, and read as a missing picture)."""
        if values is None or np.isfinite(values).any() or not np.size(values):
            self.notes[k].say(())
        else:
            self.notes[k].say(diverged_words(getattr(history, "diverged_at_step", None)))

    def apply_theme(self, theme, left_label):
        for more_plot, _ in self.more:
            style_plot(more_plot, theme, {})
            set_grid(more_plot, theme, show=False)
        self.label(theme, left_label)
