"""The training worker's command loop, driven directly (no process, no thread): a scripted command
pipe that reports end-of-file when it runs dry, and a results list."""
from engine.config import Config
from engine.messages import (Batch, Failed, Pause, PauseAt, PausedAt, Reset, RunsBuilt, SetRuns, SettingsApplied, Start,
                             StateChanged, Step, WantEigenvalues)
from engine.worker import Worker

SMALL = Config(seq_len=8, hidden=6, batch=4, device="cpu")


class Script:
    """The command end of the pipe: hands out `commands`, then end-of-file (the GUI went away)."""

    def __init__(self, commands):
        self.commands = list(commands)

    def poll(self):
        return bool(self.commands)

    def recv(self):
        if not self.commands:
            raise EOFError
        return self.commands.pop(0)


class Results(list):
    send = list.append


def run(commands):
    results = Results()
    worker = Worker(Script(commands), results)
    worker.serve()
    return worker, results


def trained(results, run=0):
    return [s.step for m in results if isinstance(m, Batch) for s in m.snapshots[run]]


def test_until_pauses_every_run_at_exactly_that_step_and_says_so():
    configs = [SMALL, SMALL.replace(cell="gru")]
    worker, results = run([SetRuns(configs), PauseAt(7), Start()])
    assert [t.step_count for t in worker.trainers] == [7, 7]
    assert trained(results, 0) == trained(results, 1) == list(range(1, 8))  # every step, none past the stop
    assert results[-2:] == [PausedAt(7), StateChanged("paused")]  # after the last batch
    assert worker.until is None and not worker.running  # the stop is spent


def test_a_diverged_run_does_not_hold_up_the_stop():
    diverging = Config(activation="linear", init="orthogonal", spectral_radius=3.0, optimizer="sgd", lr=1.0,
                       hidden=16, batch=8, seq_len=20, device="cpu")
    worker, results = run([SetRuns([SMALL, diverging]), PauseAt(40), Start()])
    assert worker.trainers[1].diverged and worker.trainers[0].step_count == 40
    assert PausedAt(40) in results


def test_until_none_trains_on_and_stepping_onto_the_stop_spends_it():
    worker, results = run([SetRuns([SMALL]), PauseAt(2), Step(), Step(), PauseAt(None)])
    assert worker.trainers[0].step_count == 2 and worker.until is None
    assert not any(isinstance(m, PausedAt) for m in results)  # stepping by hand is no automatic pause
    worker, results = run([SetRuns([SMALL]), PauseAt(2), Step(), Step()])
    assert worker.until is None  # reached by hand: the next Play trains on


def test_each_run_set_is_a_generation_and_each_batch_names_its_own():
    worker, results = run([SetRuns([SMALL], True), Step(), SetRuns([SMALL.replace(lr=0.01)], False),
                           Step(), SetRuns([SMALL.replace(hidden=7)], False), Step(), Reset(), Step()])
    told = [("runs", m.generation, m.fresh) if isinstance(m, RunsBuilt) else
            ("batch", m.generation, [s.step for s in m.snapshots[0]]) for m in results if isinstance(m, (RunsBuilt, Batch))]
    assert told == [("runs", 1, True), ("batch", 1, [1]),
                    ("batch", 1, [2]),                      # a live change: the same generation trains on
                    ("runs", 2, False), ("batch", 2, [3]),  # a rebuild: same runs reshaped, steps go on
                    ("runs", 3, True), ("batch", 3, [1])]   # reset: a fresh run set from step 0


def test_the_eigenvalues_are_taken_from_the_step_after_they_are_wanted_to_the_step_they_are_not():
    """The tanh RNN's eigenvalues cost an eigenvalue problem a step: taken while the window wants them (the
    Eigenvalues view on screen, a lesson reading them), also by runs built after the wish, and not after."""
    worker, results = run([SetRuns([SMALL]), Step(), WantEigenvalues(True), Step(), SetRuns([SMALL], True), Step(),
                           WantEigenvalues(False), Step()])
    taken = [(s.step, s.eigenvalues is not None) for m in results if isinstance(m, Batch) for s in m.snapshots[0]]
    assert taken == [(1, False), (2, True), (1, True), (2, False)]


