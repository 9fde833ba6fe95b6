"""What seeing a step closely costs (engine.detail: the Units and Answers views, one sequence alone).

Runs in the main thread of a plain Python process, one torch thread. For each case it times, on the
same trained network and batch:

  step          Trainer.step(): forward, every probe, update (the instrumented step)
  units         Trainer.detail() without the connectivity map: one float64 forward and backward pass
  + answers     Trainer.detail() with it: one more backward pass per answer

and then trains for a few seconds twice, interleaved, as the window's worker does: once plain, once
asking for a detail whenever engine.detail.DetailBudget allows (at most 5% of the training time,
at most 30 a second). The last column is that training's steps/s against plain training's in the
same run: what the views cost the training.

    python benchmarks/bench_detail.py            # the table, about a minute
    python benchmarks/bench_detail.py --quick    # two small cases, a few seconds each
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
from engine.detail import DetailBudget, DetailRequest  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CASES = {
    "default (rnn, adding, T=100)": Config(),
    "lstm, copy, T=60, 5 answers": Config(task="copy", cell="lstm", seq_len=50),
    "lstm, text, T=60, 60 answers": Config(task="data", cell="lstm", seq_len=60,
                                           data=str(ROOT / "resources" / "lady_susan.txt")),
    "lstm 256, adding, T=200, batch 64": Config(task="adding", cell="lstm", hidden=256, seq_len=200, batch=64),
}
QUICK = ("default (rnn, adding, T=100)", "lstm, text, T=60, 60 answers")


def median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_for(trainer: Trainer, seconds: float, request: DetailRequest | None, detail_seconds: float) -> float:
    """Steps per second over `seconds`, with details as the worker asks for them (None: none), in the
    steady state: as if a detail of `detail_seconds` had just been taken (the first detail of a session
    comes at once, whatever it costs: it is what the user asked to see)."""
    budget = DetailBudget()
    budget.spent(detail_seconds, time.perf_counter())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        trainer.step()
        budget.trained_for(time.perf_counter() - began)
        steps += 1
        now = time.perf_counter()
        if request is not None and budget.due(now):
            trainer.detail(request)
            done = time.perf_counter()
            budget.spent(done - now, done)
    return steps / (time.perf_counter() - start)


def measure(name: str, config: Config, seconds: float, rounds: int) -> dict:
    trainer = Trainer(config.replace(device="cpu"))
    trainer.keep_last_batch = True  # as the window's worker keeps it (a copy of the weights a step)
    for _ in range(3):
        trainer.step()
    repeats = 5 if config.hidden < 256 else 2
    step = median_seconds(trainer.step, repeats)
    units = median_seconds(lambda: trainer.detail(DetailRequest(layer=0, connectivity=False)), repeats)
    answers = median_seconds(lambda: trainer.detail(DetailRequest(layer=0, connectivity=True)), repeats)
    ratios = []
    seconds = max(seconds, 40 * answers)  # long enough for a few detail passes at 4% of the time
    # (not for steps of a second or more: too few fit, and such a step's time changes as the network
    # trains, as where the float64 redo of a vanished gradient stops firing, which swamps a 4% effect)
    for _ in range(rounds if step < 0.5 else 0):  # interleaved: a burst of load slows both alike
        plain = train_for(trainer, seconds, None, answers)
        viewed = train_for(trainer, seconds, DetailRequest(layer=0, connectivity=True), answers)
        ratios.append(viewed / plain)
    return {"case": name, "answers": len(trainer.task.output_steps), "step_ms": step * 1e3, "units_ms": units * 1e3,
            "answers_ms": answers * 1e3, "ratio": statistics.median(ratios) if ratios else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small cases, shorter runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = QUICK if args.quick else tuple(CASES)
    seconds, rounds = (2.0, 2) if args.quick else (4.0, 3)
    print(f"one torch thread; load average {os.getloadavg()[0]:.2f}")
    print("| case | answers | step | units | units + answers | training with the views on / plain |")
    print("|---|---|---|---|---|---|")
    for name in names:
        r = measure(name, CASES[name], seconds, rounds)
        print(f"| {r['case']} | {r['answers']} | {r['step_ms']:.1f} ms | {r['units_ms']:.1f} ms "
              f"({r['units_ms'] / r['step_ms']:.1f}x) | {r['answers_ms']:.1f} ms ({r['answers_ms'] / r['step_ms']:.1f}x) "
              f"| {'-' if r['ratio'] is None else format(r['ratio'], '.3f')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
