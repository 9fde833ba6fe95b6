"""Legends for the views' plots: compact, inside a corner, shrinking to fit, and moved (or given
room) so that they never cover the curves they name.

GUI thread only. Nothing here knows about runs; the views place their legends through these.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from gui.theme import LEGEND_BORDER_LIGHT


def add_legend(plot: pg.PlotItem, offset=(-6, 6), room=None) -> pg.LegendItem:
    """A compact legend inside the plot's corner. It shrinks (down to 55%, its text to 6 pt at least: smallest_scale)
    to stay within the plot when the view is small or the fonts large, and hides when even that would not fit. `room`: the
    (width, height) shares of the data box it must keep within, where only part of the plot is free of
    curves; a view may change `legend.room` later and call `legend.fit()`.

    The room across is judged from the whole plot's width, which only the window's layout changes,
    not from the data box's: that narrows as the y axis's tick labels widen, and with the legend room the
    y range keeps (LegendRoomViewBox) a rescaled legend could change the range, the range the tick
    labels, the labels the box's width and the width the legend's scale again, round and round: a
    repaint loop that starved every timer (seen in small lecture windows)."""
    legend = plot.addLegend(offset=offset, horSpacing=4, verSpacing=-4)
    legend.layout.setContentsMargins(3, 1, 3, 1)
    busy = []

    def fit(*_):
        room_share = legend.room
        if busy or not shiboken6.isValid(plot):  # a view that rebuilt its plots may keep the legend
            return
        busy.append(True)
        try:
            snug(legend)  # its size from its entries alone, whatever it was before
            rect = legend.boundingRect()
            if rect.width() <= 1 or rect.height() <= 1:
                return
            # across: the data box takes about 80% of the plot's width; down: the data box's own height
            # (only the title and the bottom axis, which the y range leaves alone, take from it), of
            # which a LegendRoomViewBox keeps the data out of MAX_SHARE: a taller legend would cover them
            box = plot.getViewBox()
            if room_share is None:
                room_share = (0.9, box.MAX_SHARE if getattr(box, "legend", None) is legend else 0.8)
            ox, oy = (abs(v) for v in legend.opts["offset"])
            across = plot.width() * 0.8 * room_share[0] - ox - LegendRoomViewBox.GAP_PX
            down = box.height() * room_share[1] - oy - LegendRoomViewBox.GAP_PX
            scale = min(1.0, across / rect.width(), down / rect.height())
            smallest = smallest_scale(legend)
            if len(legend.items) >= 2:
                # in two columns where one column would shrink it below TWO_COLUMNS_BELOW (lecture
                # fonts, four runs in a short plot) and two read larger; else one, which covers less
                # of the plot's width (a diverging curve leaves through the top)
                set_columns(legend, 1)
                one = legend.boundingRect()
                one_scale = min(1.0, across / one.width(), down / one.height())
                scale = one_scale
                if one_scale < max(TWO_COLUMNS_BELOW, smallest):
                    set_columns(legend, 2)
                    two = legend.boundingRect()
                    two_scale = min(1.0, across / two.width(), down / two.height())
                    if two_scale > one_scale + 0.1:
                        scale = two_scale
                    else:
                        set_columns(legend, 1)
            legend.setVisible(scale >= smallest and legend.layout.count() > 0)
            scale = max(scale, smallest)
            if abs(legend.scale() - scale) > 0.01:
                legend.setScale(scale)
                legend.setOffset(legend.opts["offset"])  # (its `offset` attribute is the first one, never updated)
        finally:
            busy.clear()

    plot.geometryChanged.connect(fit)
    plot.getViewBox().sigResized.connect(fit)  # the title or the bottom axis came or went
    legend.geometryChanged.connect(fit)
    legend.fit = fit
    legend.room = room
    return legend


@contextlib.contextmanager
def legends_held(widget):
    """The legends in `widget`'s plots laid out once, as the block ends, not at each entry added or removed in it:
    pyqtgraph lays a legend out again at every addItem and removeItem, and each layout fits it (`fit`) again, a
    quarter of a view's set_runs (a compare lesson's profile: its legend cleared and filled entry by entry)."""
    areas = [widget] if isinstance(widget, pg.GraphicsView) else []
    legends = [item for plots in areas + widget.findChildren(pg.GraphicsView) for item in plots.items()
               if isinstance(item, pg.LegendItem)]
    for legend in legends:
        legend.updateSize = _not_now
    try:
        yield
    finally:
        for legend in legends:
            del legend.updateSize  # the class's own again
            if shiboken6.isValid(legend):
                legend.updateSize()


def _not_now():
    pass


FEW_LAYERS = 3  # up to this many stacked layers, each has its own legend entry


def add_layer_entries(legend: pg.LegendItem, items: list, name, between: pg.PlotDataItem, suffix="") -> None:
    """Legend entries for one curve per stacked layer (items[k]: layer k, 0 = input side; name(k) its
    label). A few layers get one entry each. More get three: the input-side layer, `between` (a key
    with no data, which the caller styles in the middle colour of Theme.layer_color's ramp) named
    "layers 2-(L-1)" + suffix, and the top layer; the ramp's colours show the order in between."""
    layers = len(items)
    if layers <= FEW_LAYERS:
        for layer, item in enumerate(items):
            legend.addItem(item, name(layer))
        return
    legend.addItem(items[0], name(0))
    legend.addItem(between, f"layers 2-{layers - 1}{suffix}")
    legend.addItem(items[-1], name(layers - 1))


class LegendRoomViewBox(pg.ViewBox):
    """A ViewBox whose automatic y range keeps the data below the legend in its top corner, so the
    legend hides no curve and no marker at the data's maximum. pyqtgraph pads both ends of a range
    alike (there is no padding for one side only), so the data's top is raised here, before that
    padding, by the share of the height that the legend takes. Costs that share of the plot's
    height even where the legend would have covered nothing; with no legend shown it costs nothing."""

    MAX_SHARE = 0.5   # the data keep at least half the height; a taller legend may cover some of them
    GAP_PX = 4        # between the legend's lower edge and the highest point

    # A range that moves at every frame redraws the axes' ticks and labels and the grid at every frame
    # (about half of a curve plot's frame). So the automatic range is sticky: it keeps its bounds while
    # the data stay inside them and fill at least STICKY_FILL of them, and when it must move it takes
    # HEADROOM more than the data on each side (x: on the right only, where training steps grow, when
    # `growing_x`), so that it moves again only after the data have travelled that far.
    STICKY_FILL = 0.75
    HEADROOM = 0.04
    GROWING_X_HEADROOM = 0.08

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.legend = None
        self.room_always = True   # False: only once `room_needed` (move_legend_off_the_curves found no free corner)
        self.room_needed = False
        self.growing_x = False    # x is training steps: headroom on the right (the loss, the weight gradients)
        self._kept = [None, None]

    def _sticky(self, axis: int, bounds):
        if bounds is None or not (np.isfinite(bounds[0]) and np.isfinite(bounds[1])):
            self._kept[axis] = None
            return bounds
        lo, hi = float(bounds[0]), float(bounds[1])
        kept = self._kept[axis]
        if kept is not None and kept[0] <= lo and hi <= kept[1] and hi - lo >= self.STICKY_FILL * (kept[1] - kept[0]):
            return list(kept)
        span = hi - lo
        if axis == 0:  # a fixed x (timesteps) stays exactly the data's; training steps get room to grow
            kept = (lo, hi + self.GROWING_X_HEADROOM * span) if self.growing_x else (lo, hi)
        else:
            kept = (lo - self.HEADROOM * span, hi + self.HEADROOM * span)
        self._kept[axis] = kept
        return list(kept)

    def make_room_for(self, legend: pg.LegendItem, when_needed: bool = False):
        """Keep the data below `legend`: always, or (`when_needed`) only once move_legend_off_the_curves
        finds every corner crowded; `forget_room` (a new run set) goes back to corners only."""
        self.legend = legend
        self.room_always = not when_needed
        # entries come and go (the clipping entries), and add_legend's fit rescales or hides it
        legend.geometryChanged.connect(self.updateAutoRange)
        legend.visibleChanged.connect(self.updateAutoRange)

    def forget_room(self):
        if self.room_needed:
            self.room_needed = False
            self.updateAutoRange()

    def legend_rect(self):
        """Where the shown legend sits, in this box's pixels (QRectF), or None."""
        legend = self.legend
        if legend is None or not legend.isVisible() or not legend.items:
            return None
        return legend.mapRectToParent(legend.boundingRect())

    def legend_share(self) -> float:
        """The share of the height, from the top, that the legend covers (0 without one)."""
        rect, height = self.legend_rect(), self.height()
        if rect is None or height <= 0 or not (self.room_always or self.room_needed):
            return 0.0
        if rect.top() > height / 2:
            return 0.0  # a legend in a bottom corner: the top is free
        return min(max(rect.bottom() + self.GAP_PX, 0.0) / height, self.MAX_SHARE)

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):
        bounds = super().childrenBounds(frac=frac, orthoRange=orthoRange, items=items)
        x = bounds[0]
        if x is not None and x[1] == x[0]:
            # one training step: a step either side, not pyqtgraph's guess (-150..150 at step 1)
            bounds[0] = [x[0] - 1, x[1] + 1]
        whole = frac is None or all(f is None or f == 1.0 for f in frac)  # (pyqtgraph's own update passes [1.0, 1.0])
        if items is None and whole and orthoRange == (None, None):  # the automatic range, not a query
            bounds = [self._sticky(axis, b) for axis, b in enumerate(bounds)]
        share = self.legend_share()
        y = bounds[1]
        if share > 0 and y is not None and y[1] > y[0]:
            # data spanning y[0]..y[1] fill the lower (1 - share) of the height
            bounds[1] = [y[0], y[1] + (y[1] - y[0]) * share / (1 - share)]
        return bounds


