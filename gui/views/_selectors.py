"""The thin row above a plot that chooses what it shows: the run (compare mode) and the layer
(stacked layers).

GUI thread only. The view that owns it reads `run_index` and `layer_index` when it refreshes.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSpinBox, QWidget

from gui.views._common import font, run_labels, set_font


class Selectors(QWidget):
    """A thin row above a plot: a run chooser (compare mode) and a layer chooser (stacked layers)."""

    def __init__(self, parent=None, layer: bool = True, run: bool = True):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 0)
        self.run_label = QLabel("run:")
        self.run_combo = QComboBox()
        # long run labels must not widen the view: the combo shows ~12 characters, the list all of them
        self.run_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(10)
        # ... and takes what room the row has to spare, so that a run's whole name shows where it fits
        self.run_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.layer_label = QLabel("layer:")
        self.layer_spin = QSpinBox()
        self.layer_spin.setRange(1, 1)
        self.layer_spin.setToolTip("Which stacked layer to show (1 = bottom, nearest the input).")
        self.run_combo.setToolTip("Which of the compared runs this view shows.")
        self.run_label.setBuddy(self.run_combo)  # the label names the box, for screen readers too
        self.layer_label.setBuddy(self.layer_spin)
        row.addWidget(self.run_label)
        row.addWidget(self.run_combo, 100)  # (the room spare first, to its longest name: the stretch below had it all)
        row.addSpacing(8)
        row.addWidget(self.layer_label)
        row.addWidget(self.layer_spin)
        row.addStretch(1)
        self._has_layer, self._has_run = layer, run
        self.set_runs([])

    def set_runs(self, infos):
        labels = run_labels(infos) if len(infos) > 1 else []
        # refilled only when a label changed: a live change of another setting leaves an open list alone
        if labels != [self.run_combo.itemText(i) for i in range(self.run_combo.count())]:
            old = self.run_combo.currentIndex()
            self.run_combo.blockSignals(True)
            self.run_combo.clear()
            self.run_combo.addItems(labels)
            for i, label in enumerate(labels):
                self.run_combo.setItemData(i, label, Qt.ToolTipRole)
            self.run_combo.setCurrentIndex(old if 0 <= old < len(labels) else 0)
            self.run_combo.blockSignals(False)
        self._fit_run_combo()
        many_runs = self._has_run and len(infos) > 1
        self.run_label.setVisible(many_runs)
        self.run_combo.setVisible(many_runs)
        self.update_layers(infos)

    def _fit_run_combo(self):
        """The run box no wider than its longest name needs: it takes the row's spare room up to that (it kept its
        ten characters and cut 'about right (0.05)' to 'about right (0.05')."""
        names = [self.run_combo.itemText(i) for i in range(self.run_combo.count())]
        metrics = self.run_combo.fontMetrics()
        widest = max((metrics.horizontalAdvance(name) for name in names), default=0)
        self.run_combo.setMaximumWidth(max(widest + 4 * metrics.averageCharWidth() + 16, self.run_combo.minimumSizeHint().width()))

    def update_layers(self, infos):
        idx = self.run_index(len(infos))
        layers = infos[idx].config.layers if infos else 1
        was_top = self.layer_spin.value() >= self.layer_spin.maximum()
        self.layer_spin.blockSignals(True)
        self.layer_spin.setMaximum(max(1, layers))
        if was_top:
            self.layer_spin.setValue(layers)  # follow the top layer unless the user picked another
        self.layer_spin.blockSignals(False)
        show = self._has_layer and layers > 1
        self.layer_label.setVisible(show)
        self.layer_spin.setVisible(show)
        self.setVisible((self._has_run and len(infos) > 1) or show)

    def run_index(self, n_runs: int) -> int:
        if not self._has_run:
            return 0
        i = self.run_combo.currentIndex()
        return i if 0 <= i < n_runs else 0

    def layer_index(self, n_layers: int) -> int:
        return min(max(self.layer_spin.value() - 1, 0), n_layers - 1)

    def apply_theme(self, theme):
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.setStyleSheet(f"Selectors, QLabel {{ background: {theme.background}; color: {theme.foreground}; }}")
        # the boxes take the theme through their palette: a style sheet border would make Qt draw the
        # spin box's buttons itself, with no arrows on them
        palette = QPalette(self.layer_spin.palette())
        background, foreground = QColor(theme.background), QColor(theme.foreground)
        for role, color in ((QPalette.ColorRole.Base, background), (QPalette.ColorRole.Window, background),
                            (QPalette.ColorRole.Button, background), (QPalette.ColorRole.Text, foreground),
                            (QPalette.ColorRole.WindowText, foreground), (QPalette.ColorRole.ButtonText, foreground)):
            palette.setColor(role, color)
        # the spin box's text field is set as well: it kept the palette of the theme the view was built in
        for box in (self.run_combo, self.layer_spin, self.layer_spin.lineEdit(), self.run_combo.view()):
            box.setPalette(palette)
        set_font((self.run_label, self.run_combo, self.layer_label, self.layer_spin), font(theme))
        self._fit_run_combo()
