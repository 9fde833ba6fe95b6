"""The run folder: what `watch()` (engine/watching.py) writes and a viewer (gui/following.py) reads.

Runs on any thread; no Qt. TensorBoard's log directory, on a small scale: `run.json` once, written whole
(a temp file renamed), then `records.bin`, an append-only log of length-prefixed, checksummed records,
each an `.npz` payload (a JSON `meta` entry and float64 arrays, read without running anything). A writer
killed mid-record leaves a cut-short last record, which readers skip (a live viewer waits for the rest);
a record whose checksum fails is damage, and an error naming the file and the byte. The format is
versioned: a folder of another version is refused by name.

- `RunWriter(DIR, shapes, every)`: what `watch()` appends with.
- `RunReader(DIR).read_new()`: the records appended since the last call (what a viewer polls).
- `load_run(DIR) -> Run`: the whole folder as arrays (`.steps`, `.loss`, `.modules[name].grad_h` (S, rows, T)).
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

FORMAT = "rnn-gradient-lab run"
VERSION = 1
HEADER = "run.json"
RECORDS = "records.bin"
MAGIC = b"RGLR"
FRAME = struct.Struct("<4sII")   # magic, payload length, crc32 of the payload
MAX_RECORD = 1 << 31              # a length past this is damage, not a record
RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
CELLS = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}


class RunFormatError(ValueError):
    """A folder that is not a run, a damaged record, or a run written by another format version:
    the message names the folder or file and what is wrong."""


# ----------------------------------------------------------------------------- records

@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value to compare by
class ModuleRecord:
    """What one measured step says about one recurrent module. float64 arrays; rows = layers x directions."""
    grad_h: np.ndarray                 # (rows, T): norm of d loss / d h_t over batch and units
    grad_c: np.ndarray | None          # (rows, T): the same for an LSTM's cell state; None for other cells
    grad_x: np.ndarray                 # (T,): norm of d loss / d (the module's input at t)
    grad_h_units: np.ndarray | None    # (rows, T, H): each unit's norm over the batch (None: not kept)
    orders_lost: float                 # powers of ten the top row loses from the last timestep to the first
    sigma_max: np.ndarray              # (rows,): largest singular value of each weight_hh
    findings: tuple[str, ...] = ()     # plain-language diagnoses, most important first


@dataclass(frozen=True, eq=False)
class Record:
    step: int                          # counted from 1 at the first backward pass
    loss: float                        # NaN where not known
    modules: dict[str, ModuleRecord]
    seconds: float = math.nan          # time.time() when it was measured


def _encode(record: Record) -> bytes:
    arrays, meta = {}, {"kind": "step", "step": int(record.step), "loss": _json_float(record.loss),
                        "seconds": _json_float(record.seconds), "modules": []}
    for k, (name, m) in enumerate(record.modules.items()):
        meta["modules"].append({"name": name, "orders_lost": _json_float(m.orders_lost),
                                "findings": list(m.findings)})
        for key in ("grad_h", "grad_c", "grad_x", "grad_h_units", "sigma_max"):
            value = getattr(m, key)
            if value is not None:
                arrays[f"m{k}.{key}"] = np.asarray(value, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def _json_float(value) -> float | str | None:
    """JSON has no NaN or infinity: those go as strings."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _decode(payload: bytes, where: str) -> Record | None:
    """A record from its payload (None for the closing record); RunFormatError where it cannot be read."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("kind") == "end":
                return None
            modules = {}
            for k, m in enumerate(meta["modules"]):
                def get(key, k=k):
                    name = f"m{k}.{key}"
                    return readonly_array(data[name]) if name in data.files else None
                modules[m["name"]] = ModuleRecord(get("grad_h"), get("grad_c"), get("grad_x"), get("grad_h_units"),
                                                  _float(m["orders_lost"]), get("sigma_max"), tuple(m["findings"]))
            return Record(int(meta["step"]), _float(meta["loss"]), modules, _float(meta.get("seconds")))
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        raise RunFormatError(f"{where}: the record cannot be read ({type(exc).__name__}: {exc})") from None


def readonly_array(values) -> np.ndarray:
    values = np.array(values, dtype=np.float64)
    values.setflags(write=False)
    return values


# ----------------------------------------------------------------------------- writing

def module_shapes(model: nn.Module) -> dict[str, dict]:
    """Every nn.RNN/LSTM/GRU inside `model`, by qualified name (named_modules()), with its shape."""
    shapes = {}
    for name, module in model.named_modules():
        if isinstance(module, RECURRENT):
            shapes[name or "(model)"] = {
                "cell": CELLS.get(module.mode, module.mode.lower()), "layers": module.num_layers,
                "directions": 2 if module.bidirectional else 1, "hidden": module.hidden_size,
                "input_size": module.input_size, "batch_first": module.batch_first}
    return shapes


def has_dropout(model: nn.Module) -> bool:
    return any((isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)
               or (isinstance(m, nn.RNNBase) and m.dropout > 0 and m.num_layers > 1) for m in model.modules())


class RunWriter:
    """Appends records to a run folder: `run.json` first (whole, by rename), then one framed record per
    `append`, in one write each. `close()` appends the closing record, which tells a viewer the run ended."""

    def __init__(self, folder, modules: dict[str, dict], every: int, replace: bool = False, extra: dict | None = None):
        self.folder = Path(folder)
        header_path, records_path = self.folder / HEADER, self.folder / RECORDS
        if self.folder.exists() and not self.folder.is_dir():
            raise FileExistsError(f"{self.folder}: is a file, not a folder; give watch() a folder to write the run to")
        if header_path.exists() or records_path.exists():
            if not replace:
                raise FileExistsError(f"{self.folder}: already holds a run ({HEADER}); give another folder, or "
                                      "replace=True to start it again")
            records_path.unlink(missing_ok=True)  # first: a viewer never pairs the new header with old records
            header_path.unlink(missing_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.header = {"format": FORMAT, "version": VERSION, "run_id": uuid.uuid4().hex, "started": time.time(),
                       "every": int(every), "modules": modules, **(extra or {})}
        temporary = self.folder / f".{HEADER}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(self.header, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, header_path)
        self._file = open(records_path, "ab")
        self.count = 0

    def append(self, record: Record) -> None:
        self._write(_encode(record))
        self.count += 1

    def _write(self, payload: bytes) -> None:
        self._file.write(FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps({"kind": "end", "records": self.count, "seconds": time.time()})))
        self._write(buffer.getvalue())
        self._file.close()


# ----------------------------------------------------------------------------- reading

def read_header(folder) -> dict:
    """run.json, checked: RunFormatError naming the folder where it is not a run this reader reads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFormatError(f"{folder}: no such folder" if not folder.exists() else f"{folder}: is a file, not a run folder")
    path = folder / HEADER
    if not path.is_file():
        raise RunFormatError(f"{folder}: not a run folder (no {HEADER}); engine.watching.watch(model, out=FOLDER) writes one")
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFormatError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RunFormatError(f"{path}: not a run header (its format is not {FORMAT!r})")
    version = header.get("version")
    if version != VERSION:
        raise RunFormatError(f"{path}: written in run format version {version!r}; this reader reads version "
                             f"{VERSION} only (write and read with the same version of the lab)")
    if not isinstance(header.get("modules"), dict):
        raise RunFormatError(f"{path}: names no recurrent modules")
    return header


