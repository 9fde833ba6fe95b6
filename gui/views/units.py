"""Units view: every unit's gradient at every timestep of one layer, for the hidden state or one gate,
units sortable by how far back their gradient reaches, the whole batch or one sequence of it.

GUI thread only. Reads `RunHistory.detail` (engine.detail.StepDetail, asked for through `detail_wish`
while the view is on screen): `units` for the batch, `sequence_units` for one sequence.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QComboBox

from gui.theme import LOG_GRAD_LEVELS
from gui.views._common import (TIMESTEP_LABEL, TitleLabel, font, heatmap_plot, heatmap_ready, log_grad,
                               set_axis_label, style_heatmap_plot, vbox, widened_levels)
from gui.views._zoom import WAITING, control_row, detail_for, label_ticks, missing_text, style_row
from gui.views.base import ChooserView

BAR_LABEL = "gradient size (log scale)"
REACH_SHARE = 1e-3  # a unit reaches back to the earliest timestep where its gradient is this share of the picture's largest
GATE_TITLES = {"hidden": "hidden state h", "input": "input gate", "forget": "forget gate", "cell": "cell candidate",
               "output": "output gate", "reset": "reset gate", "update": "update gate", "new": "new-state candidate"}
SORTS = ("by reach", "by unit number")


def reach(values: np.ndarray) -> np.ndarray:
    """(H,) for a (T, H) picture of per-unit gradient norms: how many timesteps back from the last each
    unit's gradient reaches, counting to the earliest timestep where it is at least REACH_SHARE of the
    picture's largest value (T: all the way to the first; 0: nowhere)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=np.finfo(np.float64).max)
    steps = values.shape[0]
    top = values.max() if values.size else 0.0
    if top <= 0:
        return np.zeros(values.shape[1], dtype=int)
    strong = values >= top * REACH_SHARE  # (T, H)
    first = np.where(strong.any(axis=0), strong.argmax(axis=0), steps)
    return steps - first


def unit_order(values: np.ndarray, by_reach: bool) -> np.ndarray:
    """Rows of the picture from top to bottom: furthest-reaching first (ties: the larger gradient
    first), or unit 1 at the top."""
    units = values.shape[1]
    if not by_reach:
        return np.arange(units)
    strength = np.nan_to_num(np.asarray(values, dtype=np.float64)).sum(axis=0)
    return np.lexsort((-strength, -reach(values)))


def units_title(values: np.ndarray, layer: int, layers: int, gate: str) -> str:
    r = reach(values)
    steps, units = values.shape
    where = f"layer {layer + 1}, " if layers > 1 else ""
    return (f"{where}{GATE_TITLES.get(gate, gate)}: {int((r == steps).sum())} of {units} units reach back to "
            f"timestep 0, {int((r == 0).sum())} carry almost nothing")


