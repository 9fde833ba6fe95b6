"""How much memory a configuration needs, estimated before anything is allocated, and the check that
refuses sizes the machine cannot hold.

Runs on any thread: the command line's main thread (`train`, before the first Trainer), the worker
(before it builds a run set), the GUI thread (the settings panel, as a value is edited) and
`Trainer` itself. It is arithmetic on the config plus one read of /proc/meminfo: no tensor is made.

Each setting has its own limit, but the sizes multiply: hidden 2048, seq_len 5000, batch 64 and
layers 8 are each allowed and together need hundreds of GB. Without this check the run only found
out after 40 s and 7.6 GB. The estimate, per run, in bytes (float32; T: the timesteps the network
sees, B: batch, H: hidden, L: layers, P: parameters):

  parameters   4 P (4 + optimizer slots): the weights, their gradients, the step's working copies
               (the LSTM's reordered weights, the stacked recurrent matrices for sigma_max, the
               optimizer's temporaries), and the optimizer's state (Adam 2 slots, RMSprop 1, SGD 0)
  activations  4 T B H (TOP[cell] + KEPT[cell] (L - 1) [+ SKIP (L - 1)] [+ ACTIVATION[act] L, rnn])
               + STEP_BYTES[cell] T L + 4 T B channels x INPUT_COPIES. Every layer keeps its
               per-timestep states until the step ends (the backward pass needs them, the probes
               read them: the Trace), autograd.grad returns a gradient per hidden (and LSTM cell)
               state, and one layer at a time holds its backward in flight: the per-timestep
               gradients waiting to be stacked, which is why the top layer (the first one walked
               back) costs more than the others. Each timestep also costs a few KB of tensor and
               autograd objects whatever its size; the input comes with one-hot, transposed and
               gradient copies
  probes       the probes' blocks (BLOCK_VALUES at a time, or one timestep of the batch) and the
               snapshot itself
  history      what the caller keeps of every step: the window's rings (gui/history.py: curves,
               the waterfall, EXPORT_ROWS full snapshots, stacked again when exported) or the
               headless run's every snapshot (stacked again into metrics.npz)
  runtime      RUNTIME_BYTES once per process: what the first step touches of torch's own kernels

Calibration: peak resident memory (ru_maxrss) after two Trainer.step() calls, minus the process
after `import torch` and the engine, one run per fresh process, on one thread, on a CPU with
glibc's allocator (x86-64 Linux, torch 2.x). `python -m engine.memory_calibration` measures the table again.

  config (adding task unless named)               measured  estimate   estimate / measured
  defaults (rnn, 100 x 32 x 64 x 1)                 100 MB    119 MB   1.19
  rnn 1000 x 64 x 256 x 1                           493 MB    580 MB   1.18
  rnn 2000 x 32 x 512 x 1                           896 MB  1,048 MB   1.17
  rnn 250 x 64 x 256 x 4                            530 MB    588 MB   1.11
  rnn 500 x 32 x 256 x 8, rmsprop                   963 MB  1,069 MB   1.11
  rnn 1000 x 64 x 256 x 1, prelu                    639 MB    711 MB   1.11
  rnn 1000 x 64 x 256 x 2, attention                913 MB  1,048 MB   1.15
  rnn 10 x 8 x 2048 x 2 (parameters)                411 MB    449 MB   1.09
  rnn copy 2000 x 64 x 128 x 1                      517 MB    613 MB   1.19
  lstm 1000 x 64 x 256 x 1                        1,719 MB  1,908 MB   1.11
  lstm 5000 x 8 x 128 x 1                           656 MB    751 MB   1.14
  lstm 5000 x 32 x 64 x 2                         1,930 MB  2,251 MB   1.17
  lstm 250 x 64 x 256 x 4                         1,376 MB  1,652 MB   1.20
  lstm 250 x 64 x 256 x 3, skip                   1,080 MB  1,356 MB   1.26
  lstm 10 x 8 x 2048 x 2 (parameters)             1,143 MB  1,454 MB   1.27
  gru 1000 x 64 x 256 x 1                         1,521 MB  1,640 MB   1.08
  gru 3000 x 16 x 256 x 2, sgd                    1,728 MB  1,919 MB   1.11
  gru 250 x 64 x 256 x 4                            963 MB  1,128 MB   1.17
  gru digits 64 x 512 x 512 x 2                   2,228 MB  2,548 MB   1.14
  gru 10 x 8 x 2048 x 2 (parameters)                894 MB  1,118 MB   1.25
  rnn 5000 x 1 x 8 x 4 (per-step objects)           178 MB    199 MB   1.12
  lstm 5000 x 1 x 8 x 4 (per-step objects)          424 MB    455 MB   1.07
  gru 5000 x 1 x 8 x 4 (per-step objects)           345 MB    368 MB   1.07

Over these, the estimate is 7% to 27% above the measurement. The same settings measured again
vary: lstm 1000 x 32 x 128 x 2 (estimate 938 MB) gave 805 to 866 MB in five runs, and, while the test
suite and other jobs ran, 641 and 404 MB (probably the kernel taking back pages of torch's own
libraries, which count as resident), so one measurement is no bound. The estimate errs high on purpose (a
refused run that would have fitted costs a smaller size; an accepted run that does not fit costs the
machine), and the check refuses above MARGIN of what is available: the rest of the machine, the GUI
process and the allocator's slack need room too. On CUDA the parameters, activations and probes are
checked against the device's free memory with the same formula (not calibrated there: PyTorch's
caching allocator rounds differently).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from engine import devices, probes, registry, user_data
from engine.config import RANGES, Config
from engine.errors import ConfigError
from engine.model import GATE_NAMES

FLOAT = 4       # bytes of a float32
DOUBLE = 8      # the probes' per-timestep norms are float64
MB = 1024 ** 2
GATE_BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3, "lru": 3, "mingru": 2, "indrnn": 1, "ssm": 2}  # weight blocks
#   per layer, as engine.model lays them out (the protocol's cells: about as many H-wide products per unit)

# Fitted to the calibration table above: floats kept per (timestep x batch x unit) of a layer.
TOP = {"rnn": 7.0, "lstm": 27.0, "gru": 23.0}     # the top layer: kept states plus a backward in flight
KEPT = {"rnn": 7.0, "lstm": 21.0, "gru": 12.0}    # every layer below it: kept states and their gradients
# engine.cells' cells, per unit of H (an S6 unit keeps ssm_state numbers: SSM_PER_STATE each, on top).
# Not calibrated like the table above: set from counting each step's kept tensors, rounded up.
TOP.update({"lru": 24.0, "mingru": 16.0, "indrnn": 9.0, "ssm": 12.0})
KEPT.update({"lru": 20.0, "mingru": 12.0, "indrnn": 9.0, "ssm": 10.0})
SSM_PER_STATE = 8.0  # an S6 channel's every state: its decay, the input term, the state, their gradients
ACTIVATION = {"relu": 1.0, "leaky_relu": 1.0, "prelu": 2.0, "linear": -2.0}  # rnn, per layer: beyond tanh
SKIP = 2.0          # a residual sum and its gradient, per layer above the first
INPUT_COPIES = 6    # the task's input: itself, one-hot and transposed copies, its gradient
# Bytes per timestep per layer whatever the batch and width: the tensors' and autograd nodes' own
# objects, a dozen or more per timestep (measured with batch 1, hidden 8, seq_len 5000: 3.7, 15 and 12 KB).
STEP_BYTES = {"rnn": 4096, "lstm": 16384, "gru": 12288, "lru": 16384, "mingru": 12288, "indrnn": 8192, "ssm": 16384}
OWN_CELL = 16.0  # TOP and KEPT for a cell of a user's own (engine.model.register_cell), whose needs are unknown
PARAMETER_COPIES = 4.5  # measured 3.9 (SGD) to 5.9 (Adam, rnn) with the optimizer's slots
GATES_WRITTEN_OUT = ("rnn", "lstm", "gru")  # engine.model.BUILT_IN: their parameters counted here by formula
OPTIMIZER_SLOTS = {"sgd": 0, "adam": 2, "rmsprop": 1}
RUNTIME_BYTES = 105 * MB
SNAPSHOT_OVERHEAD = 4096  # Python objects and array headers of one Snapshot
MARGIN = 0.8        # refuse above this fraction of the memory available


@dataclass(frozen=True)
class Kept:
    """What the caller keeps of each run's snapshots, beyond the step itself."""
    curve_rows: int = 0       # steps of scalar curves (float64 rings; two of them per layer)
    waterfall_rows: int = 0   # rows of log10 grad_h, layers x T float32
    snapshots: int = 0        # whole snapshots held
    stacked_rows: int = 0     # snapshots turned into arrays all at once (an export, metrics.npz)


