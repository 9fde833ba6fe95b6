"""No file or value can make the app read, allocate or print without bound: each case a fault-injection
session found gets one short message naming the file and the problem, and nothing is applied."""
import io
import json
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine import config as cfg
from engine import experiment as ex
from engine import bounded_reading
from engine.config import Config, ConfigError
from engine.errors import shown
from engine.metrics import MetricsLog
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
SHORT = 400  # characters: a message a terminal shows in a line or two


def _log(config, steps=3):
    trainer, log = Trainer(config), MetricsLog()
    for _ in range(steps):
        log.append(trainer.step())
    return log


@pytest.mark.parametrize("name, text", [
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("deep.toml", "seq_len = " + "[" * 100_000 + "]" * 100_000),
    ("deep_tables.json", '{"a":' * 50_000 + "1" + "}" * 50_000),
])
def test_deep_nesting_is_refused_in_one_line(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert "nests" in str(error.value) and name in str(error.value) and len(str(error.value)) < SHORT


@pytest.mark.parametrize("name, text", [("big.json", '{"seed": ' + "9" * 5000 + "}"),
                                        ("big.toml", "seed = " + "9" * 5000)])
def test_a_number_of_thousands_of_digits_is_refused_in_one_line(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert "too long" in str(error.value) and len(str(error.value)) < SHORT


def test_a_long_value_is_quoted_as_an_excerpt(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"cell": "x" * 500_000}))
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    message = str(error.value)
    assert len(message) < SHORT and "500,000 characters" in message and "cell" in message
    with pytest.raises(ConfigError) as error:  # the command line's --set too, and an unknown key
        cfg.apply_overrides(Config(), ["y" * 1_000_000 + "=1"])
    assert len(str(error.value)) < SHORT + 600  # (the allowed keys are listed in full)
    assert len(shown("z" * 10**7)) < 100


def test_an_integer_with_no_decimal_form_is_shown_without_failing():
    sys.set_int_max_str_digits(5000)
    try:
        huge = int("9" * 4999)
    finally:
        sys.set_int_max_str_digits(4300)
    assert shown(huge) == "a number too long to show"


def test_a_file_larger_than_a_config_can_be_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    path.write_bytes(b'{"seed": 1, "pad": "' + b"x" * 2_000_000 + b'"}')
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert "2 MB" in str(error.value) and "at most 1 MB" in str(error.value)


def test_dev_zero_is_read_only_to_the_limit_and_refused(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as error:
            cfg.load("/dev/zero")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "does not end within 1 MB" in str(error.value) and peak < 10_000_000
    result = subprocess.run([sys.executable, "main.py", "train", "--config", "/dev/zero", "--out", str(tmp_path / "o")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "/dev/zero" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- experiment files
def _npz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _header(**changes) -> bytes:
    header = {"format": ex.FORMAT, "version": ex.VERSION, "lesson": None, "configs": [Config().to_dict()],
              "notes": {}, "has_data": False, **changes}
    return _npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def test_an_empty_experiment_file_is_named_as_empty(tmp_path):
    path = tmp_path / "empty.rgl"
    path.write_bytes(b"")
    with pytest.raises(ex.ExperimentError, match="empty.rgl: .*empty"):
        ex.load(path)


def test_an_array_declaring_more_than_its_file_holds_is_refused_before_allocating(tmp_path):
    liar = io.BytesIO()
    np.lib.format.write_array_header_1_0(liar, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    path = tmp_path / "liar.rgl"
    path.write_bytes(_npz_bytes({"experiment.json.npy": _header(has_data=True), "run0/step.npy": liar.getvalue()}))
    assert path.stat().st_size < 2000
    tracemalloc.start()
    try:
        with pytest.raises(ex.ExperimentError, match="liar.rgl: .*damaged"):
            ex.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


@pytest.mark.parametrize("lesson", [["loop"], {"name": "loop"}, 3])
def test_a_lesson_that_is_not_a_name_is_refused_before_anything_is_applied(tmp_path, lesson):
    path = tmp_path / "lesson.rgl"
    path.write_bytes(_npz_bytes({"experiment.json.npy": _header(lesson=lesson)}))
    with pytest.raises(ex.ExperimentError, match="lesson.rgl: lesson .* is not allowed"):
        ex.load(path)


def test_recorded_data_larger_than_memory_allows_is_refused_before_it_is_read(tmp_path, monkeypatch):
    config = Config(seq_len=10, hidden=6)
    path = ex.save(tmp_path / "data.rgl", ex.Experiment([config], logs=[_log(config)]), include_data=True)
    monkeypatch.setattr(ex, "MAX_DATA_BYTES", 1000)  # (a 3 GB zip bomb meets the same check at its size)
    read, original = [], np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: read.append(1) or original(*a, **k))
    with pytest.raises(ex.ExperimentError, match="data.rgl: its recorded data expands to .* at most 1 kB"):
        ex.load(path)
    assert read == [1]  # the header alone: no recorded array was read


def test_a_file_recording_more_steps_than_the_window_ever_saves_is_refused(tmp_path, monkeypatch):
    config = Config(seq_len=10, hidden=6)
    path = ex.save(tmp_path / "long.rgl", ex.Experiment([config], logs=[_log(config, steps=5)]), include_data=True)
    monkeypatch.setattr(ex, "MAX_RECORDED_STEPS", 4)
    with pytest.raises(ex.ExperimentError, match="long.rgl: run 1 records 5 steps; at most 4"):
        ex.load(path)


def test_an_object_array_is_never_read(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    path = tmp_path / "pickle.rgl"
    path.write_bytes(_npz_bytes({"experiment.json.npy": _header(has_data=True),
                                 "run0/step.npy": buffer.getvalue() + b"\x80\x04N."}))
    with pytest.raises(ex.ExperimentError, match="pickle.rgl"):
        ex.load(path)


def test_saving_to_a_device_is_refused_and_writes_nothing_beside_it(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert not Path("/dev/full.rgl").exists()
    with pytest.raises(ex.ExperimentError, match="/dev/full: not a regular file"):
        ex.save("/dev/full", ex.Experiment([Config()]))
    assert not Path("/dev/full.rgl").exists() and not Path("/dev/full.rgl.part").exists()
    folder = tmp_path / "a-folder.rgl"
    folder.mkdir()
    with pytest.raises(ex.ExperimentError, match="not a regular file"):
        ex.save(folder, ex.Experiment([Config()]))


def test_sizes_read_as_a_person_says_them():
    assert [bounded_reading.size_text(n) for n in (12, 12_000, 2_000_000, 3.2e9)] == ["12 bytes", "12 kB", "2 MB", "3.2 GB"]
