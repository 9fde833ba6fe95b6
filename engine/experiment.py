"""Experiment files: the configs of a run set (and optionally its recorded data) in one file.

Runs on any thread; no Qt. An experiment file (`.rgl`) is a NumPy `.npz` archive holding a JSON
header (`experiment.json`: format tag, version, the configs, an optional lesson name) and, when
data is included, one array per probe per run (`run0/loss`, `run0/grad_h`, ...). It never
unpickles anything, so a foreign file cannot run code; anything malformed raises
ExperimentError with a message saying what is wrong.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import config as cfg
from engine import reading
from engine.metrics import ARRAYS, SCALARS, MetricsLog
from engine.trainer import Snapshot

FORMAT = "rnn-gradient-lab-experiment"
VERSION = 1
SUFFIX = ".rgl"


class ExperimentError(ValueError):
    pass


class Cancelled(ExperimentError):
    """The caller's progress callback stopped the reading (a user's Cancel)."""


@dataclass
class Experiment:
    configs: list            # list[Config], 1 to 4 runs
    lesson: str | None = None
    logs: list | None = None  # list[MetricsLog] per run, when data is included
    notes: dict = field(default_factory=dict)


def save(path, experiment: Experiment, include_data: bool = False) -> Path:
    """Write the experiment to `path` (`.rgl` added if missing), through a temporary file renamed into
    place; a path that is a device, a pipe or a folder is refused, never written beside."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ExperimentError(f"{path}: not a regular file (a device, a pipe or a folder); allowed: a file path")
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
        if path.exists() and not path.is_file():
            raise ExperimentError(f"{path}: not a regular file (a device, a pipe or a folder); allowed: a file path")
    header = {"format": FORMAT, "version": VERSION, "lesson": experiment.lesson,
              "configs": [c.to_dict() for c in experiment.configs], "notes": experiment.notes,
              "has_data": bool(include_data and experiment.logs)}
    arrays = {"experiment.json": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    if header["has_data"]:
        for i, log in enumerate(experiment.logs):
            for name, values in log.to_arrays().items():
                arrays[f"run{i}/{name}"] = values
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:  # write then rename: a failed save never clobbers the old file
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path


def _snapshots_from_arrays(arrays: dict) -> list[Snapshot]:
    n = len(arrays["step"])
    snaps = []
    for i in range(n):
        values = {name: arrays[name][i].item() for name in SCALARS if name in arrays}
        for name in ARRAYS:
            values[name] = arrays[name][i] if name in arrays else None
        values["step"] = int(values["step"])
        values["clipped"] = bool(values["clipped"])
        values["diverged"] = bool(values.get("diverged", False))
        if values["grad_c"] is not None and np.all(np.isnan(values["grad_c"])):
            values["grad_c"] = None
        snaps.append(Snapshot(**values))
    return snaps


MAX_HEADER_BYTES = 1_000_000     # the JSON header: a few kB of settings
MAX_DATA_BYTES = 2 * 10**9       # recorded data, expanded (a full 5,000-step history is far less)
MAX_RECORDED_STEPS = 100_000     # the window keeps 5,000 per run; a file of more was not written by it


def _damaged(path: Path, what: str) -> ExperimentError:
    return ExperimentError(f"{path.name}: not a readable experiment file: {what}")


def load(path, progress=None) -> Experiment:
    """Read and check a whole experiment file before any of it is used: the header first, then the
    recorded arrays, whose sizes are checked before they are read (engine/reading.py). Anything
    wrong raises ExperimentError; nothing is half-read into the caller's hands. `progress(fraction)`
    is called as the data is read (for a long file); an exception it raises stops the reading."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise _damaged(path, "the file is empty")
        with zipfile.ZipFile(path) as archive:
            header = _read_header(path, archive)
            configs, lesson, notes = _check_header(path, header)
            logs = _read_logs(path, archive, len(configs), progress) if header.get("has_data") else None
    except ExperimentError:
        raise
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ExperimentError(f"{path.name}: is a folder, not an experiment file") from None
    except OSError as exc:  # (no permission): the system's reason
        raise ExperimentError(f"{path.name}: not a readable experiment file ({exc.strerror or exc})") from None
    except reading.TooLarge as exc:
        raise ExperimentError(f"{path.name}: {exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError):
        # numpy's and zipfile's own words mean nothing to a user
        raise _damaged(path, f"not a {SUFFIX} archive, or damaged") from None
    return Experiment(configs, lesson, logs, notes)


def _read_header(path: Path, archive: zipfile.ZipFile) -> dict:
    try:
        info = archive.getinfo("experiment.json.npy")
    except KeyError:
        raise ExperimentError(f"{path.name}: not an RNN Gradient Lab experiment (no experiment header)") from None
    if info.file_size > MAX_HEADER_BYTES:
        raise _damaged(path, f"its header is {reading.size_text(info.file_size)}, far more than settings take")
    raw = reading.npy_members(archive, ["experiment.json"], MAX_HEADER_BYTES)["experiment.json"]
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise _damaged(path, "its header is not valid JSON") from None


def _check_header(path: Path, header) -> tuple[list, str | None, dict]:
    """The header's settings, lesson and notes, all checked: what is refused is refused before
    anything of the file is applied."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExperimentError(f"{path.name}: not an RNN Gradient Lab experiment (format tag missing)")
    if header.get("version") != VERSION:
        raise ExperimentError(f"{path.name}: experiment version {cfg.shown(header.get('version'))} is not "
                              f"supported; this version reads {VERSION}")
    configs = header.get("configs")
    if not isinstance(configs, list) or not 1 <= len(configs) <= 4:
        raise ExperimentError(f"{path.name}: 'configs' must list 1 to 4 runs")
    try:
        parsed = [cfg.from_dict(c) for c in configs]
    except cfg.ConfigError as exc:
        raise ExperimentError(f"{path.name}: {exc}") from None
    lesson = header.get("lesson")
    if lesson is not None and not isinstance(lesson, str):
        raise ExperimentError(f"{path.name}: lesson {cfg.shown(lesson)} is not allowed; allowed: a lesson's "
                              "name, or null")
    notes = header.get("notes") or {}
    if not isinstance(notes, dict):
        raise ExperimentError(f"{path.name}: notes {cfg.shown(notes)} is not allowed; allowed: a table")
    return parsed, lesson, notes


def _read_logs(path: Path, archive: zipfile.ZipFile, runs: int, progress=None) -> list:
    available = reading.memory_available()
    budget = MAX_DATA_BYTES if available is None else min(MAX_DATA_BYTES, available // 2)
    headers = reading.npy_headers(archive, [f"run{i}/{name}" for i in range(runs) for name in SCALARS + ARRAYS])
    for i in range(runs):  # the step counts, from the headers, before any data is read
        steps = headers[f"run{i}/step"][0][0] if f"run{i}/step" in headers else 0
        if steps > MAX_RECORDED_STEPS:
            raise ExperimentError(f"{path.name}: run {i + 1} records {steps:,} steps; at most "
                                  f"{MAX_RECORDED_STEPS:,} are read (the window saves its newest 5,000)")
    data = reading.read_arrays(archive, headers, budget, progress=progress and (lambda f: progress(0.5 * f)))
    logs = []
    try:
        for i in range(runs):
            prefix = f"run{i}/"
            arrays = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
            steps = len(arrays["step"])
            if any(len(values) != steps for values in arrays.values()):
                raise ValueError("arrays of different lengths")
            log = MetricsLog()
            for snap in _snapshots_from_arrays(arrays):
                log.append(snap)
            logs.append(log)
            if progress is not None:
                progress(0.5 + 0.5 * (i + 1) / runs)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ExperimentError(f"{path.name}: recorded data is damaged ({exc})") from None
    return logs


def open_any(path, progress=None) -> Experiment:
    """Open an experiment file, or a plain JSON/TOML config file (e.g. a headless run's config.json)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".toml"):
        try:
            return Experiment([cfg.load(path)])
        except cfg.ConfigError as exc:
            raise ExperimentError(str(exc)) from None
    if path.suffix.lower() in (SUFFIX, ".npz"):
        return load(path, progress)
    raise ExperimentError(f"{path.name}: cannot open this kind of file; allowed: {SUFFIX} experiments, "
                          ".json or .toml configs")
