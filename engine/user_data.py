"""A user's own data as a training task: `.npz` sequences, a `.csv` time series, a `.txt` text.

Runs on any thread (the trainer's); no Qt. `read(path, target)` checks the whole file and returns a
DataSet; `DataTask` (registered as the task `data`) trains on it like on a built-in task. Every
problem is one ConfigError naming the file, the position and what is allowed, raised before anything
is trained; a file too large for memory is refused before it is read.

- `.npz`: `x` of shape (N, T, F), floats; `y` either (N, O) floats or (N,) integer classes, read at
  the last timestep (many-to-one), or (N, T, O) floats or (N, T) integer classes, read at every
  timestep (many-to-many). Float targets are scored by the mean squared error, classes by the
  cross-entropy. The last tenth of the sequences (at least one) is held out.
- `.csv`: a time series, rows are timesteps; a first row that is not all numbers names the columns.
  Columns of numbers are the features, others (dates, names) are skipped; `target` names the column
  to predict (default the last numeric one). Each feature is scaled to mean 0 and standard deviation
  1 over the training part (the first nine tenths of the rows); a window of `seq_len` rows predicts
  the target's next value. Windows whose answer lies in the last tenth are held out.
- `.txt`: UTF-8 text for next-character prediction; the vocabulary is the characters of the file,
  each input one-hot; every timestep predicts the next character. The last tenth is held out.

Baselines are honest: the mean predictor's mean squared error (the variance of the training
targets), or the cross-entropy in nats of always predicting the training part's class frequencies
(the unigram model, for text).
"""
from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from engine import bounded_reading
from engine.errors import ConfigError
from engine.tasks import Task

MAX_TEXT_BYTES = 50 * 10**6     # a text or CSV file read whole; a larger one is a data set for another tool
MAX_VOCABULARY = 512            # distinct characters of a text: one-hot inputs of that width
HELD_OUT_SHARE = 0.1
HELD_OUT_EVERY = 25             # steps between two held-out losses (and at step 1)
HELD_OUT_ROWS = 256             # at most this many held-out sequences are scored, the same each time


def _refuse(path, problem: str, allowed: str) -> ConfigError:
    return ConfigError("data", str(path), allowed, problem)


NPZ_ALLOWED = "an .npz with x (N, T, F) floats and y: (N, O) or (N, T, O) floats, or (N,) or (N, T) integer classes"
CSV_ALLOWED = "a .csv time series: one row per timestep, columns of numbers (a first row of names is optional)"
TXT_ALLOWED = "a UTF-8 .txt text of at least a few hundred characters"


@dataclass(frozen=True, eq=False)
class DataSet:
    """A checked data file, ready to cut into batches. Arrays are float32 / int64 numpy."""
    path: str
    sha256: str
    kind: str                   # npz | csv | txt
    input_size: int
    output_size: int
    classes: bool               # integer targets (cross-entropy) or floats (mean squared error)
    every_step: bool            # many-to-many: scored at every timestep
    baseline_loss: float
    description: str            # what the file is and how it is read, for the window and summary.json
    x: np.ndarray | None = None         # npz: (N, T, F)
    y: np.ndarray | None = None         # npz: (N, O), (N,), (N, T, O) or (N, T)
    train_rows: int = 0                 # npz: sequences [0, train_rows) train; the rest are held out
    series: np.ndarray | None = None    # csv: (rows, features) scaled; txt: (chars,) codes
    target: np.ndarray | None = None    # csv: (rows,) the scaled target column
    train_until: int = 0                # csv, txt: rows/characters [0, train_until) train
    vocabulary: str = ""                # txt: the characters, code k is vocabulary[k]
    length: int | None = None           # npz: every sequence's T (seq_len is fixed by the file)

    def max_seq_len(self) -> int:
        """The longest window the training part allows (csv, txt) with at least one window held out."""
        if self.kind == "npz":
            return self.length
        held_out = len(self.series) - self.train_until
        if self.kind == "txt":  # held-out windows lie wholly in the held-out text
            return max(min(self.train_until, held_out) - 1, 0)
        return max(self.train_until - 1, 0)

    def summary(self) -> dict:
        return {"file": self.path, "sha256": self.sha256, "kind": self.kind, "input_size": self.input_size,
                "output_size": self.output_size, "loss": "cross-entropy" if self.classes else "mean squared error",
                "every_step": self.every_step, "baseline_loss": self.baseline_loss, "description": self.description}


# ----------------------------------------------------------------------------- reading

