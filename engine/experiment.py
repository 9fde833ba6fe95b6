"""Experiment files: the configs of a run set (and optionally its recorded data) in one file.

Runs on any thread; no Qt. An experiment file (`.rgl`) is a NumPy `.npz` archive holding a JSON
header (`experiment.json`: format tag, version, the configs, an optional lesson name) and, when
data is included, one array per probe per run (`run0/loss`, `run0/grad_h`, ...). It never
unpickles anything, so a foreign file cannot run code; anything malformed raises
ExperimentError with a message saying what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import user_model, bounded_reading, user_data
from engine import config as cfg
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
    files, file_arrays = _user_files(experiment.configs, include_data)
    header = {"format": FORMAT, "version": VERSION, "lesson": experiment.lesson,
              "configs": [c.to_dict() for c in experiment.configs], "notes": experiment.notes,
              "has_data": bool(include_data and experiment.logs), "files": files}
    arrays = {"experiment.json": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), **file_arrays}
    if header["has_data"]:
        for i, log in enumerate(experiment.logs):
            for name, values in log.to_arrays().items():
                arrays[f"run{i}/{name}"] = values
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:  # write then rename: a failed save never clobbers the old file
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path


def _user_files(configs, include_data: bool) -> tuple[dict, dict]:
    """The runs' own files: each model's weights always (a run reopens from them even where the file
    is gone), each data file's path and SHA-256, and its bytes when `include_data`."""
    files, arrays = {}, {}
    for config in configs:
        if config.model and config.model not in files:
            model = user_model.cached(config.model)
            weights = {name: value.numpy() for name, value in user_model.as_state_dict(model).items()}
            files[config.model] = {"kind": "model", "sha256": model.sha256,
                                   "weights_sha256": user_model.weights_sha256(weights)}
            for name, value in weights.items():
                arrays[f"models/{model.sha256}/{name}"] = value
        if config.data and config.data not in files:
            data = user_data.cached(config.data, config.target)
            files[config.data] = {"kind": "data", "sha256": data.sha256, "included": include_data}
            if include_data:
                arrays[f"data/{data.sha256}"] = np.frombuffer(Path(config.data).read_bytes(), dtype=np.uint8)
    return files, arrays


