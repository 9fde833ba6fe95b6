"""Phase diagrams: every combination of a few settings' values, each point measured at initialisation or
trained, written as a table a reader can open anywhere.

Runs in the main thread of `main.py sweep` (engine/cli.py), whose points run in worker processes: a local
pool started with spawn (one torch thread each), or a Ray cluster through Ray's own API (an optional extra;
the cluster schedules, this module only hands it the work). The window's Phase diagram view has
`phase_maps.measure_at_init` run in a process of its own (phase_maps.MapProcess). No Qt.

A sweep's folder (format `rnn-gradient-lab sweep`, version 1):
  sweep.json    what was asked (the base settings, the grids, seeds, steps), written first; a rerun with the
                same --out and the same request resumes, another request there is refused
  points.jsonl  one line per finished unit of work (a point, or a stack of points measured together),
                appended as each finishes; a line cut short by a killed writer is skipped and redone
  sweep.csv     a row per point: the grid keys' values, the seed, the measurements (SWEEP_COLUMNS)
  sweep.npz     the same as arrays over every point of the grid (`done` says which finished), with each
                point's grad_h at its first and last measured step (NaN past its own layers and timesteps)
  phase.png     drawn by the caller (Qt lives in gui/): the map over the first two grid keys
Units of work are fixed by the request alone (never by the workers or what is already done), so a resumed
sweep and an uninterrupted one, local or on Ray, compute every number the same way, to the last bit.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import admission, memory, probes, schema, sweep_batched
from engine.config import BY_NAME, Config, ConfigError, apply_overrides, parse_value
from engine.errors import UsageError

FORMAT, VERSION = "rnn-gradient-lab sweep", 1
SPEC_FILE, POINTS_FILE, CSV_FILE, NPZ_FILE, PICTURE_FILE = (
    "sweep.json", "points.jsonl", "sweep.csv", "sweep.npz", "phase.png")
MAX_POINTS = 100_000
MAX_SEEDS = 1000
STACK_BYTES = 256 * 1024 ** 2  # a stack of networks measured together at initialisation stays within this
SWEEP_COLUMNS = ("orders_lost", "loss_first", "final_loss", "baseline_loss", "loss_ratio", "steps", "diverged",
                 "diverged_at_step", "exploded", "exploded_at_step", "steps_per_second", "seconds")
RAY_INSTALL = "pip install 'rnn-gradient-lab[ray]' (or pip install ray) in the lab's environment"


class SweepError(Exception):
    """A folder that is not a readable sweep: one line naming it."""


@dataclass(frozen=True)
class Grid:
    key: str
    texts: tuple   # each value as sweep.csv and the axes write it
    values: tuple  # ... and as the setting takes it


@dataclass(frozen=True)
class Point:
    index: int     # its row in every grid-shaped array of sweep.npz
    texts: tuple   # one per grid key
    seed: int
    config: Config


value_text = schema.value_text  # a setting's value as the sweep writes it (and --set reads it back)


def parse_grid(text: str) -> Grid:
    """`KEY=V1,V2,...`: the values as `--set` reads them, each once."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError("--grid", text, "KEY=V1,V2,... for example spectral_radius=0.8,1,1.2")
    parsed = [parse_value(key, part) for part in values.split(",")]  # (names the key: unknown, bad value)
    texts = [value_text(v) for v in parsed]
    if len(set(texts)) != len(texts):
        twice = next(t for t in texts if texts.count(t) > 1)
        raise ConfigError("--grid", text, "each value once", f"gives {key} {twice} twice")
    return Grid(key, tuple(texts), tuple(parsed))


def parse_grids(texts: list[str]) -> list[Grid]:
    if not texts:
        raise ConfigError("--grid", "", "at least one --grid KEY=V1,V2,...", "is missing")
    grids = [parse_grid(t) for t in texts]
    keys = [g.key for g in grids]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError("--grid", key, "each key in one --grid (list all its values there)", "is given twice")
    return grids


