"""What each cell costs per training step, against the tanh RNN at the same size.

Runs in the main thread of a plain Python process, one torch thread. For each size it times
Trainer.step() (forward, every probe, update: the step the window trains with) for every cell, the
cells interleaved round after round so that a slow moment of a shared machine falls on all of them,
and reports the median per cell and its ratio to the tanh RNN's.

    python benchmarks/bench_cells.py            # the table, a few minutes
    python benchmarks/bench_cells.py --quick    # one small size, a few seconds
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import Config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CELLS = ("rnn", "lstm", "gru", "lru", "mingru", "indrnn", "ssm")
SIZES = {"adding, T=100, batch 32, hidden 64": dict(seq_len=100),
         "adding, T=1000, batch 32, hidden 64": dict(seq_len=1000),
         "copy, T=210, batch 64, hidden 128": dict(task="copy", seq_len=200, batch=64, hidden=128)}
QUICK = {"adding, T=100, batch 32, hidden 64": dict(seq_len=100)}


def time_cells(settings: dict, rounds: int) -> dict[str, float]:
    trainers = {cell: Trainer(Config(cell=cell, **settings)) for cell in CELLS}
    for trainer in trainers.values():
        trainer.step()  # the first step pays for allocations
    times = {cell: [] for cell in CELLS}
    for _ in range(rounds):
        for cell, trainer in trainers.items():
            start = time.perf_counter()
            trainer.step()
            times[cell].append(time.perf_counter() - start)
    return {cell: statistics.median(values) for cell, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = QUICK if args.quick else SIZES
    rounds = args.rounds or (3 if args.quick else 10)
    print("| size | " + " | ".join(CELLS) + " |")
    print("|---|" + "---|" * len(CELLS))
    for name, settings in sizes.items():
        medians = time_cells(settings, rounds)
        base = medians["rnn"]
        cells = [f"{medians[c] * 1e3:.1f} ms" + ("" if c == "rnn" else f" ({medians[c] / base:.1f}x)") for c in CELLS]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
