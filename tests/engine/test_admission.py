"""Admission: one function decides whether a run set can be built here (device, files, memory), and
the worker refuses a user's file that changed after the window read it."""
import numpy as np
import pytest
import torch
from torch import nn

from engine import admission, user_files, memory
from engine.config import Config
from engine.errors import ConfigError
from engine.messages import Failed, RunsBuilt, SetRuns
from engine.worker import Worker

SMALL = Config(seq_len=8, hidden=6, batch=4, device="cpu")


class Results(list):
    send = list.append


def test_each_reason_a_run_set_cannot_be_built_is_one_refusal(tmp_path, monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device: 'cuda'"):
            admission.admit([SMALL, SMALL.replace(device="cuda")])
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 5, 2), np.float32), y=np.zeros((10, 1), np.float32))
    with_data = user_files.with_files(SMALL, data=str(tmp_path / "d.npz"))
    with pytest.raises(ConfigError, match="seq_len: 6 is not allowed; allowed: 5"):
        admission.admit(with_data.replace(seq_len=6))
    monkeypatch.setattr(memory, "available_bytes", lambda: 2e8)
    huge = SMALL.replace(hidden=2048, seq_len=2000, batch=256)
    with pytest.raises(ConfigError, match="need about"):
        admission.admit([huge], kept=memory.WINDOW)
    admission.admit([SMALL], kept=memory.WINDOW)  # (a small one fits)


def test_the_memory_of_the_runs_replaced_counts_as_free(monkeypatch):
    big = SMALL.replace(hidden=512, seq_len=400, batch=64)
    need = memory.need_bytes([big], memory.WINDOW)
    monkeypatch.setattr(memory, "available_bytes", lambda: need)  # just too little while the old run lives
    with pytest.raises(ConfigError):
        admission.admit([big], kept=memory.WINDOW)
    admission.admit([big], kept=memory.WINDOW, replacing=[big.replace(seed=1)])


def test_the_worker_refuses_a_model_file_changed_after_the_window_read_it(tmp_path):
    torch.manual_seed(0)
    model = nn.Module()
    model.rnn, model.head = nn.GRU(2, 6, batch_first=True), nn.Linear(6, 1)
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    config = user_files.with_files(SMALL.replace(task="adding"), model=str(path))
    promises = admission.promised([config])
    assert promises == ((str(path), __import__("engine.user_model").user_model.file_sha256(path)),)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(2)
    torch.save(model.state_dict(), path)  # changed on disk after the window read it
    results = Results()
    worker = Worker(None, results)
    worker.handle(SetRuns((config,), True, promises))
    assert worker.trainers == [] and isinstance(results[0], Failed)
    assert "model: " in results[0].message and "has changed since it was opened" in results[0].message
    worker.handle(SetRuns((config,), True, admission.promised([config])))  # as read now: built
    assert isinstance(results[-1], RunsBuilt) and len(worker.trainers) == 1
