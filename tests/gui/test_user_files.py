"""The window opens a user's own model and data (menu, drop, recent files), trains on them, saves them
into experiments, and refuses a bad file with a message while keeping what it had."""
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from torch import nn

from engine import experiment as experiments
from gui.files import kind_of

from engine.config import Config

SMALL = Config(seq_len=12, hidden=8, batch=4)  # the make_window fixture's default run

TIMEOUT = 20_000
ROOT = Path(__file__).resolve().parents[2]
SUNSPOTS = ROOT / "resources" / "sunspots_monthly.csv"


def save_model(path, hidden=5, inputs=2):
    torch.manual_seed(0)
    module = nn.Module()
    module.rnn = nn.GRU(inputs, hidden, 2, batch_first=True)
    module.out = nn.Linear(hidden, 1)
    torch.save(module.state_dict(), path)
    return path


def trained_steps(qtbot, window, steps=2):
    window.session.step_once()
    qtbot.waitUntil(lambda: (window.display.tick() or True) and window.session.histories
                    and len(window.session.histories[0].steps) >= 1, timeout=TIMEOUT)
    return window.session.histories[0]


def test_opening_a_model_trains_it_and_locks_its_shape_in_the_controls(make_window, qtbot, tmp_path):
    window = make_window()
    model = save_model(tmp_path / "mine.pt")
    assert window.files.open(model)  # by its suffix, as the recent-files menu and a drop open it
    config = window.session.configs[0]
    assert (config.model, config.cell, config.hidden, config.layers) == (str(model), "gru", 5, 2)
    controls = window.controls
    assert controls.config() == config
    assert not controls.controls["hidden"].isEnabled() and "mine.pt" in controls.controls["hidden"].toolTip()
    assert controls.files_note.isVisibleTo(controls) and "GRU, 2 layers of 5 units" in controls.files_note.text()
    history = trained_steps(qtbot, window)
    assert history.info.config.model == str(model)
    assert str(model) in window.files.recent_files()[0]
    window.files.close_user_files()
    assert window.session.configs[0].model is None and controls.controls["hidden"].isEnabled()
    assert not controls.files_note.isVisibleTo(controls)


def test_opening_data_and_switching_tasks_keeps_it_to_return_to(make_window, qtbot, tmp_path):
    window = make_window()
    assert window.files.open_user_file(SUNSPOTS, "data")
    config = window.session.configs[0]
    assert (config.task, config.data) == ("data", str(SUNSPOTS))
    trained_steps(qtbot, window)
    assert np.isfinite(window.session.histories[0].log.snapshots[0].held_out_loss)
    task = window.controls.controls["task"]
    task.setCurrentIndex(task.findData("adding"))
    assert (window.session.configs[0].task, window.session.configs[0].data) == ("adding", None)
    task.setCurrentIndex(task.findData("data"))
    assert window.session.configs[0].data == str(SUNSPOTS)


def test_a_bad_file_is_reported_and_nothing_is_lost(make_window, tmp_path):
    window = make_window()
    before = list(window.session.configs)
    (tmp_path / "notes.txt").write_text("")
    messages = []
    window.files.failed.connect(messages.append)
    assert not window.files.open(tmp_path / "notes.txt")
    save_model(tmp_path / "wide.pt", inputs=7)  # the adding task has 2 inputs per step
    assert not window.files.open(tmp_path / "wide.pt")
    assert window.session.configs == before
    assert "notes.txt; nothing was changed" in messages[0] and "is empty" in messages[0]
    assert "takes 7 inputs per step" in messages[1]


def test_a_dropped_model_opens(make_window, tmp_path):
    window = make_window()
    model = save_model(tmp_path / "dropped.pth")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(model))])
    window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
    assert window.session.configs[0].model == str(model)


def test_an_experiment_carries_the_models_weights_and_reopens_without_the_file(make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    window = make_window()
    model = save_model(tmp_path / "gone.pt")
    assert window.files.open(model)
    saved = window.files.save_experiment(tmp_path / "mine.rgl")
    weights = {k: v.clone() for k, v in torch.load(model, weights_only=True).items()}
    model.unlink()
    assert window.files.open(saved)
    reopened = window.session.configs[0]
    assert reopened.model.startswith(str(tmp_path / "cache")) and (reopened.cell, reopened.hidden) == ("gru", 5)
    again = torch.load(reopened.model, weights_only=True)
    torch.testing.assert_close(again["rnn.weight_hh_l1"], weights["rnn.weight_hh_l1"], rtol=0, atol=0)
    torch.testing.assert_close(again["head.weight"], weights["out.weight"], rtol=0, atol=0)


def test_an_experiment_refuses_data_that_changed_unless_it_carries_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "series.csv"
    data.write_text("v\n" + "".join(f"{np.sin(k / 5):.4f}\n" for k in range(200)))
    config = SMALL.replace(data=str(data), task="data")
    plain = experiments.save(tmp_path / "plain.rgl", experiments.Experiment([config]))
    carried = experiments.save(tmp_path / "carried.rgl", experiments.Experiment([config]), include_data=True)
    assert experiments.load(plain).configs == [config]  # unchanged: the file itself
    data.write_text("v\n1\n2\n3\n")
    try:
        experiments.load(plain)
        raise AssertionError("a changed data file was accepted")
    except experiments.ExperimentError as exc:
        assert "series.csv has changed since the experiment was saved" in str(exc)
    reopened = experiments.load(carried)
    assert reopened.configs[0].data.startswith(str(tmp_path / "cache"))
    assert Path(reopened.configs[0].data).read_text().startswith("v\n0.0000\n0.1987")
    assert "using the copy saved in the experiment" in reopened.notes["files"][0]


def test_an_npz_is_told_apart_by_its_contents(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 1)), y=np.zeros(2))
    exp = experiments.save(tmp_path / "e.npz", experiments.Experiment([SMALL]))
    assert kind_of(tmp_path / "d.npz") == "data" and kind_of(Path(exp)) == "experiment"
    assert kind_of(tmp_path / "m.ckpt") == "model" and kind_of(tmp_path / "c.toml") == "experiment"
