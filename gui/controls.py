"""The control panel: one control per config key, grouped, filled from the registries. GUI thread only.

Every edit builds a complete new Config from all the controls and validates it. A valid config is
emitted as `config_changed(Config)`; an invalid one shows its message next to the control that
caused it (naming the key, the value and what is allowed) and is not emitted, so the last valid
config keeps running. `set_config` updates the controls without emitting anything.
"""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QSpinBox, QVBoxLayout, QWidget)

from engine import admission, devices, user_files, memory, registry, schema
from engine.config import CELL_ACTIVATION, RANGES, Config, ConfigError
from engine.schema import BY_NAME, MAX_RUNS, SETTINGS
from gui.theme import ERROR_TEXT

# Every fact about a setting is its row in engine/schema.py; these are views of those rows.
KEY_HELP = {setting.name: setting.help for setting in SETTINGS}
GROUPS = schema.GROUPS
LABEL_WIDTH = 110
UNTICKED_VALUE = 1.0  # what an optional number's spin box shows while its tick box is off
SPIN_DECIMALS = 2     # an optional number's spin box (spectral radius 0.01 to 100)
LOG_DECADES = 10      # a log-scale spin box reaches this many powers of ten below its setting's largest value

DEVICES = {"auto": ("auto", "CUDA for a model large enough to gain from it, when present; otherwise the CPU"), "cpu": ("CPU", "Always train on the CPU"),
           "cuda": ("CUDA GPU", "Train on the first CUDA GPU (only if one is present)")}


def choices(key: str) -> list[tuple[str, str, str]]:
    """(name, label, description) for every choice of a menu key, straight from the registries."""
    if key == "device":
        return [(name, label, text) for name, (label, text) in DEVICES.items()]
    if key == "task":
        return [(t.name, t.label, t.description) for t in registry.TASKS.values()]
    return [(e.name, e.label, e.description) for e in registry.describe(key).values()]


