"""Compare mode's panel: one setting and its values for runs 2..4, the rest shared with run 1.

GUI thread only. It says what changed in `compare_changed`; the window asks `configs(base)` for the
whole run set (run 1 is `base`). Which settings can be compared, and the values offered for each, are
the settings schema's (engine/schema.py), as the settings panel's controls are.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QSpinBox

from engine.config import Config, ConfigError
from engine.schema import BY_NAME, MAX_RUNS, SETTINGS, value_text
from gui.controls import GROUPS, KEY_HELP, choices
from gui.theme import ERROR_TEXT

COMPARE_KEYS = tuple(k for _, keys in GROUPS for k in keys if k not in ("seed", "device"))
SUGGESTIONS = {s.name: s.suggestions for s in SETTINGS if s.suggestions}  # runs 2..4 of a numeric key
DEFAULT_COMPARE_KEY = "cell"


def _text(value) -> str:
    return value_text(value, short=True)


class ComparePanel(QGroupBox):
    """Pick one setting and its values for runs 2..4; the other settings and the seed stay shared.

    Emits `compare_changed` when anything here changes; the window asks `configs(base)` for the
    complete list of run configs (run 1 is `base`)."""

    compare_changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Compare runs", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.setToolTip("Train 2 to 4 runs side by side on the same seed and data, with one setting "
                        "different, and overlay them in every view (one colour per run).")
        self._base = Config()
        self._updating = False
        form = QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        self.key = QComboBox()
        self.key.setMinimumContentsLength(10)
        for key in COMPARE_KEYS:
            self.key.addItem(BY_NAME[key].label, key)
            self.key.setItemData(self.key.count() - 1, KEY_HELP[key], Qt.ItemDataRole.ToolTipRole)
        self.key.setToolTip("The one setting that differs between the runs.")
        self.key.setCurrentIndex(self.key.findData(DEFAULT_COMPARE_KEY))
        form.addRow("setting", self.key)
        self.count = QSpinBox()
        self.count.setRange(2, MAX_RUNS)
        self.count.setToolTip("How many runs to train side by side (2 to 4).")
        form.addRow("runs", self.count)
        self.base_label = QLabel()
        self.base_label.setToolTip("Run 1 uses the settings of the panel above.")
        form.addRow("run 1", self.base_label)
        self.values: list[QComboBox] = []
        self.value_labels: list[QLabel] = []
        for run in range(2, MAX_RUNS + 1):
            box = QComboBox()
            box.setEditable(True)
            box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            box.setToolTip(f"The value run {run} uses for the compared setting (pick or type one).")
            box.activated.connect(lambda _=0: self._edited())
            box.lineEdit().editingFinished.connect(self._edited)
            label = QLabel(f"run {run}")
            form.addRow(label, box)
            self.values.append(box)
            self.value_labels.append(label)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {ERROR_TEXT};")
        self.error.setVisible(False)
        form.addRow(self.error)
        self.key.currentIndexChanged.connect(self._key_changed)
        self.count.valueChanged.connect(self._count_changed)
        self.toggled.connect(lambda _=False: self._emit())
        self._key_changed()
        self._count_changed()

    # ------------------------------------------------------------------ public
    def set_base(self, base: Config):
        """Run 1's config changed: show its value of the compared key."""
        self._base = base
        self.base_label.setText(_text(getattr(base, self.key.currentData())))

    def set_compare(self, key: str, values: list, base: Config | None = None):
        """Set the compared key and the values of runs 2.. without emitting."""
        self._updating = True
        try:
            if base is not None:
                self._base = base
            self.key.setCurrentIndex(self.key.findData(key))
            self._fill_options()
            self.count.setValue(len(values) + 1)
            for box, value in zip(self.values, values):
                box.setCurrentText(_text(value))
            self._count_changed()
            self.set_base(self._base)
        finally:
            self._updating = False

    def show_run_set(self, configs: list[Config]):
        """Show a whole run set (a lesson's, a file's) without emitting: compare mode on for more than one
        run, comparing the first setting that differs, in the controls' order (a lesson may also change
        a setting that only matters to one of the runs, e.g. the LSTM's forget bias)."""
        base, extras = configs[0], list(configs[1:])
        keys = [k for k in base.to_dict() if any(getattr(c, k) != getattr(base, k) for c in extras)]
        self.blockSignals(True)
        if keys and self.key.findData(keys[0]) >= 0:
            self.set_compare(keys[0], [getattr(c, keys[0]) for c in extras], base)
        self.setChecked(bool(extras))
        self.set_base(base)
        self.blockSignals(False)

    def compared_key(self) -> str:
        return self.key.currentData()

    def configs(self, base: Config) -> list[Config]:
        """[base, run 2, ...] in compare mode, [base] otherwise; raises ConfigError on a bad value."""
        if not self.isChecked():
            return [base]
        key = self.key.currentData()
        from engine.config import set_from_text
        out = [base]
        for run, box in enumerate(self.values[:self.count.value() - 1], start=2):
            text = box.currentText().strip()
            try:
                out.append(set_from_text(base, key, text))
            except ConfigError as exc:
                raise exc.for_key(f"run {run} {exc.key}") from None
        return out

    def show_error(self, text: str):
        self.error.setText(text)
        self.error.setVisible(bool(text))

    # ------------------------------------------------------------------ editing
    def _fill_options(self):
        key = self.key.currentData()
        base_value = _text(getattr(self._base, key))
        if key in ("skip", "attention"):
            options = ["true", "false"]
        elif key in SUGGESTIONS:
            options = list(SUGGESTIONS[key])
        else:
            options = [name for name, _, _ in choices(key)]
        others = [o for o in options if o != base_value] or options
        for i, box in enumerate(self.values):
            box.blockSignals(True)
            box.clear()
            box.addItems(options)
            box.setCurrentText(others[i % len(others)])
            box.blockSignals(False)

    def _key_changed(self):
        was = self._updating
        self._updating = True
        self._fill_options()
        self.set_base(self._base)
        self._updating = was
        self._emit()

    def _count_changed(self):
        for i, (box, label) in enumerate(zip(self.values, self.value_labels)):
            visible = i < self.count.value() - 1
            box.setVisible(visible)
            label.setVisible(visible)
        self._emit()

    def _edited(self):
        self._emit()

    def _emit(self):
        if not self._updating:
            self.compare_changed.emit()
