"""The run session and the one ordered stream of worker messages it drains.

The session is driven by a scripted controller (no worker, no thread): the messages it drains are
written out here as the worker would send them (engine/worker.py), so each test states exactly
which message came in which order, and the histories are checked against the snapshots sent.
"""
import pytest
from PySide6.QtCore import QObject, Signal

from engine.config import Config
from engine.experiment import Experiment
from engine.lessons import LESSONS
from engine.messages import Batch, DetailsMeasured, Failed, PausedAt, RunsBuilt, SettingsApplied, StateChanged
from engine.metrics import MetricsLog
from engine.trainer import Trainer
from engine.worker import run_info
from gui.worker_client import MessageQueue
from gui.session import RunSession

SMALL = Config(seq_len=6, hidden=4, batch=2, device="cpu")


class ScriptedController(QObject):
    """What the session needs of a TrainingController: the queue, and a record of the commands."""
    yielded = Signal()

    def __init__(self, configs):
        super().__init__()
        self.configs = list(configs)
        self.queue = MessageQueue()
        self.commands = []

    WORDS = {"runs": RunsBuilt, "batch": Batch, "applied": SettingsApplied, "state": StateChanged,
             "stopped_at": PausedAt, "details": DetailsMeasured, "error": Failed}

    def say(self, kind, *fields):
        """The worker's report of that kind (engine/messages.py), as the worker would send it."""
        if self.queue.put(self.WORDS[kind](*fields)):
            self.yielded.emit()

    def take_messages(self):
        return self.queue.take()

    def set_configs(self, configs, fresh=False):
        self.configs = list(configs)
        self.commands.append(("set_runs", fresh))

    def __getattr__(self, name):  # start, pause, step, reset, set_until, want_eigenvalues, alive, shutdown
        if name in ("start", "pause", "step", "reset", "set_until", "want_eigenvalues", "shutdown"):
            return lambda *args: self.commands.append((name,) + args)
        if name == "alive":
            return lambda: True
        raise AttributeError(name)


def trained(config, steps):
    trainer = Trainer(config)
    return run_info(0, trainer), [trainer.step() for _ in range(steps)]


def running(session, controller, qtbot, steps: int):
    """A session whose worker built one SMALL run (generation 1) and sent `steps` trained steps."""
    info, snaps = trained(SMALL, steps)
    with qtbot.waitSignal(session.steps_arrived):
        controller.say("runs", 1, [info], True)
        controller.say("batch", 1, [snaps], 10.0)
    return session.histories[0]


@pytest.fixture
def session(qtbot):
    controller = ScriptedController([SMALL])
    return RunSession(controller=controller), controller


def test_a_batch_merges_only_into_a_batch_of_its_own_generation_right_before_it():
    queue = MessageQueue()
    assert queue.put(RunsBuilt(1, ("info",), True))            # was empty: tell the reader
    assert not queue.put(Batch(1, (["s1"],), 5.0))
    assert not queue.put(Batch(1, (["s2", "s3"],), 6.0))      # merged, newer rate kept
    assert not queue.put(RunsBuilt(2, ("info",), True))
    assert not queue.put(Batch(2, (["t1"],), 7.0))            # after a new run set: its own entry
    assert not queue.put(StateChanged("paused"))
    assert not queue.put(Batch(2, (["t2"],), 8.0))            # after a state: keeps its place
    assert queue.take() == [RunsBuilt(1, ("info",), True), Batch(1, (["s1", "s2", "s3"],), 6.0),
                            RunsBuilt(2, ("info",), True), Batch(2, (["t1"],), 7.0), StateChanged("paused"),
                            Batch(2, (["t2"],), 8.0)]
    assert queue.take() == [] and queue.put(StateChanged("running"))


