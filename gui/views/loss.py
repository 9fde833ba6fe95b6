"""Loss view: the training loss (log scale) and the task's score over training steps, with the
"learned nothing" baseline and markers where settings changed or a run exploded or diverged.

GUI thread only. Reads `RunHistory.steps/loss/metric/event_marks`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFontMetricsF

from gui.views._common import (STEP_LABEL, TitleLabel, TrainingCurve, brush, finite, font, lesson_run_labels,
                               log_over_linear_plots, pen, place, positive_finite, run_labels, set_axis_label,
                               structure_key, style_plot, tall_enough, vbox)
from gui.views._legends import add_legend, style_legend
from engine.user_data import HELD_OUT_EVERY
from gui.views.base import View

MARKER_TEXT = 32  # characters of an event's detail shown on its marker (all of it in the tooltip)
MAX_MARKERS = 50  # event markers drawn at most: events closer together share one
MARKER_GAP_PX = 16  # ... and so do events less than this many pixels apart
UNKNOWN = ()  # what a pooled marker shows when that is not known (no marker spec is empty)
# a marker label's anchor (its text rotated to read upwards along the line): its end at the point,
# the text on the line's right, or on its left
LABEL_RIGHT, LABEL_LEFT = (1, 0), (1, 1)
LABEL_GAP_PX = 4
CEILING = 100.0  # the automatic range stops at this many times a run's baseline loss (see _build)
METRIC_ROOM_LINES = 14  # the plots' height, in lines of the theme's font, that the loss and the task score need


def metric_labels(name: str) -> tuple:
    """The score axis's label, longest first, down to a word short enough for the small plot's height
    (its full name was hidden there: no form of it fit)."""
    short = ("accuracy", "acc.") if "accuracy" in name else ("score",)
    return tuple(dict.fromkeys((name,) + short))


def shorter_marker_texts(text: str) -> list[str]:
    """A marker's text made shorter, longest first: the run's name without its own "(...)" ("diverged (no clipping
    (before))": "diverged (no clipping)"), then what happened alone ("diverged")."""
    forms = []
    if text.endswith("))") and " (" in text:
        inner = text[:-1].rsplit(" (", 1)[0] + ")"  # drop the name's last "(...)"
        forms.append(inner)
    if " (" in text:
        forms.append(text.split(" (", 1)[0])
    return [f for f in dict.fromkeys(forms) if f != text]