def test_a_fresh_run_set_of_the_same_size_starts_from_step_0():
    worker, results = run([SetRuns([SMALL], False), Step(), Step(), SetRuns([SMALL.replace(seed=4)], True),
                           Step()])
    assert worker.trainers[0].step_count == 1 and worker.trainers[0].config.seed == 4
    assert [m.fresh for m in results if isinstance(m, RunsBuilt)] == [True, True]


def test_a_live_change_says_which_settings_apply_after_the_steps_trained_before_it():
    faster = SMALL.replace(lr=0.01)
    worker, results = run([SetRuns([SMALL], True), Step(), Start(), SetRuns([faster], False),
                           Pause(), SetRuns([faster], False), SetRuns([faster.replace(hidden=7)], False)])
    kinds = [type(m) for m in results if isinstance(m, (RunsBuilt, SettingsApplied))]
    assert kinds == [RunsBuilt, SettingsApplied, RunsBuilt]  # the same settings again say nothing; a rebuild its infos
    applied = next(m for m in results if isinstance(m, SettingsApplied))
    assert applied == SettingsApplied(1, (faster,))    # the same generation: no new run set
    before = results[:results.index(applied)]
    assert [s.step for m in before if isinstance(m, Batch) for s in m.snapshots[0]] == [1]  # flushed before it
    assert worker.trainers[0].config.lr == 0.01


# ------------------------------------------------------------------ a run set that cannot be built

HUGE = SMALL.replace(hidden=2048, seq_len=5000, batch=64, layers=8)  # each size allowed, together far too big


def refuse_above(monkeypatch, available=2e9):
    from engine import memory
    monkeypatch.setattr(memory, "available_bytes", lambda: available)


def test_a_run_set_too_big_for_memory_is_refused_in_one_line_and_the_runs_train_on(monkeypatch):
    refuse_above(monkeypatch)
    script = [SetRuns([SMALL, SMALL.replace(cell="gru")], True), Start(),
              SetRuns([SMALL, HUGE], False),      # reshaping one run of two
              SetRuns([HUGE], True),              # a whole new run set
              SetRuns([SMALL.replace(hidden=7), SMALL.replace(hidden=7, layers=8, seq_len=5000, batch=4096)],
                      False)]                                 # the first would fit alone: neither changes
    commands, results = Script(script), Results()
    worker = Worker(commands, results)
    while commands.commands:  # every command, with a step between them as a running worker trains
        worker.handle(commands.recv())
        worker.train_once()
    errors = [m for m in results if isinstance(m, Failed)]
    assert len(errors) == 3
    for message, details in ((e.message, e.details) for e in errors):
        assert "\n" not in message and "Traceback" not in message and not message.startswith("ConfigError")
        assert "need about" in message and "available" in message and details == ""
    assert errors[0].message.startswith("run 2 settings: 'seq_len 5000 x batch 64 x hidden 2048 x layers 8, rnn'")
    assert [t.config for t in worker.trainers] == [SMALL, SMALL.replace(cell="gru")]  # nothing changed
    assert worker.running and [t.step_count for t in worker.trainers] == [5, 5]      # and they train on
    assert sum(isinstance(m, RunsBuilt) for m in results) == 1 and StateChanged("paused") not in results


def test_a_refused_first_run_set_leaves_nothing_to_start(monkeypatch):
    refuse_above(monkeypatch)
    worker, results = run([SetRuns([HUGE], True), Start(), Step()])
    assert worker.trainers == [] and not worker.running
    assert isinstance(results[0], Failed) and StateChanged("paused") in results


def test_a_missing_device_refuses_the_whole_set_before_any_run_changes():
    import torch
    if torch.cuda.is_available():
        return
    worker, results = run([SetRuns([SMALL, SMALL], True),
                           SetRuns([SMALL.replace(hidden=7), SMALL.replace(hidden=7, device="cuda")], False)])
    assert [t.config for t in worker.trainers] == [SMALL, SMALL]
    assert any(isinstance(m, Failed) and m.message.startswith("device: 'cuda'") for m in results)