def test_histories_get_exactly_the_current_generations_snapshots_in_order(session, qtbot):
    session, controller = session
    info, snaps = trained(SMALL, 5)
    rebuilt = []
    session.runs_rebuilt.connect(rebuilt.append)
    with qtbot.waitSignal(session.steps_arrived):
        controller.say("runs", 1, [info], True)
        controller.say("batch", 1, [snaps[:2]], 10.0)
        controller.say("batch", 1, [snaps[2:3]], 11.0)
    assert rebuilt == [True] and session.generation == 1 and session.state == "paused"
    assert list(session.histories[0].steps.view()) == [1, 2, 3] and session.steps_per_second == 11.0
    old_history = session.histories[0]

    other_info, other = trained(SMALL.replace(seed=5), 2)
    with qtbot.waitSignal(session.runs_rebuilt):
        controller.say("batch", 7, [snaps[3:]], 12.0)  # a generation that is not the current one: dropped
        controller.say("runs", 2, [other_info], True)
        controller.say("batch", 1, [snaps[3:]], 12.0)  # trained before the new run set: dropped
        controller.say("batch", 2, [other], 13.0)
    qtbot.waitUntil(lambda: len(session.histories[0].steps) == 2)
    assert session.histories[0] is not old_history and list(session.histories[0].steps.view()) == [1, 2]
    assert list(old_history.steps.view()) == [1, 2, 3]
    assert session.training_steps == 5  # 3 of the first run set and 2 of the second


def test_a_rebuild_of_the_same_runs_keeps_their_histories(session, qtbot):
    session, controller = session
    history = running(session, controller, qtbot, 2)
    wider, _ = trained(SMALL.replace(hidden=5), 0)
    with qtbot.waitSignal(session.runs_rebuilt) as blocker:
        controller.say("runs", 2, [wider], False)
    assert blocker.args == [False] and session.histories[0] is history
    assert history.info.config.hidden == 5 and len(history.steps) == 2


def test_live_settings_show_in_the_run_info_as_soon_as_the_worker_applied_them(session, qtbot):
    session, controller = session
    history = running(session, controller, qtbot, 2)
    info = history.info
    rebuilt = []
    session.runs_rebuilt.connect(rebuilt.append)
    faster = SMALL.replace(lr=0.02, clip="norm")
    arrived = []
    session.steps_arrived.connect(arrived.append)
    with qtbot.waitSignal(session.settings_applied):  # its own signal: no steps arrived with it
        controller.say("applied", 1, [faster])
        controller.say("applied", 7, [SMALL.replace(lr=0.5)])  # of another run set: not this one's
    assert arrived == [] and session.histories[0] is history and not rebuilt
    assert history.info.config == faster and history.info == info.__class__(**{**info.__dict__, "config": faster})
    assert session.generation == 1 and len(history.steps) == 2  # the same run set and curves go on


def test_diverged_state_names_the_first_step_that_diverged(session, qtbot):
    session, controller = session
    info, snaps = trained(SMALL, 1)
    diverged = snaps[0].__class__(**{**snaps[0].__dict__, "step": 2, "diverged": True})
    with qtbot.waitSignal(session.state_changed) as blocker:
        controller.say("runs", 1, [info], True)
        controller.say("batch", 1, [[snaps[0], diverged]], 10.0)
        controller.say("state", "diverged")
    qtbot.waitUntil(lambda: session.state == "diverged")
    assert session.diverged_at == 2 and blocker.args in (["paused"], ["diverged"])


def test_an_experiments_recorded_data_waits_for_its_own_run_set(session, qtbot):
    session, controller = session
    config = SMALL.replace(seed=9)
    info, snaps = trained(config, 4)
    log = MetricsLog()
    for s in snaps:
        log.append(s)
    session.show_experiment(Experiment([config], lesson="loop", logs=[log]))
    assert ("pause",) in controller.commands and ("set_runs", True) in controller.commands
    assert session.lesson == "loop" and session.showing_recorded
    first_info, _ = trained(SMALL, 0)
    with qtbot.waitSignal(session.steps_arrived) as blocker:
        controller.say("runs", 1, [first_info], True)   # the run set before the file's: no data for it
        controller.say("runs", 2, [info], True)
    assert blocker.args == [4] and list(session.histories[0].steps.view()) == [1, 2, 3, 4]
    session.play()  # training after recorded data starts afresh from step 0
    assert controller.commands[-2:] == [("reset",), ("start",)] and not session.showing_recorded


