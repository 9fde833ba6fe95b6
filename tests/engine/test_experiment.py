"""Experiment files: configs and recorded data round-trip; foreign or damaged files are rejected."""
import json
import zipfile

import numpy as np
import pytest

from engine import experiment as ex
from engine.config import Config
from engine.metrics import MetricsLog
from engine.trainer import Trainer


def _log(config, steps=3):
    trainer, log = Trainer(config), MetricsLog()
    for _ in range(steps):
        log.append(trainer.step())
    return log


def test_configs_round_trip_without_data(tmp_path):
    configs = [Config(seq_len=20, hidden=8), Config(seq_len=20, hidden=8, cell="lstm", spectral_radius=0.9)]
    path = ex.save(tmp_path / "exp", ex.Experiment(configs, lesson="vanishing-tanh"))
    assert path.suffix == ".rgl"
    loaded = ex.load(path)
    assert loaded.configs == configs and loaded.lesson == "vanishing-tanh" and loaded.logs is None


def test_recorded_data_round_trips_array_for_array(tmp_path):
    configs = [Config(seq_len=12, hidden=8, layers=2, cell="lstm"), Config(seq_len=12, hidden=8, attention=True)]
    logs = [_log(c) for c in configs]
    loaded = ex.load(ex.save(tmp_path / "exp.rgl", ex.Experiment(configs, logs=logs), include_data=True))
    for original, restored in zip(logs, loaded.logs):
        a, b = original.to_arrays(), restored.to_arrays()
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_headless_config_json_opens_as_an_experiment(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seq_len": 30, "cell": "gru"}))
    assert ex.open_any(tmp_path / "config.json").configs == [Config(seq_len=30, cell="gru")]


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable experiment file: not a .rgl archive, or damaged"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a .rgl archive, or damaged"),  # numpy: "pickled data"
    (lambda p: np.savez(p.open("wb"), x=np.zeros(3)), "no experiment header"),
    (lambda p: np.savez(p.open("wb"), **{"experiment.json": np.frombuffer(b'{"format": "other"}', np.uint8)}),
     "format tag"),
    (lambda p: np.savez(p.open("wb"), **{"experiment.json": np.frombuffer(json.dumps(
        {"format": ex.FORMAT, "version": 99, "configs": [{}]}).encode(), np.uint8)}), "version 99"),
    (lambda p: np.savez(p.open("wb"), **{"experiment.json": np.frombuffer(json.dumps(
        {"format": ex.FORMAT, "version": 1, "configs": [{"layers": 99}]}).encode(), np.uint8)}), "layers"),
    (lambda p: np.savez(p.open("wb"), **{"experiment.json": np.frombuffer(b"\xff\xfe", np.uint8)}),
     "not a readable experiment"),
])
def test_foreign_or_damaged_files_are_rejected_with_a_reason(tmp_path, make, words):
    path = tmp_path / "bad.rgl"
    make(path)
    with pytest.raises(ex.ExperimentError, match=words) as info:
        ex.load(path)
    assert "pickle" not in str(info.value) and "Error" not in str(info.value)  # the user's words, not numpy's


def test_unknown_file_kind_and_missing_file(tmp_path):
    with pytest.raises(ex.ExperimentError, match="cannot open this kind"):
        ex.open_any(tmp_path / "x.png")
    with pytest.raises(ex.ExperimentError, match="no such file"):
        ex.load(tmp_path / "missing.rgl")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = ex.save(tmp_path / "keep.rgl", ex.Experiment([Config(seq_len=9)]))
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        ex.save(path, ex.Experiment([Config(seq_len=10)]))
    assert path.read_bytes() == before and ex.load(path).configs == [Config(seq_len=9)]
