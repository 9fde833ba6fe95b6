"""engine.watching: watch() around a plain PyTorch loop changes nothing of training and records what
probe_model reports on each measured step's batch and weights; the run folder reads while it grows, skips
a cut-short last record, and refuses what is not a run, a damaged record and another format version."""
from __future__ import annotations

import copy
import json
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine import run_folder, watching
from engine.api import probe_model
from engine.run_folder import ModuleRecord, Record, RunFormatError, RunReader, RunWriter, load_run
from engine.watching import watch

V, H, T, N = 12, 16, 20, 8


# ----------------------------------------------------------------------------- a small char-level LSTM

class CharLM(nn.Module):
    """Embedding -> LSTM -> Linear-ReLU-Linear, with dropout: what a user's own loop trains."""

    def __init__(self, dropout=0.2):
        super().__init__()
        self.embed = nn.Embedding(V, 8)
        self.rnn = nn.LSTM(8, H, num_layers=2, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, V))

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(self.drop(out))


def batches(count, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        text = torch.randint(0, V, (N, T + 1), generator=g)
        yield text[:, :-1], text[:, 1:]


def train(steps, out=None, every=10, keep=None, dropout=0.2, **kwargs):
    """The user's loop, unchanged; watched when `out` is given. `keep[step]`: weights and batch before it."""
    torch.manual_seed(0)
    model = CharLM(dropout)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    watcher = watch(model, out=out, every=every, **kwargs) if out is not None else None
    for step, (x, y) in enumerate(batches(steps), 1):
        if keep is not None:
            keep[step] = (copy.deepcopy(model.state_dict()), x, y)
        opt.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        loss.backward()
        opt.step()
    if watcher is not None:
        watcher.close()
    return model, watcher


# ----------------------------------------------------------------------------- watching

def test_watching_changes_nothing_of_training(tmp_path):
    plain, _ = train(30)
    watched, watcher = train(30, out=tmp_path / "run", every=10)
    assert watcher.steps == 30
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), name
        assert (a - b).abs().max() <= 1e-4 * a.abs().max(), name


def test_records_are_what_probe_model_says_on_the_weights_and_batch_before_the_update(tmp_path):
    keep = {}
    train(21, out=tmp_path / "run", every=10, keep=keep, dropout=0.0)
    run = load_run(tmp_path / "run")
    assert run.steps.tolist() == [1, 10, 20]
    assert run.ended and not run.cut_short
    assert list(run.modules) == ["rnn"]
    lstm = run.modules["rnn"]
    assert lstm.cell == "lstm" and lstm.grad_h.shape == (3, 2, T) and lstm.grad_c.shape == (3, 2, T)
    assert lstm.grad_x.shape == (3, T) and lstm.grad_h_units.shape == (3, 2, T, H)
    for s, step in enumerate(run.steps):
        weights, x, y = keep[int(step)]
        model = CharLM(0.0)
        model.load_state_dict(weights)
        # by hand, with the user's own loss and targets: the watcher saw neither
        by_hand = probe_model(model, x, y, loss=lambda out, y: F.cross_entropy(out.reshape(-1, V), y.reshape(-1)))
        expected = by_hand.modules["rnn"]
        np.testing.assert_allclose(lstm.grad_h[s], expected.grad_h, rtol=1e-4)
        np.testing.assert_allclose(lstm.grad_c[s], expected.grad_c, rtol=1e-4)
        np.testing.assert_allclose(lstm.grad_x[s], expected.grad_x, rtol=1e-4)
        np.testing.assert_allclose(lstm.grad_h_units[s], expected.grad_h_units, rtol=1e-4, atol=1e-12)
        assert lstm.orders_lost[s] == pytest.approx(expected.orders_lost, rel=1e-4, abs=1e-6)
    assert np.isnan(run.loss).all()  # no loss_of, no log(): not known


