"""How long `main.py sweep` takes: a 90-point map at initialisation (a default tanh RNN over 10 spectral
radii x 9 sequence lengths, 10 to 500), stacked as the sweep stacks it against one network at a time through
the trainer's own float64 pass, and a 20-point, 200-step training sweep, each on the local executor (in this
process, and a spawn pool of --workers) and on Ray when it is installed. Wall-clock seconds of the whole
command's work (starting the pool or Ray included), one run each; the machine's other load shows in them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sweep.py [--workers 2] [--skip-training]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import phase_maps, sweep, sweep_batched  # noqa: E402
from engine.config import Config  # noqa: E402

MAP = ["--grid", "spectral_radius=" + ",".join(sweep.value_text(r) for r in phase_maps.MAP_RADII),
       "--grid", "seq_len=" + ",".join(map(str, phase_maps.MAP_LENGTHS))]
TRAINING = ["--grid", "spectral_radius=0.8,0.9,1,1.1,1.2", "--grid", "activation=tanh,relu", "--seeds", "2",
            "--steps", "200"]


def timed(args: list[str], executor: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcome = sweep.run(Config(), args_grid(args), args_value(args, "--steps", 0), args_value(args, "--seeds", 1),
                            Path(folder), executor=executor, workers=workers, progress=False)
        assert outcome.done == outcome.points, outcome
        return time.perf_counter() - start


def args_grid(args):
    return [args[k + 1] for k, a in enumerate(args) if a == "--grid"]


def args_value(args, name, default):
    return int(args[args.index(name) + 1]) if name in args else default


def one_at_a_time() -> float:
    """The same 90 points, each network measured alone (sweep_batched.measure_one), in this process."""
    points = sweep.make_points(Config(), sweep.parse_grids(args_grid(MAP)), 1)
    start = time.perf_counter()
    for point in points:
        sweep_batched.measure_one(point.config)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    options = parser.parse_args()
    torch.set_num_threads(1)
    ray = importlib.util.find_spec("ray") is not None
    rows = [("90-point map at initialisation, one network at a time (this process)", one_at_a_time()),
            ("90-point map at initialisation, stacked (this process)", timed(MAP, "local", 1)),
            (f"90-point map at initialisation, stacked, local pool of {options.workers}", timed(MAP, "local", options.workers))]
    if ray:
        rows.append((f"90-point map at initialisation, stacked, local Ray of {options.workers} CPUs",
                     timed(MAP, "ray", options.workers)))
    if not options.skip_training:
        rows.append(("20 points x 200 training steps (this process)", timed(TRAINING, "local", 1)))
        rows.append((f"20 points x 200 training steps, local pool of {options.workers}", timed(TRAINING, "local", options.workers)))
        if ray:
            rows.append((f"20 points x 200 training steps, local Ray of {options.workers} CPUs",
                         timed(TRAINING, "ray", options.workers)))
    print("| sweep | seconds |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
