"""A user's own recurrent weights, read from a `torch.save` file without running anything in it.

Runs on any thread; no Qt. `read(path)` takes a saved state_dict, or a checkpoint dict holding one
under `state_dict`, `model_state_dict` or `model`, of a module that contains one `nn.RNN`, `nn.LSTM`
or `nn.GRU` (keys such as `encoder.weight_ih_l0`), and optionally one `nn.Linear` head on its top
layer. The file is read with `torch.load(..., weights_only=True)` only: a file that carries Python
code is refused and the code never runs. Cell, hidden size, layers and input size are read from the
weights' shapes; `nn.RNN`'s nonlinearity is not in its weights, so the lab uses tanh unless the user
sets `activation`. Bidirectional modules and LSTMs with `proj_size` are refused with a message (the
lab unrolls one direction of plain cells). The weights are returned as float32 numpy arrays under the
lab's own parameter names (engine/model.py lays them out exactly as PyTorch does).
"""
from __future__ import annotations

import hashlib
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import bounded_reading
from engine.config import MAX_LAYERS, RANGES, Config
from engine.errors import ConfigError

MAX_MODEL_BYTES = 4 * 10**9   # a recurrent model of the largest size the lab trains is far less
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
GATES = {1: "rnn", 3: "gru", 4: "lstm"}    # rows of weight_hh per hidden unit -> cell
CELL_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_RECURRENT_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
                            r"(?P<reverse>_reverse)?$")


@dataclass(frozen=True, eq=False)
class ImportedModel:
    """The recurrent weights of one saved module, in the lab's names (`layers.0.weight_ih`, ...,
    `readout.weight`)."""
    path: str
    sha256: str
    cell: str                 # rnn | lstm | gru
    input_size: int
    hidden: int
    layers: int
    bias: bool                # False: the module had bias=False; the lab keeps its biases at 0, untrained
    prefix: str               # where the recurrent keys were found: "encoder." ("" at the top)
    head: tuple | None        # (outputs, inputs) of the Linear head read from the file, or None
    head_name: str = ""       # its key prefix in the file: "decoder." for decoder.weight
    tensors: dict | None = None
    head_note: str = ""       # why no head was taken: "head.weight has NaN or infinite values"

    def describe(self, activation: str | None = None) -> str:
        """`LSTM, 2 layers of 128 units, 3 inputs, head 128 -> 1 (from m.pt)`."""
        layers = f"{self.layers} layer{'s' if self.layers > 1 else ''} of {self.hidden} units"
        head = f", head {self.head[1]} -> {self.head[0]}" if self.head else f", no head (a new readout: {self.head_note or 'the file has none'})"
        bias = "" if self.bias else ", no biases"
        return f"{CELL_NAMES[self.cell]}{self.assumed(activation)}, {layers}, {self.input_size} input{'s' if self.input_size > 1 else ''}{head}{bias} (from {Path(self.path).name})"

    def assumed(self, activation: str | None = None) -> str:
        """What the file cannot say: nn.RNN's nonlinearity is not in its weights; tanh unless set."""
        if self.cell != "rnn":
            return ""
        if activation in (None, "tanh"):
            return (" (tanh assumed: nn.RNN's nonlinearity is not saved in its weights; --set activation=relu, "
                    "or the activation setting, for a ReLU RNN)")
        return f" ({activation}, as set: nn.RNN's nonlinearity is not saved in its weights)"

    def shape(self) -> dict:
        """What summary.json and the window say about the model."""
        return {"file": self.path, "sha256": self.sha256, "cell": self.cell, "input_size": self.input_size,
                "hidden": self.hidden, "layers": self.layers, "bias": self.bias,
                "head": list(self.head) if self.head else None}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(state: dict) -> str:
    """The SHA-256 of a state_dict's contents, the same however it was stored: each tensor's name,
    dtype, shape and little-endian bytes, in the order of the names. An experiment carries it beside the
    weights it copies, so a changed copy is told from the one saved."""
    digest = hashlib.sha256()
    for name in sorted(state):
        array = np.ascontiguousarray(np.asarray(state[name]))
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _refuse(path, problem: str, allowed: str = "a torch.save file of a state_dict holding one nn.RNN, "
                                                 "nn.LSTM or nn.GRU (and optionally a Linear head)") -> ConfigError:
    return ConfigError("model", str(path), allowed, problem)