def test_a_lesson_keeps_the_users_overrides_in_every_run_and_arms_its_stop(session, qtbot):
    session, controller = session
    stops = []
    session.lesson_stop_changed.connect(stops.append)
    started = []
    session.run_set_started.connect(started.append)
    lesson = session.load_lesson("fix-lstm", ["seed=3"])
    assert len(session.configs) == len(LESSONS["fix-lstm"].runs()) == 2
    assert [c.seed for c in session.configs] == [3, 3]
    assert [c.cell for c in session.configs] == [c.cell for c in LESSONS["fix-lstm"].runs()]
    assert started == [session.configs] and stops == [lesson.steps] and session.lesson == "fix-lstm"
    assert ("set_runs", True) in controller.commands and ("set_until", lesson.steps) in controller.commands
    session.apply_configs([session.configs[0].replace(lr=0.01)])  # other settings: no stop at the lesson's point
    assert stops[-1] is None and session.lesson_stop is None
    session.reset()  # from step 0 the lesson's stop holds again
    assert stops[-1] == lesson.steps


def test_the_worker_takes_eigenvalues_for_a_lesson_that_reads_them_from_its_first_step_and_a_view(session, qtbot):
    session, controller = session

    def wanted():
        return [c for c in controller.commands if c[0] in ("want_eigenvalues", "set_runs")]
    assert LESSONS["factor-per-step"].reads_eigenvalues and not LESSONS["fix-lstm"].reads_eigenvalues
    session.load_lesson("factor-per-step")
    assert wanted()[:2] == [("want_eigenvalues", True), ("set_runs", True)]  # asked before its runs are sent
    controller.commands.clear()
    session.load_lesson("fix-lstm")
    assert wanted()[0] == ("want_eigenvalues", False)
    session.want_eigenvalues(True)  # the Eigenvalues view came on screen
    session.free_play()
    assert wanted()[-1] == ("want_eigenvalues", True)
    session.want_eigenvalues(False)
    assert wanted()[-1] == ("want_eigenvalues", False)


def test_recorded_data_outlasts_an_earlier_run_set_of_the_same_settings(session, qtbot):
    """At start-up the worker's first run set (the same default settings) is still queued when the
    last experiment reopens: the file's data must end up in the file's own run set all the same."""
    session, controller = session
    info, snaps = trained(SMALL, 3)
    log = MetricsLog()
    for s in snaps:
        log.append(s)
    session.show_experiment(Experiment([SMALL], logs=[log]))
    with qtbot.waitSignal(session.runs_rebuilt):
        controller.say("runs", 1, [info], True)   # the start-up run set
        controller.say("runs", 2, [info], True)   # the file's
    qtbot.waitUntil(lambda: session.generation == 2)
    assert list(session.histories[0].steps.view()) == [1, 2, 3] and session.showing_recorded
    session.step_once()  # training leaves the recorded data: a fresh run set gets none of it
    with qtbot.waitSignal(session.runs_rebuilt):
        controller.say("runs", 3, [info], True)
    assert len(session.histories[0].steps) == 0 and not session.showing_recorded


def test_a_file_opened_after_a_lesson_does_not_pause_at_the_lessons_step(session, qtbot):
    session, controller = session
    stops = []
    session.lesson_stop_changed.connect(stops.append)
    session.load_lesson("loop")
    session.show_experiment(Experiment([SMALL]))
    assert stops == [LESSONS["loop"].steps, None] and session.lesson_stop is None and session.lesson is None
    commands = [c for c in controller.commands if c[0] != "want_eigenvalues"]
    assert commands[-2:] == [("set_until", None), ("set_runs", True)]  # disarmed before the runs


def test_settings_the_worker_refused_do_not_ride_along_with_the_next_edit(session, qtbot):
    session, controller = session
    running(session, controller, qtbot, 2)
    huge = SMALL.replace(hidden=2048, seq_len=5000)
    session.apply_configs([SMALL, huge])  # compare mode: run 2 does not fit with run 1
    assert session.configs == [SMALL, huge]
    shown = []
    session.run_set_started.connect(shown.append)
    with qtbot.waitSignal(session.errored):
        controller.say("error", "run 2 settings: ... need about 40 GB of memory", "")
    assert session.configs == [SMALL] == controller.configs and shown == [[SMALL]]
    session.apply_configs([SMALL.replace(lr=0.01)])  # the next edit sends only what trains, changed
    assert controller.configs == [SMALL.replace(lr=0.01)]
