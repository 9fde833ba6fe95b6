"""The messages between the window and the training worker: small immutable types, one per meaning.

Runs on both sides of the pipe (pickled across it); no Qt. Commands go from the GUI to the worker
(engine/worker.py picks them up between steps); reports come back (gui/worker_client.py queues them in
order, gui/session.py dispatches them with `match`). Every report of a run set names its generation:
each `RunsBuilt` starts a new one, so a reader can tell a batch of an older run set from the current.
"""
from __future__ import annotations

from dataclasses import dataclass

# ----------------------------------------------------------------------------- commands (GUI -> worker)


@dataclass(frozen=True)
class SetRuns:
    """New settings for every run. fresh: a new run set from step 0; else the runs go on with these
    settings from their next step, rebuilt only where a setting reshapes them."""
    configs: tuple
    fresh: bool = False
    promises: tuple = ()   # ((path, SHA-256), ...) of the user's files as the window read them

@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Step:
    """One training step of every run, then pause."""


@dataclass(frozen=True)
class Reset:
    """Every run again from step 0, with the same settings."""


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class PauseAt:
    """Pause by itself once every run has trained `steps` steps (a lesson's point), once; None: never."""
    steps: int | None


@dataclass(frozen=True)
class WantDetail:
    """Measure steps closely (engine.detail.DetailRequest) for the views that show it; None: stop."""
    request: object


@dataclass(frozen=True)
class WantEigenvalues:
    """Take the tanh RNN's eigenvalues at every step from now (engine.trainer.Trainer.take_eigenvalues), for the
    Eigenvalues view or a lesson whose claim reads them; False: stop."""
    on: bool


# ----------------------------------------------------------------------------- reports (worker -> GUI)


@dataclass(frozen=True)
class RunsBuilt:
    """A (re)built run set: fresh, from step 0 (new histories); else the same runs reshaped."""
    generation: int
    infos: tuple
    fresh: bool


@dataclass(frozen=True)
class SettingsApplied:
    """Live settings (engine.schema's `live` rows) took effect without a rebuild: each run trains with
    its config from its next step (the batches before it were sent first)."""
    generation: int
    configs: tuple


@dataclass(frozen=True)
class Batch:
    """The snapshots trained since the last batch, one list per run, and the steps per second."""
    generation: int
    snapshots: tuple    # one list of engine.trainer.Snapshot per run
    steps_per_second: float

    def merged(self, later: "Batch") -> "Batch":
        """This batch followed by `later` of the same generation and runs (the newer rate kept)."""
        return Batch(self.generation, tuple(list(a) + list(b) for a, b in zip(self.snapshots, later.snapshots)),
                     later.steps_per_second)


@dataclass(frozen=True)
class StateChanged:
    state: str          # running | paused | diverged | stopped (the worker is gone)


@dataclass(frozen=True)
class PausedAt:
    """The PauseAt stop was reached (a StateChanged("paused") follows)."""
    steps: int


@dataclass(frozen=True)
class DetailsMeasured:
    """The latest step of each run seen closely (engine.detail.StepDetail or None per run), after the
    batch that holds it."""
    generation: int
    details: tuple


@dataclass(frozen=True)
class Failed:
    """A failure for the user: one line; the traceback where it was a bug (empty for a refused run set,
    which changes nothing: the runs train on as they were)."""
    message: str
    details: str = ""


@dataclass(frozen=True)
class Bye:
    pass
