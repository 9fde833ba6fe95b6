"""Command-line argument types and messages shared by every command (`train`, the window, `record`).

Plain argparse, no torch: the window parses its arguments before it imports the engine. Bad input
gets a message that names the option, the value and what is allowed.
"""
from __future__ import annotations

import argparse


def usage_message(prog: str, message: str) -> str:
    """argparse's complaint (an unknown option, a missing one, two that exclude each other) with a pointer
    to what is allowed, unless it already says."""
    return f"{prog}: {message}" + ("" if "allowed:" in message else f"; allowed: see `{prog} --help`")


def whole_number(text: str) -> int:
    """argparse type for counts: the error names the value and what is allowed."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a whole number") from None


def decimal_number(text: str) -> float:
    """argparse type for lengths and rates: the error names the value and what is allowed."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a number such as 2.5") from None
