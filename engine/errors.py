"""The errors bad input raises, and how they show the value a user typed.

Runs on any thread. A leaf: it imports nothing of the project, so the config, the registries, the
tasks and the command line can all raise these without importing each other in a circle.
"""
from __future__ import annotations

import json
from typing import Any


class ConfigError(ValueError):
    """A bad setting: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str, problem: str = "is not allowed",
                 shown_as: str | None = None):
        self.key, self.value, self.allowed, self.problem, self.shown_as = key, value, allowed, problem, shown_as
        super().__init__(f"{key}: {shown(value) if shown_as is None else shown_as} {problem}; allowed: {allowed}")

    def for_key(self, key: str) -> "ConfigError":
        """The same error under another name (`run 2 lr` for compare mode's second run)."""
        return ConfigError(key, self.value, self.allowed, self.problem, self.shown_as)


class UsageError(Exception):
    """A command line that cannot be parsed (an unknown option, two that exclude each other): the
    message says what is allowed, and the command exits with status 2."""


def shown(value: Any) -> str:
    """A value as its user wrote it: true, null and {"hidden": 32} as in JSON and TOML files, a text
    in quotes (Python would print True, None and {'hidden': 32})."""
    if value is None or isinstance(value, (bool, dict, list)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            pass
    return repr(value)