def _load(path: Path) -> object:
    """torch.load with weights_only=True, after the size check; every failure becomes one line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _refuse(path, "does not exist") from None
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise _refuse(path, "is a folder")
    if not path.is_file():
        raise _refuse(path, "is not a regular file (a device or a pipe)")
    free = bounded_reading.memory_available()
    limit = min(MAX_MODEL_BYTES, free // 2) if free else MAX_MODEL_BYTES
    if size > limit:
        raise _refuse(path, f"is {bounded_reading.size_text(size)}, more than the {bounded_reading.size_text(limit)} "
                            "this machine can read into memory")
    if size == 0:
        raise _refuse(path, "is empty")
    _check_archive(path, limit)
    try:
        with warnings.catch_warnings():  # (torch's notes on pickle protocols mean nothing to a user)
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused a global: the file holds objects whose loading would run code
        raise _refuse(path, "holds Python objects besides tensors (loading them would run code, so it is "
                            "not loaded); save the weights alone: torch.save(model.state_dict(), path)") from None
    except MemoryError:
        raise _refuse(path, "needs more memory than this machine can give") from None
    except Exception:  # noqa: BLE001 (a damaged file fails anywhere in torch's reader: IndexError, TypeError...)
        raise _refuse(path, "is not a file written by torch.save, or it is damaged") from None


AS_IT_IS = ("to see the whole model as it is, in your own loop: engine.api.probe_model(model, inputs, targets) or "
            "engine.api.watch(model, out=DIR) and main.py --follow DIR")
MAX_TENSORS = 20_000            # a state_dict of a large model holds a few thousand
MAX_PICKLE_BYTES = 16 * 10**6   # the pickled description of the tensors: about 100 bytes each
MAX_INFLATION = 100             # torch.save stores tensors uncompressed: a member inflating more is crafted
TORCHSCRIPT_ADVICE = ("a TorchScript file (torch.jit.save) holds code, which the lab does not run; save its "
                      "weights alone: torch.save(torch.jit.load(path).state_dict(), 'weights.pt')")


def _check_archive(path: Path, limit: int) -> None:
    """What torch.load would allocate, from the zip's directory before anything is inflated: the
    members' declared sizes against `limit`, no member inflating MAX_INFLATION times, at most MAX_TENSORS
    storages. A file in PyTorch's format from before 1.6 (a bare pickle, whose sizes are known only while
    it is read) and TorchScript are named and refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        with open(path, "rb") as fh:
            legacy = fh.read(1) == b"\x80"  # a pickle's protocol mark
        raise _refuse(path, "is in PyTorch's format from before version 1.6, whose sizes are not known before it "
                            "is read; save it again with a current PyTorch: torch.save(state_dict, path)" if legacy
                      else "is not a file written by torch.save, or it is damaged") from None
    except (OSError, ValueError, NotImplementedError, zipfile.LargeZipFile) as exc:
        raise _refuse(path, f"is not a file written by torch.save, or it is damaged ({exc})") from None
    names = [info.filename for info in infos]
    if any("/code/" in name or name.endswith("constants.pkl") for name in names):
        raise _refuse(path, "is " + TORCHSCRIPT_ADVICE)
    storages = sum(1 for name in names if "/data/" in name and not name.endswith("/"))
    if storages > MAX_TENSORS:
        raise _refuse(path, f"holds {storages:,} tensors; at most {MAX_TENSORS:,} are read")
    pickled = sum(info.file_size for info in infos if info.filename.endswith(".pkl"))
    if pickled > MAX_PICKLE_BYTES:
        raise _refuse(path, f"describes its tensors in {bounded_reading.size_text(pickled)}; at most "
                            f"{bounded_reading.size_text(MAX_PICKLE_BYTES)} are read")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > 10**6 \
                and info.file_size > MAX_INFLATION * max(info.compress_size, 1):
            raise _refuse(path, f"has {info.filename} compressed {info.file_size // max(info.compress_size, 1):,} "
                                f"times ({bounded_reading.size_text(info.compress_size)} inflating to "
                                f"{bounded_reading.size_text(info.file_size)}); torch.save stores tensors uncompressed")
    inflated = sum(info.file_size for info in infos)
    if inflated > limit:
        raise _refuse(path, f"unpacks to {bounded_reading.size_text(inflated)}, more than the {bounded_reading.size_text(limit)} "
                            "this machine can read into memory")