def test_loss_from_loss_of_or_log(tmp_path):
    targets = {}
    torch.manual_seed(0)
    model = CharLM(0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    logged = {}
    with watch(model, out=tmp_path / "a", every=2,
               loss_of=lambda out: F.cross_entropy(out.reshape(-1, V), targets["y"].reshape(-1))) as w1:
        for step, (x, y) in enumerate(batches(4), 1):
            targets["y"] = y
            opt.zero_grad()
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            loss.backward()
            logged[step] = loss.item()
            opt.step()
    run = load_run(tmp_path / "a")
    assert run.steps.tolist() == [1, 2, 4] and w1.steps == 4
    np.testing.assert_allclose(run.loss, [logged[1], logged[2], logged[4]], rtol=1e-6)

    with watch(model, out=tmp_path / "b", every=3, units=False) as w2:
        for step, (x, y) in enumerate(batches(3), 1):
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            if step == 3:
                w2.log(loss)  # before its backward pass: still its own step
            loss.backward()
            if step == 1:
                w2.log(loss=loss.item())
                logged[1] = loss.item()
                logged[3] = None
            if step == 3:
                logged[3] = loss.item()
    run = load_run(tmp_path / "b")
    assert run.steps.tolist() == [1, 3]
    np.testing.assert_allclose(run.loss, [logged[1], logged[3]], rtol=1e-6)
    assert run.modules["rnn"].grad_h_units is None


def test_evaluation_passes_and_a_model_without_recurrence(tmp_path):
    torch.manual_seed(0)
    model = CharLM(0.0)
    with watch(model, out=tmp_path / "run", every=1) as w:
        for x, y in batches(2):
            with torch.no_grad():
                model(x)  # an evaluation pass is no step
            F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).backward()
    assert w.steps == 2
    assert load_run(tmp_path / "run").steps.tolist() == [1, 2]
    with pytest.raises(ValueError, match="holds no nn.RNN"):
        watch(nn.Linear(2, 2), out=tmp_path / "other")
    with pytest.raises(ValueError, match="every must be"):
        watch(model, out=tmp_path / "other", every=0)


def test_a_folder_holding_a_run_is_refused_unless_replaced(tmp_path):
    model = CharLM()
    watch(model, out=tmp_path / "run").close()
    with pytest.raises(FileExistsError, match="already holds a run"):
        watch(model, out=tmp_path / "run")
    watch(model, out=tmp_path / "run", replace=True).close()
    assert load_run(tmp_path / "run").steps.tolist() == []
    assert json.loads((tmp_path / "run" / "run.json").read_text())["dropout"] is True


# ----------------------------------------------------------------------------- the folder

def record(step, T=5, loss=0.5):
    grad_h = np.linspace(1.0, 2.0, 2 * T).reshape(2, T) * step
    return Record(step, loss, {"enc.rnn": ModuleRecord(grad_h, None, np.ones(T), None, 1.5, np.array([0.9, 1.1]),
                                                       ("vanishing",))})


SHAPES = {"enc.rnn": {"cell": "gru", "layers": 2, "directions": 1, "hidden": 3, "input_size": 4, "batch_first": True}}


def test_a_reader_reads_only_what_is_new_and_waits_for_a_record_being_written(tmp_path):
    writer = RunWriter(tmp_path, SHAPES, every=5)
    reader = RunReader(tmp_path)
    assert reader.read_new() == []
    writer.append(record(1))
    writer.append(record(5))
    got = reader.read_new()
    assert [r.step for r in got] == [1, 5]
    np.testing.assert_array_equal(got[1].modules["enc.rnn"].grad_h, record(5).modules["enc.rnn"].grad_h)
    assert got[0].modules["enc.rnn"].findings == ("vanishing",)
    size = (tmp_path / "records.bin").stat().st_size
    whole = run_folder.FRAME.size
    writer.append(record(10))
    data = (tmp_path / "records.bin").read_bytes()
    (tmp_path / "records.bin").write_bytes(data[:size + whole + 7])  # half written
    assert reader.read_new() == [] and reader.partial_bytes == whole + 7
    (tmp_path / "records.bin").write_bytes(data)  # the rest arrives
    assert [r.step for r in reader.read_new()] == [10]
    assert not reader.ended
    writer.close()
    assert reader.read_new() == [] and reader.ended


