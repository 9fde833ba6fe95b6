"""gui/following.py: the window follows a run folder (engine.watching) as a script writes it: the views draw
its records as histories of their own, one recurrent module at a time; the status bar says where, which
step and whether the writer stopped or finished; a cut-short record waits, a damaged one stops following."""
import numpy as np
import pytest

from engine.run_folder import FRAME, ModuleRecord, Record, RunWriter
from gui import following
from gui.app import main
from gui.views import ALL_VIEWS

T = 12
SHAPES = {"encoder.rnn": {"cell": "lstm", "layers": 2, "directions": 1, "hidden": 4, "input_size": 3,
                          "batch_first": True},
          "decoder": {"cell": "rnn_tanh", "layers": 1, "directions": 1, "hidden": 4, "input_size": 4,
                      "batch_first": True}}


def record(step: int) -> Record:
    fall = 10.0 ** -np.linspace(step / 10, 0, T)  # the gradient falls further back in time as it trains
    lstm = ModuleRecord(np.stack([fall, 2 * fall]), np.stack([fall, fall]), fall / 3, np.ones((2, T, 4)) * fall[:, None],
                        float(np.log10(fall[-1] / fall[0])), np.array([1.2, 0.9]), ("encoder.rnn: vanishing",))
    tanh = ModuleRecord(fall[None] / 7, None, fall, None, 0.5, np.array([0.7]))
    return Record(step, 3.0 / step, {"encoder.rnn": lstm, "decoder": tanh})


@pytest.fixture
def window(make_window):
    return make_window(view_classes=ALL_VIEWS)


def test_the_views_follow_a_growing_run_folder_and_leave_it_for_training(window, tmp_path, qtbot):
    writer = RunWriter(tmp_path / "run", SHAPES, every=5)
    for step in (1, 5):
        writer.append(record(step))
    shown_before = dict(window.grid.shown)
    settings_before = window.controls_dock.isHidden()
    assert window.actions_by_name["open_run_folder"] in window.menus["file"].actions()
    assert window.follower.follow(tmp_path / "run")
    session, follower = window.session, window.follower
    assert follower.state == "following" and follower.label.text() == f"following {tmp_path / 'run'} (encoder.rnn), step 5"
    assert follower.label.isVisible() and not window.status.state.isVisible()
    assert window.controls_dock.isHidden()  # the lab's own settings are not the followed run's
    [history] = session.histories
    assert history.info.task_label == "encoder.rnn" and history.info.config.cell == "lstm"
    assert history.steps.view().tolist() == [1, 5]
    np.testing.assert_array_equal(history.latest.grad_h, record(5).modules["encoder.rnn"].grad_h)
    np.testing.assert_allclose(history.loss.view(), [3.0, 0.6])
    assert not window.grid.shown["activation"] and not window.grid.shown["param_grads"]  # no numbers for them
    for key, view in window.views.items():  # every view shown draws the record
        if window.grid.shown[key]:
            view.refresh(session.shown_histories())
    assert not window.display.broken_views

    writer.append(record(10))
    qtbot.waitUntil(lambda: len(history.steps) == 3, timeout=5_000)  # the poll timer reads what is new
    assert follower.label.text().endswith("step 10")

    path = tmp_path / "run" / "records.bin"
    size = path.stat().st_size
    writer.append(record(15))
    whole = path.read_bytes()
    path.write_bytes(whole[:size + FRAME.size + 5])  # being written
    follower.poll()
    assert len(history.steps) == 3
    path.write_bytes(whole)
    follower.poll()
    assert history.steps.view().tolist() == [1, 5, 10, 15]

    assert [follower.chooser.itemText(k) for k in range(follower.chooser.count())] == ["encoder.rnn", "decoder"]
    follower.chooser.setCurrentText("decoder")
    [shown] = session.histories
    assert shown.info.task_label == "decoder" and shown.info.config.cell == "rnn" and len(shown.steps) == 4
    assert follower.label.text() == f"following {tmp_path / 'run'} (decoder), step 15"

    writer.close()
    follower.poll()
    assert follower.state == "finished" and follower.label.text().endswith("run finished")

    window.reset()  # the lab's own training again: following ends, the views come back
    qtbot.waitUntil(lambda: not follower.active, timeout=10_000)
    assert dict(window.grid.shown) == shown_before and window.status.state.isVisible()
    assert window.controls_dock.isHidden() == settings_before  # as it was
    assert session.histories[0] is not shown


def test_a_writer_that_stops_or_a_folder_that_goes_is_said(window, tmp_path, monkeypatch):
    monkeypatch.setattr(following, "STOPPED_AFTER_S", 0.0)
    writer = RunWriter(tmp_path / "run", SHAPES, every=5)
    window.follower.follow(tmp_path / "run")
    assert window.follower.state == "following"  # a run with no record yet
    writer.append(record(1))
    window.follower.poll()
    window.follower.poll()  # nothing new, for longer than STOPPED_AFTER_S
    assert window.follower.state == "writer stopped"
    assert "writer stopped" in window.follower.label.text()
    writer._file.close()
    for file in (tmp_path / "run").iterdir():
        file.unlink()
    (tmp_path / "run").rmdir()
    window.follower.poll()
    assert window.follower.state == "gone" and window.follower.label.text().endswith("folder gone")


def test_a_folder_without_a_run_yet_is_waited_for(window, tmp_path):
    window.follower.follow(tmp_path / "later")
    assert window.follower.state == "waiting" and "waiting for a run" in window.follower.label.text()
    writer = RunWriter(tmp_path / "later", SHAPES, every=5)
    writer.append(record(1))
    window.follower.poll()
    assert window.follower.state == "following" and len(window.session.histories[0].steps) == 1
    writer.close()


def test_a_damaged_record_stops_following_with_the_readers_message(window, tmp_path, qtbot):
    writer = RunWriter(tmp_path / "run", SHAPES, every=5)
    writer.append(record(1))
    writer.close()
    path = tmp_path / "run" / "records.bin"
    data = bytearray(path.read_bytes())
    data[FRAME.size + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    with qtbot.waitSignal(window.follower.failed) as failed:
        assert not window.follower.follow(tmp_path / "run")
    assert "records.bin (the record at byte 0): damaged" in failed.args[0]
    assert not window.follower.active and window.banner.isVisible()


def test_follow_on_the_command_line_refuses_what_is_not_a_run(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["--follow", str(tmp_path / "file")]) == 2
    assert "--follow" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text('{"format": "rnn-gradient-lab run", "version": 9, "modules": {}}')
    assert main(["--follow", str(tmp_path / "run")]) == 2
    assert "version 9" in capsys.readouterr().err


def test_a_new_run_in_the_followed_folder_is_followed_from_its_start(window, tmp_path):
    writer = RunWriter(tmp_path / "run", SHAPES, every=5)
    for step in (1, 5, 10):
        writer.append(record(step))
    writer.close()
    window.follower.follow(tmp_path / "run")
    assert len(window.session.histories[0].steps) == 3
    again = RunWriter(tmp_path / "run", SHAPES, every=5, replace=True)  # the script ran again
    again.append(record(1))
    window.follower.poll()
    [history] = window.session.histories
    assert history.steps.view().tolist() == [1] and window.follower.state == "following"
    again.close()
