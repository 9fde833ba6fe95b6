"""Phase maps: a sweep's folder read back as a map, and the window's map of the current network.

Runs on any thread; no Qt. `load(DIR)` reads what `main.py sweep` wrote (engine/sweep.py) as a
`PhaseMap` over its first two grid keys; `measure_at_init(config)` measures orders lost over spectral
radius and seq_len at initialisation by the same code as a sweep at `--steps 0`. The Phase diagram view
(gui/views/phase.py) has its maps measured by a `MapProcess`: a process of their own, at a lower priority
where the system has `os.nice` (Unix), so that the stacked networks' few seconds of torch take neither the
window's GIL nor its share of a core (in a thread of the window's process they held its frames up to 50 ms
at a time).
"""
from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import sweep_batched
from engine.processes import exit_with_parent, sigint_ignored
from engine.config import BY_NAME, Config, parse_value
from engine.sweep import (FORMAT, NPZ_FILE, VERSION, Grid, SweepError, make_points, make_units, run_unit,
                          value_text)

@dataclass(frozen=True)
class PhaseMap:
    """Orders lost over two settings: `values[row, column]`, rows along `y_key`, columns along `x_key`
    (NaN where no point finished), each cell the mean over seeds, at the first value of any further key."""
    x_key: str
    y_key: str | None
    x_texts: tuple
    y_texts: tuple
    values: np.ndarray
    note: str = ""   # what the map leaves out (further keys at their first value)

    def settings_at(self, column: int, row: int) -> dict:
        """The settings of a cell, as a config takes them."""
        chosen = {self.x_key: parse_value(self.x_key, self.x_texts[column])}
        if self.y_key is not None:
            chosen[self.y_key] = parse_value(self.y_key, self.y_texts[row])
        return chosen


def phase_map(keys, values, orders_lost, done) -> PhaseMap:
    """The map over the first two `keys` from per-point `values` (P, K) texts and `orders_lost` (P,)."""
    keys = list(keys)
    values = np.asarray(values, dtype=str).reshape(len(orders_lost), len(keys))
    axes = [tuple(dict.fromkeys(values[:, k])) for k in range(len(keys))]
    keep = np.asarray(done, bool).copy()
    for k in range(2, len(keys)):
        keep &= values[:, k] == axes[k][0]
    x_texts, y_texts = axes[0], axes[1] if len(keys) > 1 else ("",)
    grid = np.full((len(y_texts), len(x_texts)), np.nan)
    for row, y in enumerate(y_texts):
        for column, x in enumerate(x_texts):
            chosen = keep & (values[:, 0] == x) & ((values[:, 1] == y) if len(keys) > 1 else True)
            if chosen.any():
                with np.errstate(invalid="ignore"):
                    grid[row, column] = np.mean(np.asarray(orders_lost, np.float64)[chosen])
    note = ", ".join(f"{keys[k]} {axes[k][0]}" for k in range(2, len(keys)))
    return PhaseMap(keys[0], keys[1] if len(keys) > 1 else None, x_texts, y_texts, grid,
                    f"at {note}" if note else "")


def load(folder) -> tuple[dict, PhaseMap]:
    """A sweep folder's request and map (from its sweep.npz), or SweepError in one line."""
    folder = Path(folder)
    path = folder / NPZ_FILE if folder.is_dir() else folder
    if folder.is_dir() and not path.exists():
        raise SweepError(f"{folder} is not a sweep folder (no {NPZ_FILE} in it)")
    try:
        with np.load(path, allow_pickle=False) as data:
            spec = json.loads(str(data["spec"]))
            if not isinstance(spec, dict) or spec.get("format") != FORMAT:
                raise SweepError(f"{path} is not a sweep's {NPZ_FILE}")
            if spec.get("version") != VERSION:
                raise SweepError(f"{path} is a sweep of format version {spec.get('version')}; this lab reads "
                                 f"version {VERSION}")
            keys = [str(k) for k in data["keys"]]
            if any(k not in BY_NAME for k in keys):
                raise SweepError(f"{path} names a setting this lab does not have")
            return spec, phase_map(keys, data["values"], data["orders_lost"], data["done"])
    except SweepError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise SweepError(f"{path} cannot be read as a sweep ({exc.__class__.__name__}: {exc})") from None


# ----------------------------------------------------------------------------- the window's map

MAP_RADII = tuple(round(0.6 + 0.1 * k, 1) for k in range(10))        # 0.6 .. 1.5
MAP_LENGTHS = (10, 20, 50, 100, 150, 200, 300, 400, 500)


