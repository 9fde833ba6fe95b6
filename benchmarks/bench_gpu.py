"""The engine on a CUDA GPU: speed against cuDNN, and every probe against the CPU's figures.

Imports only torch, numpy and the engine (a GPU machine may lack the window's packages). For each cell,
hidden size and sequence length (adding task, batch 64, one layer, Adam) it times, with the device
synchronized around every step and the loops interleaved:

  instrumented  engine.trainer.Trainer.step(): forward, every per-timestep gradient and probe, update
  plain         the same unrolled network, loss.backward(), optimizer.step()
  fused         PyTorch's nn.RNN / nn.LSTM / nn.GRU (cuDNN on a GPU) with a Linear readout

and then checks agreement: the same seeded run's first steps on the device and on the CPU, probe by
probe (grad_h, grad_c, grad_x, loss, sigma_max, saturation, gate means, parameter-gradient norms), and
the device's state gradients against the CPU's float64 figures (engine.detail, float64 on the CPU).

    python benchmarks/bench_gpu.py                          # on CUDA: hidden 256/512, seq_len 200/500
    python benchmarks/bench_gpu.py --device cpu --quick     # where there is none: the same path, small sizes
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine  # noqa: E402  (its plain and fused loops, on any device)

from engine.config import Config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

FUSED = bench_engine.FUSED
PROBES = ("loss", "grad_h", "grad_c", "grad_x", "sigma_max", "saturation", "gate_means", "grad_norm_layer")


def config_for(cell: str, hidden: int, seq_len: int, batch: int, device: str) -> Config:
    return Config(task="adding", cell=cell, hidden=hidden, seq_len=seq_len, batch=batch, optimizer="adam",
                  lr=1e-3, device=device)


def synchronized(fn, device: torch.device):
    def step():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return step


def loops(config: Config) -> dict:
    trainer = Trainer(config)
    device = trainer.device
    return {name: synchronized(fn, device) for name, fn in (
        ("instrumented", trainer.step), ("plain", bench_engine.plain_loop(config, device)),
        ("fused", bench_engine.fused_loop(config, device)))}


def timed(config: Config, rounds: int) -> dict:
    steps = loops(config)
    for fn in steps.values():  # warm-up: cuDNN plans, the caching allocator, the gradient scale
        for _ in range(3):
            fn()
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"ms": {name: 1e3 * value for name, value in med.items()},
            "instrumented/fused": statistics.median(a / b for a, b in zip(times["instrumented"], times["fused"])),
            "instrumented/plain": statistics.median(a / b for a, b in zip(times["instrumented"], times["plain"]))}


def relative_difference(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(b), 1e-300)
    return float(np.max(np.abs(a - b) / scale)) if a.size else 0.0


def agreement(config: Config, steps: int = 3) -> dict:
    """Largest relative difference of each probe between the device and the CPU over the first steps, and
    of the device's grad_h against the CPU's float64 figures (engine.detail) at the last of them."""
    device_run, cpu_run = Trainer(config), Trainer(config.replace(device="cpu"))
    cpu_run.keep_last_batch = True
    worst = {name: 0.0 for name in PROBES}
    for _ in range(steps):
        a, b = device_run.step(), cpu_run.step()
        for name in PROBES:
            if getattr(b, name) is not None:
                worst[name] = max(worst[name], relative_difference(getattr(a, name), getattr(b, name)))
    exact = cpu_run.detail()  # float64, on the CPU, at the weights of the last step
    worst["grad_h vs CPU float64"] = relative_difference(a.grad_h, np.sqrt((exact.units[:, 0] ** 2).sum(-1)))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="hidden 16, seq_len 20 and 50, batch 8, few rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu for the same path on the CPU; the GPU figures need a GPU")
        return 2
    torch.set_num_threads(1)
    hiddens, seq_lens, batch = ((16,), (20, 50), 8) if args.quick else ((256, 512), (200, 500), 64)
    rounds = args.rounds or (3 if args.quick else 15)
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU, one thread"
    print(f"torch {torch.__version__}, {name}, batch {batch}, adding task, Adam, float32")
    print("| cell | hidden | seq_len | instrumented | plain unrolled | fused | instrumented / fused | instrumented / plain |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cell in FUSED:
        for hidden in hiddens:
            for seq_len in seq_lens:
                r = timed(config_for(cell, hidden, seq_len, batch, args.device), rounds)
                ms = r["ms"]
                print(f"| {cell} | {hidden} | {seq_len} | {ms['instrumented']:.1f} ms | {ms['plain']:.1f} ms "
                      f"| {ms['fused']:.1f} ms | {r['instrumented/fused']:.2f}x | {r['instrumented/plain']:.2f}x |",
                      flush=True)
    print("\nagreement with the CPU (largest relative difference over the first 3 steps):")
    for cell in FUSED:
        worst = agreement(config_for(cell, hiddens[0], seq_lens[0], batch, args.device))
        print(f"  {cell}: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
