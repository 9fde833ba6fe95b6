"""device=auto by model size (engine.devices), tested through CUDA's absence and a stand-in for its presence."""
import re

import pytest
import torch

from engine import devices
from engine.config import Config
from engine.errors import ConfigError
from engine.trainer import Trainer


def test_the_work_of_a_timestep_is_counted_per_layer():
    # the default: tanh RNN, adding task (2 inputs), hidden 64, batch 32
    assert devices.macs_per_timestep(Config()) == 32 * 1 * 64 * (2 + 64)
    two = Config(cell="lstm", hidden=256, batch=64, layers=2)
    assert devices.macs_per_timestep(two) == 64 * 4 * 256 * ((2 + 256) + (256 + 256))
    assert devices.macs_per_timestep(Config(cell="gru", hidden=8, batch=4), input_size=3) == 4 * 3 * 8 * (3 + 8)


def test_auto_is_the_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    big = Config(cell="lstm", hidden=512, batch=64)
    assert devices.pick("auto", big).type == "cpu" and not devices.uses_cuda(big)
    assert "no CUDA device" in devices.explain(big)
    with pytest.raises(ConfigError, match=re.escape("device: 'cuda' is not allowed; allowed: auto | cpu")):
        devices.pick("cuda", big)
    assert Trainer(Config(hidden=8, batch=2, seq_len=3)).device.type == "cpu"


def test_auto_takes_cuda_only_for_a_model_large_enough(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    small, large = Config(), Config(cell="lstm", hidden=256, batch=64)  # 0.14 M and 17 M multiply-adds
    assert devices.macs_per_timestep(small) < devices.CUDA_FROM_MACS < devices.macs_per_timestep(large)
    assert devices.pick("auto", small).type == "cpu" and devices.pick("auto", large).type == "cuda"
    assert devices.pick("cpu", large).type == "cpu" and devices.pick("cuda", small).type == "cuda"
    assert devices.explain(small).startswith("device auto: cpu (a small model: 0.14 M")
    assert devices.explain(large).startswith("device auto: cuda (a large model: 16.91 M")
    assert Trainer(small.replace(seq_len=3)).device.type == "cpu"  # built on the CPU though CUDA "is there"