class LossView(View):
    view_id = "loss"
    title = "Loss"
    explanation = ("The training loss over time on a log scale (lower is better). The dashed line, 'learned nothing', is "
                   "the loss of a network that learned nothing; below it, it learned something. Vertical lines mark "
                   "changed settings; red ones mark where a run blew up: exploded (its loss or gradient passed a "
                   "bound, still finite) or diverged (NaN or infinite).")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._key = None
        self._infos = []
        self._event_key = None
        self._marker_specs = []  # what each pooled marker shows: (step, diverged, text, tooltip) or None
        self.loss_curves, self.metric_curves, self.baselines = [], [], []
        self.held_out_curves = []  # per run: the held-out loss of a user's data, or None
        self.baseline_key = pg.PlotDataItem()  # no data: stands for the dashed lines in the legend
        self.markers = []   # (loss-plot line, metric-plot line), pooled: at most MAX_MARKERS
        layout = vbox(self)
        self.title_label = TitleLabel("Is the network learning?")
        layout.addWidget(self.title_label)
        self.area, self.loss_plot, self.metric_plot = log_over_linear_plots()
        layout.addWidget(self.area)
        for plot in (self.loss_plot, self.metric_plot):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.getViewBox().growing_x = True  # training steps: the range moves in jumps (_legends.py)
        self.legend = add_legend(self.loss_plot)
        box = self.loss_plot.getViewBox()
        box.make_room_for(self.legend)  # a run stuck at a high loss stays in view
        for signal in (box.sigResized, box.sigXRangeChanged, self.legend.geometryChanged):
            signal.connect(self._place_labels)
        self._loss_x_label = ""  # STEP_LABEL where the task score below, which carries it, is left out
        self.apply_theme(self.theme)

    def set_runs(self, infos):
        self._build(list(infos))

    def _build(self, infos):
        for curve in self.loss_curves + self.baselines + [c for c in self.held_out_curves if c is not None]:
            self.loss_plot.removeItem(curve)
        self.held_out_curves = []
        for curve in self.metric_curves:
            self.metric_plot.removeItem(curve)
        self.legend.clear()
        self.loss_curves, self.metric_curves, self.baselines = [], [], []
        self._infos = infos
        labels = run_labels(infos) if len(infos) > 1 else ["loss"]
        seen = set()
        for run, info in enumerate(infos):
            curve = TrainingCurve()
            if info.baseline_loss > 0 and np.isfinite(info.baseline_loss):
                # a loss that blew up to 10^60 would flatten every other curve onto one line at the bottom:
                # past CEILING x the baseline a curve runs off the top (its red "diverged" line says the rest)
                curve.ceiling = info.baseline_loss * CEILING
            self.loss_plot.addItem(curve)
            self.legend.addItem(curve, labels[run])
            self.loss_curves.append(curve)
            held_out = None
            if info.config.task == "data":  # a user's data: the loss on its held-out part, every few steps
                held_out = pg.PlotDataItem(symbol="o", symbolSize=5)
                held_out.setToolTip("The loss on the held-out part of your data (not trained on), every "
                                    f"{HELD_OUT_EVERY} steps: below the training loss's level it generalises")
                self.loss_plot.addItem(held_out)
                self.legend.addItem(held_out, "held-out" if len(infos) == 1 else f"{labels[run]}, held-out")
            self.held_out_curves.append(held_out)
            metric = TrainingCurve()
            self.metric_plot.addItem(metric)
            self.metric_curves.append(metric)
            baseline = info.baseline_loss
            if baseline > 0 and np.isfinite(baseline) and round(baseline, 6) not in seen:
                seen.add(round(baseline, 6))
                # named in the legend, not on the line, where it would hide a curve that stays there
                line = pg.InfiniteLine(pos=np.log10(baseline), angle=0, movable=False)
                line.setZValue(-1)  # under the curves: a run stuck at the baseline stays visible
                line.setToolTip(f"Learned nothing ({info.config.task} task): the loss of always giving the best "
                                f"constant answer, {baseline:.4g}")
                self.loss_plot.addItem(line)
                self.baselines.append(line)
        if self.baselines:  # one entry for every such line (each sits by its own task's curve)
            self.legend.addItem(self.baseline_key, "learned nothing")
        self._event_key = None
        names = {i.metric_name for i in infos}
        # the axis is short: "accuracy (|error| < 0.04)" -> "accuracy" (the full name goes in the tooltip)
        self._metric_name = names.pop().split(" (")[0] if len(names) == 1 else "task score"
        self.metric_plot.getAxis("left").setToolTip(", ".join(sorted({i.metric_name for i in infos})))
        self.apply_theme(self.theme)

    def refresh(self, histories):
        key = structure_key(histories)
        if key != self._key:
            self._key = key
            self._build([h.info for h in histories])
        for run, h in enumerate(histories):
            steps = h.steps.view()
            x, y = positive_finite(steps, h.loss.view())
            self.loss_curves[run].setData(x, y)
            x, y = finite(steps, h.metric.view())
            self.metric_curves[run].setData(x, y)
            if self.held_out_curves[run] is not None:
                self.held_out_curves[run].setData(*positive_finite(steps, h.held_out_loss.view()))
        self._update_markers(histories)

    # ------------------------------------------------------------------ event markers
    def _update_markers(self, histories):
        """At most MAX_MARKERS marker lines, from the histories' coalesced events: each line stands for
        the events of one kind within `width` steps, its tooltip says how many and between which steps.
        The lines are pooled and only those whose content changed are touched, so the thousandth live
        change costs what the first did."""
        width = marker_width(histories, self.loss_plot.getViewBox().width())
        key = (tuple((id(h.event_marks), h.event_marks.version) for h in histories), width)
        if key == self._event_key:
            return
        self._event_key = key
        specs = marker_specs(histories, width, lesson_run_labels([h.info.config for h in histories]))
        while len(self.markers) < len(specs):
            # the label reads upwards along the line and hangs from the top: _place_labels puts it
            top = pg.InfiniteLine(angle=90, movable=False, label="", labelOpts={
                "position": 0.96, "rotateAxis": (1, 0), "anchors": [LABEL_RIGHT, LABEL_RIGHT]})
            bottom = pg.InfiniteLine(angle=90, movable=False)
            top.setZValue(15)  # its label (a child: drawn at the line's depth) over the curves, not under a spike
            self.loss_plot.addItem(top)
            self.metric_plot.addItem(bottom)
            self.markers.append((top, bottom))
        # a marker of no known look (new, or after a rebuild or a theme change) is set anew
        self._marker_specs += [UNKNOWN] * (len(self.markers) - len(self._marker_specs))
        for i, (top, bottom) in enumerate(self.markers):
            spec = specs[i] if i < len(specs) else None
            if spec == self._marker_specs[i]:
                continue  # drawn as it is
            self._marker_specs[i] = spec
            if spec is None:
                top.hide()
                bottom.hide()
                continue
            step, diverged, text, tooltip = spec
            if len(text) > MARKER_TEXT:
                text = text[:MARKER_TEXT - 1] + "…"
            color = self.theme.warning if diverged else self.theme.foreground
            for line in (top, bottom):
                line.setPos(step)
                line.setPen(pen(color, self.theme, 0.6, dashed=not diverged, alpha=0.8))
                line.setToolTip(tooltip)
                line.show()
            top.label.setColor(color)
            top.label.setFont(font(self.theme, -2))
            top.label.fill = brush(self.theme.background, 0.75)  # readable where a curve crosses it
            top.full_text = text  # _place_labels shortens it where the plot has no room for all of it
        self._place_labels()

    def _place_labels(self, *_):
        """Hang each marker's label from the top of the loss plot, on the side of its line with the most
        room: below the legend and below the labels already placed where it would run into them, the
        newest event's label first. A label longer than the room left ends in an ellipsis (the line's
        tooltip has it all); with no room for a word it is not shown."""
        box = self.loss_plot.getViewBox()
        width, height = box.width(), box.height()
        if width <= 0 or height <= 0:
            return
        legend = box.legend_rect()
        taken = [legend] if legend is not None and legend.top() < height / 2 else []  # pixels, from the top
        for top, _ in reversed(self.markers):  # events in time order: the newest comes last
            if not top.isVisible():
                continue
            label = top.label
            # measured, not laid out (this runs every frame); the text runs along the line
            shown, metrics, text_box = label.toPlainText(), QFontMetricsF(label.textItem.font()), label.boundingRect()
            margin = text_box.width() - metrics.horizontalAdvance(shown)
            thickness, length = text_box.height(), metrics.horizontalAdvance(top.full_text) + margin
            x = box.mapFromView(pg.Point(top.value(), 0)).x()
            places = []
            for anchor, left in ((LABEL_RIGHT, x), (LABEL_LEFT, x - thickness)):
                if left < 0 or left + thickness > width:
                    continue
                start = LABEL_GAP_PX
                for rect in sorted(taken, key=lambda r: r.top()):
                    if rect.left() < left + thickness and rect.right() > left and rect.top() < start + length \
                            and rect.bottom() > start:
                        start = rect.bottom() + LABEL_GAP_PX
                places.append((height - LABEL_GAP_PX - start, anchor, left, start))
            fits = [p for p in places if p[0] >= length]
            if not places:
                label.setVisible(False)
                continue
            room, anchor, left, start = fits[0] if fits else max(places, key=lambda p: p[0])
            text = top.full_text
            if room < length:
                # a shorter form before an ellipsis: "diverged (no clipping)", then "diverged", not "diverged (no clippin…"
                shorter = [t for t in shorter_marker_texts(text) if metrics.horizontalAdvance(t) + margin <= room]
                text = shorter[0] if shorter else metrics.elidedText(text, Qt.TextElideMode.ElideRight, room - margin)
                if len(text) < 4:  # an ellipsis and a letter or two say nothing
                    label.setVisible(False)
                    continue
                length = metrics.horizontalAdvance(text) + margin
            if text != shown:
                label.setFormat(text)
            if not label.isVisible():
                label.setVisible(True)
            position = max(0.0, 1.0 - start / height)
            if label.anchors[0] != anchor or abs(label.orthoPos - position) > 1e-6:
                label.anchors = [anchor, anchor]
                label.setPosition(position)
            taken.append(QRectF(left, start, thickness, length))

    def clear(self):
        for curve in self.loss_curves + self.metric_curves:
            curve.setData([], [])
        for top, bottom in self.markers:
            top.hide()
            bottom.hide()
        self._event_key = None
        self._marker_specs = []

    def _fit_metric_plot(self):
        """The task score below the loss where the view is tall enough for both (METRIC_ROOM_LINES); in a
        shorter one (a row of the 3x3 grid at 1600x1000: 175-235 px) both lost their axis names and the
        legend, so there the loss keeps the room and names the training-step axis."""
        if not self.isVisible():  # (not laid out yet: its sizes mean nothing; a view grabbed unshown keeps both)
            return
        show = tall_enough(self.area, self.theme, METRIC_ROOM_LINES)
        if show != self.metric_plot.isVisible():
            place(self.area, self.metric_plot, 1, 0, show)
        label = "" if show else STEP_LABEL
        if label != self._loss_x_label:
            self._loss_x_label = label
            self._label_loss_x()

    def _label_loss_x(self):
        axis = self.loss_plot.getAxis("bottom")
        set_axis_label(axis, self._loss_x_label, self.theme)
        axis.whole_numbers = True  # training steps, named or not

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit_metric_plot()

    def apply_theme(self, theme):
        self.theme = theme
        self.area.setBackground(theme.background)
        style_plot(self.loss_plot, theme, {"left": ("loss (log scale)", "loss")})
        self._label_loss_x()
        style_plot(self.metric_plot, theme, {"left": metric_labels(getattr(self, "_metric_name", "task score")),
                                             "bottom": STEP_LABEL})
        self.title_label.apply_theme(theme)
        style_legend(self.legend, theme)
        for run, (loss, metric) in enumerate(zip(self.loss_curves, self.metric_curves)):
            color = theme.run_colors[run % len(theme.run_colors)]
            loss.setPen(pen(color, theme))
            metric.setPen(pen(color, theme, 0.8))
        for run, held_out in enumerate(getattr(self, "held_out_curves", [])):
            if held_out is not None:  # the run's colour, dotted between circled points
                color = theme.run_colors[run % len(theme.run_colors)]
                held_out.setPen(pen(theme.foreground, theme, 0.6, dashed=True))
                held_out.setSymbolBrush(pg.mkBrush(color))
                held_out.setSymbolPen(pen(theme.foreground, theme, 0.6))
        for item in self.baselines + [self.baseline_key]:
            item.setPen(pen(theme.accent, theme, 0.7, dashed=True))
        self._event_key = None  # markers take the new colours at the next refresh
        self._marker_specs = []


