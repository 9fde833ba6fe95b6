"""Child processes of the window's: started with Ctrl-C ignored, and gone when their parent is.

The training worker (gui/worker_client.py) and the Phase diagram's map process (engine/phase_maps.py) are
spawned children of the window's process. No Qt.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading


@contextlib.contextmanager
def sigint_ignored():
    """SIGINT ignored while a child process starts: the child inherits that across exec (and Python
    keeps an ignored SIGINT ignored), so the terminal's Ctrl-C, sent to the whole process group,
    cannot kill it, halfway through its imports say: Ctrl-C is the window's to handle. (A Ctrl-C in
    the few milliseconds the start takes is lost. Blocking it instead is no help: the child's mask
    starts empty, and another thread of this process would take the signal and drop it.) Off the
    main thread, where signal handlers cannot be set, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def exit_with_parent() -> None:
    """In a spawned child: end this process as soon as its parent has ended (killed, say), from a daemon
    thread that waits on the parent's sentinel. A pool's worker would otherwise wait on its queue for ever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        parent.join()
        os._exit(0)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