def keep_legend_off_the_curve(legend: pg.LegendItem, values) -> None:
    """A per-timestep curve that rises to the right (a vanishing gradient: largest at the last
    timestep, so in the top-right corner) gets its legend in the bottom-right corner, which such a
    curve leaves empty; one that falls (exploding) keeps it top right. `values`: the curve, or None.
    The first guess, before the plot has a size; see move_legend_off_the_curves."""
    if values is None or len(values) < 2:
        return
    first, last = float(values[0]), float(values[-1])
    if not (np.isfinite(first) and np.isfinite(last)):
        return
    x, y = legend.opts["offset"]
    wanted = (x, -abs(y)) if last >= first else (x, abs(y))  # pyqtgraph: a negative y offset is the bottom
    if tuple(legend.opts["offset"]) != wanted:
        legend.setOffset(wanted)


def legend_cover(legend: pg.LegendItem, box: pg.ViewBox, offset, items, margin: float = 0.0) -> float:
    """How many points of `items` the legend would cover with this offset, or come within `margin`
    pixels of. An item is a PlotDataItem, or (PlotDataItem, weight) for one that matters less."""
    (x0, x1), (y0, y1) = box.viewRange()
    width, height = box.width(), box.height()
    rect = legend.boundingRect()
    w, h = rect.width() * legend.scale(), rect.height() * legend.scale()
    ox, oy = offset
    left = (ox if ox >= 0 else width + ox - w) - margin  # pyqtgraph: a negative offset counts from the
    top = (oy if oy >= 0 else height + oy - h) - margin  # right or the bottom
    w, h = w + 2 * margin, h + 2 * margin
    covered = 0.0
    for entry in items:
        item, weight = entry if isinstance(entry, tuple) else (entry, 1.0)
        x, y = item.getData()  # the displayed data: log10 on a log axis, as the view range is
        if x is None or not len(x) or not item.isVisible():
            continue
        px = (np.asarray(x, dtype=np.float64) - x0) * (width / (x1 - x0))
        py = (y1 - np.asarray(y, dtype=np.float64)) * (height / (y1 - y0))
        if 1 < len(px) < width:  # few points: the lines between them count too, a point about every pixel
            at = np.linspace(0, len(px) - 1, int(width))
            px, py = np.interp(at, np.arange(len(px)), px), np.interp(at, np.arange(len(py)), py)
        covered += weight * int(np.count_nonzero((px >= left) & (px <= left + w) & (py >= top) & (py <= top + h)))
    return covered


