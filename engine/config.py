"""The one validated, immutable run configuration, and its file and command-line forms.

Runs on any thread. The key names are the public interface: the command line (`--set KEY=VALUE`),
config files (JSON or TOML) and the GUI's controls all use them. Validation lives here and only
here; every error names the key, the bad value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine import bounded_reading, registry
from engine.errors import ConfigError, excerpt, shown


from engine.schema import BY_NAME, KEYS, LIVE_KEYS, MAX_LAYERS, MAX_SEQ_LEN, RANGES, SETTINGS  # noqa: F401


class _ConfigMethods:
    def __post_init__(self):
        validate(self)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed_keys(self, other: "Config") -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def needs_rebuild(self, other: "Config") -> bool:
        return any(k not in LIVE_KEYS for k in self.changed_keys(other))


# The run configuration: one field per row of engine/schema.py (its name, type and default; the rows
# say what each is for), frozen, validated whole on creation.
Config = dataclasses.make_dataclass(
    "Config", [(s.name, s.python_type | None if s.optional else s.python_type, dataclasses.field(default=s.default))
               for s in SETTINGS],
    bases=(_ConfigMethods,), frozen=True,
    namespace={"__module__": __name__, "__doc__": "A run's settings: see engine/schema.py for each field."})

DATA_SUFFIXES = (".npz", ".csv", ".txt")
CHOICES = {s.name: s.choices for s in SETTINGS if s.kind == "choice"}


def validate(c: Config) -> None:
    """Each setting's type and range (engine/schema.py), then the settings that depend on each other."""
    for setting in SETTINGS:
        value = getattr(c, setting.name)
        if setting.kind not in ("path", "text") and not setting.accepts(value):
            raise ConfigError(setting.name, value, setting.allowed())
    _check_files(c)
    registry.TASKS[c.task].check_seq_len(c.seq_len)


def _check_files(c: Config) -> None:
    """The file keys' forms (the files themselves are read by engine/user_model.py and engine/user_data.py)."""
    for key in ("model", "data", "target"):
        value = getattr(c, key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(key, value, "none, or a file path" if key != "target" else "none, or a column name")
    if c.data is not None and not c.data.lower().endswith(DATA_SUFFIXES):
        raise ConfigError("data", c.data, "a .npz, .csv or .txt file")
    if (c.task == "data") != (c.data is not None):
        if c.data is None:
            raise ConfigError("task", c.task, "adding | copy | digits, or data together with data=FILE (--data FILE)",
                              "is set, but no data file is")
        raise ConfigError("task", c.task, "data while a data file is set (or data=none for a built-in task)")
    if c.target is not None and (c.data is None or not c.data.lower().endswith(".csv")):
        raise ConfigError("target", c.target, "none, or a column name together with a .csv data file")


def _coerce(key: str, value: Any) -> Any:
    """Turn a value from a file into the field's type; wrong types raise ConfigError."""
    setting = BY_NAME[key]
    if setting.optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("none", ""))):
        return None
    kind = setting.python_type
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and not isinstance(value, float):
        raise ConfigError(key, value, "a number")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        if isinstance(value, float) and value.is_integer():  # 16.0 from a tool that writes every number as a float
            return int(value)
        raise ConfigError(key, value, "an integer")
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(key, value, "true | false")
    if kind is str and not isinstance(value, str):
        raise ConfigError(key, value, "a string")
    return value


