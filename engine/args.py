"""Command-line parser, argument types and messages shared by every command (`train`, the window,
`record`).

Plain argparse, no torch: the window parses its arguments before it imports the engine, so this
module imports nothing of the project but engine.errors. Bad input gets a message that names the
option, the value and what is allowed.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from engine.errors import UsageError


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, except that bad input raises UsageError instead of exiting: each command
    then prints its message and exits with status 2 in one place, as it does for a bad setting."""

    def error(self, message):
        raise UsageError(usage_message(self.prog, message))


def usage_message(prog: str, message: str) -> str:
    """argparse's complaint (an unknown option, a missing one, two that exclude each other) with a pointer
    to what is allowed, unless it already says. A bad value reads as the checks after parsing word it:
    "--steps: '1.5' is not allowed; ...", not "main.py train: argument --steps: '1.5' ..."."""
    option, sep, rest = message.partition(": ")
    if option.startswith("argument ") and sep and "allowed:" in rest:
        return f"{option.removeprefix('argument ')}: {rest}"
    return f"{prog}: {message}" + ("" if "allowed:" in message else f"; allowed: see `{prog} --help`")


def whole_number(text: str) -> int:
    """argparse type for counts: the error names the value and what is allowed."""
    try:
        if "_" in text:
            raise ValueError  # Python reads 1_0 as 10
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a whole number") from None


def decimal_number(text: str) -> float:
    """argparse type for lengths and rates: a finite number (not nan or inf); the error names the value
    and what is allowed."""
    try:
        value = math.nan if "_" in text else float(text)  # (Python reads 1_0 as 10)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a number such as 2.5")
    return value


def probe_writable(path: Path) -> str | None:
    """None if `path` (a file) can be written, its folders made if missing; else why not, in a few
    words. A file that was not there before is removed again."""
    existed = path.exists()
    if path.is_dir():
        return "is a folder"
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # (mkdir's own reason, "File exists", names nothing)
        return f"cannot be written ({blocking} is a file, not a folder)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc.__class__.__name__})"
    if not existed:
        path.unlink(missing_ok=True)
    return None


def add_file_options(parser) -> None:
    """--model and --data, as `train`, `record` and the window take them."""
    parser.add_argument("--model", metavar="FILE",
                        help="train a model of your own: a torch.save'd state_dict (or checkpoint holding one) with "
                             "one nn.RNN, nn.LSTM or nn.GRU; cell, hidden and layers are read from it")
    parser.add_argument("--data", metavar="FILE",
                        help="train on data of your own: .npz (x, y), .csv time series (--set target=COLUMN) or "
                             ".txt text (next character)")
