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
from engine.metrics import ARRAYS, SCALARS, MetricsLog
from engine.trainer import Snapshot

FORMAT = "rnn-gradient-lab-experiment"
VERSION = 1
SUFFIX = ".rgl"


class ExperimentError(ValueError):
    pass


@dataclass
class Experiment:
    configs: list            # list[Config], 1 to 4 runs
    lesson: str | None = None
    logs: list | None = None  # list[MetricsLog] per run, when data is included
    notes: dict = field(default_factory=dict)


def save(path, experiment: Experiment, include_data: bool = False) -> Path:
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
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


def load(path) -> Experiment:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "experiment.json" not in archive.files:
                raise ExperimentError(f"{path.name}: not an RNN Gradient Lab experiment (no experiment header)")
            header = json.loads(archive["experiment.json"].tobytes().decode("utf-8"))
            data = {name: archive[name] for name in archive.files if name != "experiment.json"}
    except ExperimentError:
        raise
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such file") from None
    except OSError as exc:  # (a folder, no permission): the system's reason
        raise ExperimentError(f"{path.name}: not a readable experiment file ({exc.strerror or exc})") from None
    except (ValueError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError):
        # numpy's and zipfile's own words ("pickled data ... allow_pickle=") mean nothing to a user
        raise ExperimentError(f"{path.name}: not a readable experiment file: not a {SUFFIX} archive, "
                              "or damaged") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExperimentError(f"{path.name}: not an RNN Gradient Lab experiment (format tag missing)")
    if header.get("version") != VERSION:
        raise ExperimentError(f"{path.name}: experiment version {header.get('version')!r} is not supported; "
                              f"this version reads {VERSION}")
    configs = header.get("configs")
    if not isinstance(configs, list) or not 1 <= len(configs) <= 4:
        raise ExperimentError(f"{path.name}: 'configs' must list 1 to 4 runs")
    try:
        parsed = [cfg.from_dict(c) for c in configs]
    except cfg.ConfigError as exc:
        raise ExperimentError(f"{path.name}: {exc}") from None
    logs = None
    if header.get("has_data"):
        logs = []
        try:
            for i in range(len(parsed)):
                prefix = f"run{i}/"
                arrays = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
                log = MetricsLog()
                for snap in _snapshots_from_arrays(arrays):
                    log.append(snap)
                logs.append(log)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ExperimentError(f"{path.name}: recorded data is damaged ({exc})") from None
    return Experiment(parsed, header.get("lesson"), logs, header.get("notes") or {})


def open_any(path) -> Experiment:
    """Open an experiment file, or a plain JSON/TOML config file (e.g. a headless run's config.json)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".toml"):
        try:
            return Experiment([cfg.load(path)])
        except cfg.ConfigError as exc:
            raise ExperimentError(str(exc)) from None
    if path.suffix.lower() in (SUFFIX, ".npz"):
        return load(path)
    raise ExperimentError(f"{path.name}: cannot open this kind of file; allowed: {SUFFIX} experiments, "
                          ".json or .toml configs")
