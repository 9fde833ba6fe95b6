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
SLOW = (  # node ids (or their start) of the tests that take seconds each: processes of their own, long training
    "tests/test_install.py", "tests/test_notebook.py", "tests/test_import_name.py", "tests/gui/test_app.py",
    "tests/gui/test_command_line_files.py", "tests/engine/test_literature.py", "tests/engine/test_fuzz.py",
    "tests/engine/test_memory.py::test_the_estimate_covers", "tests/engine/test_memory.py::test_main_py_train",
    "tests/engine/test_sweep.py::test_a_spawned_pool", "tests/engine/test_sweep.py::test_a_sweep_stopped_halfway",
    "tests/engine/test_crafted_files.py::test_the_three_tracebacks", "tests/engine/test_crafted_files.py::test_train_",
    "tests/engine/test_crafted_files.py::test_a_crafted_experiment_on_the_command_line", "tests/engine/test_cli.py",
    "tests/engine/test_bounded_input.py", "tests/engine/test_models_as_written.py::test_a_relu_rnn",
    "tests/gui/test_recording.py", "tests/gui/test_live_changes.py::test_a_thousand",
    "tests/engine/test_lessons.py::test_the_claim_holds_at_every_step_to_the_pause_for_every_run",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WINDOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.window)
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
