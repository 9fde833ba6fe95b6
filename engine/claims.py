"""A lesson's claim as code: parts that each read one figure per training step from the runs' recorded
snapshots and say whether it is within the claim's bound at the steps the claim names.

Runs on any thread; numpy only. A lesson lists its parts next to its prose claim (engine/lessons.py):

    orders(0).under(2).at(1)             run 1's fall is under 2 powers of ten at step 1
    loss_average(1, 50).over(0.9).from_step(50)   run 2's 50-step average loss stays over 0.9 of the
                                                  baseline at every step from step 50 to the pause
    diverged_at(2).at_most(30).at_pause()

`check(parts, snapshots, infos, steps, names)` evaluates them over the first `steps` snapshots of each
run (a Snapshot per step, from step 1; MetricsLog.snapshots or RunHistory.log.snapshots) and returns a
ClaimResult: per step, whether every part that applies there holds, and each part's figure in words.
A run with no snapshot at a step (it diverged earlier, or has not got there) reads NaN there, which
no bound holds, so a claim about a step is never true of a step that was not trained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Run:
    """What a part reads about one run."""
    snapshots: Sequence      # engine.trainer.Snapshot per step, from step 1
    baseline_loss: float     # the task's trivial-answer loss (RunInfo.baseline_loss)
    clip_threshold: float
    name: str                # as the lesson names the run ("LSTM"; "" for a lesson of one run)


@dataclass(frozen=True)
class Measure:
    label: str   # the figure in words: "{} orders lost" ({} takes the value, {other} another run's name)
    values: Callable[[list, int], np.ndarray]  # (runs, steps) -> one value per step, NaN where unrecorded
    run: int = 0
    other: int | None = None
    cumulative: bool = False  # a figure of the record so far ("diverged at step 4"): read "by step N"
    never: str = ""           # the words for an infinite figure ("never diverged"), where it has some
    reads: frozenset = frozenset()  # the probes taken only when asked that it reads ("eigenvalues": the
    #                                 trainer then takes them, engine.trainer.Trainer.take_eigenvalues)

    # a bound on the figure makes a Part of a claim (then .at(step), .from_step(step), .at_pause())
    def over(self, x): return Part(self).over(x)
    def under(self, x): return Part(self).under(x)
    def between(self, low, high): return Part(self).between(low, high)
    def at_least(self, x): return Part(self).at_least(x)
    def at_most(self, x): return Part(self).at_most(x)


def per_snapshot(run: int, label: str, read: Callable, other: int | None = None, reads: tuple = ()) -> Measure:
    """A figure read from each snapshot of run `run` alone (`read(snapshot, run_record)`); NaN at a
    step that diverged, where no figure means anything. `reads`: see Measure.reads."""
    def values(runs, steps):
        out = np.full(steps, np.nan)
        for i, snap in enumerate(list(runs[run].snapshots)[:steps]):
            out[i] = math.nan if snap.diverged else read(snap, runs[run])
        return out
    return Measure(label, values, run, other, reads=frozenset(reads))


def per_run(run: int, label: str, read: Callable, other: int | None = None) -> Measure:
    """A figure read from the whole of run `run`'s record so far (`read(snapshots, run_record)`: an
    array of one value per snapshot); NaN from a step that diverged on."""
    def values(runs, steps):
        out = np.full(steps, np.nan)
        snaps = list(runs[run].snapshots)[:steps]
        if snaps:
            out[:len(snaps)] = read(snaps, runs[run])
        diverged = next((k for k, s in enumerate(snaps) if s.diverged), None)
        if diverged is not None:
            out[diverged:] = np.nan
        return out
    return Measure(label, values, run, other)


def trailing_mean(values, window: int) -> np.ndarray:
    """The mean of the last `window` values at each step (NaN before step `window`)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        sums = np.cumsum(np.insert(values, 0, 0.0))
        out[window - 1:] = (sums[window:] - sums[:-window]) / window
    return out


