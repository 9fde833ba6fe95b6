"""The controller: the GUI's one way to the training worker.

Lives on the GUI thread; owns a driver QThread that owns the receiving end of the worker's pipe,
and the worker itself (a spawned child process by default, or a Python thread in `in_process`
mode for tests and debugging). Commands go out from the GUI thread on a second, one-way pipe.
Snapshots arriving from the worker are merged into a one-slot mailbox that the display timer
empties with `take_updates()`; the driver signals `yielded` only when the mailbox goes from
empty to full, so bursts coalesce and no signal backlog can build up.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading

from PySide6.QtCore import QObject, QThread, Signal

from engine.config import Config
from engine.worker import worker_main


class _Driver(QThread):
    """Reads the worker's messages until it says goodbye or dies."""

    def __init__(self, controller: "TrainingController"):
        super().__init__()
        self.controller = controller

    def run(self):
        c = self.controller
        while True:
            try:
                message = c._results.recv()
            except (EOFError, OSError):
                # EOF means the worker is gone even while its process is still exiting (and
                # is_alive() may still say True): remember it, so Reset restarts instead of
                # sending into a dying pipe.
                c._worker_lost = True
                if not c._closing:
                    code = None
                    if c._process is not None:
                        c._process.join(2.0)  # reap it, so the message can say how it ended
                        code = c._process.exitcode
                    c.errored.emit(f"The training worker stopped unexpectedly (exit code {code}). "
                                   "Press Reset to start a new one.", "")
                    c.state_changed.emit("stopped")
                return
            kind = message[0]
            if kind == "batch":
                c._deliver(message[1], message[2])
            elif kind == "runs":
                c._deliver_runs(message[1])
            elif kind == "state":
                c.state_changed.emit(message[1])
            elif kind == "stopped_at":
                c.stopped_at.emit(message[1])
            elif kind == "error":
                c.errored.emit(message[1], message[2])
            elif kind == "bye":
                return


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while a child process starts: the child inherits that across exec (and Python
    keeps an ignored SIGINT ignored), so the terminal's Ctrl-C, sent to the whole process group,
    cannot kill it, halfway through its imports say: Ctrl-C is the window's to handle. (A Ctrl-C in
    the few milliseconds the start takes is lost. Blocking it instead is no help: the child's mask
    starts empty, and another thread of this process would take the signal and drop it.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


class TrainingController(QObject):
    yielded = Signal()              # new snapshots wait in the mailbox (coalesced)
    runs_changed = Signal(object)   # list[RunInfo]: a run set was (re)built
    state_changed = Signal(str)     # running | paused | diverged | stopped
    stopped_at = Signal(int)        # training paused itself at the step set_until asked for
    errored = Signal(str, str)      # message for the user, traceback for the details
    finished = Signal()             # the worker and driver have stopped

    def __init__(self, configs: list[Config], in_process: bool = False, parent=None):
        super().__init__(parent)
        self.in_process = in_process
        self._lock = threading.Lock()
        self._pending: list[list] | None = None
        self._pending_runs = None
        self._rate = 0.0
        self._closing = False
        self._process = None
        self._thread = None
        self.configs = list(configs)
        self._launch()

    def _launch(self):
        self._worker_lost = False
        ctx = mp.get_context("spawn")
        cmd_recv, self._commands = ctx.Pipe(duplex=False)
        self._results, res_send = ctx.Pipe(duplex=False)
        if self.in_process:
            self._thread = threading.Thread(target=worker_main, args=(cmd_recv, res_send, 1),
                                            name="training-worker", daemon=True)
            self._thread.start()
        else:
            self._process = ctx.Process(target=worker_main, args=(cmd_recv, res_send, 1),
                                        name="rnn-gradient-lab-worker", daemon=True)
            with _sigint_ignored():  # Ctrl-C in the terminal is the window's to handle, not the worker's
                self._process.start()
            cmd_recv.close()
            res_send.close()  # so the driver sees EOF if the worker dies
        self._driver = _Driver(self)
        self._driver.start()
        self._send(("set_runs", self.configs))

    # ------------------------------------------------------------------ commands (GUI thread)
    def _send(self, command):
        try:
            self._commands.send(command)
        except (BrokenPipeError, OSError):
            self.errored.emit("The training worker is not running. Press Reset to start a new one.", "")

    def set_configs(self, configs: list[Config]):
        """Hand the worker a complete new set of configs; it applies them at its next step."""
        self.configs = list(configs)
        self._send(("set_runs", self.configs))

    def start(self):
        self._send(("start",))

    def pause(self):
        self._send(("pause",))

    def set_until(self, steps: int | None):
        """Pause training by itself once every run has trained `steps` steps (once); None: never."""
        self._send(("until", steps))

    def step(self):
        self._send(("step",))

    def reset(self):
        if not self.alive():
            self.restart()
            return
        self._send(("reset",))

    def alive(self) -> bool:
        if self._worker_lost:
            return False
        if self.in_process:
            return self._thread is not None and self._thread.is_alive()
        return self._process is not None and self._process.is_alive()

    def restart(self):
        """Start a fresh worker (after a crash) with the current configs."""
        self.shutdown(emit=False)
        self._closing = False
        self._launch()

    # ------------------------------------------------------------------ mailbox
    def _deliver(self, batches, rate):
        with self._lock:
            was_empty = self._pending is None
            if was_empty:
                self._pending = [list(b) for b in batches]
            else:
                if len(self._pending) != len(batches):
                    self._pending = [[] for _ in batches]
                for mine, new in zip(self._pending, batches):
                    mine.extend(new)
            self._rate = rate
        if was_empty:
            self.yielded.emit()

    def _deliver_runs(self, infos):
        with self._lock:
            self._pending = None  # snapshots of the old run set must not reach the new histories
            self._pending_runs = infos
        self.runs_changed.emit(infos)

    def current_runs(self):
        """The RunInfos of the newest run set (None until the worker has built one), for a window
        that connects to `runs_changed` after the worker may already have announced it."""
        with self._lock:
            return self._pending_runs

    def take_updates(self):
        """Everything that arrived since the last call: (list of snapshot lists per run, steps/s), or None."""
        with self._lock:
            pending, self._pending = self._pending, None
            return None if pending is None else (pending, self._rate)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, emit: bool = True, timeout: float = 5.0):
        """Stop the worker and the driver thread; safe to call more than once."""
        if self._closing and not self._driver.isRunning():
            return
        self._closing = True
        try:
            self._commands.send(("quit",))
        except (BrokenPipeError, OSError):
            pass
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(1.0)
        if self._thread is not None:
            self._thread.join(timeout)
        if not self._driver.wait(int(timeout * 1000)):
            self._results.close()  # unblocks recv() in the driver
            self._driver.wait(1000)
        for conn in (self._commands, self._results):
            try:
                conn.close()
            except OSError:
                pass
        if emit:
            self.finished.emit()
