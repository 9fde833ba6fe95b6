"""Reading a user's files within limits: no file makes the app read more than it can hold.

Runs on any thread; numpy only. Every file the app opens (configs, experiment files) goes through
here: its size is known before it is read, a device or pipe is read only up to the limit (so
`/dev/zero` is refused, not read forever), each array's declared size is checked against what the
archive can hold before anything is allocated, and the total against the memory the machine has.
"""
from __future__ import annotations

import contextlib
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np


class TooLarge(ValueError):
    """The file, or what it declares, is larger than the app will read."""


def memory_available() -> int | None:
    """Bytes the system can give this process now without swapping (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n: float) -> str:
    """1.5 GB, 320 MB, 12 kB: a size a reader takes in at a glance."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def read_bytes(path: Path, limit: int) -> bytes:
    """The whole of `path`, refused (TooLarge) before reading if it is larger than `limit`; a
    device or pipe, whose size is not known, is read up to the limit and refused past it."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise TooLarge(f"is {size_text(size)}")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"does not end within {size_text(limit)}")
    return data


DAMAGED = (zlib.error, tokenize.TokenError, SyntaxError, NotImplementedError, zipfile.BadZipFile, EOFError,
           KeyError, TypeError, IndexError, OverflowError)  # what numpy and zipfile raise on damaged bytes


@contextlib.contextmanager
def damaged_as_value_error():
    """Any of the errors a damaged archive raises deep in zipfile, zlib or numpy's header parser, as a
    ValueError the callers already turn into one line."""
    try:
        yield
    except DAMAGED as exc:
        raise ValueError(f"damaged ({type(exc).__name__}: {exc})") from None


def npy_headers(archive: zipfile.ZipFile, names: list[str]) -> dict[str, tuple]:
    with damaged_as_value_error():
        return _npy_headers(archive, names)


def _npy_headers(archive: zipfile.ZipFile, names: list[str]) -> dict[str, tuple]:
    """(shape, dtype, member) of each `.npy` member in `names` ('name' for 'name.npy'; missing ones
    are skipped), from the headers alone: no object arrays (no pickle), and each array's declared
    size exactly what its member holds. Raises ValueError (damaged) before anything big is read."""
    headers = {}
    for name in names:
        try:
            info = archive.getinfo(name + ".npy")
        except KeyError:
            continue
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"{name}: unknown array format {version}")
            header_bytes = fh.tell()
        if dtype.hasobject:
            raise ValueError(f"{name}: holds Python objects, which are never read")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - header_bytes:
            raise ValueError(f"{name}: declares {size_text(nbytes)} of data but holds "
                             f"{size_text(max(info.file_size - header_bytes, 0))}")
        headers[name] = (shape, dtype, info)
    return headers


def read_arrays(archive: zipfile.ZipFile, headers: dict[str, tuple], budget: int, progress=None) -> dict:
    """The arrays `npy_headers` described, once their total fits in `budget` bytes (TooLarge before
    anything is read if not). `progress(fraction)` is called after each; it may raise to stop."""
    total = sum(math.prod(shape) * dtype.itemsize for shape, dtype, _ in headers.values())
    if total > budget:
        raise TooLarge(f"its recorded data expands to {size_text(total)}; at most {size_text(budget)} "
                       "fits in the memory this machine has free")
    arrays, done = {}, 0
    for name, (shape, dtype, info) in headers.items():
        with damaged_as_value_error(), archive.open(info) as fh:
            arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
        done += math.prod(shape) * dtype.itemsize
        if progress is not None:
            progress(done / total if total else 1.0)
    return arrays


def npy_members(archive: zipfile.ZipFile, names: list[str], budget: int) -> dict[str, np.ndarray]:
    """The arrays of the `.npy` members `names`, every header checked before any is read."""
    return read_arrays(archive, npy_headers(archive, names), budget)