class UnitsView(ChooserView):
    view_id = "units"
    readable_size = (280, 230)  # the choosers, and the units' image at least 70 px
    title = "Units"
    shown_at_start = False
    explanation = ("Each row is one unit of the chosen layer, each column one timestep: the colour is how large "
                   "that unit's gradient is there (the norm over the batch, or one sequence alone), on the fixed "
                   "log scale of the waterfall. For LSTM and GRU, pick a gate to see its gradient instead. Sorted by "
                   "reach, units that carry memory far back are at the top; dark rows are dead or saturated units. "
                   f"A unit reaches back to the earliest timestep where its gradient is at least {REACH_SHARE:g} "
                   "of the largest in the picture. Measured on the step shown, at most a few times a second.")

    def __init__(self, parent=None):
        super().__init__(parent, layer=True, run=True)
        self.levels = LOG_GRAD_LEVELS
        self._gates: tuple = ("hidden",)
        layout = vbox(self)
        self.title_label = TitleLabel("Every unit's gradient")
        layout.addWidget(self.title_label)
        self.gate_combo = QComboBox()
        self.gate_combo.setToolTip("Which of the layer's tensors: the hidden state, or one gate of an LSTM or GRU.")
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(SORTS)
        self.sort_combo.setToolTip("Order the units by how far back their gradient reaches, or by number.")
        for box in (self.gate_combo, self.sort_combo):  # they give way in a narrow view; the list shows all
            box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(5)
        layout.addWidget(self.selectors)
        self.controls = control_row(self.gate_combo, self.sort_combo)
        layout.addWidget(self.controls)
        self.area, self.plot, self.image, self.colorbar = heatmap_plot(self.theme)
        layout.addWidget(self.area)
        self._set_gates(("hidden",))
        for signal in (self.gate_combo.currentIndexChanged, self.sort_combo.currentIndexChanged,
                       self.selectors.layer_spin.valueChanged):
            signal.connect(self._selection_changed)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        self.levels = LOG_GRAD_LEVELS
        if infos:
            self._set_gates(("hidden",) + tuple(infos[self.selectors.run_index(len(infos))].gate_names))

    def detail_wish(self):
        if not self._infos:
            return None
        info = self._infos[self.selectors.run_index(len(self._infos))]
        return {"layer": self.selectors.layer_index(info.config.layers)}

    def refresh(self, histories):
        history = self.shown_history(histories)
        sequence = getattr(history, "sequence", None)  # one sequence alone: the session's lens (gui/one_sequence.py)
        detail = detail_for(history, sequence)
        if detail is None:
            self._show_nothing(missing_text(history, sequence))
            return
        layers = history.info.config.layers
        layer = self.selectors.layer_index(layers)
        if layer not in detail.layers:  # measured for another layer: the next measurement is of this one
            self._show_nothing(WAITING)
            return
        self._set_gates(detail.gate_names)
        gate = min(self.gate_combo.currentIndex(), len(detail.gate_names) - 1)
        units = detail.units if sequence is None else detail.sequence_units
        values = units[detail.layers.index(layer), max(gate, 0)]  # (T, H)
        by_reach = self.sort_combo.currentIndex() == 0
        order = unit_order(values, by_reach)
        picture = log_grad(values[:, order].T)  # (H, T): a row per unit, top row first
        self.levels = widened_levels(self.levels, picture)
        if tuple(self.colorbar.levels()) != self.levels:
            self.colorbar.setLevels(self.levels)
        steps, count = values.shape[0], values.shape[1]
        self.image.setImage(np.ascontiguousarray(heatmap_ready(picture[::-1], self.levels)), autoLevels=False,
                            levels=self.levels)  # row 0 at the bottom of the plot: reversed, so the top row leads
        self.image.setRect(QRectF(-0.5, 0, steps, count))
        self.plot.setRange(xRange=(-0.5, steps - 0.5), yRange=(0, count), padding=0)
        ticks = label_ticks(detail.input_labels[detail.sequence], steps, self.plot.getViewBox().width()) if (
            sequence is not None and detail.input_labels) else None
        self.plot.getAxis("bottom").setTicks([ticks] if ticks else None)
        title = units_title(values, layer, layers, detail.gate_names[max(gate, 0)])
        if sequence is not None:
            title = f"sequence {sequence + 1}: " + title
        self.title_label.set_text(title)
        self.title_label.setToolTip(f"Measured at training step {detail.step}. A unit reaches back to the earliest "
                                    f"timestep where its gradient is at least {REACH_SHARE:g} of the largest here.")
        set_axis_label(self.plot.getAxis("left"), ("units (furthest reach on top)", "units") if by_reach else
                       ("units (1 at the top)", "units"), self.theme)

    def clear(self):
        super().clear()
        self.image.clear()
        self.levels = LOG_GRAD_LEVELS
        self.colorbar.setLevels(self.levels)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        style_heatmap_plot(self.area, self.plot, self.colorbar, theme,
                           {"left": ("units (furthest reach on top)", "units"), "bottom": TIMESTEP_LABEL}, BAR_LABEL)
        self.title_label.apply_theme(theme)
        style_row(self.controls, theme)
        for box in (self.gate_combo, self.sort_combo):
            box.setFont(font(theme))
            box.setPalette(self.selectors.run_combo.palette())

    # ------------------------------------------------------------------ internals
    def _show_nothing(self, text: str):
        self.image.clear()
        self.plot.getAxis("bottom").setTicks(None)  # no characters of a sequence no longer shown
        self.title_label.set_text(text)
        self.title_label.setToolTip("")

    def _set_gates(self, names):
        names = tuple(names)
        if names == self._gates and self.gate_combo.count():
            return
        self._gates = names
        current = self.gate_combo.currentIndex()
        self.gate_combo.blockSignals(True)
        self.gate_combo.clear()
        self.gate_combo.addItems([GATE_TITLES.get(n, n) for n in names])
        self.gate_combo.setCurrentIndex(current if 0 <= current < len(names) else 0)
        self.gate_combo.blockSignals(False)
        self.gate_combo.setVisible(len(names) > 1)