def make_points(base: Config, grids: list[Grid], seeds: int) -> list[Point]:
    """Every combination of the grids (the first key varying slowest), each with `seeds` seeds from the
    base's seed on. Every point is validated here, before anything runs."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError("--seeds", seeds, f"an integer from 1 to {MAX_SEEDS}")
    if seeds > 1 and any(g.key == "seed" for g in grids):
        raise ConfigError("--seeds", seeds, "1 when seed is a grid key (the grid names the seeds)")
    count = math.prod(len(g.values) for g in grids) * seeds
    if count > MAX_POINTS:
        raise ConfigError("--grid", " x ".join(str(len(g.values)) for g in grids) + f" x {seeds} seeds",
                          f"at most {MAX_POINTS:,} points", f"makes {count:,} points")
    points = []
    for combination in itertools.product(*(range(len(g.values)) for g in grids)):
        texts = tuple(g.texts[i] for g, i in zip(grids, combination))
        assignments = [f"{g.key}={t}" for g, t in zip(grids, texts)]
        try:
            config = apply_overrides(base, assignments)
        except ConfigError as exc:
            raise ConfigError(exc.key, exc.value, exc.allowed,
                              f"{exc.problem} (at the grid point {', '.join(assignments)})") from None
        for k in range(seeds):
            seeded = config if seeds == 1 else config.replace(seed=config.seed + k)
            points.append(Point(len(points), texts, seeded.seed, seeded))
    return points


def admit_points(points: list[Point], workers: int) -> None:
    """engine.admission.admit, the one place that says whether runs can be built here (device, files,
    memory): each point alone, then the `workers` largest together (they may run at once). A point keeps
    two snapshots (its first and last step)."""
    kept = memory.Kept(snapshots=2)
    for point in points:
        admission.admit(point.config, kept=kept)
    if workers > 1 and len(points) > 1:
        largest = sorted(points, key=lambda p: memory.need_bytes([p.config], kept))[-workers:]
        admission.admit([p.config for p in largest], kept=kept)


# ----------------------------------------------------------------------------- units of work

def make_units(points: list[Point], steps: int) -> list[tuple[int, ...]]:
    """The points of each unit of work, by index. At initialisation, points of one shape are stacked
    (sweep_batched), as many as STACK_BYTES holds; a trained point is a unit of its own."""
    if steps > 0:
        return [(p.index,) for p in points]
    groups: dict = {}
    for p in points:
        key = sweep_batched.shape_key(p.config) if sweep_batched.can_stack(p.config) else ("alone", p.index)
        groups.setdefault(key, []).append(p.index)
    units = []
    for indexes in groups.values():
        size = sweep_batched.stack_size(points[indexes[0]].config, STACK_BYTES)
        units += [tuple(indexes[k:k + size]) for k in range(0, len(indexes), size)]
    return units


def run_unit(job: tuple) -> tuple:
    """(unit number, [config dicts], steps) -> (unit number, [result dicts]): what a worker runs."""
    number, config_dicts, steps = job
    configs = [Config(**d) for d in config_dicts]
    start = time.perf_counter()
    if steps == 0:
        measured = (sweep_batched.measure_stacked(configs) if sweep_batched.can_stack(configs[0])
                    else [sweep_batched.measure_one(configs[0])])
        seconds = (time.perf_counter() - start) / len(configs)
        results = [_at_init(m, seconds) for m in measured]
    else:
        results = [_trained(configs[0], steps)]
    return number, results


def _at_init(measured: dict, seconds: float) -> dict:
    loss, baseline = measured["loss"], measured["baseline_loss"]
    grad_h = measured["grad_h"]
    return {"orders_lost": sweep_batched.orders(grad_h), "loss_first": loss, "final_loss": loss,
            "baseline_loss": baseline, "steps": 0, "diverged": not math.isfinite(loss), "diverged_at_step": None,
            "exploded": False, "exploded_at_step": None, "steps_per_second": None, "seconds": seconds,
            "grad_h_first": grad_h.tolist(), "grad_h_last": grad_h.tolist()}


def _trained(config: Config, steps: int) -> dict:
    from engine.trainer import Trainer
    trainer = Trainer(config, check_memory=False)  # (every point was checked before the sweep began)
    start = time.perf_counter()
    first = last = None
    for _ in range(steps):
        last = trainer.step()
        first = first or last
        if last.diverged:
            break
    elapsed = time.perf_counter() - start
    baseline = float(trainer.task.baseline_loss)
    return {"orders_lost": probes.orders_lost(first.grad_h[-1]), "loss_first": first.loss, "final_loss": last.loss,
            "baseline_loss": baseline, "steps": trainer.step_count, "diverged": trainer.diverged,
            "diverged_at_step": trainer.diverged_at_step, "exploded": trainer.exploded_at_step is not None,
            "exploded_at_step": trainer.exploded_at_step,
            "steps_per_second": trainer.step_count / elapsed if elapsed > 0 else None, "seconds": elapsed,
            "grad_h_first": np.asarray(first.grad_h, np.float64).tolist(),
            "grad_h_last": np.asarray(last.grad_h, np.float64).tolist()}


def _worker_unit(job: tuple) -> tuple:
    torch.set_num_threads(1)  # small networks run fastest on one thread, and the workers share the cores
    return run_unit(job)


def _ignore_interrupts():  # a local worker: Ctrl-C is the main process's to handle (it stops the pool)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def run_local(jobs: list[tuple], workers: int, finished) -> None:
    """Each job in a process of a spawn pool (in this process with one worker); `finished(number, results)`
    as each ends, in the order they end."""
    if workers <= 1:
        for job in jobs:
            finished(*run_unit(job))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # (the workers inherit it before torch loads there)
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_interrupts) as pool:
        for number, results in pool.imap_unordered(_worker_unit, jobs):  # (leaving the block terminates the pool)
            finished(number, results)


def ray_module():
    """Ray, or UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def run_ray(jobs: list[tuple], workers: int, address: str | None, finished) -> None:
    """Each job as a Ray task (one CPU, one torch thread) on the cluster at `address`, or on a local Ray this
    function starts with `workers` CPUs and stops again. The engine goes along as a py_module."""
    ray = ray_module()
    runtime_env = {"py_modules": [str(Path(__file__).resolve().parent)], "env_vars": {"OMP_NUM_THREADS": "1"}}
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(runtime_env=runtime_env, log_to_driver=False, configure_logging=False, **options)
    task = ray.remote(num_cpus=1)(_worker_unit)
    pending = [task.remote(job) for job in jobs]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                finished(*ray.get(ref))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