# ----------------------------------------------------------------------------- coalescing the markers

def marker_width(histories, pixels: float) -> int:
    """The steps one marker stands for: at least the run's span over MAX_MARKERS, and MARKER_GAP_PX
    worth of steps on a plot `pixels` wide. A power of two, so it changes only when the span doubles
    (the markers do not regroup at every step)."""
    firsts = [h.steps.first() for h in histories if len(h.steps)]
    lasts = [h.steps.last() for h in histories if len(h.steps)]
    for h in histories:
        if h.event_marks.groups:
            firsts.append(h.event_marks.groups[0].first)
            lasts.append(h.event_marks.groups[-1].last)
    if not firsts:
        return 1
    span = max(lasts) - min(firsts) + 1
    need = span / MAX_MARKERS
    if pixels > 0:
        need = max(need, span * MARKER_GAP_PX / pixels)
    width = 1
    while width < need:
        width *= 2
    return width


def marker_specs(histories, width: int, names: list[str] | None = None) -> list[tuple]:
    """(step, diverged, text, tooltip) of each marker to draw, in step order: every run's events of
    one kind whose first step falls in the same `width`-step bin share one; never more than MAX_MARKERS.
    `names`: a lesson's names for its runs, as the legend shows them (else "run 2")."""
    while True:
        bins: dict = {}
        for run, h in enumerate(histories):
            for group in h.event_marks.groups:
                per_run = bins.setdefault((group.first // width, group.kind), {})
                per_run[run] = per_run[run].joined(group) if run in per_run else group
        if len(bins) <= MAX_MARKERS:
            break
        width *= 2  # divergences have bins of their own: more than MAX_MARKERS can still come out
    specs = [marker_spec(kind, per_run, len(histories), names) for (_, kind), per_run in bins.items()]
    return sorted(specs, key=lambda spec: (spec[0], spec[1]))


def _between(first: int, last: int) -> str:
    return f"at step {first}" if first == last else f"between steps {first} and {last}"


def _changes(group) -> str:
    """'12 changes between steps 300 and 340 (2 rebuilt the network); the last: lr 0.01 -> 0.02'"""
    rebuilt = f" ({group.rebuilt} rebuilt the network)" if group.rebuilt else ""
    return f"{group.count} changes {_between(group.first, group.last)}{rebuilt}; the last: {group.detail}"


def marker_spec(kind: str, per_run: dict, n_runs: int, names: list[str] | None = None) -> tuple:
    """One marker's (step, diverged, text, tooltip) for the event groups of each run in `per_run`,
    whose counts it states as they are (a change made to every compared run is one change per run).
    `names`: the runs' names as the legend shows them (a lesson's), else they are "run 1", "run 2"."""
    compare = n_runs > 1
    runs = sorted(per_run)
    step = min(g.first for g in per_run.values())
    if names is not None and len(names) == n_runs:
        named = f" ({', '.join(names[r] for r in runs)})"
    else:
        named = f" (run {', '.join(str(r + 1) for r in runs)})"
        names = [f"run {r + 1}" for r in range(n_runs)]
    if kind in ("diverged", "exploded"):  # warnings: a solid line in the warning colour
        lines = []
        for r in runs:
            g = per_run[r]
            lines.append((f"{names[r]}, " if compare else "") + (
                f"step {g.first}: {kind}: {g.detail}" if g.count == 1
                else f"{kind} {g.count} times {_between(g.first, g.last)}; the last: {g.detail}"))
        return step, True, kind + (named if compare else ""), "\n".join(lines)
    groups = set(per_run.values())
    if len(groups) == 1:  # one run, or the same changes in each (a setting changed for every run)
        (g,) = groups
        run_note = named if compare and len(runs) < n_runs else ""
        if g.count == 1:
            kind_word = "rebuilt" if g.rebuilt else "changed"
            return step, False, g.detail, f"step {g.first}: {kind_word}: {g.detail}{run_note}"
        return step, False, f"{g.count} changes", _changes(g) + run_note
    total = sum(g.count for g in per_run.values())
    lines = [f"{total} changes {_between(step, max(g.last for g in per_run.values()))} over the runs:"]
    for r in runs:
        g = per_run[r]
        lines.append(f"{names[r]}: " + (f"step {g.first}: {g.detail}" if g.count == 1 else _changes(g)))
    return step, False, f"{total} changes", "\n".join(lines)