def _unknown_key(key: str, value: Any) -> ConfigError:
    """`seqlen: 10 is set, but seqlen is not a setting (did you mean seq_len?); allowed: one of task, ...`"""
    close = difflib.get_close_matches(str(key), KEYS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(key, value, "one of " + ", ".join(KEYS), f"is set, but {excerpt(str(key))} is not a setting{hint}")


def from_dict(data: Any, base: Config | None = None) -> Config:
    """Build a Config from a mapping (e.g. a parsed file); missing keys keep `base`'s values."""
    if not isinstance(data, dict):
        raise ConfigError("config", type(data).__name__, "a table of key = value pairs")
    for key in data:
        if key not in KEYS:
            raise _unknown_key(key, data[key])
    values = {k: _coerce(k, v) for k, v in data.items()}
    base = base or Config()
    return dataclasses.replace(base, **_fit_length_to_task(base, values))


# A cell whose paper uses an activation of its own: choosing the cell without saying the activation takes it
CELL_ACTIVATION = {"indrnn": "relu"}


def _fit_length_to_task(base: Config, values: dict) -> dict:
    """Choosing a task without a length keeps the length if the task can use it, else takes the
    task's own (digits: 64), so `--set task=digits` works on its own. A data file chooses the task
    `data`; a built-in task (or data=none) leaves the data file. Choosing cell=indrnn without an
    activation takes ReLU (CELL_ACTIVATION); an activation given in the same change is kept."""
    values = dict(values)
    if values.get("data") is not None and "task" not in values:
        values["task"] = "data"
    elif "data" in values and values["data"] is None and "task" not in values and base.task == "data":
        values["task"] = Config.task
    elif "task" in values and values["task"] != "data" and "data" not in values:
        values["data"] = None
    if values.get("task", base.task) != "data" and "target" not in values:
        values["target"] = None
    if "task" in values and "seq_len" not in values and values["task"] in registry.TASKS:
        values = {**values, "seq_len": registry.TASKS[values["task"]].fit_seq_len(base.seq_len)}
    if values.get("cell") in CELL_ACTIVATION and "activation" not in values:
        values["activation"] = CELL_ACTIVATION[values["cell"]]  # the cell's paper's, unless this change says one
    return values


def _whole_number(text: str) -> int:
    """`2` or, as a file's 2.0 is read, `2.0` and `1e2`; ValueError for 2.5, inf or words."""
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise
        return int(number)


def parse_value(key: str, text: str) -> Any:
    """Parse the text of `--set KEY=VALUE` into the field's type."""
    if key not in KEYS:
        raise _unknown_key(key, text)
    setting = BY_NAME[key]
    kind = setting.python_type
    t = text.strip()
    if setting.optional and t.lower() in ("none", ""):
        return None
    try:
        if kind in (int, float) and "_" in t:
            raise ValueError  # Python reads 1_0 as 10: most likely a typo, never what a setting looks like
        if kind is int:
            return _whole_number(t)
        if kind is float:
            return float(t)
        if kind is bool:
            if t.lower() in ("true", "1", "yes", "on"):
                return True
            if t.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        allowed = {int: "an integer", float: "a number or none" if setting.optional else "a number",
                   bool: "true | false"}[kind]
        raise ConfigError(key, text, allowed) from None
    return t


def _replace_typed(base: Config, values: dict, typed: dict) -> Config:
    """`base` with `values`, parsed from the texts in `typed`; a refused value is named as typed
    (`1e-400`, which reads as 0.0; `-1`, not -1.0)."""
    try:
        return dataclasses.replace(base, **values)
    except ConfigError as error:
        text = typed.get(error.key, "").strip()
        if error.key in typed and error.value == values.get(error.key) and shown(error.value) != text:
            raise ConfigError(error.key, error.value, error.allowed, error.problem, shown_as=text) from None
        raise


def set_from_text(base: Config, key: str, text: str) -> Config:
    """`base` with one setting read from its text, as `--set KEY=VALUE` reads it (compare mode's values)."""
    return _replace_typed(base, {key: parse_value(key, text)}, {key: text})


def apply_overrides(base: Config, assignments: list[str]) -> Config:
    """Apply `KEY=VALUE` strings, in order, to `base`."""
    values, typed = {}, {}
    for item in assignments:
        key, _, text = item.partition("=")
        if "=" not in item or not key.strip():
            raise ConfigError("--set", item, "KEY=VALUE, for example seq_len=200")
        values[key.strip()] = parse_value(key.strip(), text)
        typed[key.strip()] = text
    return _replace_typed(base, _fit_length_to_task(base, values), typed)


def _once_each(pairs, path):
    """A JSON object whose keys are all different: JSON itself lets the last of two equal keys win,
    which would silently drop a setting (TOML already refuses them)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(key, value, "each setting once in a file",
                              f"is given a second time in {str(path)!r} (first {shown(seen[key])})")
        seen[key] = value
    return seen


MAX_CONFIG_BYTES = 1_000_000  # a config is a few hundred bytes; a megabyte leaves room for any comment


def load(path: str | Path, base: Config | None = None) -> Config:
    """Read a JSON or TOML config file; any problem raises ConfigError naming the file. At most
    MAX_CONFIG_BYTES are read (a device such as /dev/zero is refused, not read forever)."""
    path = Path(path)
    try:
        text = bounded_reading.read_bytes(path, MAX_CONFIG_BYTES).decode("utf-8")
    except bounded_reading.TooLarge as exc:
        raise ConfigError("config file", str(path), "a JSON or TOML settings file of at most "
                          f"{bounded_reading.size_text(MAX_CONFIG_BYTES)}", f"{exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise ConfigError("config file", str(path), "a readable UTF-8 JSON or TOML file",
                          f"cannot be read ({reason})") from None
    is_toml = path.suffix.lower() == ".toml"
    kind = "TOML" if is_toml else "JSON"
    try:
        data = tomllib.loads(text) if is_toml else json.loads(text, object_pairs_hook=lambda pairs: _once_each(pairs, path))
    except ConfigError:  # a setting given twice (_once_each)
        raise
    except RecursionError:  # [[[[...]]]]: no setting nests, so say so rather than print Python's stack
        raise ConfigError("config file", str(path), f"flat {kind}: key = value pairs",
                          "nests lists or tables too deeply") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        if is_toml or path.suffix.lower() == ".json":
            raise ConfigError("config file", str(path), f"valid {kind}", f"is malformed ({exc})") from None
        raise ConfigError("config file", str(path), "a JSON file (.json, or any other name) or a TOML file (.toml)",
                          f"is not JSON ({exc})") from None
    except ValueError as exc:  # an integer of thousands of digits: Python refuses to convert it
        raise ConfigError("config file", str(path), "numbers of at most a few dozen digits",
                          f"holds a number too long to read ({str(exc).split(':')[0]})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # an experiment file or summary with the config nested inside
    return from_dict(data, base)


def to_toml(c: Config) -> str:
    lines = []
    for key, value in c.to_dict().items():
        if value is None:
            value = "none"
        lines.append(f"{key} = {json.dumps(value)}")  # JSON scalars are valid TOML scalars
    return "\n".join(lines) + "\n"


def save(c: Config, path: str | Path) -> None:
    path = Path(path)
    text = to_toml(c) if path.suffix.lower() == ".toml" else json.dumps(c.to_dict(), indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
