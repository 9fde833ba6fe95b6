"""Large files open off the GUI thread, with a progress dialog whose Cancel changes nothing."""
import threading

from PySide6.QtWidgets import QPushButton

from engine import experiment as ex
from engine.config import Config
from engine.metrics import MetricsLog
from engine.trainer import Trainer
from gui import files as files_module

TIMEOUT = 30_000


def _saved(tmp_path, steps=4):
    config = Config(seq_len=10, hidden=6, seed=7)
    trainer, log = Trainer(config), MetricsLog()
    for _ in range(steps):
        log.append(trainer.step())
    return config, ex.save(tmp_path / "big.rgl", ex.Experiment([config], logs=[log]), include_data=True)


def read_after(cancel, window, qtbot) -> list[str]:
    """`cancel()`, then the reading thread (held back by the test until now) started and waited for: what
    the status line was told."""
    loading, reports = window.files._loading, []
    cancel()
    window.files.reported.connect(reports.append)
    with qtbot.waitSignal(loading.done, timeout=TIMEOUT):
        loading.thread.start()
    loading.thread.join()
    qtbot.waitUntil(lambda: window.files._loading is None, timeout=TIMEOUT)
    return reports


def test_a_large_file_opens_off_the_gui_thread_and_shows_its_data(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    config, path = _saved(tmp_path)
    monkeypatch.setattr(files_module, "LOAD_IN_BACKGROUND_BYTES", 0)  # every file counts as large
    with qtbot.waitSignal(window.files.opened, timeout=TIMEOUT):
        assert window.files.open(path) is None  # reading: the answer comes as a signal
        # a thread of its own reads it (it may have finished already: its answer waits for the GUI thread)
        assert window.files._loading.thread.ident not in (None, threading.get_ident())
    assert window.session.configs == [config] and window.session.showing_recorded
    qtbot.waitUntil(lambda: len(window.session.histories) == 1 and len(window.session.histories[0].steps) == 4,
                    timeout=TIMEOUT)


def test_cancelling_a_large_file_changes_nothing(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    before = list(window.session.configs)
    _, path = _saved(tmp_path)
    monkeypatch.setattr(files_module, "LOAD_IN_BACKGROUND_BYTES", 0)
    monkeypatch.setattr(files_module._Loading, "start", lambda self: None)  # started below, after Cancel
    assert window.files.open(path) is None
    (cancel,) = window.files._loading.dialog.findChildren(QPushButton)
    assert read_after(cancel.click, window, qtbot) == ["Opening big.rgl was cancelled; nothing was changed."]
    assert window.session.configs == before and not window.session.showing_recorded


def test_a_second_file_waits_for_the_first(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    _, path = _saved(tmp_path)
    monkeypatch.setattr(files_module, "LOAD_IN_BACKGROUND_BYTES", 0)
    monkeypatch.setattr(files_module._Loading, "start", lambda self: None)
    assert window.files.open(path) is None
    assert window.files.open(path) is False and "still being opened" in window.banner.message.text()
    loading = window.files._loading
    loading.thread.start()
    window.files.cancel_loading()  # (what closing the window does) joins the thread
    assert not loading.thread.is_alive()


def test_the_window_keeps_drawing_while_a_large_data_file_is_read(make_window, qtbot, tmp_path, monkeypatch):
    """The reader is held inside its thread until the GUI thread has run its timer several times: were
    the file read on the GUI thread, the timer could never fire and the reading never end."""
    from PySide6.QtCore import QTimer

    from engine import user_data
    window = make_window()
    path = tmp_path / "series.csv"
    path.write_text("v\n" + "".join(f"{k % 17}.25\n" for k in range(400_000)))  # over 2 MB
    assert path.stat().st_size > files_module.LOAD_IN_BACKGROUND_BYTES
    ticks, release = [], threading.Event()
    real_read = user_data.read

    def held_read(*args, **kwargs):
        assert threading.current_thread() is not threading.main_thread()
        release.wait(timeout=20)
        assert release.is_set()
        return real_read(*args, **kwargs)
    monkeypatch.setattr(user_data, "read", held_read)
    on_gui_thread = []
    window.files.opened.connect(lambda _: on_gui_thread.append(threading.current_thread() is threading.main_thread()))
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    with qtbot.waitSignal(window.files.opened, timeout=TIMEOUT):
        assert window.files.open(path) is None
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=TIMEOUT)  # the event loop runs while it reads
        release.set()
    timer.stop()
    assert window.session.configs[0].data == str(path) and window.session.configs[0].task == "data"
    assert on_gui_thread == [True]  # what was read is applied on the GUI thread


def test_cancelling_a_model_being_read_changes_nothing(make_window, qtbot, tmp_path, monkeypatch):
    import torch
    from torch import nn
    window = make_window()
    before = list(window.session.configs)
    torch.save(nn.GRU(2, 4).state_dict(), tmp_path / "m.pt")
    monkeypatch.setattr(files_module, "LOAD_IN_BACKGROUND_BYTES", 0)
    monkeypatch.setattr(files_module._Loading, "start", lambda self: None)
    assert window.files.open(tmp_path / "m.pt") is None
    assert read_after(window.files._loading.cancel, window, qtbot) == ["Opening m.pt was cancelled; nothing was changed."]
    assert window.session.configs == before
