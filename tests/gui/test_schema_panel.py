"""The settings panel is built from the schema's rows: each control's kind, bounds, label and help are
its row's, and a setting that does not apply is shown disabled, saying where it applies."""
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QSpinBox

from engine import schema
from engine.config import Config
from gui.controls import ControlPanel, LogSpinBox


def test_every_grouped_setting_has_the_control_its_row_describes(qtbot):
    panel = ControlPanel(Config())
    qtbot.addWidget(panel)
    labels = {label.text() for label in panel.findChildren(QLabel)}
    for setting in schema.SETTINGS:
        if setting.group is None:
            assert setting.name not in panel.controls
            continue
        control = panel.controls[setting.name]
        assert setting.label in labels and control.toolTip().startswith(setting.help)
        if setting.kind == "choice":
            assert isinstance(control, QComboBox)
            assert [control.itemData(i) for i in range(control.count())] == list(setting.choices())
        elif setting.kind == "int":
            assert isinstance(control, QSpinBox) and (control.minimum(), control.maximum()) == (setting.low, setting.high)
        elif setting.kind == "bool":
            assert isinstance(control, QCheckBox)
        elif setting.log_scale:
            assert isinstance(control, LogSpinBox) and control.maximum() == setting.high and control.minimum() > 0
        else:
            assert isinstance(control, QDoubleSpinBox) and control.maximum() == setting.high
            if setting.optional:  # a tick box for none
                assert panel.enabled_boxes[setting.name].toolTip() == setting.unset_tip
            else:
                assert control.minimum() == setting.low and control.value() == setting.default
    assert [title for title, _ in schema.GROUPS] == [box.title() for box in panel.findChildren(
        __import__("PySide6.QtWidgets", fromlist=["QGroupBox"]).QGroupBox) if box.title() != "Compare"]


def test_a_setting_that_does_not_apply_is_disabled_and_says_where_it_does(qtbot):
    panel = ControlPanel(Config(cell="lstm"))
    qtbot.addWidget(panel)
    assert not panel.controls["activation"].isEnabled()
    assert "Disabled: it applies only with cell vanilla RNN" in panel.controls["activation"].toolTip()
    assert panel.enabled_boxes["forget_bias"].isEnabled() and not panel.controls["clip_threshold"].isEnabled()
    panel.set_config(Config(cell="gru", clip="norm"))
    assert not panel.enabled_boxes["forget_bias"].isEnabled() and not panel.controls["forget_bias"].isEnabled()
    assert panel.controls["clip_threshold"].isEnabled() and panel.controls["activation"].isEnabled() is False