class RunReader:
    """Reads a run folder as it grows: `read_new()` returns the records appended since its last call,
    reading only the new bytes. A cut-short last record is left for the next call (`partial_bytes` says
    how much of it is there); a damaged one raises RunFormatError naming the file and the byte offset."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.header = read_header(self.folder)
        self.offset = 0            # bytes of records.bin read and decoded
        self.partial_bytes = 0     # bytes of a record not yet whole after the offset
        self.pending_bytes = 0     # bytes after the offset: whole records not read yet, or a cut-short one
        self.ended = False         # the writer closed the run

    @property
    def path(self) -> Path:
        return self.folder / RECORDS

    def replaced(self) -> bool:
        """The folder no longer holds this run (a new run started in it, or it is gone)."""
        try:
            header = json.loads((self.folder / HEADER).read_text(encoding="utf-8"))
            return header.get("run_id") != self.header.get("run_id") or self.path.stat().st_size < self.offset
        except (OSError, ValueError, AttributeError):
            return True

    def read_new(self, max_bytes: int | None = None) -> list[Record]:
        """The whole records appended since the last call, oldest first. `max_bytes`: read at most about
        this much (at least one record where one is whole), the rest at the next call (`pending_bytes`)."""
        records, at = [], 0
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(self.offset)
                data = f.read(-1 if max_bytes is None else max_bytes)
                size = max(size, self.offset + len(data))
                while len(data) - at >= FRAME.size:
                    magic, length, checksum = FRAME.unpack_from(data, at)
                    where = f"{self.path} (the record at byte {self.offset + at})"
                    if magic != MAGIC or length > MAX_RECORD:
                        raise RunFormatError(f"{where}: not a record (damaged, or not written by watch())")
                    end = at + FRAME.size + length
                    if end > len(data) and not records and self.offset + end <= size:
                        data += f.read(end - len(data))  # one record larger than max_bytes
                    if end > len(data):
                        break  # cut short (still being written, or its writer was killed), or read next time
                    payload = data[at + FRAME.size:end]
                    if zlib.crc32(payload) != checksum:
                        raise RunFormatError(f"{where}: damaged (its checksum does not match)")
                    record = _decode(payload, where)
                    if record is None:
                        self.ended = True
                    else:
                        records.append(record)
                    at = end
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunFormatError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        self.offset += at
        self.pending_bytes = size - self.offset
        self.partial_bytes = self.pending_bytes if self._cut_short(size) else 0
        return records

    def _cut_short(self, size: int) -> bool:
        """Whether the bytes after the offset end before the record there does."""
        left = size - self.offset
        if left == 0:
            return False
        if left < FRAME.size:
            return True
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            _, length, _ = FRAME.unpack(f.read(FRAME.size))
        return FRAME.size + length > left


@dataclass(frozen=True, eq=False)
class ModuleRun:
    """One recurrent module over the measured steps: S steps, rows = layers x directions. Records of
    other lengths T are padded at the end with NaN to the longest."""
    name: str
    cell: str
    layers: int
    directions: int
    hidden: int
    grad_h: np.ndarray                 # (S, rows, T)
    grad_c: np.ndarray | None          # (S, rows, T), LSTM only
    grad_x: np.ndarray                 # (S, T)
    grad_h_units: np.ndarray | None    # (S, rows, T, H), where kept
    orders_lost: np.ndarray            # (S,)
    sigma_max: np.ndarray              # (S, rows)
    findings: tuple                    # per step, a tuple of plain-language findings


@dataclass(frozen=True, eq=False)
class Run:
    folder: Path
    header: dict                       # run.json
    steps: np.ndarray                  # (S,) measured steps, counted from 1 at the first backward pass
    loss: np.ndarray                   # (S,) NaN where not known
    modules: dict[str, ModuleRun] = field(default_factory=dict)
    ended: bool = False                # the writer closed the run (False: still running, or killed)
    cut_short: bool = False            # a last record was cut short (a killed writer) and is skipped


def load_run(folder) -> Run:
    """The whole run folder as arrays (see Run and ModuleRun). RunFormatError where the folder is not a
    run, was written by another format version, or holds a damaged record; a cut-short last record
    (a writer killed mid-write) is skipped, and `Run.cut_short` says so."""
    reader = RunReader(folder)
    records = reader.read_new()
    modules = {}
    for name, shape in reader.header["modules"].items():
        kept = [r.modules[name] for r in records if name in r.modules]
        if len(kept) != len(records):
            continue  # not measured at every step (an older probe skipped it): left out
        modules[name] = ModuleRun(
            name, shape["cell"], shape["layers"], shape["directions"], shape["hidden"],
            _stack([m.grad_h for m in kept], rows=shape["layers"] * shape["directions"]),
            _stack([m.grad_c for m in kept]) if kept and all(m.grad_c is not None for m in kept) else None,
            _stack([m.grad_x for m in kept]),
            _stack([m.grad_h_units for m in kept]) if kept and all(m.grad_h_units is not None for m in kept) else None,
            readonly_array([m.orders_lost for m in kept]),
            _stack([m.sigma_max for m in kept], rows=shape["layers"] * shape["directions"], time_axis=None),
            tuple(m.findings for m in kept))
    return Run(reader.folder, reader.header, np.array([r.step for r in records], dtype=np.int64),
               readonly_array([r.loss for r in records]), modules, reader.ended, reader.partial_bytes > 0)


def _stack(arrays: list, rows: int | None = None, time_axis: int | None = -1) -> np.ndarray:
    """Arrays of one kind, one per step, stacked; of different lengths T, padded with NaN at the end."""
    if not arrays:
        shape = (0, rows, 0) if rows is not None and time_axis is not None else (0, rows) if rows else (0, 0)
        return readonly_array(np.zeros(shape))
    if time_axis is None:
        return readonly_array(np.stack(arrays))
    longest = max(a.shape[-1] if a.ndim == 1 else a.shape[1] for a in arrays)
    padded = []
    for a in arrays:
        axis = 0 if a.ndim == 1 else 1
        missing = longest - a.shape[axis]
        if missing:
            widths = [(0, 0)] * a.ndim
            widths[axis] = (0, missing)
            a = np.pad(a, widths, constant_values=np.nan)
        padded.append(a)
    return readonly_array(np.stack(padded))
