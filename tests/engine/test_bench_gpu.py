"""benchmarks/bench_gpu.py's path, on the CPU where there is no GPU (CI never has one): it runs, times every
loop, and its agreement check reports the probes against the CPU and the CPU's float64 figures."""
import importlib.util
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_benchmark_runs_its_cpu_path_and_reports_agreement(capsys, monkeypatch):
    bench = load()
    monkeypatch.setattr(bench, "FUSED", {"lstm": torch.nn.LSTM})
    assert bench.main(["--device", "cpu", "--quick", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| lstm \| 16 \| 20 \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+x \| [\d.]+x \|", out)
    figures = dict(re.findall(r"(grad_h vs CPU float64|grad_h|loss) ([\d.e+-]+)", out.split("agreement")[1]))
    assert float(figures["grad_h"]) == 0.0 and float(figures["loss"]) == 0.0  # the CPU against itself
    assert float(figures["grad_h vs CPU float64"]) < 1e-4


def test_without_cuda_it_says_how_to_run_it(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load().main([]) == 2
    assert "--device cpu" in capsys.readouterr().out
