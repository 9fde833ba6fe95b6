"""The Phase diagram view (gui/views/phase.py): the current network's map measured off the GUI thread, the
dot that follows the settings, a click that applies a cell's settings, a sweep folder opened in the window,
and phase.png drawn by the same view."""
import numpy as np
import pytest

from engine import cli, sweep
from engine.config import Config
from engine.worker import RunInfo
from gui.views.phase import PhaseView, contour_lines, write_phase_png

SMALL = dict(hidden=8, batch=4)


def info(config, index=0):
    return RunInfo(index, config, "adding problem", "accuracy", 1 / 6, config.seq_len, (), "cpu")


@pytest.fixture
def view(qtbot):
    shown = PhaseView()
    qtbot.addWidget(shown)
    shown.resize(640, 480)
    shown.show()
    return shown


def measured(qtbot, view, *configs):
    drawn = view.maps_drawn
    view.set_runs([info(config, k) for k, config in enumerate(configs)])
    qtbot.waitUntil(lambda: view.maps_drawn > drawn, timeout=60_000)


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_the_map_of_the_current_network_is_measured_in_the_background_with_its_line_and_dot(qtbot, view, activation,
                                                                                            tmp_path):
    config = Config(activation=activation, init="orthogonal", spectral_radius=0.9, seq_len=100, **SMALL)
    measured(qtbot, view, config)
    phase = view.phase
    assert (phase.x_key, phase.y_key) == ("spectral_radius", "seq_len") and phase.values.shape == (9, 10)
    assert np.all(np.isfinite(phase.values)) and phase.values[-1, 0] > 20  # radius 0.6, 500 steps: vanished
    assert view.dot_position() == (3.5, 3.5)  # radius 0.9 (the 4th column), seq_len 100 (the 4th row)
    xs, ys = view.contour.getData()
    if activation == "linear":  # orthogonal: the line where nothing is lost is radius 1 at every length
        assert np.nanmax(np.abs(xs - 4.5)) < 0.01 and np.nanmin(ys) == 0 and np.nanmax(ys) == 9
    assert f"{activation} RNN" in view.title_label.text()
    view.grab().save(str(tmp_path / f"phase-{activation}.png"))

    requests = view._request
    view.set_runs([info(config.replace(seq_len=200, spectral_radius=1.2))])  # on the map: the dot moves alone
    assert view._request == requests and view.dot_position() == (6.5, 5.5)
    view.set_runs([info(config.replace(spectral_radius=None))])  # the initializer's own radius: orthogonal is 1
    qtbot.waitUntil(lambda: view.dot_position() is not None and abs(view.dot_position()[0] - 4.5) < 1e-3)


def test_compared_networks_get_a_map_each_and_runs_of_one_network_share_it_a_dot_each(qtbot, view):
    linear = Config(activation="linear", init="orthogonal", spectral_radius=1.0, seq_len=200, hidden=16, batch=8)
    measured(qtbot, view, linear, linear.replace(activation="tanh"))
    assert len(view.phases) == 2 and [p.runs for p in view.shown] == [[0], [1]]
    assert [p.plot.titleLabel.text for p in view.shown] == ["linear", "tanh"]  # (the edge-of-chaos lesson's names)
    line = [view.shown[k].contour.getData()[0] for k in range(2)]
    assert np.nanmax(np.abs(line[0] - 4.5)) < 0.01  # linear: the line is radius 1
    assert np.nanmin(line[1]) > 5  # tanh (16 units): further right (8 saturate and never get there)
    assert [view.dot_position(r, view.phases[r]) for r in range(2)] == [(4.5, 5.5), (4.5, 5.5)]
    assert all(len(p.dot.getData()[0]) == 1 for p in view.shown)
    requests = view._request
    view.set_runs([info(linear.replace(spectral_radius=r), k) for k, r in enumerate((0.9, 1.0, 1.1))])
    qtbot.waitUntil(lambda: len(view.phases) == 1)  # one network: one map, three dots
    assert view._request == requests + 1 and view.shown[0].runs == [0, 1, 2]
    assert list(view.dot.getData()[0]) == [3.5, 4.5, 5.5] and not view.plot.titleLabel.isVisible()