def map_base(config: Config) -> Config:
    """The settings the window's map is drawn for: the current network on the adding task, no file of the
    user's (a loaded model fixes its own weights), on the CPU."""
    return config.replace(task="adding", data=None, target=None, model=None, device="cpu")


def measure_at_init(base: Config, radii=MAP_RADII, lengths=MAP_LENGTHS, cancelled=None) -> PhaseMap:
    """The map of orders lost at initialisation over spectral radius (columns) and seq_len (rows), in this
    process and thread, stacked by length as the sweep command stacks them. `cancelled()`: True stops
    early (returns None)."""
    base = map_base(base)
    grids = [Grid("spectral_radius", tuple(value_text(float(r)) for r in radii), tuple(float(r) for r in radii)),
             Grid("seq_len", tuple(str(n) for n in lengths), tuple(lengths))]
    points = make_points(base, grids, 1)
    done = {}
    for unit in make_units(points, 0):
        if cancelled is not None and cancelled():
            return None
        _, results = run_unit((0, [points[i].config.to_dict() for i in unit], 0))
        done.update(zip(unit, results))
    orders = [done[p.index]["orders_lost"] for p in points]
    return phase_map(["spectral_radius", "seq_len"], [p.texts for p in points], orders, [True] * len(points))


def initial_radius(config: Config) -> float:
    """The spectral radius of the first recurrent matrix the initializer gives this config (what the map's
    dot marks when spectral_radius is none)."""
    if config.spectral_radius is not None:
        return float(config.spectral_radius)
    trainer, _, _ = sweep_batched.first_batch(map_base(config).replace(seq_len=2))
    block = trainer.model.layers[0].recurrent_blocks()[0]
    return float(torch.linalg.eigvals(block.double()).abs().max())


def measure_maps(networks, cancelled=None):
    """The maps of several networks, each once: `networks` is [(key, config)], runs of one network sharing a key.
    Returns ({key: PhaseMap}, {key: the initializer's spectral radius}), or None once `cancelled()`."""
    maps, radii = {}, {}
    for key, config in networks:
        if key in maps:
            continue
        maps[key] = measure_at_init(config, cancelled=cancelled)
        if maps[key] is None:
            return None
        radii[key] = initial_radius(config.replace(spectral_radius=None))  # (the dot, when unset)
    return maps, radii


MAP_PROCESS_NICE = 10  # the map process's priority below the window's and the training worker's (Unix)
_latest = None          # in the map process: the number of the newest request (a shared multiprocessing Value)


def _start_map_process(latest):
    global _latest
    _latest = latest
    torch.set_num_threads(1)
    exit_with_parent()
    try:
        os.nice(MAP_PROCESS_NICE)
    except (AttributeError, OSError):  # (not on this system: the map is measured at the usual priority)
        pass


def _measure_request(request: int, networks):
    return measure_maps(networks, cancelled=lambda: _latest.value != request)


class MapProcess:
    """Maps measured in one spawned process, started at the first request (Ctrl-C ignored: the window's to
    handle) and kept until `close()`; it also ends with its parent. Requests are numbered: a newer one, or
    `cancel()`, stops an older one at its next stack of networks (it returns None). `done(request, result)` is
    called on a thread of the pool's with the (maps, radii), None when stopped, or the exception raised (the
    process dying included); a request that cannot even start raises from `submit`."""

    def __init__(self):
        self._context = multiprocessing.get_context("spawn")
        self._latest = self._context.Value("q", 0)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(self, request: int, networks, done) -> None:
        self._latest.value = request
        for attempt in (1, 2):
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=self._context, initializer=_start_map_process,
                                                 initargs=(self._latest,))
            try:
                with sigint_ignored():  # (the pool starts its process here)
                    future = self._pool.submit(_measure_request, request, list(networks))
                break
            except BrokenProcessPool:  # the last one died: a new one, once
                self._pool = None
                if attempt == 2:
                    raise

        def finished(future):
            if not future.cancelled():
                done(request, future.exception() or future.result())
        future.add_done_callback(finished)

    def cancel(self) -> None:
        """Stop what is being measured, at its next stack; the process stays for the next request."""
        self._latest.value = -1

    def close(self) -> None:
        """Stop what is being measured (at its next stack) and wait for the process to end."""
        if self._pool is not None:
            self._latest.value = -1
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
