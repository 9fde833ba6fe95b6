"""Answers view: how strongly each answer's loss depends on each earlier input, as an answer x input map
(a lower triangle for a causal model) and, for the chosen answer, as a curve over the inputs.

GUI thread only. Reads `RunHistory.detail` (engine.detail.StepDetail, asked for through `detail_wish`
while the view is on screen): `connectivity` for the batch, `sequence_connectivity` for one sequence.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QLabel, QSpinBox

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (TIMESTEP_LABEL, LogAxis, TitleLabel, add_plot, font, heatmap_plot, heatmap_ready, log_grad, pen,
                               positive_finite, set_axis_label, set_font, style_heatmap_plot, style_plot, vbox,
                               widened_levels)
from gui.views._zoom import WAITING, control_row, detail_for, label_ticks, missing_text, style_row
from gui.views.attribution import influence_title
from gui.views.base import ChooserView

BAR_LABEL = "dependence (log scale)"


def answer_title(row: np.ndarray, answer_step: int) -> str:
    """Plain words for the chosen answer's dependence on the inputs up to its own timestep."""
    reached = np.asarray(row[:answer_step + 1], dtype=np.float64)
    if reached.size and not np.any(reached > 0):  # a sequence answered perfectly: its loss term has no gradient
        return f"Answer at timestep {answer_step}: no input moves its loss (its gradient is 0)"
    words = influence_title(reached).replace("Influence of each input on the loss", "each input's influence")
    return f"Answer at timestep {answer_step}: {words[0].lower() + words[1:]}"