def _state_dict(path, loaded) -> dict:
    if isinstance(loaded, dict):
        for key in CHECKPOINT_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                loaded = inner
                break
    if not isinstance(loaded, dict) or not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise _refuse(path, f"holds {type(loaded).__name__}, not a state_dict of tensors (looked at the top "
                            f"and under {', '.join(CHECKPOINT_KEYS)})")
    return {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def _recurrent(path, state: dict) -> tuple[str, dict]:
    """The one recurrent module's key prefix and {(kind, layer): tensor}."""
    found: dict[str, dict] = {}
    for key, value in state.items():
        match = _RECURRENT_KEY.match(key)
        if not match:
            continue
        if match["reverse"]:
            raise _refuse(path, f"holds a bidirectional module ({key}); the lab shows one direction of time",
                          "a unidirectional nn.RNN, nn.LSTM or nn.GRU")
        if match["kind"] == "weight_hr":
            raise _refuse(path, f"holds an LSTM with proj_size ({key})", "an nn.LSTM without proj_size")
        found.setdefault(match["prefix"], {})[(match["kind"], int(match["layer"]))] = value
    if not found:
        raise _refuse(path, "holds no recurrent weights (no key such as weight_ih_l0 or rnn.weight_hh_l0)")
    if len(found) > 1:
        names = ", ".join(repr(p.rstrip(".") or "(top)") for p in sorted(found))
        raise _refuse(path, f"holds {len(found)} recurrent modules ({names}); the lab trains one",
                      "a state_dict with one nn.RNN, nn.LSTM or nn.GRU (torch.save(model.encoder.state_dict(), "
                      "path) saves one alone); " + AS_IT_IS)
    return next(iter(found.items()))


def _shapes(path, prefix: str, weights: dict) -> tuple[str, int, int, int, bool]:
    layers = 1 + max(layer for _, layer in weights)
    if not 1 <= layers <= MAX_LAYERS:
        raise _refuse(path, f"has {layers} layers", f"a module of 1 to {MAX_LAYERS} layers")
    bias = ("bias_ih", 0) in weights
    first_hh = weights.get(("weight_hh", 0))
    if first_hh is None or first_hh.dim() != 2 or first_hh.shape[0] % max(first_hh.shape[1], 1):
        raise _refuse(path, f"has no usable {prefix}weight_hh_l0")
    hidden = first_hh.shape[1]
    if hidden == 0 or first_hh.shape[0] == 0:
        raise _refuse(path, f"has {prefix}weight_hh_l0 of shape {tuple(first_hh.shape)}: no hidden units")
    gates = first_hh.shape[0] // hidden
    if gates not in GATES:
        raise _refuse(path, f"has {prefix}weight_hh_l0 of shape {tuple(first_hh.shape)}: {gates} gate blocks, "
                            "which is no RNN (1), GRU (3) or LSTM (4)")
    lo, hi = RANGES["hidden"]
    if not lo <= hidden <= hi:
        raise _refuse(path, f"has hidden size {hidden}", f"a module of hidden size {lo} to {hi}")
    first_ih = weights.get(("weight_ih", 0))
    input_size = first_ih.shape[1] if first_ih is not None and first_ih.dim() == 2 else None
    for layer in range(layers):
        inputs = input_size if layer == 0 else hidden
        expected = {"weight_ih": (gates * hidden, inputs), "weight_hh": (gates * hidden, hidden)}
        if bias:
            expected.update(bias_ih=(gates * hidden,), bias_hh=(gates * hidden,))
        for kind, shape in expected.items():
            tensor = weights.get((kind, layer))
            if tensor is None:
                raise _refuse(path, f"lacks {prefix}{kind}_l{layer}")
            if tuple(tensor.shape) != shape:
                raise _refuse(path, f"has {prefix}{kind}_l{layer} of shape {tuple(tensor.shape)}, where "
                                    f"a {CELL_NAMES[GATES[gates]]} of hidden size {hidden} has {shape}")
            if not torch.is_floating_point(tensor):
                raise _refuse(path, f"has {prefix}{kind}_l{layer} of type {tensor.dtype}, not floating point")
            if not torch.isfinite(tensor).all():
                raise _refuse(path, f"has NaN or infinite values in {prefix}{kind}_l{layer}")
    return GATES[gates], input_size, hidden, layers, bias


def _head(state: dict, prefix: str, hidden: int) -> tuple[tuple | None, str]:
    """The one Linear layer outside the recurrent module that reads `hidden` features, if exactly one
    usable, and otherwise why none is taken (said in describe())."""
    heads, dropped = [], []
    for key, value in state.items():
        if _RECURRENT_KEY.match(key) or not key.endswith("weight") or value.dim() != 2 or value.shape[1] != hidden:
            continue
        name = key[:-len("weight")]
        bias = state.get(name + "bias")
        if not torch.is_floating_point(value):
            dropped.append(f"{key} is of type {value.dtype}")
        elif not bool(torch.isfinite(value).all()) or (bias is not None and not bool(torch.isfinite(bias).all())):
            dropped.append(f"{name}weight or {name}bias has NaN or infinite values")
        elif bias is not None and tuple(bias.shape) != (value.shape[0],):
            dropped.append(f"{name}bias has shape {tuple(bias.shape)}, not ({value.shape[0]},)")
        else:
            heads.append((name, value, bias))
    if len(heads) == 1:
        return heads[0], ""
    if len(heads) > 1:
        return None, f"{len(heads)} layers read {hidden} features ({', '.join(h[0] + 'weight' for h in heads)})"
    return None, "; ".join(dropped) or "the file has none"


_EMBEDDING_NAME = re.compile(r"embed|(^|\.)emb\.|wte|token", re.IGNORECASE)


def _check_around(path, state: dict, prefix: str, input_size: int, hidden: int) -> None:
    """An Embedding in front of the recurrent module, or an MLP head after it, is more than the lab
    rebuilds (one recurrent module fed the data directly, one Linear readout): refused naming the keys,
    with the way that works, rather than trained as something it is not."""
    others = {k: v for k, v in state.items() if not _RECURRENT_KEY.match(k) and k.endswith("weight")
              and v.dim() == 2 and torch.is_floating_point(v)}
    for key, value in others.items():
        name = key[:-len("weight")]
        embedding = bool(_EMBEDDING_NAME.search(key)) or (
            name + "bias" not in state and value.shape[1] == input_size != hidden)
        if embedding and value.shape[1] == input_size:
            raise _refuse(path, f"has an Embedding in front of its recurrent module ({key}: {value.shape[0]:,} "
                                f"tokens x {value.shape[1]} features), which the lab cannot map its data through",
                          f"one recurrent module fed the data directly; {AS_IT_IS}")
    readers = [k for k, v in others.items() if v.shape[1] == hidden and not _EMBEDDING_NAME.search(k)]
    for key in readers:
        width = others[key].shape[0]
        after = [k for k, v in others.items() if k != key and v.shape[1] == width and k not in readers]
        if after:
            layers = ", ".join(f"{k} {tuple(others[k].shape)}" for k in [key, *after])
            raise _refuse(path, f"has a head of more than one layer ({layers}), which the lab does not rebuild",
                          "one Linear head, or none (torch.save(model.rnn.state_dict(), path) saves the recurrent "
                          f"module alone, trained here with a new readout); {AS_IT_IS}")


def read(path) -> ImportedModel:
    """The recurrent weights in `path`, checked; ConfigError (naming the file) for anything else."""
    path = Path(path)
    loaded = _load(path)
    state = _state_dict(path, loaded)
    prefix, weights = _recurrent(path, state)
    cell, input_size, hidden, layers, bias = _shapes(path, prefix, weights)
    _check_around(path, state, prefix, input_size, hidden)
    tensors = {}
    for layer in range(layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            value = weights.get((kind, layer))
            tensors[f"layers.{layer}.{kind}"] = (value.detach().float().numpy().copy() if value is not None
                                                 else np.zeros(weights[("weight_hh", layer)].shape[0], np.float32))
    head, head_note = _head(state, prefix, hidden)
    head_shape, head_name = None, ""
    if head is not None:
        head_name, weight, head_bias = head
        tensors["readout.weight"] = weight.detach().float().numpy().copy()
        tensors["readout.bias"] = (head_bias.detach().float().numpy().copy() if head_bias is not None
                                   else np.zeros(weight.shape[0], np.float32))
        head_shape = tuple(weight.shape)
    return ImportedModel(str(path), file_sha256(path), cell, input_size, hidden, layers, bias, prefix,
                         head_shape, head_name, tensors, head_note)


_CACHE: dict = {}


def cached(path) -> ImportedModel:
    """`read(path)`, kept while the file is unchanged (same size and modification time): a rebuild
    (a new seed, a new learning rate) does not read and hash the file again."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return read(path)  # (raises the right message)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = read(path)
    return _CACHE[key]


def apply(config: Config, path) -> Config:
    """`config` set to the model in `path`: its cell, hidden size and layers, as read; the
    initializer settings, which an imported model does not use, back at their defaults."""
    model = cached(path)
    return config.replace(model=str(path), cell=model.cell, hidden=model.hidden, layers=model.layers,
                          init="default", spectral_radius=None, forget_bias=None)


def check_matches(config: Config, model: ImportedModel) -> None:
    """The config's structure must be the model's: a model is never silently reshaped."""
    for key in ("cell", "hidden", "layers"):
        if getattr(config, key) != getattr(model, key):
            raise ConfigError(key, getattr(config, key),
                              f"{getattr(model, key)}, as read from the model file {Path(model.path).name} "
                              "(close the model to choose another)")


def as_state_dict(model: ImportedModel) -> dict:
    """The model's weights as an nn.RNN/LSTM/GRU (`rnn.`) with a Linear head (`head.`) would save them:
    a file that `read` opens again to the same model."""
    out = {}
    for name, value in model.tensors.items():
        part, *rest = name.split(".")
        if part == "layers" and (model.bias or rest[1].startswith("weight")):
            out[f"rnn.{rest[1]}_l{rest[0]}"] = torch.from_numpy(value)
        elif part == "readout":
            out[f"head.{rest[0]}"] = torch.from_numpy(value)
    return out


def save_state(state: dict, path) -> None:
    """Write a state_dict of tensors (or arrays) with torch.save: nothing in it but tensors."""
    torch.save({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}, Path(path))


def output_size(model: ImportedModel, task_outputs: int, classes: bool) -> int:
    """The readout's width: the task's, or the imported head's where it answers the task: the same
    width, or for a user's classes the head's own (the data's classes must then lie within it)."""
    if model.head and (model.head[0] == task_outputs or classes):  # (too few classes: refused by the task)
        return model.head[0]
    return task_outputs


def load_into(net, model: ImportedModel, input_size: int, what_for: str) -> str:
    """Copy the imported weights into a RecurrentNet built for them; returns what was taken, in words.
    A module saved with bias=False keeps its biases at 0 and out of training."""
    if model.input_size != input_size:
        raise ConfigError("model", model.path, f"a model taking {input_size} inputs per step ({what_for})",
                          f"takes {model.input_size} inputs per step")
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, value in model.tensors.items():
            if name.startswith("layers."):
                params[name].copy_(torch.from_numpy(value))
        if not model.bias:
            for layer in net.layers:
                layer.bias_ih.requires_grad_(False)
                layer.bias_hh.requires_grad_(False)
        head = "readout.weight" in model.tensors and tuple(net.readout.weight.shape) == model.head
        if head:
            net.readout.weight.copy_(torch.from_numpy(model.tensors["readout.weight"]))
            net.readout.bias.copy_(torch.from_numpy(model.tensors["readout.bias"]))
    if head:
        return f"recurrent weights and head from {Path(model.path).name}"
    reason = (model.head_note or "the file has none") if not model.head else (
        f"its head answers {model.head[0]} outputs from {model.head[1]} features, the task needs "
        f"{net.readout.weight.shape[0]} from {net.readout.weight.shape[1]}")
    return f"recurrent weights from {Path(model.path).name}; a new readout ({reason})"