def step_back_ratio(snap) -> float:
    """The top layer's largest ratio of a timestep's gradient to the bound the step after it sets: its
    gradient times the loop weights' largest stretch times the activation's steepest slope (at most 1
    where only the last timestep is scored)."""
    g = snap.grad_h[-1]
    bound = float(snap.sigma_max[-1] * snap.max_slope[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.max(g[:-1] / (bound * g[1:])))


def decay_per_step(snap, steps_back: int) -> float:
    """Average powers of ten the top layer's gradient loses per step back over the last `steps_back`."""
    g = snap.grad_h[-1][::-1][:steps_back + 1]
    if not np.all(g > 0):
        return math.nan  # underflowed inside the window: no reading
    return float(np.log10(g[0]) - np.log10(g[-1])) / steps_back


# ----------------------------------------------------------------------------- the figures a claim reads

def orders(run: int) -> Measure:
    return per_snapshot(run, "{} orders lost", lambda s, r: s.orders_of_magnitude)


def gained(run: int) -> Measure:
    return per_snapshot(run, "{} orders gained", lambda s, r: -s.orders_of_magnitude)


def apart(run: int) -> Measure:
    return per_snapshot(run, "{} orders between the last and the first timestep",
                        lambda s, r: abs(s.orders_of_magnitude))


def orders_more(run: int, than: int) -> Measure:
    def values(runs, steps):
        return orders(run).values(runs, steps) - orders(than).values(runs, steps)
    return Measure("{} more orders lost than {other}", values, run, than)


def decay_ratio(run: int, than: int, steps_back: int) -> Measure:
    def values(runs, steps):
        mine = per_snapshot(run, "", lambda s, r: decay_per_step(s, steps_back)).values(runs, steps)
        theirs = per_snapshot(than, "", lambda s, r: decay_per_step(s, steps_back)).values(runs, steps)
        return mine / theirs
    return Measure(f"{{}}x as many powers of ten lost per step back (the last {steps_back}) as {{other}}", values,
                   run, than)


def step_back(run: int) -> Measure:
    return per_snapshot(run, "each step back {}x its bound (the gradient after it x the loop weights' largest "
                             "stretch x the activation's steepest slope)", lambda s, r: step_back_ratio(s))


def smallest_gradient(run: int) -> Measure:
    return per_snapshot(run, "smallest timestep's gradient {}", lambda s, r: float(np.min(s.grad_h[-1])))


def loss(run: int) -> Measure:
    return per_snapshot(run, "loss {}x the baseline", lambda s, r: s.loss / r.baseline_loss)


def loss_average(run: int, window: int) -> Measure:
    return per_run(run, f"loss {{}}x the baseline ({window}-step average)",
                   lambda snaps, r: trailing_mean([s.loss for s in snaps], window) / r.baseline_loss)


def loss_against_first(run: int, window: int) -> Measure:
    return per_run(run, f"loss {{}}x its first ({window}-step average)",
                   lambda snaps, r: trailing_mean([s.loss for s in snaps], window) / snaps[0].loss)


def metric_average(run: int, window: int) -> Measure:
    return per_run(run, f"{{}} right ({window}-step average)",
                   lambda snaps, r: trailing_mean([s.metric for s in snaps], window))


def saturated(run: int) -> Measure:
    return per_snapshot(run, "{} of the top layer's units flat (slope near 0)", lambda s, r: float(s.saturation[-1]))


def gate(run: int, index: int, name: str) -> Measure:
    return per_snapshot(run, f"{name} gate {{}} open", lambda s, r: float(s.gate_means[-1][index]))


def inputs_ratio(run: int, recent: slice, early: slice, label: str) -> Measure:
    return per_snapshot(run, label, lambda s, r: float(s.grad_x[recent].sum() / s.grad_x[early].sum()))


def bottom_to_top(run: int) -> Measure:
    return per_snapshot(run, "bottom layer's weight gradient {}x the top layer's",
                        lambda s, r: float(s.grad_norm_layer[0] / s.grad_norm_layer[-1]))


def layer_to_layer_below(run: int) -> Measure:
    return per_snapshot(run, "each layer's weight gradient at least {}x the one below it",
                        lambda s, r: float(np.min(s.grad_norm_layer[1:] / s.grad_norm_layer[:-1])))


def applied_gradient(run: int) -> Measure:
    return per_snapshot(run, "applied gradient norm {}x the clipping threshold",
                        lambda s, r: s.grad_norm_clipped / r.clip_threshold)


def clipped_steps(run: int) -> Measure:
    return replace(per_run(run, "clipping changed the gradient at {} steps",
                           lambda snaps, r: np.cumsum([s.clipped for s in snaps])), cumulative=True)


def diverged_at(run: int) -> Measure:
    """The step run `run` diverged at, inf while it has not: read at any step, also after its record ends."""
    def values(runs, steps):
        at = next((k + 1 for k, s in enumerate(list(runs[run].snapshots)[:steps]) if s.diverged), math.inf)
        return np.where(np.arange(1, steps + 1) >= at, at, math.inf)
    return Measure("diverged at step {}", values, run, cumulative=True, never="never diverged")


def first_to_last(run: int) -> Measure:
    """The top layer's gradient at the first timestep over the last's (NaN where the last is 0)."""
    def read(s, r):
        g = s.grad_h[-1]
        return float(g[0] / g[-1]) if g[-1] > 0 else math.nan
    return per_snapshot(run, "gradient at the first timestep {}x the last's", read)


def stays_at_baseline(run: int) -> tuple:
    """A gated-cell lesson's tanh RNN: its 50-step average loss over 0.9 of the baseline at every step
    from step 50 on, its last loss over 0.6 of it."""
    return loss_average(run, 50).over(0.9).from_step(50), loss(run).over(0.6).at_pause()


# ----------------------------------------------------------------------------- a part of a claim

def number(value: float) -> str:
    if math.isnan(value):
        return "no value"
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    if abs(value) >= 1e5:  # 6.5e18, 1e6
        mantissa, exponent = f"{value:.2g}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if abs(value) >= 1e3:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Part:
    """One bound on one figure, at the steps from `first` to `last` (None: the lesson's pause)."""
    measure: Measure
    low: float | None = None
    high: float | None = None
    inclusive: bool = False     # the bounds themselves count as within
    first: int | None = 1
    last: int | None = None

    def over(self, x): return replace(self, low=x)
    def under(self, x): return replace(self, high=x)
    def between(self, low, high): return replace(self, low=low, high=high)
    def at_least(self, x): return replace(self, low=x, inclusive=True)
    def at_most(self, x): return replace(self, high=x, inclusive=True)
    def at(self, step): return replace(self, first=step, last=step)
    def from_step(self, step): return replace(self, first=step)
    def to_step(self, step): return replace(self, last=step)
    def at_pause(self): return replace(self, first=None, last=None)

    def bound_words(self) -> str:
        if self.low is not None and self.high is not None:
            return f"between {number(self.low)} and {number(self.high)}"
        if self.low is not None:
            return f"{'at least' if self.inclusive else 'over'} {number(self.low)}"
        return f"{'at most' if self.inclusive else 'under'} {number(self.high)}"

    def within(self, values: np.ndarray) -> np.ndarray:
        ok = np.ones(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.low is not None:
                ok &= values >= self.low if self.inclusive else values > self.low
            if self.high is not None:
                ok &= values <= self.high if self.inclusive else values < self.high
        return ok & ~np.isnan(values)

    def evaluate(self, runs: list[Run], steps: int) -> "PartResult":
        values = np.asarray(self.measure.values(runs, steps), dtype=np.float64)
        first = steps if self.first is None else self.first
        last = steps if self.last is None else min(self.last, steps)
        applies = np.zeros(steps, dtype=bool)
        applies[first - 1:last] = True
        ok = self.within(values)
        failing = np.flatnonzero(applies & ~ok)
        where = np.flatnonzero(applies)
        if failing.size:
            at = int(failing[0])
        elif where.size:
            shown = values[where]
            with np.errstate(invalid="ignore"):
                margin = np.minimum(shown - self.low if self.low is not None else np.inf,
                                    self.high - shown if self.high is not None else np.inf)
            at = int(where[np.argmin(np.nan_to_num(margin, nan=np.inf))])
        else:
            at = None
        return PartResult(self, ~applies | ok, math.nan if at is None else float(values[at]),
                          None if at is None else at + 1, (first, last), bool(where.size))


@dataclass(frozen=True)
class PartResult:
    part: Part
    holds: np.ndarray          # (steps,) True where the part holds or does not apply
    figure: float              # its value where it first fails, else where it comes closest to its bound
    step: int | None           # ... at this step (None: the part applies at no step checked)
    span: tuple                # (first, last) steps it applies at
    reached: bool              # it applies at some step checked

    def words(self, names: Sequence[str]) -> str:
        m = self.part.measure
        who = names[m.run] if m.run < len(names) and names[m.run] else ""
        other = names[m.other] if m.other is not None and m.other < len(names) else ""
        if m.never and self.figure == math.inf:
            figure = m.never
        else:
            figure = m.label.format(number(self.figure), other=other or f"run {(m.other or 0) + 1}")
        first, last = self.span
        if not self.reached:
            where = f"(not reached: it is claimed from step {first})"
        elif m.cumulative:
            where = f"by step {self.step}"
        elif first == last:
            where = f"at step {first}"
        else:
            where = f"at worst, at step {self.step} of steps {first}-{last}" if self.holds.all() else \
                f"at step {self.step}"
        return f"{who + ': ' if who else ''}{figure} {where} (claim: {self.part.bound_words()})"


@dataclass(frozen=True)
class ClaimResult:
    holds: np.ndarray      # (steps,) bool: at each step, every part that applies there holds
    figure: float          # the first part's figure (where it first fails, or comes closest to its bound)
    text: str              # every part in words: its figure, where, and the claim's bound
    parts: tuple           # PartResult per part
    steps: int             # steps checked
    names: tuple = ()

    @property
    def holds_throughout(self) -> bool:
        return bool(self.parts) and all(p.reached for p in self.parts) and bool(self.holds.all())

    @property
    def first_failure(self) -> int | None:
        failing = np.flatnonzero(~self.holds)
        return int(failing[0]) + 1 if failing.size else None

    def failing_words(self) -> str:
        """The parts that fail at the first failing step, in words."""
        step = self.first_failure
        return "; ".join(p.words(self.names) for p in self.parts if step is not None and not p.holds[step - 1])


def check(parts: Sequence[Part], snapshots: Sequence[Sequence], infos: Sequence, steps: int,
          names: Sequence[str] = ()) -> ClaimResult:
    """Every part over the first `steps` snapshots of each run; `infos[k]` gives run k's
    `baseline_loss` and `config.clip_threshold` (engine.worker.RunInfo)."""
    runs = [Run(list(snaps), float(info.baseline_loss), float(info.config.clip_threshold),
                names[k] if k < len(names) else "") for k, (snaps, info) in enumerate(zip(snapshots, infos))]
    results = tuple(part.evaluate(runs, steps) for part in parts)
    holds = np.logical_and.reduce([r.holds for r in results]) if results else np.zeros(steps, dtype=bool)
    names = tuple(names)
    return ClaimResult(holds, results[0].figure if results else math.nan,
                       "; ".join(r.words(names) for r in results), results, steps, names)


# ----------------------------------------------------------------------------- the factor per step (the Eigenvalues view)

def largest_factor_of(snap) -> float:
    """The top layer's largest factor one step back multiplies a unit's gradient by, as the Eigenvalues view
    draws it: the largest |eigenvalue| where the recurrence has fixed ones, else the largest unit's median
    factor per step (decided by the input: minGRU's 1 - z_t, the SSM's exp(delta_t A))."""
    if snap.eigenvalues is not None:
        return float(np.max(np.abs(snap.eigenvalues[-1])))
    if snap.step_factors is not None:
        return float(np.max(snap.step_factors[-1][:, 1]))
    return math.nan


def largest_factor(run: int) -> Measure:
    return per_snapshot(run, "largest factor per step {}", lambda s, r: largest_factor_of(s), reads=("eigenvalues",))


def smallest_eigenvalue(run: int) -> Measure:
    return per_snapshot(run, "smallest |eigenvalue| {}", lambda s, r: float(np.min(np.abs(s.eigenvalues[-1]))),
                        reads=("eigenvalues",))


def imaginary_part(run: int) -> Measure:
    return per_snapshot(run, "largest |imaginary part| of an eigenvalue {}",
                        lambda s, r: float(np.max(np.abs(np.imag(s.eigenvalues[-1])))), reads=("eigenvalues",))


def factor_spread(run: int) -> Measure:
    """How far the input moves a unit's factor per step: the median over the top layer's units of the range
    from its 10% to its 90% quantile."""
    return per_snapshot(run, "each unit's factor per step moves by {} with the input (median 10%-90% range)",
                        lambda s, r: float(np.median(s.step_factors[-1][:, 2] - s.step_factors[-1][:, 0])))


def slope_against_factor(run: int, earliest: int) -> Measure:
    """The gradient profile's fall per step back over its `earliest` timesteps (the far end, where the slowest
    unit is all that is left) over the fall the largest factor predicts, -log10(largest factor): 1 where the
    slowest unit's factor is what the gradient is multiplied by at every step back."""
    def read(s, r):
        g = s.grad_h[-1][:earliest + 1]
        factor = largest_factor_of(s)
        if not np.all(g > 0) or not 0 < factor < 1:
            return math.nan
        return float(np.log10(g[-1] / g[0]) / earliest / -np.log10(factor))
    return per_snapshot(run, f"the profile falls {{}}x the powers of ten per step its largest factor predicts "
                             f"(over its first {earliest} timesteps)", read, reads=("eigenvalues",))