class AnswersView(ChooserView):
    view_id = "answers"
    readable_size = (280, 280)  # a title of two lines, the answer chooser, and its two plots 50 px each
    title = "Answers"
    shown_at_start = False
    explanation = ("How strongly each answer the network gives depends on each earlier input: row k is the "
                   "gradient of the loss at the k-th answer with respect to every input timestep (norm over the "
                   "batch, or one sequence alone; log scale). A causal network draws a lower triangle; a fading "
                   "gradient darkens it towards the left. The curve below is the chosen answer's row: choose it "
                   "with the answer box or by clicking a row of the map. Measured on the step shown, at most a few "
                   "times a second.")

    def __init__(self, parent=None):
        super().__init__(parent, layer=False, run=True)
        self.levels = LOG_GRAD_LEVELS
        layout = vbox(self)
        self.title_label = TitleLabel("Which inputs each answer depends on")
        layout.addWidget(self.title_label)
        self.answer_label = QLabel("answer:")
        self.answer_spin = QSpinBox()
        self.answer_spin.setRange(0, 1)
        self.answer_spin.setSpecialValueText("last")
        self.answer_spin.setToolTip("Which answer's dependence the curve shows (1 = the first answer); 'last' "
                                    "follows the last. Clicking a row of the map chooses it too.")
        self.answer_label.setBuddy(self.answer_spin)
        layout.addWidget(self.selectors)
        self.controls = control_row(self.answer_label, self.answer_spin)
        layout.addWidget(self.controls)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self.marker = pg.InfiniteLine(angle=0, movable=False)
        self.plot.addItem(self.marker)
        self.curve_plot = add_plot(self.area, row=1, col=0, left=LogAxis)
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.setLogMode(x=False, y=True)
        self.curve_plot.setXLink(self.plot)
        self.curve = pg.PlotDataItem()
        self.curve_plot.addItem(self.curve)
        self.own_step = pg.InfiniteLine(angle=90, movable=False)
        self.curve_plot.addItem(self.own_step)
        self.area.ci.layout.setRowStretchFactor(0, 3)
        self.area.ci.layout.setRowStretchFactor(1, 2)
        self.answer_spin.valueChanged.connect(self._selection_changed)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self._rows = 0
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS

    def detail_wish(self):
        return {"connectivity": True} if self._infos else None

    def chosen_answer(self, answers: int) -> int:
        value = self.answer_spin.value()
        return answers - 1 if value == 0 else min(value, answers) - 1

    def refresh(self, histories):
        history = self.shown_history(histories)
        sequence = getattr(history, "sequence", None)  # one sequence alone: the session's lens (gui/one_sequence.py)
        detail = detail_for(history, sequence)
        if detail is None or detail.connectivity is None:
            self.image.clear()
            self.curve.setData([], [])
            for line in (self.marker, self.own_step):
                line.hide()
            self.plot.getAxis("left").setTicks(None)
            self.curve_plot.getAxis("bottom").setTicks(None)
            self.title_label.set_text(missing_text(history, sequence) if detail is None else WAITING)
            self.title_label.setToolTip("")
            return
        for line in (self.marker, self.own_step):
            line.show()
        values = detail.connectivity if sequence is None else detail.sequence_connectivity  # (T_out, T)
        answers, steps = values.shape
        self._rows = answers
        if self.answer_spin.maximum() != answers:
            self.answer_spin.setMaximum(answers)
        chosen = self.chosen_answer(answers)
        picture = log_grad(values)
        self.levels = widened_levels(self.levels, picture)
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        self.image.setImage(np.ascontiguousarray(heatmap_ready(picture, self.levels)), autoLevels=False, levels=self.levels)
        self.image.setRect(QRectF(-0.5, -0.5, steps, answers))
        self.plot.setRange(xRange=(-0.5, steps - 0.5), yRange=(-0.5, answers - 0.5), padding=0)
        every = max(1, int(np.ceil(answers / max(1, self.plot.getViewBox().height() // 16))))  # a label per 16 px
        self.plot.getAxis("left").setTicks([[(k, str(detail.output_steps[k])) for k in range(0, answers, every)]])
        self.marker.setPos(chosen)
        own = detail.output_steps[chosen]
        self.own_step.setPos(own)
        self.curve.setData(*positive_finite(np.arange(steps, dtype=float), values[chosen]))
        self._line_up()
        ticks = label_ticks(detail.input_labels[detail.sequence], steps, self.plot.getViewBox().width()) if (
            sequence is not None and detail.input_labels) else None
        self.curve_plot.getAxis("bottom").setTicks([ticks] if ticks else None)
        title = answer_title(values[chosen], own)
        if sequence is not None:
            title = f"sequence {sequence + 1}: " + title
        self.title_label.set_text(title)
        self.title_label.setToolTip(f"Measured at training step {detail.step}.")

    def clear(self):
        super().clear()
        self.image.clear()
        self.curve.setData([], [])
        self.levels = LOG_GRAD_LEVELS
        self.colorbar.setLevels(self.levels)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme,
                           {"left": ("answer at timestep", "answer"), "bottom": ""}, BAR_LABEL)
        style_plot(self.curve_plot, theme, {"left": "", "bottom": TIMESTEP_LABEL})
        set_axis_label(self.plot.getAxis("bottom"), "", theme)
        color = theme.run_colors[0]
        self.curve.setPen(pen(color, theme, 1.5))
        self.marker.setPen(pen(theme.foreground, theme, 1.0, dashed=True))
        self.own_step.setPen(pen(theme.foreground, theme, 1.0, dashed=True))
        self.title_label.apply_theme(theme)
        style_row(self.controls, theme)
        set_font((self.answer_label, self.answer_spin), font(theme))
        for box in (self.answer_spin, self.answer_spin.lineEdit()):  # (its text field kept the theme it was built in:
            box.setPalette(self.selectors.layer_spin.palette())       # grey on black in the light theme)

    # ------------------------------------------------------------------ internals
    def _line_up(self):
        """The map and the curve share their timestep axis: equal left margins, and on the curve's right an
        empty axis as wide as the map's colour bar, put each timestep of the curve under the map's."""
        metrics = QFontMetricsF(font(self.theme))  # room for the widest tick label either has, and an axis label
        width = int(np.ceil(metrics.horizontalAdvance("10⁻¹⁰") + metrics.height() + 14))
        for plot in (self.plot, self.curve_plot):
            if plot.getAxis("left").width() != width:
                plot.getAxis("left").setWidth(width)
        right = self.curve_plot.getAxis("right")
        bar = self.plot.getViewBox().sceneBoundingRect().right()
        gap = self.plot.sceneBoundingRect().right() - bar
        if gap > 0 and abs(right.width() - gap) > 0.5:
            self.curve_plot.showAxis("right")
            right.setStyle(showValues=False)
            right.setPen(pen(self.theme.background, self.theme))
            right.setWidth(int(round(gap)))

    def _clicked(self, event):
        if not self._rows or not self.plot.sceneBoundingRect().contains(event.scenePos()):
            return
        row = int(round(self.plot.getViewBox().mapSceneToView(event.scenePos()).y()))
        if 0 <= row < self._rows:
            self.answer_spin.setValue(row + 1)