# The window's history per run: mirrors gui/history.py (the engine cannot import gui):
# CURVE_CAPACITY, WATERFALL_ROWS, EXPORT_ROWS plus the TRAIL; tests/engine/test_memory.py checks
# that the two agree.
WINDOW = Kept(curve_rows=20_000, waterfall_rows=300, snapshots=5_000 + 8, stacked_rows=5_000)


def headless(steps: int) -> Kept:
    """`main.py train` keeps every step's snapshot, and stacks them all into metrics.npz at the end."""
    return Kept(snapshots=steps, stacked_rows=steps)


# ----------------------------------------------------------------------------- the estimate

def task_shape(c: Config) -> tuple[int, int, int]:
    """(timesteps seen, input channels, outputs) of the config's task, without building it (the
    digits task would load its data)."""
    if c.task == "data":  # a user's file: its shape (read once, then cached; engine/user_data.py)
        data = user_data.cached(c.data, c.target)
        return c.seq_len, data.input_size, data.output_size
    task = registry.TASKS[c.task]
    shell = task.__new__(task)  # n_steps reads only seq_len (the copy task adds its symbols)
    shell.seq_len, shell.batch = c.seq_len, c.batch
    channels = 64 // c.seq_len if c.task == "digits" else task.input_size  # digits: pixels per step
    return shell.n_steps, channels, task.output_size