def _first_bad(values: np.ndarray, name: str) -> str | None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    position = tuple(int(i) for i in np.argwhere(bad)[0])
    value = values[position]
    kind = "NaN" if np.isnan(value) else "infinite"
    return f"has {kind} at {name}[{', '.join(map(str, position))}]"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _budget() -> int:
    free = bounded_reading.memory_available()
    return free // 2 if free else 2 * 10**9


def _read_npz(path: Path) -> DataSet:
    size = path.stat().st_size
    if size > _budget():
        raise _refuse(path, f"is {bounded_reading.size_text(size)}, more than this machine can read into memory", NPZ_ALLOWED)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    try:
        with zipfile.ZipFile(path) as archive:
            headers = bounded_reading.npy_headers(archive, ["x", "y"])
            missing = [name for name in ("x", "y") if name not in headers]
            if missing:
                raise _refuse(path, f"has no array named {' or '.join(missing)} (it holds "
                                    f"{', '.join(n[:-4] for n in archive.namelist()) or 'nothing'})", NPZ_ALLOWED)
            arrays = bounded_reading.read_arrays(archive, headers, _budget())
    except bounded_reading.TooLarge as exc:
        raise _refuse(path, str(exc), NPZ_ALLOWED) from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise _refuse(path, f"is not a readable .npz archive ({exc})", NPZ_ALLOWED) from None
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 3 or 0 in x.shape:
        raise _refuse(path, f"has x of shape {x.shape}", NPZ_ALLOWED)
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise _refuse(path, f"has x of type {x.dtype}", NPZ_ALLOWED)
    N, T, features = x.shape
    if y.ndim == 0 or 0 in y.shape:
        raise _refuse(path, f"has y of shape {y.shape}, which holds no targets", NPZ_ALLOWED)
    x = x.astype(np.float32)
    bad = _first_bad(x, "x")
    if bad:
        raise _refuse(path, bad, "finite numbers in x and y")
    if N < 2:
        raise _refuse(path, f"has {N} sequence", "at least 2 sequences (one is held out)")
    classes = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if classes:
        if y.shape not in ((N,), (N, T)):
            raise _refuse(path, f"has integer y of shape {y.shape} for x of shape {x.shape}",
                          f"integer y of shape ({N},) or ({N}, {T})")
        y = y.astype(np.int64)
        if y.min() < 0:
            position = tuple(int(i) for i in np.argwhere(y < 0)[0])
            raise _refuse(path, f"has class {int(y[position])} at y[{', '.join(map(str, position))}]",
                          "classes numbered from 0")
        outputs = int(y.max()) + 1
        if outputs > 10_000:
            raise _refuse(path, f"has class {int(y.max())}", "at most 10,000 classes, numbered from 0")
    else:
        if not np.issubdtype(y.dtype, np.floating):
            raise _refuse(path, f"has y of type {y.dtype}", NPZ_ALLOWED)
        if y.ndim == 1 and y.shape == (N,):
            y = y[:, None]
        if not (y.ndim == 2 and y.shape[0] == N) and not (y.ndim == 3 and y.shape[:2] == (N, T)):
            raise _refuse(path, f"has y of shape {y.shape} for x of shape {x.shape}",
                          f"float y of shape ({N}, O) or ({N}, {T}, O)")
        y = y.astype(np.float32)
        bad = _first_bad(y, "y")
        if bad:
            raise _refuse(path, bad, "finite numbers in x and y")
        outputs = y.shape[-1]
    every_step = y.ndim == 3 or (classes and y.ndim == 2)
    train_rows = N - max(1, int(round(N * HELD_OUT_SHARE)))
    train_y = y[:train_rows]
    if classes:
        baseline = _unigram_entropy(train_y.reshape(-1), outputs)
        scored = "the class at every timestep" if every_step else "the class at the last timestep"
    else:
        baseline = float(((train_y - train_y.reshape(-1, outputs).mean(axis=0)) ** 2).mean())
        scored = f"{outputs} value{'s' if outputs > 1 else ''} at {'every' if every_step else 'the last'} timestep"
    description = (f"{path.name}: {N} sequences of {T} steps with {features} feature{'s' if features > 1 else ''}; "
                   f"predicts {scored}; {N - train_rows} held out")
    return DataSet(str(path), digest.hexdigest(), "npz", features, outputs, classes, every_step, baseline,
                   description, x=x, y=y, train_rows=train_rows, length=T)