def test_hiding_the_view_keeps_its_map_and_its_process_until_the_window_closes(qtbot, view):
    """Turned off and on again (the View menu, a tab behind another, minimised), the view keeps the map that
    arrived and its process, which starts with torch's imports, and does not freeze the window waiting for it;
    a map still being measured stops and is measured again when shown. The window's close ends the process."""
    import multiprocessing
    config = Config(activation="linear", init="orthogonal", spectral_radius=0.9, seq_len=100, **SMALL)
    measured(qtbot, view, config)
    drawn, requests = view.maps_drawn, view._request
    view.hide()
    view.show()
    assert (view.maps_drawn, view._request, view.measuring) == (drawn, requests, False) and view._process.started
    view.set_runs([info(config.replace(activation="tanh"))])  # a new network: its map is being measured
    assert view.measuring and view._request == requests + 1
    view.hide()  # stopped at its next stack; the process stays
    assert not view.measuring and view._process.started
    view.show()  # measured again
    qtbot.waitUntil(lambda: view.maps_drawn > drawn, timeout=60_000)
    assert view._request == requests + 3 and "tanh RNN" in view.title_label.text()
    view.shutdown()
    assert not view._process.started and multiprocessing.active_children() == []


def test_a_map_process_that_cannot_start_is_said_in_the_title_and_tried_again(qtbot, view, monkeypatch):
    def no_process(*args):
        raise OSError("[Errno 24] Too many open files")
    monkeypatch.setattr(view._process, "submit", no_process)
    view.set_runs([info(Config(**SMALL))])
    assert not view.measuring and "could not measure (OSError: [Errno 24] Too many open files)" in view.title_label.text()
    monkeypatch.undo()
    measured(qtbot, view, Config(**SMALL).replace(hidden=6))  # the next change tries again


def test_a_click_on_a_cell_applies_its_settings(qtbot, view):
    measured(qtbot, view, Config(**SMALL))
    with qtbot.waitSignal(view.settings_chosen) as chosen:
        view.choose(9, 0)
    assert chosen.args == [{"spectral_radius": 1.5, "seq_len": 10}]
    with qtbot.assertNotEmitted(view.settings_chosen):
        view.choose(10, 0)


def test_the_contour_follows_the_cells_centres():
    values = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    xs, ys = contour_lines(values)
    assert np.allclose(xs[np.isfinite(xs)], 1.0) and np.nanmin(ys) == 0 and np.nanmax(ys) == 2


def test_a_sweep_folder_opens_in_the_window_and_a_click_there_trains_its_settings(make_window, qtbot, tmp_path):
    folder = tmp_path / "sweep"
    assert cli.main(["sweep", "--set", "hidden=8", "--set", "batch=4", "--grid", "hidden=4,8",
                     "--grid", "activation=tanh,relu", "--set", "seq_len=12", "--out", str(folder),
                     "--workers", "1"]) == 0
    window = make_window(view_classes=[PhaseView])
    view = window.views["phase"]
    assert not window.view_actions["phase"].isChecked() and "open_sweep" in window.actions_by_name
    assert window.files.open(folder / "sweep.csv")
    assert window.view_actions["phase"].isChecked() and view.sweep_folder == str(folder)
    assert (view.phase.x_key, view.phase.y_key) == ("hidden", "activation")
    qtbot.waitUntil(lambda: view.dot_position() == (1.5, 0.5))  # the window's hidden 8, tanh (at its first draw)
    view.choose(0, 1)
    qtbot.waitUntil(lambda: window.session.configs[0].hidden == 4 and window.session.configs[0].activation == "relu")
    assert window.controls.config().hidden == 4
    window.files.open(tmp_path)  # not a sweep (no sweep.json): an experiment file's refusal, not a crash
    view.show_current()
    assert view.sweep_folder is None


def test_phase_png_is_the_views_picture_of_the_sweep(tmp_path):
    folder = tmp_path / "s"
    assert cli.main(["sweep", "--set", "hidden=8", "--set", "batch=4", "--grid", "spectral_radius=0.8,1,1.2",
                     "--grid", "seq_len=5,20", "--out", str(folder), "--workers", "1"]) == 0
    path = write_phase_png(folder)
    assert path == folder / sweep.PICTURE_FILE and path.stat().st_size > 10_000