def cache_folder() -> Path:
    """Where files carried inside experiments are unpacked: $XDG_CACHE_HOME (or ~/.cache)/rnn-gradient-lab."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnn-gradient-lab"


def _sha256_of(path: Path) -> str | None:
    try:
        return user_model.file_sha256(path) if path.is_file() else None
    except OSError:
        return None


_SHA256 = re.compile(r"[0-9a-f]{64}")
DATA_SUFFIXES = (".npz", ".csv", ".txt")   # the data kinds engine/user_data.py reads


def _unpack_files(path: Path, archive: zipfile.ZipFile, header: dict, configs: list) -> tuple[list, list]:
    """The configs with each user file found: the original where it is unchanged (same SHA-256), else
    the copy the experiment carries, unpacked into cache_folder(); a changed or missing file with no copy
    is refused. Returns the configs and notes on what was taken from where.

    Nothing a file declares is used as a path to write to: an entry no run uses is not looked at, a copy
    is verified against the SHA-256 declared for it before anything is written, and it is written under
    the SHA-256 the lab computes of what it unpacks, inside the cache folder (checked after resolving)."""
    files = header.get("files") or {}
    if not isinstance(files, dict):
        raise _damaged(path, "its list of the runs' files is not a table")
    used = {getattr(c, key) for c in configs for key in ("model", "data")} - {None, ""}
    moved, notes = {}, []
    for original, entry in files.items():
        if not isinstance(entry, dict) or entry.get("kind") not in ("model", "data") \
                or not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
            raise _damaged(path, f"its entry for {cfg.shown(original)} is not a file's kind and SHA-256")
        if original not in used:
            continue  # (no run reads it: nothing of it is unpacked)
        sha = entry["sha256"]
        if _sha256_of(Path(original)) == sha:
            continue
        state = "has changed since the experiment was saved" if Path(original).exists() else "is missing"
        unpack = _unpack_model if entry["kind"] == "model" else _unpack_data
        target = unpack(path, archive, original, entry, state)
        moved[original] = str(target)
        notes.append(f"{Path(original).name} {state}: using the copy saved in the experiment")
    configs = [c.replace(**{k: moved[getattr(c, k)] for k in ("model", "data") if getattr(c, k) in moved})
               for c in configs]
    return configs, notes


def _no_copy(path: Path, kind: str, original: str, state: str) -> ExperimentError:
    return ExperimentError(f"{path.name}: the {kind} file {original} {state}, and the experiment holds no copy "
                           "of it; allowed: the file as it was saved (same SHA-256), or an experiment saved with "
                           "its data")


def _mismatch(path: Path, original: str, declared: str, computed: str) -> ExperimentError:
    return ExperimentError(f"{path.name}: its copy of {Path(original).name} does not match the SHA-256 saved for "
                           f"it ({declared[:12]}…, the copy's is {computed[:12]}…): it was changed after the "
                           "experiment was saved, so it is not used and nothing of it was written")


def _inside_cache(kind: str, name: str) -> Path:
    """cache_folder()/kind/name, created, and checked to lie inside the cache folder once resolved."""
    folder = cache_folder() / kind
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise ExperimentError(f"{name}: not a name inside the cache folder {folder}")
    return target


def _write_atomically(target: Path, write) -> None:
    tmp = target.with_name(target.name + ".part")
    write(tmp)
    tmp.replace(target)


def _unpack_model(path: Path, archive: zipfile.ZipFile, original: str, entry: dict, state: str) -> Path:
    """A model's weights, carried as arrays `models/<sha>/<name>`, checked against the SHA-256 of the
    weights (user_model.weights_sha256) saved with them, written as a torch.save file named by it."""
    prefix = f"models/{entry['sha256']}/"
    names = [n[:-4] for n in archive.namelist() if n.startswith(prefix) and n.endswith(".npy")]
    if not names:
        raise _no_copy(path, "model", original, state)
    declared = entry.get("weights_sha256")
    if not isinstance(declared, str) or not _SHA256.fullmatch(declared):
        raise ExperimentError(f"{path.name}: its copy of {Path(original).name} carries no SHA-256 of its weights "
                              "(an experiment saved before copies were verified), so it is not used; allowed: "
                              f"the model file as it was saved, or the experiment saved again")
    members = bounded_reading.npy_members(archive, names, MAX_DATA_BYTES)
    state_dict = {n[len(prefix):]: v for n, v in members.items()}
    computed = user_model.weights_sha256(state_dict)
    if computed != declared:
        raise _mismatch(path, original, declared, computed)
    target = _inside_cache("models", f"{computed}.pt")
    _write_atomically(target, lambda tmp: user_model.save_state(state_dict, tmp))
    return target


def _unpack_data(path: Path, archive: zipfile.ZipFile, original: str, entry: dict, state: str) -> Path:
    """A data file's bytes, carried as `data/<sha>`, checked against that SHA-256 and written under it."""
    name = f"data/{entry['sha256']}"
    if name + ".npy" not in archive.namelist():
        raise _no_copy(path, "data", original, state)
    suffix = Path(original).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise _damaged(path, f"its data file {cfg.shown(original)} is none of {', '.join(DATA_SUFFIXES)}")
    raw = bounded_reading.npy_members(archive, [name], MAX_DATA_BYTES)[name].tobytes()
    computed = hashlib.sha256(raw).hexdigest()
    if computed != entry["sha256"]:
        raise _mismatch(path, original, entry["sha256"], computed)
    target = _inside_cache("data", f"{computed}{suffix}")
    _write_atomically(target, lambda tmp: tmp.write_bytes(raw))
    return target


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
    recorded arrays, whose sizes are checked before they are read (engine/bounded_reading.py). Anything
    wrong raises ExperimentError; nothing is half-read into the caller's hands. `progress(fraction)`
    is called as the data is read (for a long file); an exception it raises stops the reading."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise _damaged(path, "the file is empty")
        with zipfile.ZipFile(path) as archive:
            header = _read_header(path, archive)
            configs, lesson, notes = _check_header(path, header)
            configs, moved = _unpack_files(path, archive, header, configs)
            if moved:
                notes = {**notes, "files": moved}
            logs = _read_logs(path, archive, len(configs), progress) if header.get("has_data") else None
    except ExperimentError:
        raise
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ExperimentError(f"{path.name}: is a folder, not an experiment file") from None
    except OSError as exc:  # (no permission): the system's reason
        raise ExperimentError(f"{path.name}: not a readable experiment file ({exc.strerror or exc})") from None
    except bounded_reading.TooLarge as exc:
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
        raise _damaged(path, f"its header is {bounded_reading.size_text(info.file_size)}, far more than settings take")
    raw = bounded_reading.npy_members(archive, ["experiment.json"], MAX_HEADER_BYTES)["experiment.json"]
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
    available = bounded_reading.memory_available()
    budget = MAX_DATA_BYTES if available is None else min(MAX_DATA_BYTES, available // 2)
    headers = bounded_reading.npy_headers(archive, [f"run{i}/{name}" for i in range(runs) for name in SCALARS + ARRAYS])
    for i in range(runs):  # the step counts, from the headers, before any data is read
        steps = headers[f"run{i}/step"][0][0] if f"run{i}/step" in headers else 0
        if steps > MAX_RECORDED_STEPS:
            raise ExperimentError(f"{path.name}: run {i + 1} records {steps:,} steps; at most "
                                  f"{MAX_RECORDED_STEPS:,} are read (the window saves its newest 5,000)")
    data = bounded_reading.read_arrays(archive, headers, budget, progress=progress and (lambda f: progress(0.5 * f)))
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


MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")      # a user's weights (engine/user_model.py)


def kind_of(path: Path) -> str:
    """"model", "data" or "experiment" (an experiment, a settings file, or anything else, which the
    experiment reader then refuses by name). An .npz is an experiment when it holds an experiment header."""
    suffix = path.suffix.lower()
    if suffix in MODEL_SUFFIXES:
        return "model"
    if suffix == ".npz":
        try:
            with zipfile.ZipFile(path) as archive:
                return "experiment" if "experiment.json.npy" in archive.namelist() else "data"
        except (OSError, zipfile.BadZipFile):
            return "data"  # (the data reader names what is wrong with it)
    return "data" if suffix in DATA_SUFFIXES else "experiment"


def is_experiment_file(path: Path) -> bool:
    """A regular file that is an experiment: an .rgl, or an .npz holding an experiment header (a
    settings file, a device or a pipe is not; the settings reader takes those)."""
    path = Path(path)
    try:
        regular = path.is_file()
    except (OSError, ValueError):
        return False
    return regular and (path.suffix.lower() == SUFFIX or (path.suffix.lower() == ".npz" and kind_of(path) == "experiment"))