LEGEND_MARGIN_PX = 6  # a corner the legend moves to must be this clear of the curves


def move_legend_off_the_curves(legend: pg.LegendItem, items, fallback=None) -> None:
    """Put the legend in the corner of the plot where it covers the fewest points of `items`: a
    vanishing gradient leaves the bottom right empty, an exploding one the top right, but stacked
    layers' curves, which start at different heights, can fill both, and then a left corner is free.
    Right corners first; the legend moves only to a corner that covers fewer points even when grown by
    a margin, so with the same curves it never moves back, and it does not jump to and fro as they move. `fallback`: a curve for keep_legend_off_the_curve,
    used while the plot has no size yet."""
    box = legend.parentItem()
    if box is None or box.width() <= 1 or box.height() <= 1 or not legend.isVisible():
        keep_legend_off_the_curve(legend, fallback)
        return
    box.updateAutoRange()  # the range the new data will get (pyqtgraph would update it when painting next)
    (x0, x1), (y0, y1) = box.viewRange()
    if not (x1 > x0 and y1 > y0):
        return
    ox, oy = (abs(v) for v in legend.opts["offset"])
    current = tuple(legend.opts["offset"])
    corners = [current] + [c for c in ((-ox, -oy), (-ox, oy), (ox, oy), (ox, -oy)) if c != current]
    # the corner it is in counts the points near it too (a curve passing just under the legend crowds it: it moves
    # to a corner that is clear by the margin, if there is one)
    now = legend_cover(legend, box, current, items, margin=LEGEND_MARGIN_PX)
    if now == 0:
        return
    counts = [legend_cover(legend, box, corner, items, margin=LEGEND_MARGIN_PX) for corner in corners[1:]]
    best = min(range(len(counts)), key=lambda k: counts[k])
    if counts[best] < now:
        legend.setOffset(corners[1 + best])
        now = legend_cover(legend, box, corners[1 + best], items)
    if now > 0 and isinstance(box, LegendRoomViewBox) and box.legend is legend and not box.room_needed:
        # curves in every corner (runs that shrink, keep and grow): the legend goes top right and the
        # y range makes room for it above the data, as the loss view's always does
        box.room_needed = True
        legend.setOffset((-ox, oy))
        box.updateAutoRange()