def parameter_count(c: Config) -> int:
    """The network's parameters, as engine.model.RecurrentNet lays them out."""
    _, channels, outputs = task_shape(c)
    if c.cell not in GATES_WRITTEN_OUT:  # engine.cells' protocol: count a network made on the meta device
        from engine.model import RecurrentNet
        with torch.device("meta"):
            return sum(p.numel() for p in RecurrentNet(c, channels, outputs).parameters())
    gates, H = GATE_BLOCKS[c.cell], c.hidden
    count = 0
    for layer in range(c.layers):
        inputs = channels if layer == 0 else H
        count += gates * H * (inputs + H) + 2 * gates * H
        count += int(c.cell == "rnn" and c.activation == "prelu")
    readout_in = H * (2 if c.attention else 1)
    count += (readout_in + 1) * outputs + (H * H if c.attention else 0)
    return count


def snapshot_bytes(c: Config) -> int:
    """One Snapshot: per-timestep float64 norms (grad_h, grad_c for the LSTM, grad_x), the per-layer
    numbers and histograms, attention weights."""
    T, L = task_shape(c)[0], c.layers
    gates = len(GATE_NAMES.get(c.cell, ()))
    per_timestep = DOUBLE * T * (L * (2 if c.cell == "lstm" else 1) + 1) + (FLOAT * T if c.attention else 0)
    per_layer = L * (DOUBLE * 2 + FLOAT * (3 + gates + len(probes.HIST_EDGES) - 1) + DOUBLE)
    per_layer += L * c.hidden * (FLOAT * 2 + FLOAT * len(probes.FACTOR_QUANTILES))  # eigenvalues, step factors
    return per_timestep + per_layer + SNAPSHOT_OVERHEAD


