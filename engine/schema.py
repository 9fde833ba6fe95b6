"""The settings schema: one row per setting, the one place each of its facts is written.

Runs on any thread; no Qt. Every other description of a setting is made from these rows: the Config
dataclass and its validation (engine/config.py), `--set` and config-file parsing, the settings panel's
controls, groups, labels, bounds and tooltips and the compare panel's suggested values (gui/controls.py),
the words that tell compared runs apart (gui/views/_common.py), and the settings table in
docs/settings.md (`python -m engine.schema`, checked current by a test). Adding a setting is one row
here plus the code that uses its value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

MAX_SEQ_LEN = 5000
MAX_LAYERS = 8
MAX_RUNS = 4          # runs trained side by side (compare mode, a lesson, an experiment)


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str                     # choice | int | float | bool | path | text  (path and text may be none)
    default: Any
    label: str                    # the settings panel's label
    group: str | None             # the panel's group; None: set elsewhere (the File menu: model, data, target)
    help: str                     # what it is, in plain words: the tooltip and the docs
    low: float | None = None      # int and float: the inclusive range, except a float's `low` when low_open
    high: float | None = None
    low_open: bool = False        # a float that must be greater than `low` (a learning rate of 0 learns nothing)
    optional: bool = False        # none is allowed too (the initializer's own scale, PyTorch's own bias)
    choices: Callable[[], tuple] | None = None  # the registry it names an entry of
    applies: dict | None = None   # {other key: values} where it has an effect; elsewhere shown as not applying
    live: bool = False            # takes effect at the next step, without rebuilding the network
    log_scale: bool = False       # a control stepping 1, 2, 5 x 10^k (quantities spanning decades)
    step: float = 1.0             # an optional number's spin box step
    suggestions: tuple = ()       # compare mode: values offered for runs 2..4 (any can be typed)
    tells_runs_apart: int | None = None   # rank among the settings named in compared runs' labels
    unset_tip: str = ""           # an optional number's tick box tooltip

    @property
    def python_type(self):
        return {"choice": str, "int": int, "float": float, "bool": bool, "path": str, "text": str}[self.kind]

    def allowed(self) -> str:
        """What is allowed, as every refusal says it."""
        if self.kind == "choice":
            return " | ".join(self.choices())
        if self.kind == "int":
            return f"an integer from {self.low} to {self.high}"
        if self.kind == "bool":
            return "true | false"
        if self.kind == "float":
            text = (f"a number greater than {self.low:g} and at most {self.high:g}" if self.low_open
                    else f"a number from {self.low:g} to {self.high:g}")
            return f"none, or {text}" if self.optional else text
        return "none, or a file path" if self.kind == "path" else "none, or a column name"

    def accepts(self, value) -> bool:
        """The value's type and range, on its own (settings that depend on others: engine/config.py)."""
        if value is None:
            return self.optional
        if self.kind == "choice":
            return value in self.choices()
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind in ("path", "text"):
            return isinstance(value, str) and bool(value.strip())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int":
            return isinstance(value, int) and self.low <= value <= self.high
        if not math.isfinite(value):
            return False
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high


def _registry(name: str) -> Callable[[], tuple]:
    def names() -> tuple:
        from engine import registry  # (the registries import the tasks, which import the config)
        return tuple(getattr(registry, name))
    return names