TWO_COLUMNS_BELOW = 0.62  # a legend in one column shrunk below this scale tries two
SMALLEST_SCALE = 0.55     # a legend shrinks to this share of its size at most, and its text to READABLE_PT:
READABLE_PT = 6.0         # below, it hides (in normal mode, 8 pt legends went down to 4.4 pt, 6 px, unreadable,
#                           over the curves they named; the status bar names each run in its colour all the same);
#                           in lecture mode READABLE_PT times its scale (at 1280x720 a projected 6 pt beside 12 pt text
#                           was unreadable): readable_pt


def readable_pt(points: float) -> float:
    """The smallest text a legend whose full size is `points` (the theme's font less 2) may shrink to."""
    return READABLE_PT * max(1.0, (points + 2) / 10.0)


def smallest_scale(legend: pg.LegendItem) -> float:
    """The smallest scale at which `legend` still reads: SMALLEST_SCALE, or its text at readable_pt."""
    size = str(legend.opts.get("labelTextSize") or "")
    points = float(size[:-2]) if size.endswith("pt") else None
    return max(SMALLEST_SCALE, readable_pt(points) / points) if points else SMALLEST_SCALE


def set_columns(legend: pg.LegendItem, columns: int) -> None:
    """The legend's entries in `columns` columns, sized to them (see snug)."""
    if columns != legend.columnCount:
        legend.setColumnCount(columns)
        snug(legend)


def snug(legend: pg.LegendItem) -> None:
    """The legend as small as its entries: pyqtgraph sizes a legend from its entries' current sizes,
    which its layout had stretched to fill the legend's earlier size, so a smaller font (leaving
    lecture mode) kept the lecture-sized box, and a legend's size depended on what it had been."""
    if not legend.items:
        return
    legend.layout.invalidate()
    hint = legend.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
    if abs(legend.width() - hint.width()) > 0.5 or abs(legend.height() - hint.height()) > 0.5:
        legend.setGeometry(0, 0, hint.width(), hint.height())  # as pyqtgraph's updateSize; the anchor puts it back


def style_legend(legend: pg.LegendItem, theme):
    legend.setLabelTextColor(theme.foreground)
    legend.setLabelTextSize(f"{max(6, theme.font_pt - 2)}pt")
    for _, label in legend.items:  # pyqtgraph stores the new colour and size but draws them only
        label.setText(label.text)   # when a label's text is set: without this they kept the old theme's
    snug(legend)
    bg = QColor(theme.background)
    bg.setAlphaF(0.8)
    legend.setBrush(pg.mkBrush(bg))
    legend.setPen(pg.mkPen(QColor(theme.foreground).darker(150) if theme.name == "dark" else LEGEND_BORDER_LIGHT))
