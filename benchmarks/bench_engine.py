"""Steps per second of the instrumented engine against plain PyTorch, measured in the same run.

Runs in the main thread of a plain Python process, one torch thread. For each cell, hidden size
and sequence length it times three training loops on the same task and batch:

  instrumented  engine.trainer.Trainer.step(): forward, per-timestep gradients, every probe, update
  capture       the same model, with the one torch.autograd.grad call that captures every hidden (and
                cell) state's and input's gradient, and the update; no probe computed from them: the
                floor under the instrumented step
  plain         the same unrolled RecurrentNet, loss.backward(), optimizer.step(); no probes
  fused         PyTorch's nn.RNN / nn.LSTM / nn.GRU with a Linear readout, same loss and optimizer
  floor         the step's matrix products alone: seq_len x 3 products of (batch x hidden) by (hidden x
                gates * hidden), the recurrence forward, its input gradient and its weight gradient (what
                any implementation of the step must multiply; the input projection, with a task's 2 or 10
                inputs, is left out)

The three loops are timed in interleaved blocks (A B C, B C A, C A B, ...), and every figure is a
median over blocks, so a burst of load from another process slows all three alike instead of
skewing one of them. Ratios are medians of per-round ratios (each round times all three loops
back to back).

    python benchmarks/bench_engine.py                    # full table, a few minutes
    python benchmarks/bench_engine.py --quick            # smaller table, under a minute
    python benchmarks/bench_engine.py --markdown out.md  # also write the table to a file
    python benchmarks/bench_engine.py --breakdown        # what each probe costs (rnn, hidden 64, 50 and 200 steps)
    python benchmarks/bench_engine.py --profile          # CPU time inside each probe, per step (hidden 128, seq_len 200)
    python benchmarks/bench_engine.py --practitioner     # hidden 256, seq_len 200, batch 64: against the floor
    python benchmarks/bench_engine.py --cells rnn --activation sigmoid --seq-len 50 100 200
                                                         # the float64 redo of an underflowing gradient
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import probes, registry  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.model import RecurrentNet  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CELLS = ("rnn", "lstm", "gru")
FUSED = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
LOOPS = ("instrumented", "capture", "plain", "fused", "floor")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


ACTIVATION = "tanh"  # --activation sigmoid: a vanilla RNN whose gradient underflows float32 from about
#   60 steps on, so that every instrumented step also pays for the float64 redo (probes.float64_state_gradients)


def config_for(cell: str, hidden: int, seq_len: int, batch: int) -> Config:
    return Config(task="adding", cell=cell, hidden=hidden, seq_len=seq_len, batch=batch,
                  activation=ACTIVATION, optimizer="adam", lr=1e-3, device="cpu")


def instrumented_loop(config: Config):
    trainer = Trainer(config)
    return trainer.step


def capture_loop(config: Config):
    """Trainer.step()'s gradient capture alone: autograd.grad over the parameters, every state and the
    inputs, then the update; nothing computed from the captured gradients."""
    trainer = Trainer(config)
    task, model, params, optimizer = trainer.task, trainer.model, trainer.params, trainer.optimizer

    def step():
        x, target = task.sample(trainer.data_gen)
        x.requires_grad_(True)
        out, trace = model(x, task.output_steps)
        loss = task.loss(out, target)
        states = [h for layer in trace.hidden for h in layer] + [c for layer in trace.cell for c in layer]
        grads = torch.autograd.grad(loss, params + states + [x])
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        model.zero_grad(set_to_none=True)
    return step


def plain_loop(config: Config, device: str = "cpu"):
    """The engine's own model, trained the ordinary way: no probes, no per-timestep gradients."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed + 1)
    task = registry.TASKS[config.task](config.seq_len, config.batch, device)
    model = RecurrentNet(config, task.input_size, task.output_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step():
        x, target = task.sample(gen)
        out, _ = model(x, task.output_steps)
        loss = task.loss(out, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def fused_loop(config: Config, device: str = "cpu"):
    """PyTorch's fused recurrent module (cuDNN's on a GPU) and a Linear readout of the last hidden state."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed + 1)
    task = registry.TASKS[config.task](config.seq_len, config.batch, device)
    rnn = FUSED[config.cell](task.input_size, config.hidden, batch_first=True).to(device)
    readout = nn.Linear(config.hidden, task.output_size).to(device)
    optimizer = torch.optim.Adam(list(rnn.parameters()) + list(readout.parameters()), lr=config.lr)

    def step():
        x, target = task.sample(gen)
        states, _ = rnn(x)
        out = readout(states[:, task.output_steps])
        loss = task.loss(out, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def floor_loop(config: Config):
    """The step's recurrent matrix products alone, at the step's sizes: forward h W^T, the input gradient
    dz W and the weight gradient dz^T h, once per timestep (the engine does the last as one product over
    all timesteps; the same arithmetic)."""
    torch.manual_seed(0)
    width = GATES[config.cell] * config.hidden
    h = torch.randn(config.batch, config.hidden)
    dz = torch.randn(config.batch, width)
    weight = torch.randn(width, config.hidden)

    def step():
        for _ in range(config.seq_len):
            torch.mm(h, weight.t())
            torch.mm(dz, weight)
            torch.mm(dz.t(), h)
    return step


FLUSH_DENORMALS = True  # --keep-denormals: the other loops as plain PyTorch runs them by default


def denormals_as_set(build):
    """The loop with denormal numbers flushed to 0 (or kept) at every step, as FLUSH_DENORMALS says: the
    instrumented step flushes them in its float32 pass (probes.DENORMALS_FLUSHED) and turns that off
    after, so every other loop sets its own."""
    def builder(config):
        fn = build(config)

        def step():
            torch.set_flush_denormal(FLUSH_DENORMALS)
            fn()
        return step
    return builder


BUILDERS = {"instrumented": instrumented_loop, **{name: denormals_as_set(build) for name, build in (
    ("capture", capture_loop), ("plain", plain_loop), ("fused", fused_loop), ("floor", floor_loop))}}


def interleaved_times(steps: dict, rounds: int, block_seconds: float, clock=time.perf_counter) -> dict:
    """Seconds per step of each loop in `steps` ({name: fn}), one entry per round: the loops run in
    blocks of about block_seconds, in an order rotated every round. `clock` time.thread_time counts
    only this thread's CPU time, so another process taking the core does not land on one loop."""
    names = list(steps)
    per_block = {}
    for name, fn in steps.items():  # warm up, then size each loop's block to about block_seconds
        fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        per_block[name] = max(1, round(block_seconds / max(once, 1e-6)))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            fn, n = steps[name], per_block[name]
            start = clock()
            for _ in range(n):
                fn()
            times[name].append((clock() - start) / n)
    return times


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles: how far the per-round ratios scatter around their median."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}  # --clock cpu: this thread's CPU time, steadier
#   where other processes take the cores (load average above the core count) and leave wall-clock blocks mostly waiting


def measure(cell: str, hidden: int, seq_len: int, batch: int, rounds: int, block_seconds: float,
            clock=time.perf_counter) -> dict:
    """Seconds per step of each loop: median over `rounds` interleaved blocks."""
    config = config_for(cell, hidden, seq_len, batch)
    times = interleaved_times({name: BUILDERS[name](config) for name in LOOPS}, rounds, block_seconds, clock)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "cell": cell, "hidden": hidden, "seq_len": seq_len,
        **{f"{name}_steps_s": 1.0 / med[name] for name in LOOPS},
        "instr_over_plain": statistics.median(a / b for a, b in zip(times["instrumented"], times["plain"])),
        "instr_over_plain_quartiles": quartiles([a / b for a, b in zip(times["instrumented"], times["plain"])]),
        "capture_over_plain": statistics.median(a / b for a, b in zip(times["capture"], times["plain"])),
        "plain_over_fused": statistics.median(a / b for a, b in zip(times["plain"], times["fused"])),
        "instr_over_floor": statistics.median(a / b for a, b in zip(times["instrumented"], times["floor"])),
        "fused_over_floor": statistics.median(a / b for a, b in zip(times["fused"], times["floor"])),
        "instr_over_fused": statistics.median(a / b for a, b in zip(times["instrumented"], times["fused"])),
        "spread": max((max(t) - min(t)) / statistics.median(t) for t in times.values()),
    }


# The probes computed from the captured gradients, each a function of engine.probes that --breakdown
# swaps for one that returns the right shape at no cost.
PROBES = {
    # (ones, not zeros: a zero norm would look underflowed and set off the float64 redo)
    "state-gradient norms": ("norm_per_timestep", lambda per_step: np.ones(len(per_step))),
    "sigma_max": ("largest_singular_values", lambda weights: np.zeros(len(weights), dtype=np.float32)),
    "eigenvalues (rnn)": ("recurrent_eigenvalues", lambda weights: np.zeros(weights.shape[:2], dtype=np.complex64)),
    "histogram, saturation, gates": ("layer_activity", lambda layer, activation, trace, k, hist_steps: (
        np.zeros(len(probes.HIST_EDGES) - 1), 0.0, np.zeros(len(layer.gate_names)))),
    # paid only at steps whose float32 state gradients underflow (--activation sigmoid: every step from ~60 steps)
    "float64 redo": ("underflowed", lambda *sizes_and_profiles: False),
}


def breakdown(cell: str, hidden: int, seq_len: int, batch: int, rounds: int, block_seconds: float) -> str:
    """What each probe costs: the instrumented step against itself with that probe swapped out, and
    the capture-only floor, all in ms per step and against the plain step."""
    config = config_for(cell, hidden, seq_len, batch)
    trainer = Trainer(config)

    def without(function_name, stand_in):
        def step():
            real = getattr(probes, function_name)
            setattr(probes, function_name, stand_in)
            try:
                trainer.step()
            finally:
                setattr(probes, function_name, real)
        return step
    steps = {"plain": BUILDERS["plain"](config), "capture": BUILDERS["capture"](config), "instrumented": trainer.step}
    steps.update({label: without(*swap) for label, swap in PROBES.items()})
    times = interleaved_times(steps, rounds, block_seconds, clock=time.thread_time)
    med = {name: statistics.median(t) for name, t in times.items()}
    plain, full = med["plain"], med["instrumented"]
    lines = [f"{cell} hidden {hidden} seq_len {seq_len}: plain {plain * 1e3:.2f} ms, instrumented "
             f"{full * 1e3:.2f} ms ({full / plain:.2f}x), capture only {med['capture'] * 1e3:.2f} ms "
             f"({med['capture'] / plain:.2f}x)"]
    for label in PROBES:
        cost = full - med[label]
        lines.append(f"    {label:26s} {cost * 1e3:7.3f} ms  ({100 * cost / plain:5.1f}% of a plain step)")
    rest = med["instrumented"] - med["capture"] - sum(full - med[label] for label in PROBES)
    lines.append(f"    {'everything else':26s} {rest * 1e3:7.3f} ms  ({100 * rest / plain:5.1f}%): parameter norms, "
                 "clipping check, metric, snapshot")
    return "\n".join(lines)


PROFILED = ("norm_per_timestep", "input_norm_per_timestep", "parameter_gradient_norms", "largest_singular_values",
            "recurrent_eigenvalues", "layer_activity", "cell_weights_and_activity", "underflowed",
            "float64_state_gradients")


def profile(cell: str, hidden: int, seq_len: int, batch: int, steps: int) -> str:
    """Where the instrumented step's time goes: this thread's CPU time inside each probe of engine.probes and
    in the one autograd.grad call, summed over `steps` real steps, against the plain step's backward pass,
    the two loops alternating step by step. Read directly, not by difference, so it holds on a loaded machine."""
    spent = dict.fromkeys(PROFILED + ("autograd.grad (capture)", "plain loss.backward()"), 0.0)

    def timed(label, function):
        def call(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - start
        return call
    config = config_for(cell, hidden, seq_len, batch)
    trainer, plain = Trainer(config), BUILDERS["plain"](config)
    saved = [(probes, name, getattr(probes, name)) for name in PROFILED] + [
        (torch.autograd, "grad", torch.autograd.grad), (torch.Tensor, "backward", torch.Tensor.backward)]
    for owner, name, function in saved:
        setattr(owner, name, timed({"grad": "autograd.grad (capture)", "backward": "plain loss.backward()"}.get(name, name),
                                   function))
    try:
        for _ in range(2):
            trainer.step(), plain()
        spent.update(dict.fromkeys(spent, 0.0))
        instrumented, plain_times = [], []
        for _ in range(steps):
            start = time.thread_time()
            trainer.step()
            instrumented.append(time.thread_time() - start)
            start = time.thread_time()
            plain()
            plain_times.append(time.thread_time() - start)
    finally:
        for owner, name, function in saved:
            setattr(owner, name, function)
    step, plain_step = statistics.median(instrumented), statistics.median(plain_times)
    lines = [f"{cell} hidden {hidden} seq_len {seq_len}: instrumented {step * 1e3:.2f} ms, plain {plain_step * 1e3:.2f} ms "
             f"(CPU time, medians of {steps}; instrumented / plain {statistics.median(a / b for a, b in zip(instrumented, plain_times)):.3f})"]
    for label in sorted(spent, key=spent.get, reverse=True):
        if spent[label]:
            lines.append(f"    {label:28s} {spent[label] / steps * 1e3:7.3f} ms  ({100 * spent[label] / steps / plain_step:5.1f}% of a plain step)")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = ["| cell | hidden | seq_len | instrumented steps/s | plain unrolled steps/s | fused steps/s "
             "| instrumented / plain (time) | its middle half | capture only / plain | plain / fused (time) "
             "| instrumented / matmul floor | fused / matmul floor | spread |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['hidden']} | {r['seq_len']} | {r['instrumented_steps_s']:.1f} "
                     f"| {r['plain_steps_s']:.1f} | {r['fused_steps_s']:.1f} | {r['instr_over_plain']:.2f}x "
                     f"| {r['instr_over_plain_quartiles'][0]:.2f}-{r['instr_over_plain_quartiles'][1]:.2f}x "
                     f"| {r['capture_over_plain']:.2f}x | {r['plain_over_fused']:.2f}x | {r['instr_over_floor']:.2f}x "
                     f"| {r['fused_over_floor']:.2f}x | {100 * r['spread']:.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and rounds (under a minute)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table (with a header) to FILE")
    parser.add_argument("--cells", nargs="+", choices=CELLS, help="only these cells")
    parser.add_argument("--hidden", nargs="+", type=int, help="only these hidden sizes")
    parser.add_argument("--seq-len", nargs="+", type=int, help="only these sequence lengths")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per size (default 7, quick 3)")
    parser.add_argument("--batch", type=int, help="batch size (default 32; --practitioner 64)")
    parser.add_argument("--keep-denormals", action="store_true",
                        help="run the comparison loops with denormal numbers kept, as PyTorch does by default (the "
                             "instrumented step flushes them in its float32 pass either way)")
    parser.add_argument("--practitioner", action="store_true",
                        help="a practitioner's size: hidden 256, seq_len 200, batch 64 (each cell; sizes can be overridden)")
    parser.add_argument("--activation", choices=tuple(registry.ACTIVATIONS), default="tanh",
                        help="the vanilla RNN's activation (sigmoid: gradients that underflow float32, redone in "
                             "float64 at every step; the fused loop stays tanh)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="time blocks by wall clock (default) or by this thread's CPU time (steadier on a loaded machine)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the table: CPU time inside each probe and the gradient capture, per step")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead of the table: what each probe costs per step (a probe swapped out at a time)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    global ACTIVATION, FLUSH_DENORMALS
    ACTIVATION = args.activation
    FLUSH_DENORMALS = not args.keep_denormals
    cells = args.cells or CELLS
    hiddens = args.hidden or ((256,) if args.practitioner else (64,) if args.quick else (64, 128))
    seq_lens = args.seq_len or ((200,) if args.practitioner else (50, 200) if args.quick else (50, 200, 1000))
    args.batch = args.batch or (64 if args.practitioner else 32)
    block_seconds = 0.08 if args.quick else 0.15

    header = (f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}, "
              f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, batch {args.batch}, "
              f"adding task, Adam, float32, CPU, activation {args.activation}, denormals "
              f"{'kept' if args.keep_denormals else 'flushed'} in the comparison loops, {args.clock} clock")
    print(header, flush=True)
    if args.profile:
        for cell in cells:
            for hidden in args.hidden or (128,):
                for seq_len in args.seq_len or (200,):
                    print(profile(cell, hidden, seq_len, args.batch, args.rounds or 20), flush=True)
        return 0
    if args.breakdown:
        for cell in args.cells or ("rnn",):
            for hidden in args.hidden or (64,):
                for seq_len in args.seq_len or (50, 200):
                    print(breakdown(cell, hidden, seq_len, args.batch, args.rounds or 21, 0.2), flush=True)
        return 0
    rows = []
    started = time.perf_counter()
    for cell in cells:
        for hidden in hiddens:
            for seq_len in seq_lens:
                rounds = args.rounds or (3 if args.quick or args.practitioner else (5 if seq_len >= 1000 else 7))
                row = measure(cell, hidden, seq_len, args.batch, rounds, block_seconds, CLOCKS[args.clock])
                rows.append(row)
                print(f"  {cell:4s} H={hidden:<4d} T={seq_len:<5d} instrumented {row['instrumented_steps_s']:8.1f}/s"
                      f"  plain {row['plain_steps_s']:8.1f}/s  fused {row['fused_steps_s']:8.1f}/s"
                      f"  instr/plain {row['instr_over_plain']:.2f}x  capture/plain {row['capture_over_plain']:.2f}x"
                      f"  plain/fused {row['plain_over_fused']:.2f}x  instr/floor {row['instr_over_floor']:.2f}x"
                      f"  fused/floor {row['fused_over_floor']:.2f}x",
                      flush=True)
    text = table(rows)
    print()
    print(text)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.markdown:
        note = ("Ratios are of time per step (above 1: slower). Medians over interleaved rounds; 'its middle "
                "half' is the range of the middle half of the per-round instrumented / plain ratios (first to "
                "third quartile); 'spread' is the largest (max - min) / median of any loop's block times for that row.")
        Path(args.markdown).write_text(f"{header}\n\n{text}\n\n{note}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
