"""The run session: the one model the window, the views and the status bar subscribe to.

GUI thread only (a QObject, as napari's layer models are). It owns the TrainingController, the run
set's configs, one RunHistory per run, the lesson and its stop. It empties the controller's ONE
ordered queue of worker messages (engine/worker.py lists them) whenever it fills, drops batches of
an older run set (here and nowhere else), and says what happened in past-tense signals. Nothing
here knows about widgets: the window turns these signals into layout, the display scheduler into
redraws, the status bar into text.

Where things happen:
- a run set is rebuilt: `_on_runs` (from a "runs" message), after `start_run_set` or `apply_configs`;
- a lesson stops: `load_lesson` arms the stop, `_on_stopped_at` hears that training reached it;
- a live setting takes effect: `_on_applied` (from an "applied" message) puts it in the histories' infos;
- a view gets its data: `histories`, fed by `_on_batch` and handed on by gui/display.py; a step seen
  closely (engine.detail) comes by `_on_details`, asked for by `want_detail`;
- a replay: `show_step` chooses the step every view, badge and export shows (`shown_histories`,
  built by gui/history_at_step.py); None is live, the newest step. A replay pauses training, and Play, Step,
  Reset or a rebuilt run set go back to live.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from engine.config import Config
from engine.messages import Batch, DetailsMeasured, Failed, PausedAt, RunsBuilt, SettingsApplied, StateChanged
from engine.lessons import LESSONS
from gui.worker_client import TrainingController
from gui.history import RunHistory
from gui.one_sequence import SequenceHistory
from gui.history_at_step import history_at, kept_steps


class RunSession(QObject):
    runs_rebuilt = Signal(bool)        # the run set was (re)built; True: new histories from step 0
    steps_arrived = Signal(int)        # new steps in the histories: trained (the most any run got), or from a file
    details_arrived = Signal()         # steps seen closely (engine.detail) reached the histories
    settings_applied = Signal()        # live settings took effect without a rebuild (the histories' infos show them)
    state_changed = Signal(str)        # running | paused | diverged | stopped (`state` starts "starting")
    run_set_started = Signal(object)   # list[Config]: a new run set from outside the controls (lesson, file)
    lesson_changed = Signal(object)    # the lesson's name, or None for free play
    lesson_stop_changed = Signal(object)  # training will pause by itself at this step (None: it will not)
    stopped_at_lesson = Signal(int)    # training paused itself at the lesson's step
    errored = Signal(str, str)         # message for the user, details (a traceback)
    shown_step_changed = Signal(object)  # the views show this earlier step (a replay), or None: live
    shown_sequence_changed = Signal(object)  # the views show this sequence of the batch alone, or None: the batch

    def __init__(self, configs: list[Config] | None = None, in_process: bool = False,
                 controller: TrainingController | None = None, parent=None):
        super().__init__(parent)
        self.controller = controller or TrainingController(list(configs or [Config()]), in_process=in_process)
        self.configs: list[Config] = list(self.controller.configs)
        self.histories: list[RunHistory] = []
        self.generation: int | None = None   # of the run set the histories belong to
        self.state = "starting"
        self.diverged_at: int | None = None
        self.lesson: str | None = None
        self.lesson_stop: int | None = None
        self.showing_recorded = False        # the histories hold a file's recorded data, training paused
        self._recorded: tuple[list, list] | None = None  # (configs, logs) of a file, kept while it is shown
        self.training_steps = 0              # steps received since the session began (each trains every run)
        self.steps_per_second: float | None = None
        self.first_data_time: float | None = None
        self.last_data_time: float | None = None
        self.shown_step: int | None = None   # the step a replay shows; None: live (the newest)
        self._shown: tuple | None = None     # (key, histories) of the replay last asked for
        self.shown_sequence: int | None = None  # the batch row the views show alone (gui/one_sequence.py); None: the batch
        self.eigenvalues_shown = False       # a visible view draws the tanh RNN's eigenvalues (want_eigenvalues)
        self.controller.yielded.connect(self.drain, Qt.ConnectionType.QueuedConnection)
        QTimer.singleShot(0, self.drain)  # what the worker said before anyone listened

    @property
    def infos(self) -> list:
        return [h.info for h in self.histories]

    # ------------------------------------------------------------------ commands
    def play(self):
        self.show_step(None)
        self._leave_recorded_data()
        if self.lesson_stop is None:
            self.lesson_stop_changed.emit(None)
        self.controller.start()

    def pause(self):
        self.controller.pause()

    def toggle_play(self):
        self.pause() if self.state == "running" else self.play()

    def step_once(self):
        if self.state == "running":
            self.controller.pause()
        self.show_step(None)
        self._leave_recorded_data()
        self.controller.step()

    def worker_alive(self) -> bool:
        return self.controller.alive()

    def reset(self):
        """Back to step 0, paused, with the current settings; a dead worker is replaced."""
        self.showing_recorded = False
        self._recorded = None
        self.show_step(None)
        if self.controller.alive():
            self.controller.pause()
        self.controller.reset()
        if self.lesson is not None:  # from step 0, the lesson's stop holds again
            self._arm_lesson_stop(LESSONS[self.lesson].steps)

    def apply_configs(self, configs: list[Config]):
        """New settings from the controls: the runs go on with them from the next step."""
        configs = list(configs)
        self._recorded = None  # recorded data from a file belongs to that file's run set only
        if configs != self.configs:
            self.configs = configs
            self.controller.set_configs(configs)
            self._arm_lesson_stop(None)  # other settings than the lesson's: no stop at its point

    def start_run_set(self, configs: list[Config]):
        """A whole new run set from step 0 (a lesson, a file), shown in the controls too."""
        self.configs = list(configs)
        self.controller.set_configs(self.configs, fresh=True)
        self.run_set_started.emit(list(self.configs))

    def load_lesson(self, name: str, overrides: list[str] | tuple = (), runs: list[Config] | None = None):
        """The lesson's runs (the user's KEY=VALUE overrides on each; or `runs`, the lesson's runs as the
        caller made them, with the user's own files) from step 0, pausing at its point."""
        lesson = LESSONS[name]
        configs = runs or lesson.runs(list(overrides))  # a bad override is refused before anything changes
        self.showing_recorded = False
        self._recorded = None
        self._arm_lesson_stop(lesson.steps)  # first: the new runs never train a step under an older stop
        self._want_eigenvalues(name)  # from its first step
        self.start_run_set(configs)
        self._set_lesson(name)
        return lesson

    def free_play(self):
        self._arm_lesson_stop(None)
        self._set_lesson(None)

    def show_experiment(self, exp):
        """An experiment's run set from step 0; its recorded data, if any, is shown paused until Play or Step."""
        has_data = bool(exp.logs) and len(exp.logs) == len(exp.configs) and any(len(log) for log in exp.logs)
        if has_data:
            self.controller.pause()  # show what was recorded, not new training on top of it
        self._recorded = (list(exp.configs), list(exp.logs)) if has_data else None
        self.showing_recorded = has_data
        self._arm_lesson_stop(None)  # a file's runs pause where the user says, not at an earlier lesson's step
        self._want_eigenvalues(exp.lesson)
        self.start_run_set(list(exp.configs))
        self._set_lesson(exp.lesson if exp.lesson in LESSONS else None)

    def _set_lesson(self, name: str | None):
        self.lesson = name
        self._want_eigenvalues(name)
        self.lesson_changed.emit(name)

    def want_eigenvalues(self, shown: bool):
        """A visible view draws the tanh RNN's eigenvalues (`shown`), or none does: the worker takes them while
        one does or the lesson's claim reads them (an eigenvalue problem a step: engine.trainer.take_eigenvalues)."""
        self.eigenvalues_shown = shown
        self._want_eigenvalues(self.lesson)

    def _want_eigenvalues(self, lesson: str | None):
        reads = lesson in LESSONS and LESSONS[lesson].reads_eigenvalues
        self.controller.want_eigenvalues(self.eigenvalues_shown or reads)

    def _arm_lesson_stop(self, steps: int | None):
        """Have training pause by itself once every run has trained `steps` steps (None: never)."""
        self.lesson_stop = steps
        self.controller.set_until(steps)
        self.lesson_stop_changed.emit(steps)

    def _leave_recorded_data(self):
        """Training after showing a file's recorded data starts afresh from step 0 (new curves)."""
        if self.showing_recorded:
            self.showing_recorded = False
            self._recorded = None
            self.controller.reset()

    def show_outside(self, histories: list, steps: int = 0):
        """Histories that no worker of this session trains (a run folder a script writes, followed by
        gui/following.py) are what the views show, as a file's recorded data is: training paused, the worker's
        batches not theirs; Play, Step, Reset or a new run set go back to the lab's own training. `steps`:
        how many steps they hold (the views' news, as in `steps_arrived`)."""
        self.controller.pause()
        self.show_step(None)
        self.showing_recorded, self._recorded = True, None
        self.generation = None  # the worker's messages of its run set go to no history now
        self.histories = list(histories)
        self.runs_rebuilt.emit(True)
        self.steps_arrived.emit(steps)

    def outside_data_arrived(self, steps: int):
        """Histories shown by `show_outside` grew by `steps` steps."""
        self.last_data_time = time.perf_counter()
        self.steps_arrived.emit(steps)

    # ------------------------------------------------------------------ replay
    def replay_span(self) -> tuple[int, int] | None:
        """The oldest and the newest step a replay can show (None before the first step)."""
        spans = [span for span in map(kept_steps, self.histories) if span is not None]
        return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None

    def show_step(self, step: int | None):
        """Every view, badge and export shows training step `step` (kept to the span a replay can
        show); None, or the newest step, is live. A replay pauses training, so the steps it shows stay
        kept and the picture holds still while the user looks."""
        span = self.replay_span()
        if step is not None and span is not None:
            step = min(max(int(step), span[0]), span[1])
        if step is None or span is None or step == span[1]:
            step = None
        elif self.state == "running":
            self.controller.pause()
        if step != self.shown_step:
            self.shown_step = step
            self.shown_step_changed.emit(step)

    def show_sequence(self, sequence: int | None):
        """Every view of the latest step shows this sequence of the batch alone (from 0; None: the whole
        batch), measured closely by the worker (engine.detail) from the next step on."""
        if sequence is not None:
            largest = max((h.info.config.batch for h in self.histories), default=1)
            sequence = min(max(int(sequence), 0), largest - 1)
        if sequence != self.shown_sequence:
            self.shown_sequence = sequence
            self.shown_sequence_changed.emit(sequence)

    def shown_histories(self) -> list:
        """The histories as the views show them: live, or as they stood at the replay's step; through the
        lens of one sequence when one is chosen."""
        if self.shown_step is None and self.shown_sequence is None:
            return self.histories
        key = (self.shown_step, self.shown_sequence,
               [(id(h), h.steps_seen, h.info, id(h.detail)) for h in self.histories])  # info: live settings
        if self._shown is None or self._shown[0] != key:
            shown = self.histories if self.shown_step is None else [history_at(h, self.shown_step) for h in self.histories]
            if self.shown_sequence is not None:
                shown = [SequenceHistory(h, self.shown_sequence) for h in shown]
            self._shown = (key, shown)
        return self._shown[1]

    # ------------------------------------------------------------------ the worker's messages
    def drain(self):
        """Everything the worker said since the last drain, in the order it said it."""
        for message in self.controller.take_messages():
            match message:
                case RunsBuilt(generation, infos, fresh):
                    self._on_runs(generation, list(infos), fresh)
                case Batch(generation, snapshots, rate):
                    self._on_batch(generation, list(snapshots), rate)
                case SettingsApplied(generation, configs):
                    self._on_applied(generation, list(configs))
                case StateChanged(state):
                    self._on_state(state)
                case PausedAt(steps):
                    self._on_stopped_at(steps)
                case DetailsMeasured(generation, details):
                    self._on_details(generation, list(details))
                case Failed(text, details):
                    self.errored.emit(text, details)
                    self._keep_what_trains()

    def _on_runs(self, generation: int, infos: list, fresh: bool):
        outside = self.generation is None and bool(self.histories)  # show_outside's histories are no run of these
        self.generation = generation
        self.show_step(None)  # a replay of the run set before shows nothing of this one
        fresh = fresh or outside or len(infos) != len(self.histories)
        if fresh:
            self.histories = [RunHistory(info) for info in infos]
        else:  # a structural change mid-run: curves continue, the trainer marked it as an event
            for history, info in zip(self.histories, infos):
                history.reshape(info)
        self.runs_rebuilt.emit(fresh)
        if self.shown_sequence is not None:  # a smaller batch than the sequence shown: its last sequence
            self.show_sequence(self.shown_sequence)
        recorded = self._recorded  # kept while it is shown: an earlier run set of the same configs
        #                            (the worker's first, at start-up) must not take it from the file's own
        if fresh and recorded is not None and [i.config for i in infos] == recorded[0]:
            for history, log in zip(self.histories, recorded[1]):
                history.extend(list(log.snapshots))
            self.steps_arrived.emit(max(len(log) for log in recorded[1]))
        if self.state in ("starting", "diverged", "stopped"):  # the worker has its runs and waits for Play
            self._on_state("paused")

    def _on_batch(self, generation: int, batches: list, rate: float):
        if generation != self.generation or len(batches) != len(self.histories):
            return  # trained in a run set that has since been replaced
        for history, snapshots in zip(self.histories, batches):
            history.extend(snapshots)
        new_steps = max((len(b) for b in batches), default=0)
        if new_steps:
            now = time.perf_counter()
            if self.first_data_time is None:
                self.first_data_time = now
            self.last_data_time = now
        self.training_steps += new_steps
        self.steps_per_second = rate
        span = self.replay_span()
        if self.shown_step is not None and span is not None and self.shown_step < span[0]:
            self.show_step(span[0])  # the step shown is no longer kept: the oldest that is
        self.steps_arrived.emit(new_steps)

    def want_detail(self, request):
        """Have the worker see steps closely (engine.detail.DetailRequest) for the views that show it, or
        stop (None): the display scheduler asks for what the visible views wish."""
        if request != self.controller.detail_request:
            self.controller.want_detail(request)

    def _on_details(self, generation: int, details: list):
        if generation != self.generation or len(details) != len(self.histories):
            return
        for history, detail in zip(self.histories, details):
            history.add_detail(detail)
        self.details_arrived.emit()

    def _on_applied(self, generation: int, configs: list):
        if generation != self.generation or len(configs) != len(self.histories):
            return  # settings of a run set that has since been replaced
        for history, config in zip(self.histories, configs):
            history.apply_settings(config)
        self.settings_applied.emit()  # the views and the status bar show the settings the runs train with now

    def _on_state(self, state: str):
        self.state = state
        steps = [h.diverged_at_step for h in self.histories if h.diverged_at_step is not None]
        self.diverged_at = min(steps) if state == "diverged" and steps else None
        self.state_changed.emit(state)

    def _keep_what_trains(self):
        """After an error (settings the worker refused, such as sizes that do not fit together), the
        configs are those its runs train with, as their infos say, and the controls show them: a
        refused run must not ride along with every later edit and be refused again."""
        training = [h.info.config for h in self.histories]
        if training and training != self.configs:
            self.configs = training
            self.controller.configs = list(training)  # what a restarted worker would build
            self.run_set_started.emit(list(training))

    def _on_stopped_at(self, steps: int):
        self.lesson_stop = None
        self.stopped_at_lesson.emit(steps)

    # ------------------------------------------------------------------ closing
    def shutdown(self):
        self.controller.yielded.disconnect(self.drain)  # the worker's last words reach no one now
        self.controller.shutdown()
