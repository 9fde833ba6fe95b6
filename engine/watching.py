"""Watch a user's own PyTorch training loop, unchanged, and keep what its recurrent modules' gradients do.

Runs on the thread that trains (a script, a notebook kernel); no Qt. Three parts, one file format:

- `watch(model, out=DIR, every=N)`: a context manager around the user's own loop. Every N-th step
  (and the first) it measures, for every nn.RNN/LSTM/GRU inside `model` (by qualified name), what
  engine.api.probe_model reports, on that step's batch and on the weights BEFORE that step's
  update, and appends it to the run folder DIR.
- `RunReader(DIR).read_new()`: the records appended since the last call (what a viewer polls; the
  window's gui/following.py does), and `load_run(DIR) -> Run`: the whole folder as arrays.
- The run folder (TensorBoard's log directory, on a small scale): `run.json` once, written whole
  (a temp file renamed), then `records.bin`, an append-only log of length-prefixed, checksummed
  records. A writer killed mid-record leaves a cut-short last record, which readers skip (a live
  viewer waits for the rest); a record whose checksum fails is damage, and an error.

How a step is measured, exactly and with no change to the loop. A step is one backward pass through
the output of one forward call of `model` with gradients on, counted from 1. Hooks on `model` only:
a forward pre-hook copies the call's arguments when the coming step is to be measured (nothing is
copied otherwise), and a forward hook puts a tensor hook on the output, which during the user's
`loss.backward()` receives d loss / d output. At the end of that backward pass (an autograd end-of-pass
callback: before `backward()` returns, so before `opt.step()` changes the weights), probe_model (engine.api) runs
the model again on the copied arguments with its recurrent modules unrolled step by step, with the
"loss" sum(output * captured d loss / d output). Its gradient at every h_t is then exactly the user's
d loss / d h_t (a vector-Jacobian product through the same network), whatever the user's loss was and
without knowing the targets. The probe reads detached weights and asks autograd for the states' gradients
only, so no parameter's `.grad`, no random-number state and no weight changes: training is what it
would have been unwatched (a test checks 30 Adam steps against an unwatched run).

Dropout: probe_model runs the model in eval mode (and puts every module's mode back after), so the
record is of the deterministic network; the user's step itself trained with its dropout masks. With
dropout between d loss / d output and the recurrent module the two differ by those masks; `run.json`
says whether the model has dropout. The loss: what `loss_of(output)` returns on the measured step's
output, else what `watcher.log(loss=...)` is given for that step, else NaN. In a Jupyter kernel, a picture under
the cell (each module's gradient profile) is updated at every measured step (`LivePicture`, IPython's
display handle); nothing of IPython is imported elsewhere.
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import sys
import time
import uuid
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
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
                    return _readonly(data[name]) if name in data.files else None
                modules[m["name"]] = ModuleRecord(get("grad_h"), get("grad_c"), get("grad_x"), get("grad_h_units"),
                                                  _float(m["orders_lost"]), get("sigma_max"), tuple(m["findings"]))
            return Record(int(meta["step"]), _float(meta["loss"]), modules, _float(meta.get("seconds")))
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        raise RunFormatError(f"{where}: the record cannot be read ({type(exc).__name__}: {exc})") from None


def _readonly(values) -> np.ndarray:
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
            _readonly([m.orders_lost for m in kept]),
            _stack([m.sigma_max for m in kept], rows=shape["layers"] * shape["directions"], time_axis=None),
            tuple(m.findings for m in kept))
    return Run(reader.folder, reader.header, np.array([r.step for r in records], dtype=np.int64),
               _readonly([r.loss for r in records]), modules, reader.ended, reader.partial_bytes > 0)


def _stack(arrays: list, rows: int | None = None, time_axis: int | None = -1) -> np.ndarray:
    """Arrays of one kind, one per step, stacked; of different lengths T, padded with NaN at the end."""
    if not arrays:
        shape = (0, rows, 0) if rows is not None and time_axis is not None else (0, rows) if rows else (0, 0)
        return _readonly(np.zeros(shape))
    if time_axis is None:
        return _readonly(np.stack(arrays))
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
    return _readonly(np.stack(padded))


# ----------------------------------------------------------------------------- watching a loop

def watch(model: nn.Module, out, every: int = 10, loss_of=None, units: bool = True, replace: bool = False,
          live: bool | None = None) -> "Watcher":
    """Watch `model` train in the caller's own loop; use as `with watch(model, out="runs/lm", every=10): ...`.

    model: any nn.Module holding one or more nn.RNN/LSTM/GRU (found by named_modules()).
    out: the run folder; made if missing. A folder that already holds a run is refused unless `replace`.
    every: measure steps 1, every, 2 * every, ... (a step: one backward pass through the model's output).
    loss_of: optional callable(output) -> the loss (a tensor or number), called on the measured step's
        output to record its loss; or call `watcher.log(loss=...)` in the loop; else the loss is not recorded.
    units: keep each unit's gradient norm (rows x T x H float64 numbers a record); False leaves it out.
    live: in a notebook, a picture under the cell (each module's gradient profile) updated at every
        measured step; None: when running in a Jupyter kernel, False: never.
    """
    return Watcher(model, out, every, loss_of, units, replace, live)


class Watcher:
    """The hooks `watch` puts on the model, and the run folder it writes. `close()` (or leaving the
    `with` block) removes the hooks and closes the folder."""

    def __init__(self, model: nn.Module, out, every: int = 10, loss_of=None, units: bool = True, replace: bool = False,
                 live: bool | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of steps, 1 or more, got {every!r}")
        if loss_of is not None and not callable(loss_of):
            raise TypeError(f"loss_of must be a callable(output) -> loss, got {type(loss_of).__name__}")
        shapes = module_shapes(model)
        if not shapes:
            raise ValueError(f"{type(model).__name__} holds no nn.RNN, nn.LSTM or nn.GRU: nothing to watch")
        self.model, self.every, self.loss_of, self.units = model, every, loss_of, units
        dropout = has_dropout(model)
        self.writer = RunWriter(out, shapes, every, replace, {
            "model": type(model).__name__, "dropout": dropout,
            "measured": "the deterministic network (eval mode: no dropout) on the step's batch and the weights "
                        "before the step's update; loss: sum(output * d loss / d output), whose gradient at "
                        "every state is the user's own d loss / d h_t"})
        self.steps = 0                 # backward passes through the model's output seen so far
        self._captured = None          # (args, kwargs) of the forward call the coming step measures
        self._forward = None           # the token of the last forward call with gradients on
        self._pending: Record | None = None  # measured, waiting for its loss (watcher.log) or the next step
        self._losses: dict[int, float] = {}
        self._measuring = False        # probe_model's own pass through the model: the hooks stand aside
        self._handles = [model.register_forward_pre_hook(self._before_forward, with_kwargs=True),
                         model.register_forward_hook(self._after_forward)]
        self.measure_seconds = 0.0     # time spent measuring, in total
        self.picture = LivePicture(self.folder) if (in_notebook() if live is None else live) else None

    # -------------------------------------------------------------- the user's side
    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def folder(self) -> Path:
        return self.writer.folder

    def due(self, step: int) -> bool:
        """Whether step `step` (from 1) is measured: the first, and every `every`-th."""
        return step == 1 or step % self.every == 0

    def log(self, loss) -> None:
        """The loss of the current step (the one whose backward pass ran last, or whose forward pass ran
        since): recorded with it where it is measured."""
        step = self.steps + 1 if self._forward is not None and self._forward.get("counted") is False else self.steps
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if self._pending is not None and self._pending.step == step:
            self._pending = Record(step, value, self._pending.modules, self._pending.seconds)
            self._flush()
        elif self.due(step):
            self._losses = {step: value}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._flush()
        self.writer.close()

    # -------------------------------------------------------------- hooks
    def _before_forward(self, module, args, kwargs):
        if self._measuring:
            return None
        self._flush()  # the step before is over: its record goes out, with the loss it has
        if not torch.is_grad_enabled():
            return None
        measure = self.due(self.steps + 1)
        self._forward = {"counted": False, "measure": measure, "grads": None, "output": None,
                         "inputs": (_detached(args), _detached(kwargs)) if measure else None}
        return None

    def _after_forward(self, module, args, output):
        token = self._forward
        if self._measuring or token is None or token["output"] is not None or not torch.is_grad_enabled():
            return None
        tensors = [t for t in _tensors(output) if t.requires_grad]
        if not tensors:
            return None
        token["output"] = _detached(output) if token["measure"] and self.loss_of is not None else True
        if token["measure"]:
            token["grads"] = [None] * len(tensors)
        for k, tensor in enumerate(tensors):
            tensor.register_hook(lambda grad, k=k, token=token: self._output_grad(token, k, grad))
        return None

    def _output_grad(self, token: dict, k: int, grad: torch.Tensor):
        if not token["counted"]:
            token["counted"] = True
            self.steps += 1
            token["step"] = self.steps
            if token["measure"]:  # at the end of this backward pass: every output's gradient is in
                torch.autograd.Variable._execution_engine.queue_callback(lambda: self._measure(token))
        if token["measure"] and token["grads"] is not None:
            token["grads"][k] = grad.detach().clone()
        return None

    def _measure(self, token: dict):
        """On the step's weights (opt.step() has not run yet), what probe_model reports for the user's loss.
        A step it cannot measure (a batch or gradient that is not finite, say) is left out with a warning:
        watching never stops training."""
        if token.get("inputs") is None or token.get("grads") is None:
            return  # measured already (a second backward pass through the same output)
        started = time.perf_counter()
        from engine.api import probe_model
        (args, kwargs), grads = token["inputs"], token["grads"]
        token["inputs"] = token["grads"] = None
        self._measuring = True
        # the measured call's keyword arguments ride along with its positional ones
        extra = self.model.register_forward_pre_hook(lambda m, a, kw: (a, {**kwargs, **kw}), with_kwargs=True) \
            if kwargs else None
        try:
            # probe_model runs the model in eval mode (dropout off) and puts every training flag back
            result = probe_model(self.model, args[0] if len(args) == 1 else args, grads, loss=_vjp_loss)
            loss = math.nan
            if self.loss_of is not None:
                with torch.no_grad():
                    loss = float(torch.as_tensor(self.loss_of(token["output"])).detach())
            elif token["step"] in self._losses:
                loss = self._losses.pop(token["step"])
        except Exception as exc:  # noqa: BLE001 - the user's training goes on whatever the probe meets
            warnings.warn(f"watch: step {token['step']} was not measured ({type(exc).__name__}: {exc})", stacklevel=2)
            return
        finally:
            self._measuring = False
            if extra is not None:
                extra.remove()
        self._pending = Record(token["step"], loss, self._module_records(result), time.time())
        self.measure_seconds += time.perf_counter() - started

    def _module_records(self, result) -> dict[str, ModuleRecord]:
        records = {}
        named = dict(self.model.named_modules())
        for name, probe in result.modules.items():
            module = named.get(name)
            sigma = getattr(probe, "sigma_max", None)
            if sigma is None and isinstance(module, RECURRENT):
                sigma = _sigma_max(module)
            records[name or "(model)"] = ModuleRecord(
                _readonly(probe.grad_h), None if probe.grad_c is None else _readonly(probe.grad_c),
                _readonly(probe.grad_x),
                None if not self.units or probe.grad_h_units is None else _readonly(probe.grad_h_units),
                float(probe.orders_lost), _readonly(sigma if sigma is not None else []),
                tuple(getattr(f, "text", str(f)) for f in probe.findings))
        return records

    def _flush(self):
        if self._pending is not None:
            record, self._pending = self._pending, None
            self.writer.append(record)
            if self.picture is not None:
                self.picture.update(record)


def in_notebook() -> bool:
    """Running in a Jupyter kernel (IPython's ZMQ shell), where a display handle can update a picture."""
    ipython = sys.modules.get("IPython")  # never imported here: a script that did not load it is no notebook
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LivePicture:
    """A picture under the notebook cell, updated in place (IPython's display handle) at every measured
    step: each module's gradient profile (engine.svg), its name, the step and the loss."""

    def __init__(self, folder: Path):
        from IPython.display import HTML, display
        self._html = HTML
        self.folder = folder
        self.handle = display(HTML(f"<p>watching: the first measured step goes to {folder}</p>"), display_id=True)

    def update(self, record: Record) -> None:
        from engine.svg import profile_svg
        loss = f", loss {record.loss:.4g}" if math.isfinite(record.loss) else ""
        pictures = [profile_svg(m.grad_h, f"{name}, step {record.step}{loss}") for name, m in record.modules.items()]
        self.handle.update(self._html("<div>" + "".join(pictures) + "</div>"))


def _vjp_loss(output, output_grads: list) -> torch.Tensor:
    """sum(output * d loss / d output), over the output's tensors that need a gradient: its gradient at every
    state is the user's own d loss / d state (probe_model gets the captured gradients as its "targets")."""
    total = None
    for tensor, grad in zip((t for t in _tensors(output) if t.requires_grad), output_grads):
        if grad is not None:
            term = (tensor * grad.to(tensor.dtype)).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("no output of the model received a gradient in this backward pass")
    return total


def _tensors(value):
    """The tensors in a model's output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _detached(value):
    """A copy of the call's arguments that later changes to them cannot reach."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _sigma_max(module: nn.RNNBase) -> np.ndarray:
    from engine.probes import largest_singular_values
    suffixes = ("", "_reverse") if module.bidirectional else ("",)
    weights = [getattr(module, f"weight_hh_l{k}{s}").detach() for k in range(module.num_layers) for s in suffixes]
    return np.asarray(largest_singular_values(torch.stack(weights)), dtype=np.float64)
