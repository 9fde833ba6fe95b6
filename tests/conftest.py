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


# Markers, so a developer can run the fast half alone (`make test-fast`: not window and not slow):
# `window` for every test that builds the whole main window (the make_window fixture), `slow` for
# the tests that start the app, the installer or a notebook in processes of their own (marked where
# they are written, module by module or test by test).
WINDOW_FIXTURES = {"make_window"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WINDOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.window)