def test_a_cut_short_last_record_is_skipped(tmp_path):
    writer = RunWriter(tmp_path, SHAPES, every=5)
    for step in (1, 5, 10):
        writer.append(record(step, loss=step / 10))
    writer._file.close()  # killed: no closing record
    path = tmp_path / "records.bin"
    path.write_bytes(path.read_bytes()[:-20])
    run = load_run(tmp_path)
    assert run.steps.tolist() == [1, 5] and run.cut_short and not run.ended
    assert run.modules["enc.rnn"].grad_h.shape == (2, 2, 5)
    np.testing.assert_allclose(run.loss, [0.1, 0.5])
    assert run.modules["enc.rnn"].grad_c is None and run.modules["enc.rnn"].cell == "gru"


def test_records_of_other_lengths_are_padded_with_nan(tmp_path):
    writer = RunWriter(tmp_path, SHAPES, every=1)
    writer.append(record(1, T=3))
    writer.append(record(2, T=5))
    writer.close()
    grad_h = load_run(tmp_path).modules["enc.rnn"].grad_h
    assert grad_h.shape == (2, 2, 5) and np.isnan(grad_h[0, :, 3:]).all() and np.isfinite(grad_h[1]).all()


def test_bad_folders_get_one_clear_message(tmp_path):
    with pytest.raises(RunFormatError, match="no such folder"):
        load_run(tmp_path / "missing")
    with pytest.raises(RunFormatError, match=r"not a run folder \(no run.json\)"):
        load_run(tmp_path)
    writer = RunWriter(tmp_path / "run", SHAPES, every=5)
    writer.append(record(1))
    writer.append(record(5))
    writer.close()
    path = tmp_path / "run" / "records.bin"
    data = bytearray(path.read_bytes())
    data[run_folder.FRAME.size + 40] ^= 0xFF  # a flipped byte inside the first record
    path.write_bytes(bytes(data))
    with pytest.raises(RunFormatError, match=r"records.bin \(the record at byte 0\): damaged"):
        load_run(tmp_path / "run")
    path.write_bytes(b"not records at all")
    with pytest.raises(RunFormatError, match="not a record"):
        load_run(tmp_path / "run")
    header = tmp_path / "run" / "run.json"
    header.write_text(json.dumps({**json.loads(header.read_text()), "version": 2}))
    with pytest.raises(RunFormatError, match="run.json: written in run format version 2; this reader reads version 1"):
        load_run(tmp_path / "run")
    header.write_text("{not json")
    with pytest.raises(RunFormatError, match="run.json: cannot be read as JSON"):
        load_run(tmp_path / "run")
    header.write_text(json.dumps({"format": "tensorboard"}))
    with pytest.raises(RunFormatError, match="not a run header"):
        load_run(tmp_path / "run")


def test_no_pickle_anywhere():
    for module in (watching, run_folder):
        source = open(module.__file__).read()
        assert "pickle" not in source.replace("allow_pickle=False", "")


def test_in_a_notebook_a_picture_updates_at_every_measured_step(tmp_path, monkeypatch):
    shown = []

    class Handle:
        def update(self, value):
            shown.append(value)

    display = types.ModuleType("IPython.display")
    display.HTML = lambda text: text
    display.display = lambda value, display_id=False: shown.append(value) or Handle()
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert not watching.in_notebook()  # no IPython kernel here
    torch.manual_seed(0)
    model = CharLM(0.0)
    with watch(model, out=tmp_path / "run", every=2, live=True) as w:
        for x, y in batches(4):
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            loss.backward()
            w.log(loss)
    assert "watching" in shown[0] and len(shown) == 1 + 3  # steps 1, 2, 4
    assert "<svg" in shown[-1] and "rnn, step 4, loss" in shown[-1]