def history_bytes(c: Config, kept: Kept) -> int:
    T, L = task_shape(c)[0], c.layers
    curves = kept.curve_rows * (7 * DOUBLE + 1 + 2 * L * DOUBLE)  # steps, loss, metric, held-out, 3 norms
    waterfall = kept.waterfall_rows * (FLOAT * L * T + DOUBLE)
    return curves + waterfall + (kept.snapshots + kept.stacked_rows) * snapshot_bytes(c)


def estimate_bytes(c: Config, kept: Kept = Kept()) -> dict[str, int]:
    """The memory one run of `c` needs, in parts (see the module docstring) and in `total`."""
    T, channels, _ = task_shape(c)
    B, H, L = c.batch, c.hidden, c.layers
    gates = GATE_BLOCKS.get(c.cell, 4)
    per_unit = TOP.get(c.cell, OWN_CELL) + KEPT.get(c.cell, OWN_CELL) * (L - 1) + (SKIP * (L - 1) if c.skip else 0) \
        + (ACTIVATION.get(c.activation, 0.0) * L if c.cell in ("rnn", "indrnn") else 0) \
        + (SSM_PER_STATE * c.ssm_state * (1 + L) if c.cell == "ssm" else 0)
    parts = {
        "parameters": int(FLOAT * parameter_count(c) * (PARAMETER_COPIES + OPTIMIZER_SLOTS[c.optimizer])),
        "activations": int(FLOAT * T * B * (H * per_unit + channels * INPUT_COPIES)) + STEP_BYTES.get(c.cell, 16384) * T * L,
        "probes": DOUBLE * 4 * max(probes.BLOCK_VALUES, B * gates * H) + snapshot_bytes(c),
        "history": history_bytes(c, kept),
        "runtime": RUNTIME_BYTES,
    }
    parts["total"] = sum(parts.values())
    return parts


# ----------------------------------------------------------------------------- what is available

