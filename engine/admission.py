"""Admission: can this run set be built here? The one place that decides it.

Runs on any thread; no Qt. Every place a run set is about to be built asks `admit` once: the settings
panel for an edit (to show the refusal next to the control), the worker for the set it builds, the
trainer built on its own, `train`, `sweep`, the window's start and its File menu. A run set is admitted
when every run's device is there, its files fit it (a data file's windows, a model's inputs per step:
engine/user_files.py), and the whole set, with the history it keeps, fits in the memory this machine has
free, counting the memory of the runs it replaces (engine/memory.py). Anything else is one ConfigError
naming the setting, the value and what is allowed.

The worker also checks that a user's file is still the one the window read (`promised`,
`check_promises`): a model or data file changed on disk between opening it and training from it is
refused rather than trained as something the window did not describe.
"""
from __future__ import annotations

from engine import devices, user_files, memory
from engine.config import Config
from engine.errors import ConfigError


def admit(configs: Config | list[Config], kept: memory.Kept = memory.Kept(), replacing: list[Config] = ()) -> None:
    """Raise ConfigError unless `configs` can be built here, keeping `kept` of history, once the runs of
    `replacing` (their memory freed first) are gone."""
    configs = [configs] if isinstance(configs, Config) else list(configs)
    for config in configs:
        devices.pick(config.device, config)
        user_files.check_inputs(config)
    held = memory.need_bytes(list(replacing), kept) - memory.RUNTIME_BYTES if replacing else 0
    memory.check_fits(configs, kept=kept, reclaimable=max(held, 0))


def promised(configs: list[Config]) -> tuple:
    """((path, SHA-256), ...) of the user's files the runs train from, as read here (the caches of
    engine/user_model.py and engine/user_data.py: no second read of a file already opened)."""
    from engine import user_model, user_data
    files = {}
    for config in configs:
        if config.model:
            files[config.model] = user_model.cached(config.model).sha256
        if config.data:
            files[config.data] = user_data.cached(config.data, config.target).sha256
    return tuple(sorted(files.items()))


def check_promises(configs: list[Config], promises: tuple) -> None:
    """Raise ConfigError where a file the runs use is not the one promised (same path, other bytes)."""
    if not promises:
        return
    now = dict(promised(configs))
    for path, sha in promises:
        if path in now and now[path] != sha:
            key = "model" if any(c.model == path for c in configs) else "data"
            raise ConfigError(key, path, f"the file as the window read it (SHA-256 {sha[:12]}…); open it again "
                              "to train from what it holds now",
                              f"has changed since it was opened (SHA-256 now {now[path][:12]}…)")