def _unigram_entropy(codes: np.ndarray, classes: int) -> float:
    """Cross-entropy, in nats, of always predicting these codes' own frequencies."""
    counts = np.bincount(codes, minlength=classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _text(path: Path, allowed: str) -> tuple[str, str]:
    try:
        data = bounded_reading.read_bytes(path, min(MAX_TEXT_BYTES, _budget()))
    except bounded_reading.TooLarge as exc:
        raise _refuse(path, f"{exc}, more than the {bounded_reading.size_text(MAX_TEXT_BYTES)} read whole", allowed) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(path, f"is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})", allowed) from None
    return text.lstrip("\ufeff"), _sha256(data)


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _csv_rows(path: Path, text: str) -> list[list[str]]:
    """The non-blank rows, each a list of cells; a cell past csv's field limit is named by its line."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise _refuse(path, f"cannot be read as CSV on line {reader.line_num} ({exc})",
                      f"cells of at most {csv.field_size_limit():,} characters") from None


def _cell_text(cell: str) -> str:
    shown = cell.strip()
    if not shown:
        return "an empty cell"
    return repr(shown[:20] + ("…" if len(shown) > 20 else ""))


def _numeric_columns(path: Path, names: list, body: list, first_line: int) -> list[int]:
    """The columns of numbers. A column mostly of numbers with a few cells that are not (an empty cell, a
    NUL byte, a typo) is refused, naming its first such cell's line: it is never dropped in silence. A
    column mostly of text (dates, names) is skipped."""
    parsed = [[_number(cell) is not None for cell in row] for row in body]
    counts = np.sum(np.array(parsed, dtype=bool), axis=0) if body else np.zeros(len(names), int)
    numeric = []
    for k, count in enumerate(counts):
        if count == len(body):
            numeric.append(k)
        elif 2 * count >= len(body):
            line = next(i for i, row in enumerate(parsed) if not row[k])
            raise _refuse(path, f"has {_cell_text(body[line][k])} on line {line + first_line} in column {names[k]}, "
                                f"whose other cells are numbers ({count:,} of {len(body):,})",
                          "a number in every cell of a column of numbers (columns of text, such as dates, "
                          "are skipped)")
    return numeric


MIN_CSV_ROWS = 10      # nine to train on (a baseline needs two answers) and one held out
MAX_COLUMNS = 10_000   # features of a time series: far fewer; a wider file is not one


def _read_csv(path: Path, target: str | None) -> DataSet:
    text, digest = _text(path, CSV_ALLOWED)
    rows = _csv_rows(path, text)
    if not rows:
        raise _refuse(path, "is empty", CSV_ALLOWED)
    header = rows[0]
    if len(header) > MAX_COLUMNS:
        raise _refuse(path, f"has {len(header):,} columns", f"a time series of at most {MAX_COLUMNS:,} columns")
    named = any(_number(cell) is None for cell in header)
    names = [cell.strip() or f"column {k + 1}" for k, cell in enumerate(header)] if named \
        else [f"column {k + 1}" for k in range(len(header))]
    body = rows[1:] if named else rows
    if len(body) < 2:
        raise _refuse(path, f"has {len(body)} row{'' if len(body) == 1 else 's'} of values",
                      "a time series of at least a few dozen rows")
    for number, row in enumerate(body, start=2 if named else 1):
        if len(row) != len(names):
            raise _refuse(path, f"has {len(row)} cells on line {number} and {len(names)} on line 1",
                          "the same number of cells on every line")
    numeric = _numeric_columns(path, names, body, 2 if named else 1)
    if not numeric:
        raise _refuse(path, "has no column of numbers", CSV_ALLOWED)
    numeric_set = set(numeric)
    if target is None:
        target_column = numeric[-1]
    elif target in names and names.index(target) in numeric_set:
        target_column = names.index(target)
    else:
        present = ", ".join(names[k] for k in numeric)
        raise ConfigError("target", target, f"a column of numbers in {path.name}: {present}",
                          "is not a column of numbers there" if target in names else "is not a column there")
    values = np.array([[float(row[k]) for k in numeric] for row in body], dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise _refuse(path, f"has {body[row][numeric[col]].strip()} in column {names[numeric[col]]} on line "
                            f"{row + (2 if named else 1)}", "finite numbers")
    if len(values) < MIN_CSV_ROWS:
        raise _refuse(path, f"has {len(values)} rows of values", "a time series of at least a few dozen rows")
    train_until = len(values) - max(1, int(round(len(values) * HELD_OUT_SHARE)))
    mean, std = values[:train_until].mean(axis=0), values[:train_until].std(axis=0)
    std[std == 0] = 1.0
    scaled = ((values - mean) / std).astype(np.float32)
    target_index = numeric.index(target_column)
    skipped = [names[k] for k in range(len(names)) if k not in numeric_set]
    baseline = float(np.var(scaled[1:train_until, target_index]))  # the training windows' answers
    features = ", ".join(names[k] for k in numeric)
    description = (f"{path.name}: {len(values)} rows; features {features}"
                   + (f" ({', '.join(skipped)} skipped: not numbers)" if skipped else "")
                   + f"; predicts the next {names[target_column]}"
                   + (f" (the last column of numbers; set target to choose another)"
                      if target is None and target_column != len(names) - 1 else "")
                   + "; each feature scaled to mean 0, sd 1 over "
                   f"the first {train_until} rows ({names[target_column]}: mean {mean[target_index]:.4g}, "
                   f"sd {std[target_index]:.4g}); the last {len(values) - train_until} rows held out")
    return DataSet(str(path), digest, "csv", len(numeric), 1, False, False, baseline, description,
                   series=scaled, target=scaled[:, target_index].copy(), train_until=train_until)


def _read_txt(path: Path) -> DataSet:
    text, digest = _text(path, TXT_ALLOWED)
    if len(text) < 20:
        raise _refuse(path, "is empty" if not text.strip() else f"has {len(text)} characters", TXT_ALLOWED)
    vocabulary = "".join(sorted(set(text)))
    if len(vocabulary) > MAX_VOCABULARY:
        raise _refuse(path, f"uses {len(vocabulary)} distinct characters",
                      f"a text of at most {MAX_VOCABULARY} distinct characters (one input per character)")
    index = {ch: k for k, ch in enumerate(vocabulary)}
    codes = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
    train_until = len(codes) - max(1, int(round(len(codes) * HELD_OUT_SHARE)))
    baseline = _unigram_entropy(codes[:train_until], len(vocabulary))
    description = (f"{path.name}: {len(text):,} characters, {len(vocabulary)} distinct; predicts the next "
                   f"character at every step; the last {len(codes) - train_until:,} characters held out")
    return DataSet(str(path), digest, "txt", len(vocabulary), len(vocabulary), True, True, baseline, description,
                   series=codes, train_until=train_until, vocabulary=vocabulary)


def read(path, target: str | None = None) -> DataSet:
    """The data in `path`, checked whole; ConfigError naming the file and the problem otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    allowed = {".npz": NPZ_ALLOWED, ".csv": CSV_ALLOWED, ".txt": TXT_ALLOWED}.get(suffix, "a .npz, .csv or .txt file")
    if suffix not in (".npz", ".csv", ".txt"):
        raise _refuse(path, f"has the suffix {suffix or '(none)'}", allowed)
    if not path.exists():
        raise _refuse(path, "does not exist", allowed)
    if path.is_dir():
        raise _refuse(path, "is a folder", allowed)
    if not path.is_file():
        raise _refuse(path, "is not a regular file (a device or a pipe)", allowed)
    try:
        if suffix == ".npz":
            return _read_npz(path)
        return _read_csv(path, target) if suffix == ".csv" else _read_txt(path)
    except PermissionError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})", allowed) from None


