"""Crafted files against every reader: nothing a file declares is used as a path, copies are verified,
sizes are checked by what a reader would allocate, every reader is linear, every refusal is one line.

The truth here is the file system itself (what exists after opening a crafted file), the bytes and
SHA-256 the test computes on its own, and the command line's exit status and stderr.
"""
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import user_model, user_data
from engine import experiment as ex
from engine.config import Config
from engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SMALL = Config(seq_len=10, hidden=6, batch=4, seed=3)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder / "rnn-gradient-lab"


def _series(path: Path, rows=200) -> Path:
    path.write_text("v\n" + "".join(f"{np.sin(k / 5):.4f}\n" for k in range(rows)))
    return path


def _rewrite(path: Path, change) -> None:
    """The .rgl archive at `path` rewritten with `change(members)` applied to {name: bytes}."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(values) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values), allow_pickle=False)
    return buffer.getvalue()


def _header(members) -> dict:
    return json.loads(np.load(__import__("io").BytesIO(members["experiment.json.npy"])).tobytes())


def _set_header(members, header) -> None:
    members["experiment.json.npy"] = _npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def _files_under(folder: Path) -> list:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ----------------------------------------------------------------------------- experiments never write outside

def _crafted_experiment(tmp_path, name: str, used: bool, payload=b"v\n1\n2\n3\n") -> Path:
    """An experiment whose data entry declares `name` as its SHA-256, carrying `payload` under it."""
    original = str(tmp_path / "gone.csv")
    config = SMALL.replace(data=original, task="data") if used else SMALL
    header = {"format": ex.FORMAT, "version": ex.VERSION, "lesson": None, "configs": [config.to_dict()],
              "notes": {}, "has_data": False,
              "files": {original: {"kind": "data", "sha256": name, "included": True}}}
    path = tmp_path / "crafted.rgl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("experiment.json.npy", _npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)))
        archive.writestr(f"data/{name}.npy", _npy(np.frombuffer(payload, dtype=np.uint8)))
    return path


def _pad(text: str) -> str:
    return (text + "/." * 40)[:64] if "/" in text else (text + "x" * 64)[:64]


@pytest.mark.parametrize("name", [
    pytest.param("../../../../{tmp}/evil", id="traversing"),
    pytest.param("{tmp}/evil/./././", id="absolute"),
    pytest.param("{tmp}/noext", id="no-suffix"),
])
def test_a_crafted_name_is_refused_and_nothing_is_written_anywhere(tmp_path, cache, name):
    target = tmp_path / "outside"
    target.mkdir()
    declared = _pad(name.format(tmp=str(target).lstrip("/") if name.startswith("..") else str(target)))
    assert len(declared) == 64
    path = _crafted_experiment(tmp_path, declared, used=True)
    with pytest.raises(ex.ExperimentError, match="crafted.rgl: not a readable experiment file: its entry for"):
        ex.load(path)
    assert _files_under(target) == [] and _files_under(cache) == []
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("crafted.rgl",)]
    assert written == []


def test_an_unused_entry_is_not_unpacked_and_the_experiment_opens(tmp_path, cache):
    payload = b"v\n1\n2\n"
    path = _crafted_experiment(tmp_path, hashlib.sha256(payload).hexdigest(), used=False, payload=payload)
    opened = ex.load(path)
    assert opened.configs == [SMALL] and "files" not in opened.notes
    assert _files_under(cache) == []


def test_a_used_copy_is_written_under_the_sha256_the_lab_computes_inside_the_cache(tmp_path, cache):
    data = _series(tmp_path / "series.csv")
    saved = ex.save(tmp_path / "carried.rgl", ex.Experiment([SMALL.replace(data=str(data), task="data")]),
                    include_data=True)
    expected = hashlib.sha256(data.read_bytes()).hexdigest()
    data.unlink()
    opened = ex.load(saved)
    assert opened.configs[0].data == str((cache / "data" / f"{expected}.csv").resolve())
    assert hashlib.sha256(Path(opened.configs[0].data).read_bytes()).hexdigest() == expected
    assert _files_under(cache) == [opened.configs[0].data]


def test_a_changed_data_copy_is_refused_naming_the_experiment_and_the_file_and_writes_nothing(tmp_path, cache):
    data = _series(tmp_path / "series.csv")
    saved = ex.save(tmp_path / "carried.rgl", ex.Experiment([SMALL.replace(data=str(data), task="data")]),
                    include_data=True)
    data.unlink()

    def change(members):
        (name,) = [n for n in members if n.startswith("data/")]
        members[name] = _npy(np.frombuffer(b"v\n9\n9\n9\n" * 30, dtype=np.uint8))
    _rewrite(saved, change)
    with pytest.raises(ex.ExperimentError, match=r"carried.rgl: its copy of series.csv does not match the SHA-256"):
        ex.load(saved)
    assert _files_under(cache) == []


def _user_model_file(path: Path) -> Path:
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.out = nn.GRU(2, 6, batch_first=True), nn.Linear(6, 1)
    torch.manual_seed(0)
    torch.save(Model().state_dict(), path)
    return path


def test_a_changed_model_copy_is_refused_and_an_unverifiable_one_too(tmp_path, cache):
    model = _user_model_file(tmp_path / "m.pt")
    config = SMALL.replace(model=str(model), cell="gru", hidden=6, layers=1, task="adding")
    saved = ex.save(tmp_path / "with-model.rgl", ex.Experiment([config]))
    model.unlink()
    assert ex.load(saved).configs[0].model.startswith(str(cache))  # as saved: used
    for p in cache.rglob("*"):
        p.unlink() if p.is_file() else None

    def change(members):
        name = next(n for n in members if n.startswith("models/") and "weight_hh" in n)
        values = np.load(__import__("io").BytesIO(members[name]))
        members[name] = _npy(values + 1.0)
    _rewrite(saved, change)
    with pytest.raises(ex.ExperimentError, match="its copy of m.pt does not match the SHA-256"):
        ex.load(saved)
    assert _files_under(cache) == []

    def forget_the_hash(members):
        header = _header(members)
        for entry in header["files"].values():
            entry.pop("weights_sha256")
        _set_header(members, header)
    _rewrite(saved, forget_the_hash)
    with pytest.raises(ex.ExperimentError, match="carries no SHA-256 of its weights"):
        ex.load(saved)
    assert _files_under(cache) == []


# ----------------------------------------------------------------------------- checkpoints: sizes before allocating

def test_an_inflating_checkpoint_is_refused_before_torch_reads_it(tmp_path, monkeypatch):
    torch.save({"rnn.weight_hh_l0": torch.zeros(4, 4), "big": torch.zeros(25_000_000)}, tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as plain, \
            zipfile.ZipFile(tmp_path / "bomb.pt", "w", compression=zipfile.ZIP_DEFLATED) as bomb:
        for info in plain.infolist():
            bomb.writestr(info.filename, plain.read(info))
    assert (tmp_path / "bomb.pt").stat().st_size < 1_000_000  # 100 MB of storage in under 1 MB on disk
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran on an inflating file"))
    with pytest.raises(ConfigError, match=r"bomb.pt'.*compressed [\d,]+ times .* torch.save stores tensors uncompressed"):
        user_model.read(tmp_path / "bomb.pt")


def test_a_checkpoint_declaring_more_than_memory_allows_is_refused_before_reading(tmp_path, monkeypatch):
    torch.save({"rnn.weight_hh_l0": torch.zeros(400, 100)}, tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as plain, \
            zipfile.ZipFile(tmp_path / "m.pt", "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for info in plain.infolist():
            packed.writestr(info.filename, plain.read(info))
    assert (tmp_path / "m.pt").stat().st_size < 10_000  # small on disk, 160 kB inflated
    monkeypatch.setattr(user_model.bounded_reading, "memory_available", lambda: 200_000)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran"))
    with pytest.raises(ConfigError, match=r"unpacks to 1\d\d kB, more than the 100 kB"):
        user_model.read(tmp_path / "m.pt")


def test_a_checkpoint_of_too_many_tensors_is_refused_from_its_directory(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "many.pt", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        for k in range(user_model.MAX_TENSORS + 1):
            archive.writestr(f"archive/data/{k}", b"")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran"))
    with pytest.raises(ConfigError, match=r"holds 20,001 tensors; at most 20,000 are read"):
        user_model.read(tmp_path / "many.pt")


def test_torchscript_and_the_old_format_are_named_with_the_way_to_save_weights(tmp_path):
    torch.jit.save(torch.jit.script(nn.GRU(2, 3)), tmp_path / "scripted.pt")
    with pytest.raises(ConfigError, match=r"is a TorchScript file .*torch.save\(torch.jit.load\(path\).state_dict\(\)"):
        user_model.read(tmp_path / "scripted.pt")
    torch.save(nn.GRU(2, 3).state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ConfigError, match="format from before version 1.6"):
        user_model.read(tmp_path / "old.pt")


@pytest.mark.parametrize("shape", [(16, 0), (0, 0)])
def test_a_recurrent_weight_with_no_units_is_one_line(tmp_path, shape):
    torch.save({"weight_ih_l0": torch.zeros(16, 2), "weight_hh_l0": torch.zeros(*shape)}, tmp_path / "empty.pt")
    with pytest.raises(ConfigError, match=r"weight_hh_l0 of shape \(\d+, 0\): no hidden units"):
        user_model.read(tmp_path / "empty.pt")


def test_a_head_that_is_dropped_says_why(tmp_path):
    state = nn.GRU(2, 4).state_dict()
    state["head.weight"] = torch.full((1, 4), float("inf"))
    state["head.bias"] = torch.zeros(1)
    torch.save(state, tmp_path / "inf.pt")
    described = user_model.read(tmp_path / "inf.pt").describe()
    assert "no head (a new readout: head.weight or head.bias has NaN or infinite values)" in described


# ----------------------------------------------------------------------------- data: linear, named, one line

def test_a_csv_of_a_million_columns_is_answered_at_once(tmp_path):
    (tmp_path / "wide.csv").write_text("\n".join(",".join(["1"] * 10**6) for _ in range(3)))
    with pytest.raises(ConfigError, match="has 1,000,000 columns; allowed: a time series of at most 10,000 columns"):
        user_data.read(tmp_path / "wide.csv")


def test_a_wide_csv_within_the_bound_is_read_in_linear_time(tmp_path):
    """9,000 columns x 30 rows: the old quadratic membership test took minutes on this."""
    rows = [",".join(f"c{k}" for k in range(9000))] + [",".join(str(r + k) for k in range(9000)) for r in range(30)]
    (tmp_path / "wide.csv").write_text("\n".join(rows))
    data = user_data.read(tmp_path / "wide.csv")
    assert data.input_size == 9000 and "predicts the next c8999" in data.description


@pytest.mark.parametrize("cell,shown", [("", "an empty cell"), ("1\x002", repr("1\x002")), ("n/a", "'n/a'")])
def test_a_column_of_numbers_with_one_bad_cell_is_named_by_its_line(tmp_path, cell, shown):
    rows = ["date,price"] + [f"d{k},{k}.5" for k in range(60)]
    rows[41] = f"d40,{cell}"
    (tmp_path / "gap.csv").write_text("\n".join(rows))
    with pytest.raises(ConfigError) as caught:
        user_data.read(tmp_path / "gap.csv")
    message = str(caught.value)
    assert f"has {shown} on line 42 in column price, whose other cells are numbers (59 of 60)" in message
    assert "\n" not in message


def test_the_predicted_column_is_said_when_it_is_not_the_last(tmp_path):
    (tmp_path / "t.csv").write_text("\n".join(["price,note"] + [f"{k}.5,x{k}" for k in range(60)]))
    description = user_data.read(tmp_path / "t.csv").description
    assert "predicts the next price (the last column of numbers; set target to choose another)" in description
    assert "(note skipped: not numbers)" in description


def test_a_csv_field_past_the_limit_and_an_npz_without_targets_are_one_line(tmp_path):
    (tmp_path / "long.csv").write_text("a\n" + "1" * 200_000 + "\n1\n")
    with pytest.raises(ConfigError, match=r"cannot be read as CSV on line 2 \(field larger than field limit"):
        user_data.read(tmp_path / "long.csv")
    np.savez(tmp_path / "noy.npz", x=np.zeros((5, 4, 2), np.float32), y=np.zeros((5, 0), np.float32))
    with pytest.raises(ConfigError, match=r"has y of shape \(5, 0\), which holds no targets"):
        user_data.read(tmp_path / "noy.npz")


# ----------------------------------------------------------------------------- the command line: one line, exit 2

def _train(tmp_path, *args):
    return subprocess.run([sys.executable, "main.py", "train", *args, "--steps", "1", "--out", str(tmp_path / "o")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})


def test_the_three_tracebacks_are_one_line_and_exit_2(tmp_path):
    torch.save({"weight_ih_l0": torch.zeros(16, 2), "weight_hh_l0": torch.zeros(16, 0)}, tmp_path / "zero.pt")
    (tmp_path / "long.csv").write_text("a\n" + "1" * 200_000 + "\n1\n")
    np.savez(tmp_path / "noy.npz", x=np.zeros((5, 4, 2), np.float32), y=np.zeros((5, 0), np.float32))
    for option, name in (("--model", "zero.pt"), ("--data", "long.csv"), ("--data", "noy.npz")):
        result = _train(tmp_path, option, str(tmp_path / name))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert name in result.stderr


def test_train_takes_a_run_of_an_experiment_file(tmp_path):
    runs = [SMALL, SMALL.replace(cell="gru", hidden=5)]
    saved = ex.save(tmp_path / "two.rgl", ex.Experiment(runs, lesson=None))
    result = _train(tmp_path, "--config", str(saved), "--run", "2")
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "o" / "config.json").read_text())
    assert (written["cell"], written["hidden"]) == ("gru", 5)
    result = _train(tmp_path, "--config", str(saved), "--run", "3")
    assert result.returncode == 2 and "--run: 3" in result.stderr and "1 to 2" in result.stderr


def test_a_crafted_experiment_on_the_command_line_is_refused_and_writes_nothing(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    path = _crafted_experiment(tmp_path, _pad(str(target) + "/x"), used=True)
    result = _train(tmp_path, "--config", str(path))
    assert result.returncode == 2 and "crafted.rgl" in result.stderr and "Traceback" not in result.stderr
    assert _files_under(target) == [] and _files_under(tmp_path / "cache") == []


# ----------------------------------------------------------------------------- what already held: truncations

def test_every_truncation_of_valid_files_is_refused_in_one_line(tmp_path, cache):
    """Each reader on 40 prefixes of a valid file of its kind: a one-line refusal, never another exception."""
    model = _user_model_file(tmp_path / "m.pt")
    data = userdata_npz = tmp_path / "d.npz"
    np.savez(userdata_npz, x=np.zeros((6, 5, 2), np.float32), y=np.ones((6, 1), np.float32))
    saved = ex.save(tmp_path / "e.rgl", ex.Experiment([SMALL]))
    readers = [(model, user_model.read, ConfigError), (data, user_data.read, ConfigError), (saved, ex.load, ex.ExperimentError)]
    for source, read, refusal in readers:
        whole = source.read_bytes()
        for cut in np.linspace(0, len(whole) - 1, 40).astype(int):
            piece = tmp_path / f"cut{source.suffix}"
            piece.write_bytes(whole[:cut])
            with pytest.raises(refusal) as caught:
                read(piece)
            assert "\n" not in str(caught.value) and piece.name in str(caught.value)
