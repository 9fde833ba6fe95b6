"""The controller: the GUI's one way to the training worker, and the worker's one way back.

Lives on the GUI thread; owns a driver QThread that owns the receiving end of the worker's pipe,
and the worker itself (a spawned child process by default, or a Python thread in `in_process`
mode for tests and debugging). Commands go out from the GUI thread on a second, one-way pipe.
Everything the worker says (engine/worker.py lists it), and every failure to reach it, joins ONE
ordered queue, which the run session empties with `take_messages()`. A batch of snapshots that
finds the queue's last message a batch of the same generation merges into it, so a busy worker
never builds a backlog; `yielded` is emitted only when the queue goes from empty to non-empty.
"""
from __future__ import annotations

import multiprocessing as mp
import threading

from PySide6.QtCore import QObject, QThread, Signal

from engine import admission
from engine.config import Config
from engine.errors import ConfigError
from engine.messages import (Batch, Bye, Failed, Pause, PauseAt, Quit, Reset, SetRuns, Start, StateChanged, Step,
                             WantDetail, WantEigenvalues)
from engine.processes import sigint_ignored
from engine.worker import worker_main


class MessageQueue:
    """The worker's messages in the order it sent them, safe to fill from one thread and empty from
    another. A batch whose predecessor in the queue is a batch of the same generation merges into it
    (the runs' snapshot lists extended, the newer rate kept): a one-slot mailbox for batches, which
    keeps their place among the other messages."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list = []

    def put(self, message) -> bool:
        """Add `message`; True if the queue was empty (whoever empties it should be told)."""
        with self._lock:
            was_empty = not self._items
            last = self._items[-1] if self._items else None
            if isinstance(message, Batch) and isinstance(last, Batch) and last.generation == message.generation \
                    and len(last.snapshots) == len(message.snapshots):
                self._items[-1] = last.merged(message)
            else:
                self._items.append(message)
            return was_empty

    def take(self) -> list:
        with self._lock:
            items, self._items = self._items, []
            return items


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
                    c._post(Failed(f"The training worker stopped unexpectedly (exit code {code}). "
                                   "Press Reset to start a new one."))
                    c._post(StateChanged("stopped"))
                return
            if isinstance(message, Bye):
                return
            c._post(message)


class TrainingController(QObject):
    yielded = Signal()              # messages wait in the queue (emitted when it stops being empty)

    def __init__(self, configs: list[Config], in_process: bool = False, parent=None):
        super().__init__(parent)
        self.in_process = in_process
        self._queue = MessageQueue()
        self._closing = False
        self._process = None
        self._thread = None
        self.configs = list(configs)
        self.detail_request = None
        self.eigenvalues = False  # the tanh RNN's eigenvalues taken at every step (want_eigenvalues)
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
            with sigint_ignored():  # Ctrl-C in the terminal is the window's to handle, not the worker's
                self._process.start()
            cmd_recv.close()
            res_send.close()  # so the driver sees EOF if the worker dies
        self._driver = _Driver(self)
        self._driver.start()
        if self.eigenvalues:  # before the runs: a restarted worker takes them from its first step
            self._send(WantEigenvalues(True))
        self._send(SetRuns(tuple(self.configs), True, self._promises()))
        if self.detail_request is not None:  # a restarted worker measures what the views still show
            self._send(WantDetail(self.detail_request))

    # ------------------------------------------------------------------ commands (GUI thread)
    def _send(self, command):
        try:
            self._commands.send(command)
        except (BrokenPipeError, OSError):
            self._post(Failed("The training worker is not running. Press Reset to start a new one."))

    def set_configs(self, configs: list[Config], fresh: bool = False):
        """Hand the worker a complete new set of configs; it applies them at its next step. fresh: a
        new run set from step 0 (a lesson, a file), else the runs go on with the new settings."""
        self.configs = list(configs)
        self._send(SetRuns(tuple(self.configs), fresh, self._promises()))

    def _promises(self) -> tuple:
        """The user's files as this process read them, for the worker to check it trains from the same."""
        try:
            return admission.promised(self.configs)
        except ConfigError:  # (a file gone since: the worker's own reading names it)
            return ()

    def start(self):
        self._send(Start())

    def pause(self):
        self._send(Pause())

    def set_until(self, steps: int | None):
        """Pause training by itself once every run has trained `steps` steps (once); None: never."""
        self._send(PauseAt(steps))

    def step(self):
        self._send(Step())

    def want_detail(self, request):
        """Have the worker measure steps closely (an engine.detail.DetailRequest), or stop (None)."""
        self.detail_request = request
        self._send(WantDetail(request))

    def want_eigenvalues(self, on: bool):
        """Have the worker take the tanh RNN's eigenvalues at every step from its next (engine.trainer's
        take_eigenvalues), or stop; sent only when it changes."""
        if on != self.eigenvalues:
            self.eigenvalues = on
            self._send(WantEigenvalues(on))

    def reset(self):
        if not self.alive():
            self.restart()
            return
        self._send(Reset())

    def alive(self) -> bool:
        if self._worker_lost:
            return False
        if self.in_process:
            return self._thread is not None and self._thread.is_alive()
        return self._process is not None and self._process.is_alive()

    def restart(self):
        """Start a fresh worker (after a crash) with the current configs."""
        self.shutdown()
        self._closing = False
        self._queue.take()  # the old worker's last words: its generations mean nothing to the new one
        self._launch()

    # ------------------------------------------------------------------ the queue
    def _post(self, message):
        """Queue one message (driver thread, or the GUI thread for a failed send), in order."""
        if self._queue.put(message):
            self.yielded.emit()

    def take_messages(self) -> list:
        """Everything the worker said since the last call, oldest first (engine/messages.py)."""
        return self._queue.take()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, timeout: float = 5.0):
        """Stop the worker and the driver thread; safe to call more than once."""
        if self._closing and not self._driver.isRunning():
            return
        self._closing = True
        try:
            self._commands.send(Quit())
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