def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat_field(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _container_room(total: int | None, root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Room left under a cgroup's memory limit (a container's; cgroup v2, then v1), when one is set
    below the machine's memory; the page cache it may drop (inactive files) counts as room, as
    `docker stats` counts it."""
    for limit_file, usage_file, stat_key in (("memory.max", "memory.current", "inactive_file"),
                                             ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
                                              "total_inactive_file")):
        limit, usage = _read_number(root / limit_file), _read_number(root / usage_file)
        if limit is None or usage is None or (total is not None and limit >= total):
            continue
        cache = _stat_field(root / Path(limit_file).parent / "memory.stat", stat_key)
        return max(limit - usage + cache, 0)
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can have now: Linux's MemAvailable (free memory plus what the kernel
    can reclaim), capped by a container's limit; elsewhere the free physical pages; None if unknown."""
    total = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        room = int(fields["MemAvailable"].split()[0]) * 1024
        total = int(fields["MemTotal"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        try:
            room = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    container = _container_room(total)
    return room if container is None else min(room, container)


def _on_cuda(c: Config) -> bool:
    return devices.uses_cuda(c)


def _device_free() -> int | None:
    try:
        return int(torch.cuda.mem_get_info()[0])
    except (RuntimeError, AssertionError):
        return None


# ----------------------------------------------------------------------------- the check

DEVICE_PARTS = ("parameters", "activations", "probes")


def need_bytes(configs: list[Config], kept: Kept = Kept(), parts=None) -> int:
    """Bytes `configs` need together (the runtime once), counting only `parts` (default: all)."""
    estimates = [estimate_bytes(c, kept) for c in configs]
    if parts is None:
        return sum(e["total"] - e["runtime"] for e in estimates) + RUNTIME_BYTES
    return sum(e[p] for e in estimates for p in parts)


def sizes_text(c: Config) -> str:
    """`seq_len 5000 x batch 64 x hidden 2048 x layers 8, lstm`"""
    return f"seq_len {c.seq_len} x batch {c.batch} x hidden {c.hidden} x layers {c.layers}, {c.cell}"


def size_text(n: float) -> str:
    """`850 MB`, `7.6 GB`, `398 GB` (decimal units, as `free --si` and file managers count)."""
    if n < 1e9:
        return f"{n / 1e6:,.0f} MB"
    return f"{n / 1e9:.1f} GB" if n < 10e9 else f"{n / 1e9:,.0f} GB"


def _largest_fitting(c: Config, key: str, fits) -> int | None:
    """The largest value of `key` below the config's own that `fits`, the other sizes kept; None if
    not even the smallest allowed value does."""
    def valid(value):
        try:
            return c.replace(**{key: value})
        except ConfigError:  # (the adding task needs 2 timesteps, digits 8 or 64)
            return None
    if c.task == "digits" and key == "seq_len":
        candidates = [v for v in (8, 64) if v < c.seq_len]
        return max((v for v in candidates if fits(valid(v))), default=None)
    low, high = RANGES[key][0], getattr(c, key) - 1
    while low <= high and valid(low) is None:
        low += 1
    if low > high or not fits(valid(low)):
        return None
    while low < high:  # the estimate grows with every size: the last value that fits
        middle = (low + high + 1) // 2
        if fits(valid(middle)):
            low = middle
        else:
            high = middle - 1
    return low


def _refusal(configs, index, need, budget, available, kept, where, parts) -> ConfigError:
    c = configs[index]
    others = configs[:index] + configs[index + 1:]
    held = need_bytes(others, kept, parts) - (RUNTIME_BYTES if parts is None else 0) if others else 0
    room = budget - held  # (the runtime is counted once, with the candidate)

    def fits(candidate):
        return candidate is not None and need_bytes([candidate], kept, parts) <= room
    smaller = []
    for key in ("seq_len", "batch", "hidden", "layers"):
        value = _largest_fitting(c, key, fits)
        if value is not None:
            smaller.append(f"{key} up to {value}")
    together = "" if not others else " together with the other run" if len(others) == 1 else \
        f" together with the other {len(others)} runs"
    problem = (f"need about {size_text(need)} of memory{together}, more than {where} can spare "
               f"({size_text(budget)}: {MARGIN:.0%} of the {size_text(available)} available)")
    if smaller:
        allowed = "with the other sizes kept, " + ", or ".join(smaller)
    else:
        allowed = ("fewer runs, or " if others else "") + "smaller sizes (no one of seq_len, batch, hidden or " \
            "layers alone brings it under)"
    name = f"run {index + 1} settings" if len(configs) > 1 else "settings"
    return ConfigError(name, sizes_text(c), allowed, problem)


def check_fits(configs: Config | list[Config], available: int | float | None = None, kept: Kept = Kept(),
               reclaimable: int = 0) -> dict[str, int]:
    """Raise ConfigError when the runs in `configs` together would need more than MARGIN of the
    memory `available` (default: what this machine has now, see `available_bytes`; unknown: no
    check). `reclaimable`: bytes the caller frees before building these (the runs they replace).
    The error names the sizes, the estimate, what is available and the largest size of each kind
    that would fit with the others kept. Returns the estimate of the whole set (parts summed)."""
    configs = [configs] if isinstance(configs, Config) else list(configs)
    estimates = [estimate_bytes(c, kept) for c in configs]
    total = {key: sum(e[key] for e in estimates) for key in estimates[0]}
    total["total"] -= total["runtime"] - RUNTIME_BYTES
    total["runtime"] = RUNTIME_BYTES
    on_device = [c for c in configs if _on_cuda(c)]
    host_parts = None if not on_device else tuple(p for p in total if p not in DEVICE_PARTS + ("total",))
    checks = [("this machine", host_parts, available if available is not None else available_bytes())]
    if on_device and available is None:
        checks.append(("the CUDA device", DEVICE_PARTS, _device_free()))
    for where, parts, room in checks:
        if room is None:
            continue
        room += reclaimable if where == "this machine" else 0
        budget = MARGIN * room
        need = need_bytes(configs, kept, parts)
        if need > budget:
            index = max(range(len(configs)), key=lambda k: need_bytes([configs[k]], kept, parts))
            raise _refusal(configs, index, need, budget, room, kept, where, parts)
    return total


# ----------------------------------------------------------------------------- calibration

CALIBRATION = [  # (label, settings): each measured in a fresh process by `python -m engine.memory_calibration`
    ("defaults (rnn, 100 x 32 x 64 x 1)", {}),
    ("rnn 1000 x 64 x 256 x 1", dict(seq_len=1000, batch=64, hidden=256)),
    ("rnn 2000 x 32 x 512 x 1", dict(seq_len=2000, batch=32, hidden=512)),
    ("rnn 250 x 64 x 256 x 4", dict(seq_len=250, batch=64, hidden=256, layers=4)),
    ("rnn 500 x 32 x 256 x 8, rmsprop", dict(seq_len=500, batch=32, hidden=256, layers=8, optimizer="rmsprop")),
    ("rnn 1000 x 64 x 256 x 1, prelu", dict(seq_len=1000, batch=64, hidden=256, activation="prelu")),
    ("rnn 1000 x 64 x 256 x 2, attention", dict(seq_len=1000, batch=64, hidden=256, layers=2, attention=True)),
    ("rnn 10 x 8 x 2048 x 2 (parameters)", dict(seq_len=10, batch=8, hidden=2048, layers=2)),
    ("rnn copy 2000 x 64 x 128 x 1", dict(task="copy", seq_len=2000, batch=64, hidden=128)),
    ("lstm 1000 x 64 x 256 x 1", dict(cell="lstm", seq_len=1000, batch=64, hidden=256)),
    ("lstm 5000 x 8 x 128 x 1", dict(cell="lstm", seq_len=5000, batch=8, hidden=128)),
    ("lstm 5000 x 32 x 64 x 2", dict(cell="lstm", seq_len=5000, batch=32, hidden=64, layers=2)),
    ("lstm 250 x 64 x 256 x 4", dict(cell="lstm", seq_len=250, batch=64, hidden=256, layers=4)),
    ("lstm 250 x 64 x 256 x 3, skip", dict(cell="lstm", seq_len=250, batch=64, hidden=256, layers=3, skip=True)),
    ("lstm 10 x 8 x 2048 x 2 (parameters)", dict(cell="lstm", seq_len=10, batch=8, hidden=2048, layers=2)),
    ("gru 1000 x 64 x 256 x 1", dict(cell="gru", seq_len=1000, batch=64, hidden=256)),
    ("gru 3000 x 16 x 256 x 2, sgd", dict(cell="gru", seq_len=3000, batch=16, hidden=256, layers=2, optimizer="sgd")),
    ("gru 250 x 64 x 256 x 4", dict(cell="gru", seq_len=250, batch=64, hidden=256, layers=4)),
    ("gru digits 64 x 512 x 512 x 2", dict(cell="gru", task="digits", seq_len=64, batch=512, hidden=512, layers=2)),
    ("gru 10 x 8 x 2048 x 2 (parameters)", dict(cell="gru", seq_len=10, batch=8, hidden=2048, layers=2)),
    ("rnn 5000 x 1 x 8 x 4 (per-step objects)", dict(seq_len=5000, batch=1, hidden=8, layers=4)),
    ("lstm 5000 x 1 x 8 x 4 (per-step objects)", dict(cell="lstm", seq_len=5000, batch=1, hidden=8, layers=4)),
    ("gru 5000 x 1 x 8 x 4 (per-step objects)", dict(cell="gru", seq_len=5000, batch=1, hidden=8, layers=4)),
]