_CACHE: dict = {}


def cached(path, target: str | None = None) -> DataSet:
    """`read`, kept while the file is unchanged (size, modification time): rebuilds reuse it."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, target)
    except OSError:
        return read(path, target)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = read(path, target)
    return _CACHE[key]


# ----------------------------------------------------------------------------- the task

class DataTask(Task):
    """A user's data file as a task; built by the trainer with `for_config`."""
    name = "data"
    label = "your data"
    description = ("Your own data file: an .npz of sequences, a .csv time series or a .txt text "
                   "(File > Open data, or --data FILE).")
    metric_name = "explained variance"

    @classmethod
    def check_seq_len(cls, seq_len):
        if seq_len < 1:
            raise ConfigError("seq_len", seq_len, "at least 1")

    def __init__(self, seq_len: int, batch: int, device="cpu", data: DataSet | None = None):
        super().__init__(seq_len, batch, device)
        if data is None:
            raise ConfigError("task", "data", "data together with a data file (--data FILE)", "has no data file")
        self.data = data
        self.label = f"your data ({Path(data.path).name})"
        self.input_size, self.output_size = data.input_size, data.output_size
        self.baseline_loss = data.baseline_loss
        self.metric_name = "accuracy" if data.classes else "explained variance (1 - loss / baseline)"
        check_seq_len(data, seq_len)
        self._held_out = self._held_out_batch()

    @property
    def output_steps(self):
        return list(range(self.seq_len)) if self.data.every_step else [self.seq_len - 1]

    # --- batches
    def _windows(self, starts: np.ndarray):
        d, T = self.data, self.seq_len
        if d.kind == "npz":
            return torch.from_numpy(d.x[starts]), torch.from_numpy(d.y[starts])
        offsets = starts[:, None] + np.arange(T)[None, :]
        if d.kind == "csv":
            return torch.from_numpy(d.series[offsets]), torch.from_numpy(d.target[starts + T][:, None])
        x = F.one_hot(torch.from_numpy(d.series[offsets]), len(d.vocabulary)).float()
        return x, torch.from_numpy(d.series[offsets + 1])

    def _train_starts(self) -> int:
        """How many training windows there are (their starts are 0 .. count - 1)."""
        d, T = self.data, self.seq_len
        return d.train_rows if d.kind == "npz" else d.train_until - T

    def _held_out_batch(self):
        d, T = self.data, self.seq_len
        if d.kind == "npz":
            starts = np.arange(d.train_rows, len(d.x))
        elif d.kind == "csv":  # windows whose answer lies in the held-out rows
            starts = np.arange(d.train_until - T, len(d.series) - T)
        else:  # windows wholly in the held-out text, with the next character of each step
            starts = np.arange(d.train_until, len(d.series) - T)
        if len(starts) > HELD_OUT_ROWS:  # evenly spread, the same every time
            starts = starts[np.linspace(0, len(starts) - 1, HELD_OUT_ROWS).round().astype(int)]
        x, y = self._windows(starts)
        return x.to(self.device), y.to(self.device)

    def sample(self, gen):
        starts = torch.randint(0, self._train_starts(), (self.batch,), generator=gen).numpy()
        x, y = self._windows(starts)
        return x.to(self.device), y.to(self.device)

    # --- scoring
    def loss(self, out, target):
        if self.data.classes:
            return F.cross_entropy(out.reshape(-1, self.output_size), target.reshape(-1))
        return F.mse_loss(out if self.data.every_step else out[:, -1, :], target)

    def metric(self, out, target):
        if self.data.classes:
            return float((out.argmax(-1).reshape(target.shape) == target).float().mean())
        return 1.0 - float(self.loss(out, target)) / max(self.baseline_loss, 1e-12)

    def input_labels(self, x):
        if self.data.kind != "txt":
            return None
        vocabulary = self.data.vocabulary
        return tuple("".join(vocabulary[c] for c in row) for row in x.argmax(-1).tolist())

    def held_out_loss(self, model) -> float:
        """The loss on the held-out part (a fixed set of its windows), without training on it."""
        x, y = self._held_out
        with torch.no_grad():
            out, _ = model(x, self.output_steps)
            return float(self.loss(out, y))

    def check_classes(self, outputs: int) -> None:
        """Integer targets must name one of the model's `outputs` classes."""
        d = self.data
        if d.classes and d.y is not None and d.y.max() >= outputs:
            position = tuple(int(i) for i in np.argwhere(d.y >= outputs)[0])
            raise _refuse(d.path, f"has class {int(d.y[position])} at y[{', '.join(map(str, position))}], "
                                  f"but the model's head has {outputs} outputs", f"classes 0 to {outputs - 1}")


def check_seq_len(data: DataSet, seq_len: int) -> None:
    if data.kind == "npz" and seq_len != data.length:
        raise ConfigError("seq_len", seq_len, f"{data.length}, the length of the sequences in {Path(data.path).name}")
    if seq_len > data.max_seq_len():
        raise ConfigError("seq_len", seq_len, f"1 to {data.max_seq_len()} for {Path(data.path).name} (windows must "
                                              "fit in its training part and leave one held out)")


def apply(config, path, target: str | None = None):
    """`config` set to train on the data in `path` (checked now): the task `data`, and for an .npz
    the length of its sequences."""
    data = cached(path, target)
    changes = {"data": str(path), "task": "data", "target": target}
    if data.kind == "npz":
        changes["seq_len"] = data.length
    elif config.seq_len > data.max_seq_len():
        changes["seq_len"] = max(1, min(config.seq_len, data.max_seq_len()))
    return config.replace(**changes)
