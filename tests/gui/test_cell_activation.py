"""Choosing IndRNN in the settings panel takes ReLU, its paper's activation, as `--set cell=indrnn` and a
config file do (engine.config.CELL_ACTIVATION); an activation chosen afterwards is kept."""
from engine.config import Config
from gui.controls import ControlPanel


def choose(panel: ControlPanel, key: str, value: str):
    box = panel.controls[key]
    box.setCurrentIndex(box.findData(value))


def test_choosing_indrnn_in_the_panel_takes_relu_and_keeps_an_activation_chosen_after(qtbot):
    panel = ControlPanel(Config())
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.config_changed) as changed:
        choose(panel, "cell", "indrnn")
    assert (changed.args[0].cell, changed.args[0].activation) == ("indrnn", "relu")
    assert panel.controls["activation"].currentData() == "relu"
    with qtbot.waitSignal(panel.config_changed) as changed:
        choose(panel, "activation", "tanh")
    assert (changed.args[0].cell, changed.args[0].activation) == ("indrnn", "tanh")
    with qtbot.waitSignal(panel.config_changed) as changed:
        choose(panel, "cell", "gru")  # another cell keeps whatever activation is set
    assert changed.args[0].activation == "tanh"