# ----------------------------------------------------------------------------- the folder

def spec_of(base: Config, grids: list[Grid], seeds: int, steps: int) -> dict:
    return {"format": FORMAT, "version": VERSION, "base": base.to_dict(),
            "grids": [[g.key, list(g.texts)] for g in grids], "seeds": seeds, "steps": steps}


def open_folder(out: Path, spec: dict) -> dict[int, dict]:
    """Make `out` ready for `spec`; the points already finished there (by index) when it holds the same
    sweep. Another sweep's folder is refused."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder (new or existing), not a file", "is a file")
    spec_path = out / SPEC_FILE
    if spec_path.exists():
        try:
            before = json.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if before != spec:
            differs = "is not a sweep's" if not isinstance(before, dict) or before.get("format") != FORMAT else \
                "holds another sweep (" + ", ".join(k for k in ("base", "grids", "seeds", "steps")
                                                   if before.get(k) != spec[k]) + " differ)"
            raise ConfigError("--out", str(out), "a new folder, or this same sweep's folder to resume it",
                              f"{differs}; its {SPEC_FILE} says what it holds")
        return read_points(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
        (out / POINTS_FILE).unlink(missing_ok=True)  # (a line of another sweep never counts)
    except OSError as exc:
        raise ConfigError("--out", str(out), "a folder where the sweep's files can be written",
                          f"cannot be written ({exc.strerror or exc.__class__.__name__})") from None
    return {}


def read_points(out: Path) -> dict[int, dict]:
    """The finished points in points.jsonl; a line cut short (a killed writer) is skipped."""
    done = {}
    try:
        lines = (out / POINTS_FILE).read_bytes().split(b"\n")
    except FileNotFoundError:
        return done
    for line in lines:
        try:
            record = json.loads(line)
            for index, result in zip(record["points"], record["results"]):
                done[int(index)] = result
        except (ValueError, KeyError, TypeError):
            continue
    return done


def append_points(out: Path, indexes, results) -> None:
    """One line, in one write: a kill leaves it whole or cut short, never half of a unit counted."""
    line = json.dumps({"points": list(indexes), "results": results}) + "\n"
    with open(out / POINTS_FILE, "ab") as fh:
        fh.write(line.encode("utf-8"))
        fh.flush()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


def _ratio(result: dict):
    loss, baseline = result["final_loss"], result["baseline_loss"]
    return loss / baseline if baseline else None


def write_tables(out: Path, spec: dict, points: list[Point], done: dict[int, dict]) -> None:
    """sweep.csv (the finished points, in grid order) and sweep.npz (every point, `done` marking them)."""
    keys = [key for key, _ in spec["grids"]]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(keys + ["seed", *SWEEP_COLUMNS])
    for p in points:
        if p.index in done:
            r = {**done[p.index], "loss_ratio": _ratio(done[p.index])}
            writer.writerow(list(p.texts) + [p.seed] + [_cell(r[c]) for c in SWEEP_COLUMNS])
    (out / CSV_FILE).write_text(text.getvalue(), encoding="utf-8")

    P = len(points)
    profiles = [np.asarray(done[p.index]["grad_h_first"], np.float64) for p in points if p.index in done]
    layers = max((g.shape[0] for g in profiles), default=0)
    steps = max((g.shape[1] for g in profiles if g.ndim == 2), default=0)
    arrays = {"spec": np.array(json.dumps(spec)), "keys": np.array(keys, dtype=str),
              "values": np.array([list(p.texts) for p in points], dtype=str).reshape(P, len(keys)),
              "seed": np.array([p.seed for p in points], dtype=np.int64),
              "done": np.array([p.index in done for p in points])}
    for column in SWEEP_COLUMNS:
        if column in ("diverged", "exploded"):
            arrays[column] = np.array([bool(done.get(p.index, {}).get(column)) for p in points])
        elif column in ("steps", "diverged_at_step", "exploded_at_step"):
            arrays[column] = np.array([_int(done.get(p.index, {}).get(column)) for p in points], dtype=np.int64)
        else:
            arrays[column] = np.array([_float({**r, "loss_ratio": _ratio(r)}.get(column)) if (r := done.get(p.index))
                                       else math.nan for p in points], dtype=np.float64)
    for name in ("grad_h_first", "grad_h_last"):
        block = np.full((P, layers, steps), np.nan)
        for p in points:
            if p.index in done:
                g = np.asarray(done[p.index][name], np.float64)
                block[p.index, :g.shape[0], :g.shape[1]] = g
        arrays[name] = block
    tmp = out / (NPZ_FILE + ".part")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, out / NPZ_FILE)


def _int(value) -> int:
    return -1 if value is None else int(value)


def _float(value) -> float:
    return math.nan if value is None else float(value)


# ----------------------------------------------------------------------------- the command

class Progress:
    """A one-line bar on stderr: points done of all, elapsed, ETA from this run's pace."""

    def __init__(self, total: int, already: int, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.already, self.done = total, already, already
        self.start = self.last = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, count: int, force: bool = False):
        self.done += count
        now = time.perf_counter()
        if not force and now - self.last < (0.1 if self.tty else 2.0):
            return
        self.last = now
        elapsed, ran = now - self.start, self.done - self.already
        eta = f"ETA {(self.total - self.done) * elapsed / ran:.0f} s" if ran and self.done < self.total else ""
        filled = int(30 * self.done / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} points  {elapsed:.1f} s  {eta}"
        self.stream.write(("\r" + line.ljust(78)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self):
        self.update(0, force=True)
        if self.tty:
            self.stream.write("\n")


@dataclass
class Outcome:
    points: int           # in the whole grid (seeds counted)
    done: int             # finished, this run and before
    resumed: int          # finished before this run
    seconds: float
    interrupted: str | None  # "Ctrl-C" | "SIGTERM" | None


class _Terminated(Exception):
    pass


def _terminated(signum, frame):
    raise _Terminated()


def run(base: Config, grid_texts: list[str], steps: int, seeds: int, out: Path, executor: str = "local",
        address: str | None = None, workers: int | None = None, progress: bool = True) -> Outcome:
    """The sweep command: everything checked (grids, every point's settings, each point's admission: device,
    files and memory; the folder), then the points not yet finished run, each unit's results appended as it
    ends; the tables are written at the end, and on Ctrl-C or SIGTERM with the points finished so far."""
    if steps < 0:
        raise ConfigError("--steps", steps, "0 (measure at initialisation) or a number of training steps")
    if executor not in ("local", "ray"):
        raise ConfigError("--executor", executor, "local | ray")
    if address is not None and executor != "ray":
        raise ConfigError("--address", address, "--address only with --executor ray")
    if workers is not None and workers < 1:
        raise ConfigError("--workers", workers, "an integer of at least 1")
    grids = parse_grids(grid_texts)
    points = make_points(base, grids, seeds)
    units = make_units(points, steps)
    if executor == "ray":
        ray_module()  # (said before anything runs)
    # at initialisation a stack of networks takes well under the second a spawned worker needs to import torch
    workers = workers or (1 if steps == 0 else min(os.cpu_count() or 1, len(units)))
    admit_points(points, 1 if executor == "ray" and address else workers)
    spec = spec_of(base, grids, seeds, steps)
    done = open_folder(out, spec)
    resumed = len(done)
    jobs = [(k, [points[i].config.to_dict() for i in unit], steps) for k, unit in enumerate(units)
            if not all(i in done for i in unit)]
    bar = Progress(len(points), resumed) if progress else None

    def finished(number: int, results: list[dict]):
        append_points(out, units[number], results)
        done.update(zip(units[number], results))
        if bar:
            bar.update(len(results))

    interrupted = None
    in_main = threading.current_thread() is threading.main_thread()  # (only there can signals be caught)
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    start = time.perf_counter()
    try:
        if executor == "ray":
            run_ray(jobs, workers, address, finished)
        else:
            run_local(jobs, min(workers, max(len(jobs), 1)), finished)
    except KeyboardInterrupt:
        interrupted = "Ctrl-C"
    except _Terminated:
        interrupted = "SIGTERM"
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if bar:
            bar.close()
        write_tables(out, spec, points, done)
    return Outcome(len(points), len(done), resumed, time.perf_counter() - start, interrupted)
