"""The command line of the window, the timed self-closing session, and cross-thread signal volume."""
import json
import os
import pathlib
import select
import signal
import subprocess
import sys

import pytest
from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_main(*args, timeout=60):
    """Run the app; if it has not finished within `timeout` seconds, fail with what it printed and every
    thread's Python stack (faulthandler dumps them on SIGABRT), instead of hanging until pytest's limit."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    with subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            exited = process.poll() is not None  # exited, but a child still holds its output open
            if not exited:
                process.send_signal(signal.SIGABRT)
            try:
                stdout, stderr = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            pytest.fail(f"main.py {' '.join(args)} did not finish within {timeout} s "
                        f"({'it exited, but its output stayed open' if exited else 'stacks below'}):\n"
                        f"{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("args, words", [
    (["--set", "foo=1"], ["foo", "not a setting"]),
    (["--set", "seq_len=abc"], ["seq_len", "abc", "integer"]),
    (["--set", "cell=transformer"], ["cell", "transformer", "lstm"]),
    (["--set", "task=adding", "--set", "seq_len=1"], ["seq_len", "at least 2"]),
    (["--lesson", "no-such-lesson"], ["--lesson", "no-such-lesson", "vanishing-tanh"]),
    (["--config", "/no/such/file.toml"], ["/no/such/file.toml", "cannot be read"]),
    (["--bogus"], ["unrecognized", "--bogus"]),
    (["--quit-after", "-1"], ["--quit-after", "-1"]),
    (["--stats", "x.json"], ["--quit-after"]),
    (["--quit-after", "nan"], ["--quit-after", "nan", "a number"]),
    (["--quit-after", "inf"], ["--quit-after", "inf", "a number"]),
    (["--quit-after", "1_5"], ["--quit-after", "1_5", "a number"]),
    (["--quit-after", "1e300"], ["--quit-after", "1e+300", "at most"]),
    (["--quit-after", "1", "--stats", "main.py/s.json"], ["--stats", "main.py/s.json", "cannot be written",
                                                           "a folder you may write to"]),
    (["--quit-after", "1", "--screenshot", "/tmp"], ["--screenshot", "/tmp", "no image suffix", ".png"]),
    (["--quit-after", "1", "--screenshot", "shot"], ["--screenshot", "shot", "no image suffix"]),
    (["--quit-after", "1", "--screenshot", "shot.gif"], ["--screenshot", "shot.gif", "not an image type", ".png"]),
    (["--quit-after", "1", "--screenshot", "main.py/shot.png"], ["--screenshot", "cannot be written"]),
    (["--quit-after", "1", "--stats", "/dev/null/x.json"], ["--stats", "/dev/null is a file, not a folder"]),
    (["--set", "hidden=2048", "--set", "seq_len=5000", "--set", "batch=64", "--set", "layers=8"],
     ["seq_len 5000 x batch 64 x hidden 2048 x layers 8", "memory", "seq_len up to"]),
])
def test_bad_arguments_exit_2_with_a_message(args, words):
    result = run_main(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_a_lesson_in_the_window_keeps_every_set_in_each_of_its_runs(tmp_path):
    from engine.lessons import LESSONS
    stats_path = tmp_path / "stats.json"
    result = run_main("--lesson", "fix-lstm", "--set", "seed=3", "--set", "hidden=12", "--quit-after", "4",
                      "--stats", str(stats_path))
    assert result.returncode == 0, result.stderr
    configs = json.loads(stats_path.read_text())["configs"]
    lesson_runs = LESSONS["fix-lstm"].runs()
    assert len(configs) == len(lesson_runs) == 2
    assert [c["seed"] for c in configs] == [3, 3] and [c["hidden"] for c in configs] == [12, 12]
    assert [c["cell"] for c in configs] == [c.cell for c in lesson_runs]  # the lesson's own difference kept


def test_timed_session_writes_stats_and_screenshot(tmp_path):
    stats_path, shot = tmp_path / "stats.json", tmp_path / "window.png"
    result = run_main("--quit-after", "10", "--stats", str(stats_path), "--screenshot", str(shot),
                      "--set", "seq_len=20", "--set", "hidden=16")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stats = json.loads(stats_path.read_text())
    for key in ("frames", "fps", "training_steps", "steps_per_second", "ui_stall_ms_p50", "ui_stall_ms_p99",
                "ui_stall_ms_max", "peak_rss_mb", "start_to_first_frame_s"):
        assert key in stats, key
    assert stats["frames"] > 0 and stats["training_steps"] > 0 and stats["peak_rss_mb"] > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="signals a process group as a terminal does")
def test_ctrl_c_closes_the_window_cleanly(tmp_path):
    """Ctrl-C in the terminal reaches the window and its worker process (one process group): the window
    closes as its close button would, a timed session writing its stats first; the worker is not
    killed by it, and nothing prints a traceback. Before: KeyboardInterrupt in paint handlers, a dead
    worker, and the session ran its full length."""
    stats = tmp_path / "stats.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    process = subprocess.Popen([sys.executable, "main.py", "--quit-after", "120", "--stats", str(stats),
                                "--set", "seq_len=20", "--set", "hidden=16"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)  # the session says when it runs
        assert ready, "the session never said it was running"
        assert process.stdout.readline().startswith("session running"), "the session ended early"
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole group
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "stopped unexpectedly" not in stderr, stderr
    assert json.loads(stats.read_text())["seconds"] < 60


class _Emitter(QThread):
    payload = Signal(int, object, str, bool)

    def __init__(self, count):
        super().__init__()
        self.count = count

    def run(self):
        for i in range(self.count):
            self.payload.emit(i, {"values": [i, i * 0.5], "flag": i % 2 == 0}, f"message {i}", i % 3 == 0)


class _Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.received = []

    @Slot(int, object, str, bool)
    def take(self, i, data, text, flag):
        self.received.append((i, data["values"][1], text, flag))


def test_thousands_of_queued_cross_thread_signals_arrive_intact(qtbot):
    """Guards against PySide6 6.12's Signal.emit reference-count bug (a crash after a few thousand)."""
    count = 6000
    emitter, receiver = _Emitter(count), _Receiver()
    emitter.payload.connect(receiver.take, Qt.ConnectionType.QueuedConnection)
    with qtbot.waitSignal(emitter.finished, timeout=60_000):
        emitter.start()
    emitter.wait()
    qtbot.waitUntil(lambda: len(receiver.received) == count, timeout=60_000)
    assert [r[0] for r in receiver.received] == list(range(count))
    assert all(r == (i, i * 0.5, f"message {i}", i % 3 == 0) for i, r in enumerate(receiver.received))


def test_lecture_session_with_a_lesson_exits_cleanly(tmp_path):
    """Lecture mode re-arranges the grid; left to PySide's at-exit teardown, its pending layout work
    called back into half-finalized Python and the process died with SIGSEGV after quitting."""
    shot = tmp_path / "lecture.png"
    result = run_main("--lesson", "vanishing-sigmoid", "--lecture", "--theme", "light", "--quit-after", "3",
                      "--screenshot", str(shot))
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_session_with_no_screen_opens_at_desktop_size(tmp_path):
    """With no display, a timed session draws off-screen on a 1920x1080 screen: on Qt's default 800x800
    one the window opened at 994x800, its waterfall a thin strip."""
    from PIL import Image
    shot = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "main.py", "--quit-after", "2", "--screenshot", str(shot),
                             "--set", "seq_len=20", "--set", "hidden=16"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with Image.open(shot) as image:
        assert image.size == (1600, 1000)  # the window's default size on a desktop screen