SETTINGS = (
    Setting("task", "choice", "adding", "task", "Task",
            "What the network has to learn. Each task needs memory over a different distance. adding: the sum "
            "of two marked numbers (baseline loss 1/6); copy: repeat 5 symbols after a delay (baseline ln 8); "
            "digits: 8x8 handwritten digits read pixel by pixel (64 steps) or row by row (8); data: your data "
            "file (set by data).",
            choices=_registry("TASKS"), tells_runs_apart=13),
    Setting("seq_len", "int", 100, "sequence length", "Task",
            "Timesteps per sequence: how far back in time the gradient has to travel. "
            "(copy: the delay, so the network sees seq_len + 10 steps; digits: 64 for pixel by pixel or 8 for "
            "row by row; adding: at least 2.) Choosing task=digits without a length switches a length digits "
            "cannot use to 64.",
            low=1, high=MAX_SEQ_LEN, suggestions=("50", "200", "400", "1000"), tells_runs_apart=5),
    Setting("batch", "int", 32, "batch size", "Task",
            "Sequences per training step. Larger batches give smoother gradients but slower steps.",
            low=1, high=4096, suggestions=("8", "128", "512"), tells_runs_apart=15),
    Setting("cell", "choice", "rnn", "cell", "Network",
            "The recurrent cell: how new memory is made from the input and the old memory.",
            choices=_registry("CELLS"), tells_runs_apart=0),
    Setting("activation", "choice", "tanh", "activation", "Network",
            "The squashing function of the vanilla RNN and IndRNN cells (the other cells have their own: it is "
            "kept, and ignored, for them); prelu learns its slope. Choosing cell=indrnn without an "
            "activation takes relu, as IndRNN's paper does.",
            choices=_registry("ACTIVATIONS"), applies={"cell": ("rnn", "indrnn")}, tells_runs_apart=1),
    Setting("layers", "int", 1, "layers", "Network",
            "Recurrent layers stacked on top of each other (1 to 8). The gradient also has to pass "
            "down through the layers.", low=1, high=MAX_LAYERS, suggestions=("2", "4", "8"), tells_runs_apart=4),
    Setting("hidden", "int", 64, "hidden units", "Network",
            "Units per recurrent layer: the size of the network's memory.",
            low=1, high=2048, suggestions=("16", "128", "256"), tells_runs_apart=6),
    Setting("skip", "bool", False, "skip connections", "Network",
            "Residual connections between stacked layers: each layer adds its input to its output, "
            "giving the gradient a short path down through the stack.", tells_runs_apart=7),
    Setting("attention", "bool", False, "attention readout", "Network",
            "The readout looks at every top-layer hidden state, not only the last one, so the "
            "gradient can reach early timesteps directly (causally: each answer looks at the states up to "
            "its own timestep).", tells_runs_apart=8),
    Setting("init", "choice", "default", "initializer", "Initialization",
            "How the recurrent weights start out. Their size decides whether the gradient shrinks or "
            "grows at each step back in time. Applied per gate block for LSTM and GRU; identity also zeroes "
            "the biases (IRNN). The newer cells start as their papers do.", choices=_registry("INITIALIZERS"),
            applies={"cell": ("rnn", "lstm", "gru")}, tells_runs_apart=2),
    Setting("spectral_radius", "float", None, "spectral radius", "Initialization",
            "Rescale each recurrent matrix so its largest eigenvalue has this size. Below 1 "
            "gradients tend to vanish, above 1 to explode. Unticked: keep the initializer's scale.",
            low=0.0, high=100.0, low_open=True, optional=True, step=0.05, applies={"cell": ("rnn", "lstm", "gru")},
            suggestions=("none", "0.9", "1.1", "1.5"), tells_runs_apart=3,
            unset_tip="Tick to rescale the recurrent matrices to the spectral radius on the right."),
    Setting("forget_bias", "float", None, "forget-gate bias", "Initialization",
            "LSTM only: where the forget gates' bias starts. A positive value (1 is the usual recipe) "
            "starts with the gates open, so memory and gradient pass through many steps. "
            "Unticked: PyTorch's own initialization.",
            low=-10.0, high=10.0, optional=True, step=0.5, applies={"cell": ("lstm",)},
            suggestions=("none", "1", "2", "-1"),
            unset_tip="Tick to start the LSTM's forget-gate bias at the value on the right."),
    Setting("lru_r_min", "float", 0.9, "LRU ring, inner radius", "Initialization",
            "LRU only: the smallest size its eigenvalues lambda start with. They start spread over the ring "
            "between this and the outer radius (evenly over its area, as the paper draws them), at any angle; "
            "near 1, a state keeps its memory (and its gradient) for about 1 / (1 - |lambda|) steps.",
            low=0.0, high=0.9999, applies={"cell": ("lru",)}, step=0.01, suggestions=("0", "0.5", "0.99"),
            tells_runs_apart=16),
    Setting("lru_r_max", "float", 0.999, "LRU ring, outer radius", "Initialization",
            "LRU only: the largest size its eigenvalues lambda start with (below 1: |lambda| < 1 keeps the "
            "recurrence stable however it trains). If it is below the inner radius, the two swap.",
            low=0.0, high=0.99999, applies={"cell": ("lru",)}, step=0.001, suggestions=("0.9", "0.99", "0.9999"),
            tells_runs_apart=17),
    Setting("lru_gamma", "bool", True, "LRU input normalisation", "Initialization",
            "LRU only: multiply each state's input by gamma = sqrt(1 - |lambda|^2), learned from there, so a state "
            "whose lambda is near 1 (slow, long memory) does not add its inputs up to a huge value.",
            applies={"cell": ("lru",)}, tells_runs_apart=18),
    Setting("ssm_state", "int", 16, "state size per channel", "Network",
            "Selective state space (ssm) only: N, the states each channel keeps, each decaying at its own rate "
            "exp(delta_t A_n) (Mamba uses 16).", low=1, high=64, applies={"cell": ("ssm",)},
            suggestions=("4", "32"), tells_runs_apart=19),
    Setting("optimizer", "choice", "adam", "optimizer", "Training",
            "How a gradient is turned into a weight update.", choices=_registry("OPTIMIZERS"), live=True,
            tells_runs_apart=11),
    Setting("lr", "float", 1e-3, "learning rate", "Training",
            "Learning rate: how big each update is. The arrows step through 1, 2, 5 x powers of ten.",
            low=0.0, high=10.0, low_open=True, live=True, log_scale=True,
            suggestions=("0.0001", "0.01", "0.1", "0.5"), tells_runs_apart=12),
    Setting("clip", "choice", "none", "clipping", "Training",
            "Gradient clipping caps very large gradients so one bad step cannot throw the weights away.",
            choices=_registry("CLIP_MODES"), live=True, tells_runs_apart=9),
    Setting("clip_threshold", "float", 1.0, "clip threshold", "Training",
            "Clip by norm: the largest total gradient norm allowed. Clip by value: the largest "
            "size allowed for a single gradient entry.",
            low=0.0, high=1e6, low_open=True, live=True, log_scale=True, applies={"clip": ("norm", "value")},
            suggestions=("0.1", "10", "100"), tells_runs_apart=10),
    Setting("seed", "int", 0, "seed", "Run",
            "Seeds the weights and the data: the same seed gives the same numbers, so runs compare fairly.",
            low=0, high=2**31 - 1, tells_runs_apart=14),
    Setting("device", "choice", "auto", "device", "Run",
            "Where training runs: auto uses a CUDA GPU when there is one and the model is large enough to "
            "gain from it (a small model trains faster on the CPU), otherwise the CPU. Large enough: at least "
            "2 M multiply-adds per timestep (batch x gates x hidden x (inputs + hidden), over the layers); "
            "the device box's tooltip and train's first lines say what auto chose and why.",
            choices=lambda: ("auto", "cpu", "cuda")),
    Setting("model", "path", None, "your model", None,
            "A weights file of your own (torch.save of a state_dict): cell, hidden size and layers are read "
            "from it and must stay the file's (File > Open model, --model FILE).", optional=True),
    Setting("data", "path", None, "your data", None,
            "A data file of your own (.npz, .csv or .txt): the task is then data, and a built-in task clears "
            "it (File > Open data, --data FILE).", optional=True),
    Setting("target", "text", None, "target column", None,
            "A .csv data file's column to predict (none: the last column of numbers).",
            optional=True, applies={"task": ("data",)}),
)

