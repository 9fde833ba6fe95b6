"""A user's model and data files applied to run configs: the one place `--model` and `--data` act.

Runs on any thread; no Qt. The command line (`train`, `record`, the window's own options) and the
window's File > Open model / Open data all come here. A model file sets the run's cell, hidden size
and layers to what its weights say (engine/user_model.py); a data file makes the task `data`
(engine/user_data.py; an .npz also fixes seq_len). Both files are read and checked now, so a bad file is
refused before anything changes; the user's `--set KEY=VALUE` overrides come after, on top.
"""
from __future__ import annotations

from pathlib import Path

from engine import user_model, memory, user_data
from engine.config import Config, ConfigError, apply_overrides
from engine.lessons import lesson_runs


def _target(overrides) -> str | None:
    """The CSV column named by `--set target=COLUMN` (the last such), for reading the data file."""
    target = None
    for item in overrides or ():
        key, _, value = item.partition("=")
        if key.strip() == "target":
            target = value.strip() or None
    return None if target is not None and target.lower() == "none" else target


def with_files(config: Config, model: str | None = None, data: str | None = None, overrides=()) -> Config:
    """`config` with the data file, then the model file, then the `KEY=VALUE` overrides applied."""
    # absolute paths: a config.json or an experiment opens the same files from any folder
    if data is not None:
        config = user_data.apply(config, _absolute(data), _target(overrides))
    if model is not None:
        config = user_model.apply(config, _absolute(model))
    config = apply_overrides(config, list(overrides)) if overrides else config
    check_inputs(config)
    return config


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute()) if path.strip() else path


def check_inputs(config: Config) -> None:
    """A window must fit in the data, and a model must take as many inputs per step as the task gives:
    refused now, not when it trains."""
    if config.data:
        user_data.check_seq_len(user_data.cached(config.data, config.target), config.seq_len)
    if config.model:
        model = user_model.cached(config.model)
        _, channels, _ = memory.task_shape(config)
        if model.input_size != channels:
            what_for = f"the features of {Path(config.data).name}" if config.data else f"the {config.task} task"
            raise ConfigError("model", config.model, f"a model taking {channels} inputs per step ({what_for})",
                              f"takes {model.input_size} inputs per step")


def lesson_with_files(name: str, overrides=(), model: str | None = None, data: str | None = None) -> list[Config]:
    """Every run of lesson `name`, each with the user's files and then their overrides."""
    runs = lesson_runs(name)
    if model is None and data is None:
        return lesson_runs(name, list(overrides))
    return [with_files(run, model, data, overrides) for run in runs]


def describe(config: Config) -> list[str]:
    """What the run's files are, in a line each, for the window and the command line."""
    lines = []
    if config.model:
        lines.append("model: " + user_model.cached(config.model).describe(config.activation))
    if config.data:
        lines.append("data: " + user_data.cached(config.data, config.target).description)
    return lines
