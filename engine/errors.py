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
        super().__init__(f"{excerpt(str(key))}: {shown(value) if shown_as is None else excerpt(shown_as)} "
                         f"{problem}; allowed: {allowed}")

    def for_key(self, key: str) -> "ConfigError":
        """The same error under another name (`run 2 lr` for compare mode's second run)."""
        return ConfigError(key, self.value, self.allowed, self.problem, self.shown_as)


class UsageError(Exception):
    """A command line that cannot be parsed (an unknown option, two that exclude each other): the
    message says what is allowed, and the command exits with status 2."""


SHOWN_AT_MOST = 80  # characters of a value a message quotes: a 100 MB value must not make a 100 MB message


def excerpt(text: str, limit: int = SHOWN_AT_MOST) -> str:
    """`text`, or its start and how long it is when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 20]}… ({len(text):,} characters)"


def shown(value: Any) -> str:
    """A value as its user wrote it: true, null and {"hidden": 32} as in JSON and TOML files, a text
    in quotes (Python would print True, None and {'hidden': 32}); a long one cut to an excerpt."""
    if isinstance(value, str) and len(repr(value)) > SHOWN_AT_MOST and "/" in value and "\n" not in value:
        quoted = repr(value[-(SHOWN_AT_MOST - 20):])  # a long path: its end names the file
        return f"{quoted[0]}…{quoted[1:]} ({len(value):,} characters)"
    if isinstance(value, str) and len(value) > SHOWN_AT_MOST:
        quoted = repr(value[:SHOWN_AT_MOST - 20])
        return f"{quoted[:-1]}…{quoted[-1]} ({len(value):,} characters)"
    if value is None or isinstance(value, (bool, dict, list)):
        try:
            return excerpt(json.dumps(value))
        except (TypeError, ValueError, RecursionError):
            pass
    try:
        return excerpt(repr(value))
    except (ValueError, RecursionError):  # an integer of over 4,300 digits has no decimal form
        return "a number too long to show"
