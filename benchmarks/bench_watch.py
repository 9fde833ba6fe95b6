"""What watching a user's own loop costs (engine.watching.watch): plain steps against watched ones.

Runs in the main thread of a plain Python process, one torch thread. A user's loop as it is written
(a char-level LSTM language model: Embedding -> LSTM -> Linear-ReLU-Linear, Adam, cross-entropy) is
timed three ways in the same run, interleaved round by round so the machine's drift hits all alike:

  plain       no watch
  every=1     every step measured (probe_model on the step's batch, written to a run folder)
  every=10    steps 1, 10, 20, ... measured

Each step is timed on its own. measured/plain: every=1's median step (a probe and a record written)
over the plain median; every=10/plain: the mean step of every=10 (measurements spread over ten steps)
over the plain median; unmeasured/plain: every=10's steps that are neither measured nor right after a
measured one (whose forward call writes its record), over the plain median: what the hooks alone cost.

    python benchmarks/bench_watch.py            # the table, about a minute
    python benchmarks/bench_watch.py --quick    # one small case, a few seconds
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.watching import watch  # noqa: E402

CASES = {  # name: (vocabulary, hidden, layers, seq_len, batch)
    "char LSTM 64, T=50, batch 32": (60, 64, 1, 50, 32),
    "char LSTM 128 x 2, T=100, batch 32": (60, 128, 2, 100, 32),
    "char LSTM 256, T=100, batch 64": (60, 256, 1, 100, 64),
}
QUICK = ("char LSTM 64, T=50, batch 32",)


class CharLM(nn.Module):
    def __init__(self, vocabulary: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 32)
        self.rnn = nn.LSTM(32, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, vocabulary))

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out)


def step_seconds(case, steps: int, every: int | None, folder: Path) -> list[float]:
    """Seconds of each of `steps` steps of the user's loop (watched every `every` steps; None: plain)."""
    vocabulary, hidden, layers, seq_len, batch = case
    torch.manual_seed(0)
    model = CharLM(vocabulary, hidden, layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    data = [torch.randint(0, vocabulary, (batch, seq_len + 1), generator=g) for _ in range(steps)]
    if folder.exists():
        shutil.rmtree(folder)
    watcher = watch(model, out=folder, every=every) if every is not None else None
    times = []
    for text in data:
        start = time.perf_counter()
        x, y = text[:, :-1], text[:, 1:]
        opt.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, vocabulary), y.reshape(-1))
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    if watcher is not None:
        watcher.close()
    return times


def measure(case, steps: int, rounds: int, folder: Path) -> dict:
    """Median seconds a step: plain; every=1 (each step measured, and its record written at the next
    step's forward call); every=10 all steps; every=10's steps that are neither measured nor right after
    one (what the hooks cost by themselves)."""
    times = {"plain": [], "every=1": [], "every=10": [], "unmeasured": []}
    step_seconds(case, 2, 1, folder / "warm")  # imports, first allocations
    for _ in range(rounds):
        times["plain"] += step_seconds(case, steps, None, folder / "plain")
        times["every=1"] += step_seconds(case, steps, 1, folder / "one")[1:]
        ten = step_seconds(case, steps, 10, folder / "ten")
        times["every=10"].append(sum(ten) / steps)
        times["unmeasured"] += [t for k, t in enumerate(ten, 1) if k % 10 not in (0, 1) and k != 2]
    per_step = {k: statistics.median(v) for k, v in times.items()}
    plain = per_step["plain"]
    return {"plain_ms": plain * 1e3, "every1_ms": per_step["every=1"] * 1e3, "every10_ms": per_step["every=10"] * 1e3,
            "measured_ratio": per_step["every=1"] / plain, "every10_ratio": per_step["every=10"] / plain,
            "unmeasured_ratio": per_step["unmeasured"] / plain}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small case, a few seconds")
    parser.add_argument("--steps", type=int, default=40, help="steps per loop (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="loops per variant (default 5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = QUICK if args.quick else tuple(CASES)
    steps, rounds = (20, 3) if args.quick else (args.steps, args.rounds)
    print(f"torch {torch.__version__}, 1 thread, {steps} steps a loop, median of {rounds} rounds")
    print(f"{'case':36} {'plain ms':>9} {'every=1':>9} {'every=10':>9}  {'measured/plain':>14} "
          f"{'every=10/plain':>14} {'unmeasured/plain':>16}")
    folder = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    try:
        for name in names:
            r = measure(CASES[name], steps, rounds, folder)
            print(f"{name:36} {r['plain_ms']:9.1f} {r['every1_ms']:9.1f} {r['every10_ms']:9.1f}  "
                  f"{r['measured_ratio']:14.2f} {r['every10_ratio']:14.2f} {r['unmeasured_ratio']:16.2f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
