"""GUI test set-up: fail any test that leaves a QThread running or a child process alive.

Every QThread started during a test is recorded (by wrapping QThread.start), as is every
TrainingController, so a leak is named in the failure and then cleaned up so it cannot spill
into the next test.
"""
import multiprocessing
import os

import pytest
from PySide6.QtCore import QThread

from engine.config import Config
from gui.worker_client import TrainingController
from gui.session import RunSession
from gui.views.base import View


def _live_children() -> list[int]:
    pids = []
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmdline = ""
        # multiprocessing's resource tracker lives as long as this process, by design
        if state != "Z" and "resource_tracker" not in cmdline:
            alive.append(pid)
    return alive


@pytest.fixture(autouse=True)
def no_leftover_qthreads_or_processes(monkeypatch):
    started: list[QThread] = []
    controllers: list[TrainingController] = []
    original_start = QThread.start
    original_init = TrainingController.__init__

    def recording_start(self, *args):
        started.append(self)
        return original_start(self, *args)

    def recording_init(self, *args, **kwargs):
        controllers.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", recording_start)
    monkeypatch.setattr(TrainingController, "__init__", recording_init)
    children_before = set(_live_children())
    yield controllers
    problems = []
    for thread in started:
        try:
            if thread.isRunning():
                problems.append(f"QThread {type(thread).__name__} still running")
        except RuntimeError:
            pass  # the C++ object is gone: it cannot be running
    for c in controllers:
        if c.in_process and c._thread is not None and c._thread.is_alive():
            problems.append("in-process training worker thread still running")
    multiprocessing.active_children()  # reaps finished children
    leftover = set(_live_children()) - children_before
    if leftover:
        problems.append(f"child processes still alive: {sorted(leftover)}")
    for c in controllers:  # clean up so one leak does not fail the following tests too
        c.shutdown(timeout=2.0)
    assert not problems, "; ".join(problems)


class RecordingView(View):
    """A placeholder view that records what the window hands it."""
    view_id = "recording"
    title = "Recording"
    explanation = "Records refresh calls for the tests."

    def __init__(self):
        super().__init__()
        self.refreshes = 0
        self.max_steps = 0
        self.infos = []
        self.cleared = 0

    def set_runs(self, infos):
        self.infos = list(infos)

    def refresh(self, histories):
        self.refreshes += 1
        if histories and len(histories[0].steps):
            self.max_steps = max(self.max_steps, len(histories[0].steps))

    def clear(self):
        self.cleared += 1


SMALL = Config(seq_len=12, hidden=8, batch=4)


@pytest.fixture
def make_window(qtbot):
    """Build a MainWindow (in-process worker unless asked otherwise); closed at teardown."""
    from gui.main_window import MainWindow
    windows = []

    def make(configs=None, in_process=True, view_classes=None, **kwargs):
        session = RunSession(list(configs or [SMALL]), in_process=in_process)
        window = MainWindow(session, view_classes=[RecordingView] if view_classes is None else view_classes,
                            **kwargs)
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()  # shortcuts need an active window, even offscreen
        qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
        windows.append(window)
        qtbot.waitUntil(lambda: len(window.session.histories) == len(session.configs), timeout=30_000)
        return window

    make.RecordingView = RecordingView
    yield make
    for window in windows:
        window.close()
