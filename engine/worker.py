"""The training worker loop: owns 1 to 4 trainers and talks to the GUI over two one-way pipes.

Runs in a child process started with `spawn` (the default, so training never fights the GUI for
the GIL), or in a plain thread for tests and debugging. No Qt here. Commands come in as the types of
engine/messages.py and are picked up between steps; snapshots go out batched, at most `SEND_INTERVAL`
apart, so the GUI never builds a backlog while histories still get every step's numbers. What each
command and report means is said where it is defined (engine/messages.py).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

from engine import admission, memory
from engine.messages import (Batch, Bye, DetailsMeasured, Failed, Pause, PauseAt, PausedAt, Quit, Reset, RunsBuilt,
                             SetRuns, SettingsApplied, Start, StateChanged, Step, WantDetail, WantEigenvalues)
from engine.config import Config
from engine.schema import MAX_RUNS
from engine.detail import DetailBudget, DetailRequest
from engine.errors import ConfigError
from engine.trainer import Trainer

SEND_INTERVAL = 1.0 / 60.0


@dataclass(frozen=True)
class RunInfo:
    """What the views need to know about a run that does not change step to step."""
    index: int
    config: Config
    task_label: str
    metric_name: str
    baseline_loss: float
    n_steps: int
    gate_names: tuple
    device: str


def run_info(index: int, trainer: Trainer) -> RunInfo:
    t = trainer.task
    return RunInfo(index, trainer.config, type(t).label, t.metric_name, float(t.baseline_loss),
                   t.n_steps, trainer.gate_names, str(trainer.device))


class Worker:
    def __init__(self, commands, results):
        self.commands, self.results = commands, results
        self.trainers: list[Trainer] = []
        self.running = False
        self.pending: list[list] = []
        self.last_send = 0.0
        self.rate_window: list[float] = []
        self.until: int | None = None
        self.generation = 0
        self.detail_request: DetailRequest | None = None
        self.eigenvalues = False  # every trainer takes the tanh RNN's eigenvalues (WantEigenvalues)
        self.detail_budget = DetailBudget()

    # -------------------------------------------------------------- commands
    def set_runs(self, configs: list[Config], fresh: bool = False, promises: tuple = ()):
        if not 1 <= len(configs) <= MAX_RUNS:
            raise ValueError(f"runs: {len(configs)} is not allowed; allowed: 1 to {MAX_RUNS}")
        replace = fresh or len(configs) != len(self.trainers)
        self._refuse_early(configs, replace, promises)
        if replace:
            self.trainers = [Trainer(c, check_memory=False) for c in configs]  # all built, then swapped in
            for trainer in self.trainers:  # a view may ask to see any step closely, paused too
                trainer.keep_last_batch = True
                trainer.take_eigenvalues = self.eigenvalues
            self.pending = [[] for _ in configs]
            self._announce(fresh=True)
            return
        events = [e for trainer, config in zip(self.trainers, configs)
                  for e in trainer.update_config(config, check_memory=False)]
        if any(e.kind == "rebuilt" for e in events):  # shapes may have changed: the views need the new infos
            self.flush()  # steps trained before the rebuild belong to the generation before it
            self._announce(fresh=False)
        elif events:  # the same runs go on: say which settings they train with now, after the steps before
            self.flush()
            self.results.send(SettingsApplied(self.generation, tuple(t.config for t in self.trainers)))

    def _refuse_early(self, configs: list[Config], replace: bool, promises: tuple = ()):
        """Raise ConfigError before any run changes when the run set cannot be built here
        (engine/admission.py, with the window's history of every run; the runs it replaces are freed
        first), or a user's file is no longer the one the window read."""
        current = [t.config for t in self.trainers]
        if not replace and not any(old.needs_rebuild(new) for old, new in zip(current, configs)):
            return  # live settings only (lr, clipping, optimizer): the same memory
        admission.admit(configs, kept=memory.WINDOW, replacing=current)
        admission.check_promises(configs, promises)

    def _announce(self, fresh: bool):
        self.generation += 1
        self.results.send(RunsBuilt(self.generation, tuple(run_info(i, t) for i, t in enumerate(self.trainers)), fresh))

    def handle(self, command) -> bool:
        """Apply one command (engine/messages.py); returns False on quit."""
        match command:
            case Quit():
                return False
            case SetRuns() | Reset():
                try:
                    if isinstance(command, Reset):
                        self.set_runs([t.config for t in self.trainers], fresh=True)
                    else:
                        self.set_runs(list(command.configs), fresh=command.fresh, promises=command.promises)
                except ConfigError as exc:  # refused before anything changed: the runs go on as they were
                    self.results.send(Failed(str(exc)))
            case Start():
                self.running = bool(self.trainers)  # (none yet: the first run set was refused)
                self.results.send(StateChanged("running" if self.running else "paused"))
            case Pause():
                self.running = False
                self.flush()
                self.results.send(StateChanged("paused"))
                self.send_details()  # the step the picture holds on, seen closely
            case Step():
                self.train_once()
                self.flush()
                self.send_details()
                if self._reached_until():  # stepped onto the stop by hand: it is spent
                    self.until = None
            case PauseAt(steps):
                self.until = steps
            case WantDetail(request):
                self.detail_request = request
                if not self.running:  # paused: the step on screen, seen as now asked (once it has trained)
                    self.send_details()
                else:  # a new wish (another sequence, layer or view) is seen at the next step, whatever it costs
                    self.detail_budget.at_once()
            case WantEigenvalues(on):
                self.eigenvalues = on
                for trainer in self.trainers:
                    trainer.take_eigenvalues = on
            case _:
                raise TypeError(f"not a worker command: {command!r}")
        return True

    # -------------------------------------------------------------- training
    def train_once(self):
        start = time.perf_counter()
        stepped = False
        for i, trainer in enumerate(self.trainers):
            if trainer.diverged:
                continue
            self.pending[i].append(trainer.step())
            stepped = True
        if stepped:
            self.rate_window.append(time.perf_counter() - start)
            del self.rate_window[:-30]
            self.detail_budget.trained_for(self.rate_window[-1])
        if self.trainers and all(t.diverged for t in self.trainers) and self.running:
            self.running = False
            self.flush()
            self.results.send(StateChanged("diverged"))

    def _reached_until(self) -> bool:
        """Every run that still trains has done `until` steps."""
        return self.until is not None and bool(self.trainers) and all(
            t.diverged or t.step_count >= self.until for t in self.trainers)

    def send_details(self):
        """Each run's latest step seen closely, as asked (after the batch that holds it)."""
        if self.detail_request is None or not self.trainers:
            return
        start = time.perf_counter()
        details = [trainer.detail(self.detail_request) for trainer in self.trainers]
        if any(d is not None for d in details):
            self.flush()
            self.results.send(DetailsMeasured(self.generation, tuple(details)))
        now = time.perf_counter()
        self.detail_budget.spent(now - start, now)

    def flush(self):
        if any(self.pending):
            rate = len(self.rate_window) / sum(self.rate_window) if self.rate_window else 0.0
            self.results.send(Batch(self.generation, tuple(self.pending), rate))
            self.pending = [[] for _ in self.trainers]
        self.last_send = time.perf_counter()

    def serve(self):
        alive = True
        while alive:
            try:
                # Block while idle; between steps only peek, so commands apply at the next step.
                while alive and (not self.running or self.commands.poll()):
                    alive = self.handle(self.commands.recv())
                if alive and self.running:
                    self.train_once()
                    if self.running and self._reached_until():
                        reached, self.until, self.running = self.until, None, False
                        self.flush()
                        self.results.send(PausedAt(reached))
                        self.results.send(StateChanged("paused"))
                    elif time.perf_counter() - self.last_send >= SEND_INTERVAL:
                        self.flush()
                    if self.running and self.detail_request is not None and self.detail_budget.due(time.perf_counter()):
                        self.send_details()
            except (EOFError, BrokenPipeError, KeyboardInterrupt):
                return
            except Exception as exc:  # a bug or bad setting must reach the user, not kill the worker
                self.running = False
                self.results.send(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
                self.results.send(StateChanged("paused"))
        self.flush()
        self.results.send(Bye())


def worker_main(commands, results, threads: int = 1):
    """Entry point of the worker process (and of the in-process thread mode)."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    try:
        Worker(commands, results).serve()
    except (EOFError, BrokenPipeError, OSError):
        pass  # the GUI went away: nothing left to tell