def nice_steps(value: float, steps: int) -> float:
    """Move `steps` places along the 1, 2, 5 x 10^k ladder from `value`."""
    ladder = (1.0, 2.0, 5.0)
    exponent = math.floor(math.log10(value))
    mantissa = value / 10 ** exponent
    index = min(range(3), key=lambda i: abs(ladder[i] - mantissa))
    position = exponent * 3 + index + steps
    return ladder[position % 3] * 10 ** (position // 3)


class LogSpinBox(QDoubleSpinBox):
    """A spin box for quantities spanning decades (learning rate): shows 0.001 or 1e-05, steps 1-2-5."""

    def __init__(self, minimum: float, maximum: float, parent=None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        t = text.strip()
        if not t:
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            ok = all(ch in "0123456789.eE-+" for ch in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int):
        self.setValue(min(max(nice_steps(self.value(), steps), self.minimum()), self.maximum()))


class _Field(QWidget):
    """A control with its error message underneath (hidden while the value is fine)."""

    def __init__(self, control: QWidget, extra: QWidget | None = None):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if extra is not None:
            row.addWidget(extra)
        row.addWidget(control, 1)
        layout.addLayout(row)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {ERROR_TEXT};")
        self.error.setVisible(False)
        layout.addWidget(self.error)

    def show_error(self, text: str):
        self.error.setText(text)
        self.error.setVisible(bool(text))


class ControlPanel(QWidget):
    config_changed = Signal(object)  # Config: a complete, validated new config

    def __init__(self, config: Config | None = None, parent=None):
        super().__init__(parent)
        self._config = config or Config()
        self.controls: dict[str, QWidget] = {}
        self.enabled_boxes: dict[str, QCheckBox] = {}  # tick boxes of the optional numbers
        self.fields: dict[str, _Field] = {}
        self._updating = False
        self._remembered_data: tuple | None = None  # (data, target) to return to when "your data" is chosen again
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.files_note = QLabel()  # the user's own model and data, when open (File > Open model / data)
        self.files_note.setWordWrap(True)
        self.files_note.setObjectName("files_note")
        self.files_note.setVisible(False)
        layout.addWidget(self.files_note)
        for title, keys in GROUPS:
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setContentsMargins(6, 4, 6, 4)
            for key in keys:
                field = self._make_field(key)
                label = QLabel(BY_NAME[key].label)
                label.setMinimumWidth(LABEL_WIDTH)
                label.setToolTip(KEY_HELP[key])
                form.addRow(label, field)
            layout.addWidget(box)
        self.general_error = QLabel()
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet(f"color: {ERROR_TEXT};")
        self.general_error.setVisible(False)
        layout.addWidget(self.general_error)
        layout.addStretch(1)
        self.set_config(self._config)

    # ------------------------------------------------------------------ building
    def _make_field(self, key: str) -> _Field:
        """The control for `key`, of the kind its schema row says."""
        setting, extra = BY_NAME[key], None
        if setting.kind == "choice":
            control = QComboBox()
            for i, (name, label, text) in enumerate(choices(key)):
                control.addItem(label, name)
                control.setItemData(i, text, Qt.ItemDataRole.ToolTipRole)
            control.currentIndexChanged.connect(lambda _=0, k=key: self._edited(k))
        elif setting.kind == "int":
            control = QSpinBox()
            control.setRange(int(setting.low), int(setting.high))
            control.setKeyboardTracking(False)
            control.setAccelerated(True)
            control.valueChanged.connect(lambda _=0, k=key: self._edited(k))
        elif setting.kind == "bool":
            control = QCheckBox()
            control.toggled.connect(lambda _=False, k=key: self._edited(k))
        elif setting.optional:  # none, or a number: a tick box plus a spin box
            control = QDoubleSpinBox()
            control.setRange(setting.low + (10 ** -SPIN_DECIMALS if setting.low_open else 0.0), setting.high)
            control.setDecimals(SPIN_DECIMALS)
            control.setValue(UNTICKED_VALUE)
            control.setSingleStep(setting.step)
            control.setKeyboardTracking(False)
            control.valueChanged.connect(lambda _=0, k=key: self._edited(k))
            extra = QCheckBox()
            extra.setToolTip(setting.unset_tip)
            extra.toggled.connect(lambda _=False, k=key: self._edited(k))
            self.enabled_boxes[key] = extra
        elif setting.log_scale:
            control = LogSpinBox(setting.high / 10 ** LOG_DECADES, setting.high)
            control.valueChanged.connect(lambda _=0, k=key: self._edited(k))
        elif setting.kind == "float":  # a plain number in a range
            control = QDoubleSpinBox()
            decimals = next((d for d in range(SPIN_DECIMALS, 7)  # enough to show its bounds, default and step
                             if all(round(v, d) == v for v in (setting.low, setting.high, setting.default, setting.step))), 6)
            control.setDecimals(decimals)
            control.setRange(setting.low + (10 ** -decimals if setting.low_open else 0.0), setting.high)
            control.setSingleStep(setting.step)
            control.setKeyboardTracking(False)
            control.valueChanged.connect(lambda _=0, k=key: self._edited(k))
        else:  # pragma: no cover - a new kind of setting needs a control here
            raise KeyError(f"no control for config key {key!r} of kind {setting.kind}")
        control.setObjectName(key)
        control.setToolTip(KEY_HELP[key])
        self.controls[key] = control
        field = _Field(control, extra)
        self.fields[key] = field
        return field

    # ------------------------------------------------------------------ reading and writing
    def values(self) -> dict:
        """The controls' current values as config keys (not validated)."""
        out = {}
        for key, control in self.controls.items():
            if isinstance(control, QComboBox):
                out[key] = control.currentData()
            elif isinstance(control, QCheckBox):
                out[key] = control.isChecked()
            elif isinstance(control, QSpinBox):
                out[key] = int(control.value())
            else:
                out[key] = float(control.value())
        for key, box in self.enabled_boxes.items():
            if not box.isChecked():
                out[key] = None
        return out

    def config(self) -> Config:
        """The last valid config (what is running)."""
        return self._config

    def set_config(self, config: Config):
        """Show `config` in the controls without emitting config_changed."""
        self._updating = True
        try:
            for key, control in self.controls.items():
                value = getattr(config, key)
                if isinstance(control, QComboBox):
                    control.setCurrentIndex(control.findData(value))
                elif isinstance(control, QCheckBox):
                    control.setChecked(bool(value))
                elif key in self.enabled_boxes:
                    self.enabled_boxes[key].setChecked(value is not None)
                    if value is not None:
                        control.setValue(value)
                else:
                    control.setValue(value)
            self._config = config
            if config.data:
                self._remembered_data = (config.data, config.target)
            self._show_files(config)
            self._show_errors(None)
            self._update_enabled()
        finally:
            self._updating = False

    # ------------------------------------------------------------------ editing
    def _edited(self, key: str):
        if self._updating:
            return
        if key == "task":
            seq = self.controls["seq_len"]
            fitted = registry.TASKS[self.controls["task"].currentData()].fit_seq_len(seq.value())
            if fitted != seq.value():  # e.g. digits has only 64 (pixel by pixel) or 8 (row by row) steps
                self._updating = True
                seq.setValue(fitted)
                self._updating = False
        if key == "cell" and self.controls["cell"].currentData() in CELL_ACTIVATION:  # IndRNN: ReLU, as its paper
            self._updating = True
            activation = self.controls["activation"]
            activation.setCurrentIndex(activation.findData(CELL_ACTIVATION[self.controls["cell"].currentData()]))
            self._updating = False
        self._update_enabled()
        values = self.values()
        if key == "task":  # a built-in task leaves the user's data; "your data" returns to it
            values["data"], values["target"] = (None, None) if values["task"] != "data" else (
                self._remembered_data or (None, None))
        try:
            config = self._config.replace(**values)  # keys without a control keep their value
            if config.needs_rebuild(self._config):  # (live settings change neither device, files nor sizes)
                admission.admit(config, kept=memory.WINDOW, replacing=[self._config])
        except ConfigError as exc:
            self._show_errors(exc, at=key)
            return
        self._show_errors(None)
        if config != self._config:
            self._config = config
            self.config_changed.emit(config)

    def _show_errors(self, exc: ConfigError | None, at: str | None = None):
        """`exc` next to its key's control, or (a refusal of several settings together, such as
        sizes that do not fit in memory) next to `at`, the control just edited."""
        for field in self.fields.values():
            field.show_error("")
        self.general_error.setVisible(False)
        if exc is None:
            return
        text = f"{exc}. The last valid settings keep running."
        place = exc.key if exc.key in self.fields else at
        if place in self.fields:
            self.fields[place].show_error(text)
        else:
            self.general_error.setText(text)
            self.general_error.setVisible(True)

    def _shown(self, key: str, value: str) -> str:
        """A choice as its menu shows it ("vanilla RNN" for rnn)."""
        control = self.controls.get(key)
        if isinstance(control, QComboBox) and control.findData(value) >= 0:
            return control.itemText(control.findData(value))
        return str(value)

    def error_text(self, key: str) -> str:
        """The error currently shown next to `key`'s control ('' if none)."""
        field = self.fields[key]
        return field.error.text() if not field.error.isHidden() else ""

    def _show_files(self, config: Config):
        try:
            lines = user_files.describe(config)
        except ConfigError as exc:  # (the file changed or went away since it was opened)
            lines = [str(exc)]
        self.files_note.setText("\n".join(lines))
        self.files_note.setToolTip("Your own files: File > Close model and data returns to the lab's own "
                                   "network and tasks.")
        self.files_note.setVisible(bool(lines))
        data_item = self.controls["task"].model().item(self.controls["task"].findData("data"))
        data_item.setEnabled(self._remembered_data is not None)
        data_item.setText(f"your data ({Path(self._remembered_data[0]).name})" if self._remembered_data else
                          "your data (File > Open data…)")

    def _update_enabled(self):
        """A setting that has no effect with the others' values (its schema row's `applies`) is shown
        disabled, its tooltip saying where it applies."""
        values = self.values()
        for key, control in self.controls.items():
            if isinstance(control, QComboBox) and control.currentIndex() >= 0:
                now = control.itemData(control.currentIndex(), Qt.ItemDataRole.ToolTipRole)
                control.setToolTip(f"{KEY_HELP[key]}\n\n{control.currentText()}: {now}")
        try:  # what auto chose for these sizes, and why
            self.controls["device"].setToolTip(self.controls["device"].toolTip() + "\n" + devices.explain(self.config()))
        except ConfigError:
            pass
        for key, box in self.enabled_boxes.items():
            self.controls[key].setEnabled(box.isChecked())
        for setting in SETTINGS:
            if not setting.applies or setting.name not in self.controls:
                continue
            applies = schema.applies(setting, values)
            target = self.enabled_boxes.get(setting.name, self.controls[setting.name])
            target.setEnabled(applies)
            if setting.name in self.enabled_boxes and not applies:
                self.controls[setting.name].setEnabled(False)
            if not applies:
                where = "; ".join(f"{BY_NAME[k].label} {' or '.join(self._shown(k, v) for v in vs)}"
                                  for k, vs in setting.applies.items())
                self.controls[setting.name].setToolTip(f"{setting.help} Disabled: it applies only with {where}.")
        if self._config.model:  # an imported model's shape and weights are its own
            note = (f" Read from your model {Path(self._config.model).name}: File > Close model and data "
                    "to choose again.")
            for key in ("cell", "hidden", "layers", "init", "spectral_radius", "forget_bias"):
                self.controls[key].setEnabled(False)
                self.controls[key].setToolTip(KEY_HELP[key] + note)
                if key in self.enabled_boxes:
                    self.enabled_boxes[key].setEnabled(False)
        elif not self.controls["cell"].isEnabled():
            for key in ("cell", "hidden", "layers", "init"):
                self.controls[key].setEnabled(True)
                self.controls[key].setToolTip(KEY_HELP[key])
            for key, box in self.enabled_boxes.items():
                box.setEnabled(schema.applies(BY_NAME[key], self.values()))
