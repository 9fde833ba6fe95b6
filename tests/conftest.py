"""Test-wide set-up: no screen, one torch thread, and no test may leave a thread running."""
import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """Fail any test that leaves a Python thread running (QThreads are checked in tests/gui)."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leftover, f"test left threads running: {leftover}"