BY_NAME = {s.name: s for s in SETTINGS}
KEYS = tuple(BY_NAME)
GROUPS = tuple((group, tuple(s.name for s in SETTINGS if s.group == group))
               for group in dict.fromkeys(s.group for s in SETTINGS if s.group))
LIVE_KEYS = frozenset(s.name for s in SETTINGS if s.live)
RANGES = {s.name: (s.low, s.high) for s in SETTINGS if s.kind == "int"}
DESCRIBE_KEYS = tuple(s.name for s in sorted((s for s in SETTINGS if s.tells_runs_apart is not None),
                                             key=lambda s: s.tells_runs_apart))


def value_text(value, short: bool = False) -> str:
    """A setting's value as `--set` reads it back: none, true/false, numbers exactly (short: as %g)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if short else repr(value)
    return str(value)


def applies(setting: Setting, values) -> bool:
    """Whether `setting` has an effect with these other values (a Config, or a dict of them)."""
    get = values.get if isinstance(values, dict) else lambda key: getattr(values, key)
    return all(get(key) in allowed for key, allowed in (setting.applies or {}).items())


def _cell(value) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else f"`{value}`"


def markdown_table() -> str:
    """docs/settings.md: every setting, its default, what is allowed, where it applies, what it does."""
    lines = ["# Settings", "",
             "Every setting, as `--set KEY=VALUE`, a config file's `key = value`, the settings panel and compare",
             "mode take it. Generated from `engine/schema.py` by `python -m engine.schema > docs/settings.md`;",
             "a test checks that it is current.", "",
             "| key | default | allowed | applies | live | what it does |", "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        where = "; ".join(f"{key} = {' or '.join(values)}" for key, values in (s.applies or {}).items()) or "always"
        allowed = s.allowed().replace(" | ", ", ") if s.kind in ("choice", "bool") else s.allowed()
        lines.append(f"| `{s.name}` | {_cell(s.default)} | {allowed} | {where} | {'yes' if s.live else ''} | "
                     f"{s.help.replace('|', '/')} |")
    lines += ["", "Live settings take effect at the next training step; any other change rebuilds the network from "
              "its seed, marked on every time axis."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
