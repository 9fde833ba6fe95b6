"""A user's own model and data files: read safely, trained exactly as saved, refused clearly.

The truth for an imported model is PyTorch's own module: the lab's network built from the file must
give the module's outputs, and the lab's per-timestep gradients must be engine.api's (itself checked
against an independent float64 reference in test_api.py) on the same batch. Baselines are computed
here from their definitions (the variance of the answers, the entropy of the class frequencies).
"""
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import api, user_model, cli, user_files, user_data
from engine import config as cfg
from engine.errors import ConfigError
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
SUNSPOTS = ROOT / "resources" / "sunspots_monthly.csv"
TEXT = ROOT / "resources" / "lady_susan.txt"


class UserModel(nn.Module):
    """What a practitioner writes: a recurrent module and a head, under names of their own."""

    def __init__(self, cell="lstm", inputs=3, hidden=6, layers=1, outputs=2, bias=True, batch_first=True):
        super().__init__()
        kind = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if kind is None:
            self.encoder = nn.RNN(inputs, hidden, layers, nonlinearity=cell[4:] or "tanh", bias=bias,
                                  batch_first=batch_first)
        else:
            self.encoder = kind(inputs, hidden, layers, bias=bias, batch_first=batch_first)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x):  # x: (N, T, F)
        out, _ = self.encoder(x if self.encoder.batch_first else x.transpose(0, 1))
        out = out if self.encoder.batch_first else out.transpose(0, 1)
        return self.head(out)


def save_npz(path, n=20, steps=9, features=3, y="float-last", outputs=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, features)).astype(np.float32)
    ys = {"float-last": lambda: rng.standard_normal((n, outputs)),
          "int-last": lambda: rng.integers(0, outputs, n),
          "float-every": lambda: rng.standard_normal((n, steps, outputs)),
          "int-every": lambda: rng.integers(0, outputs, (n, steps))}
    np.savez(path, x=x, y=ys[y]())
    return path


def lab(tmp_path, model: nn.Module, data: Path, *overrides) -> Trainer:
    torch.save(model.state_dict(), tmp_path / "m.pt")
    config = user_files.with_files(cfg.Config(batch=4), str(tmp_path / "m.pt"), str(data), list(overrides))
    return Trainer(config)


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("cell,layers,batch_first,bias", [
    ("rnn_tanh", 1, True, True), ("rnn_relu", 2, False, True), ("lstm", 3, True, False),
    ("gru", 2, False, True), ("lstm", 1, False, True), ("gru", 1, True, False)])
def test_the_imported_network_answers_as_the_users_module(tmp_path, cell, layers, batch_first, bias):
    torch.manual_seed(3)
    user = UserModel(cell, layers=layers, bias=bias, batch_first=batch_first)
    trainer = lab(tmp_path, user, save_npz(tmp_path / "d.npz", y="float-every"),
                  *(["activation=relu"] if cell == "rnn_relu" else []))
    assert (trainer.config.cell, trainer.config.hidden, trainer.config.layers) == (cell[:3] if "rnn" in cell else cell, 6, layers)
    x = torch.from_numpy(user_data.cached(tmp_path / "d.npz").x[:5])
    with torch.no_grad():
        theirs = user(x)
        ours, _ = trainer.model(x, list(range(x.shape[1])))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert "head" in trainer.imported_note


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_the_labs_gradients_on_an_imported_model_are_the_apis_on_the_users_module(tmp_path, cell):
    torch.manual_seed(4)
    user = UserModel(cell, layers=2)
    trainer = lab(tmp_path, user, save_npz(tmp_path / "d.npz", y="int-last"))
    batch = trainer.task.sample(torch.Generator().manual_seed(trainer.config.seed + 1))
    snap = trainer.step()  # samples the same first batch from the same seeded generator
    truth = api.probe(user.encoder, batch[0], batch[1], readout=user.head)
    np.testing.assert_allclose(snap.grad_h, truth.grad_h, rtol=1e-4)
    np.testing.assert_allclose(snap.grad_x, truth.grad_x, rtol=1e-4)
    assert snap.loss == pytest.approx(truth.loss, rel=1e-5)


@pytest.mark.parametrize("cell,y", [("lstm", "int-every"), ("gru", "float-every"), ("rnn_tanh", "int-last")])
def test_a_step_of_an_imported_model_seen_closely_is_the_apis_on_the_users_module(tmp_path, cell, y):
    """engine.detail on the lab's copy of a user's model against engine.api on the user's own module, in
    float64 both: each unit's gradient and each answer's dependence on each input."""
    torch.manual_seed(5)
    user = UserModel(cell, layers=2).double()
    trainer = lab(tmp_path, user.float(), save_npz(tmp_path / "d.npz", y=y))
    batch = trainer.task.sample(torch.Generator().manual_seed(trainer.config.seed + 1))
    trainer.keep_last_batch = True
    trainer.step()  # the same first batch, from the same seeded generator
    detail = trainer.detail()
    user.double()
    truth = api.probe(user.encoder, batch[0].double(), batch[1].double() if y.startswith("float") else batch[1],
                      readout=user.head)
    np.testing.assert_allclose(detail.grad_h_units(), truth.grad_h_units, rtol=1e-4)
    np.testing.assert_allclose(detail.connectivity, truth.connectivity, rtol=1e-4, atol=1e-300)


def test_checkpoint_dicts_are_opened_under_each_usual_key(tmp_path):
    user = UserModel("gru")
    for key in user_model.CHECKPOINT_KEYS:
        torch.save({key: user.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}, tmp_path / f"{key}.pt")
        model = user_model.read(tmp_path / f"{key}.pt")
        assert (model.cell, model.input_size, model.hidden, model.layers, model.head) == ("gru", 3, 6, 1, (2, 6))
        assert model.prefix == "encoder."


def test_a_bias_free_module_keeps_its_biases_at_zero_while_training(tmp_path):
    trainer = lab(tmp_path, UserModel("lstm", bias=False), save_npz(tmp_path / "d.npz"))
    for _ in range(3):
        trainer.step()
    for layer in trainer.model.layers:
        assert not layer.bias_ih.requires_grad and float(layer.bias_ih.abs().max()) == 0.0
        assert float(layer.bias_hh.abs().max()) == 0.0


def test_a_head_of_another_width_gives_a_new_readout_and_says_so(tmp_path):
    trainer = lab(tmp_path, UserModel("lstm", outputs=5), save_npz(tmp_path / "d.npz", outputs=2))
    assert trainer.model.readout.weight.shape == (2, 6)
    assert "a new readout" in trainer.imported_note and "5 outputs" in trainer.imported_note


class Trap:
    """An object whose unpickling would run code (it would create a file)."""
    path = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_file_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    trap = Trap()
    trap.path = str(tmp_path / "ran")
    torch.save({"state_dict": UserModel().state_dict(), "hook": trap}, tmp_path / "evil.pt")
    with pytest.raises(ConfigError, match="holds Python objects besides tensors"):
        user_model.read(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()
    with open(tmp_path / "pickled.pt", "wb") as fh:  # a plain pickle, not even a torch file
        pickle.dump(trap, fh)
    with pytest.raises(ConfigError, match="model: .*pickled.pt"):
        user_model.read(tmp_path / "pickled.pt")
    assert not (tmp_path / "ran").exists()


def _bytes(folder, name, data: bytes):
    (folder / name).write_bytes(data)
    return folder / name


def _module_file(tmp_path, name, state):
    torch.save(state, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("make,problem", [
    (lambda d: d / "none.pt", "does not exist"),
    (lambda d: _bytes(d, "empty.pt", b""), "is empty"),
    (lambda d: _bytes(d, "text.pt", b"hello"), "not a file written by torch.save"),
    (lambda d: _module_file(d, "lin.pt", nn.Linear(3, 2).state_dict()), "holds no recurrent weights"),
    (lambda d: _module_file(d, "bi.pt", nn.LSTM(3, 4, bidirectional=True).state_dict()), "bidirectional"),
    (lambda d: _module_file(d, "proj.pt", nn.LSTM(3, 4, proj_size=2).state_dict()), "proj_size"),
    (lambda d: _module_file(d, "two.pt", {**{f"a.{k}": v for k, v in nn.GRU(3, 4).state_dict().items()},
                                          **{f"b.{k}": v for k, v in nn.GRU(4, 4).state_dict().items()}}),
     "holds 2 recurrent modules"),
    (lambda d: _module_file(d, "list.pt", [1, 2]), "not a state_dict of tensors"),
    (lambda d: _module_file(d, "nan.pt", {"weight_ih_l0": torch.full((4, 3), math.nan),
                                          "weight_hh_l0": torch.zeros(4, 4)}), "NaN or infinite"),
])
def test_bad_model_files_are_refused_in_one_line_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        user_model.read(path)
    message = str(caught.value)
    assert message.startswith(f"model: '{path}'") and problem in message and "\n" not in message


def test_a_model_whose_input_size_is_not_the_datas_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"takes 3 inputs per step.*allowed: a model taking 4 inputs per step"):
        lab(tmp_path, UserModel(inputs=3), save_npz(tmp_path / "d.npz", features=4))


def test_changing_the_shape_of_an_imported_model_is_refused(tmp_path):
    torch.save(UserModel(inputs=2).state_dict(), tmp_path / "m.pt")  # the adding task's 2 inputs
    config = user_files.with_files(cfg.Config(), str(tmp_path / "m.pt"))
    with pytest.raises(ConfigError, match="hidden: 12 .*allowed: 6, as read from the model file m.pt"):
        Trainer(config.replace(hidden=12))


# ----------------------------------------------------------------------------- data

@pytest.mark.parametrize("form", ["float-last", "int-last", "float-every", "int-every"])
def test_every_npz_target_form_trains_with_its_loss_and_an_honest_baseline(tmp_path, form):
    path = save_npz(tmp_path / "d.npz", n=30, y=form, outputs=3)
    config = user_files.with_files(cfg.Config(hidden=8, batch=4), data=str(path))
    assert config.task == "data" and config.seq_len == 9
    trainer = Trainer(config)
    snap = trainer.step()
    y = np.load(path)["y"][:27]  # 3 of 30 held out
    if form.startswith("int"):
        p = np.bincount(y.ravel(), minlength=3) / y.size
        assert trainer.task.baseline_loss == pytest.approx(-(p[p > 0] * np.log(p[p > 0])).sum())
    else:
        flat = y.reshape(-1, 3)
        assert trainer.task.baseline_loss == pytest.approx(((flat - flat.mean(0)) ** 2).mean(), rel=1e-5)
    assert trainer.task.output_steps == (list(range(9)) if "every" in form else [8])
    assert math.isfinite(snap.held_out_loss) and snap.grad_h.shape == (1, 9)


def test_the_held_out_loss_is_the_loss_on_the_held_out_sequences(tmp_path):
    path = save_npz(tmp_path / "d.npz", n=40, y="float-last")
    trainer = Trainer(user_files.with_files(cfg.Config(hidden=5, batch=4), data=str(path)))
    data = np.load(path)
    x, y = torch.from_numpy(data["x"][36:]), torch.from_numpy(data["y"][36:]).float()
    with torch.no_grad():
        out, _ = trainer.model(x, [8])
    expected = float(((out[:, -1] - y) ** 2).mean())
    assert trainer.step().held_out_loss == pytest.approx(expected, rel=1e-5)
    assert math.isnan(trainer.step().held_out_loss)  # only every HELD_OUT_EVERY steps


def test_the_csv_series_is_scaled_on_its_training_part_and_windows_predict_the_next_value(tmp_path):
    rows = np.arange(100.0)
    (tmp_path / "s.csv").write_text("day,level,flow\n" + "".join(f"d{k},{k * 2.0},{(k % 7) * 1.0}\n" for k in rows))
    data = user_data.read(tmp_path / "s.csv", target="level")
    assert data.input_size == 2 and data.train_until == 90 and "day skipped" in data.description
    level = rows * 2.0
    scaled = (level - level[:90].mean()) / level[:90].std()
    np.testing.assert_allclose(data.target, scaled, rtol=1e-6)
    task = user_data.DataTask(10, 3, "cpu", data)
    x, y = task._windows(np.array([0, 5]))
    np.testing.assert_allclose(y[:, 0].numpy(), scaled[[10, 15]], rtol=1e-6)
    np.testing.assert_allclose(x[1, :, 0].numpy(), scaled[5:15], rtol=1e-6)
    assert user_data.read(tmp_path / "s.csv").description.count("predicts the next flow") == 1  # default: last


def test_the_shipped_series_and_text_train_from_the_command_line(tmp_path, capsys):
    for name, data in (("series", SUNSPOTS), ("text", TEXT)):
        code = cli.main(["train", "--data", str(data), "--set", "hidden=16", "--set", "seq_len=30",
                         "--steps", "25", "--out", str(tmp_path / name)])
        assert code == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["config"]["task"] == "data" and summary["data"]["sha256"]
        assert math.isfinite(summary["data"]["final_held_out_loss"])
        held = np.load(tmp_path / name / "metrics.npz")["held_out_loss"]
        assert np.isfinite(held[[0, 24]]).all() and np.isnan(held[1:24]).all()
    text = user_data.read(TEXT)
    codes = np.array([text.vocabulary.index(c) for c in TEXT.read_text(encoding="utf-8")])[:text.train_until]
    p = np.bincount(codes) / len(codes)
    assert text.baseline_loss == pytest.approx(-(p[p > 0] * np.log(p[p > 0])).sum())


def test_train_with_model_and_data_writes_the_models_shape(tmp_path, capsys):
    torch.save(UserModel("gru", inputs=3, hidden=7, layers=2).state_dict(), tmp_path / "m.pt")
    save_npz(tmp_path / "d.npz", y="int-every")
    assert cli.main(["train", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "d.npz"),
                     "--steps", "3", "--out", str(tmp_path / "out")]) == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["cell"], config["hidden"], config["layers"], config["seq_len"]) == ("gru", 7, 2, 9)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"]["input_size"] == 3 and summary["model"]["head"] == [2, 7]
    assert "model: GRU, 2 layers of 7 units" in capsys.readouterr().err
    # the written config reruns the same run
    assert cli.main(["train", "--config", str(tmp_path / "out" / "config.json"), "--steps", "3",
                     "--out", str(tmp_path / "again")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "metrics.npz")["loss"],
                                  np.load(tmp_path / "again" / "metrics.npz")["loss"])


def _npz(tmp_path, **arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


def _text(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


X = np.zeros((4, 5, 2), np.float32)


@pytest.mark.parametrize("make,problem", [
    (lambda d: _npz(d, x=X), "has no array named y"),
    (lambda d: _npz(d, x=np.where(np.arange(40).reshape(4, 5, 2) == 13, np.nan, X), y=np.zeros(4)),
     "has NaN at x[1, 1, 1]"),
    (lambda d: _npz(d, x=X, y=np.array([0.0, np.inf, 0, 0])), "has infinite at y[1, 0]"),
    (lambda d: _npz(d, x=X, y=np.array([0, -1, 0, 0])), "has class -1 at y[1]"),
    (lambda d: _npz(d, x=X, y=np.zeros(3)), "float y of shape (4, O) or (4, 5, O)"),
    (lambda d: _npz(d, x=X[:1], y=np.zeros(1)), "at least 2 sequences"),
    (lambda d: _npz(d, x=np.array(["a"] * 40).reshape(4, 5, 2), y=np.zeros(4)), "has x of type <U1"),
    (lambda d: _text(d, "a.npz", "not a zip"), "is not a readable .npz archive"),
    (lambda d: _text(d, "one.csv", "a,b\n"), "has 0 rows of values"),
    (lambda d: _text(d, "row.csv", "a,b\n1,2\n"), "has 1 row of values"),
    (lambda d: _text(d, "e.csv", ""), "is empty"),
    (lambda d: _text(d, "words.csv", "a,b\nx,y\nz,w\n"), "has no column of numbers"),
    (lambda d: _text(d, "ragged.csv", "a,b\n1,2\n3\n4,5\n"), "has 1 cells on line 3"),
    (lambda d: _text(d, "inf.csv", "a\n1\n2\ninf\n3\n"), "has inf in column a on line 4"),
    (lambda d: _text(d, "e.txt", ""), "is empty"),
    (lambda d: _bytes(d, "latin.txt", "caf\xe9 au lait, encore".encode("latin-1")), "is not UTF-8 text (byte 3 is 0xe9)"),
    (lambda d: _text(d, "d.json", "{}"), "has the suffix .json"),
])
def test_bad_data_files_are_refused_in_one_line_naming_the_file_and_the_place(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        user_data.read(path)
    message = str(caught.value)
    assert message.startswith(f"data: '{path}'") and problem in message and "\n" not in message


def test_a_class_beyond_the_models_head_is_refused(tmp_path):
    path = _npz(tmp_path, x=np.zeros((4, 5, 3), np.float32), y=np.array([0, 1, 4, 1]))
    with pytest.raises(ConfigError, match=r"has class 4 at y\[2\], but the model's head has 2 outputs"):
        lab(tmp_path, UserModel(outputs=2), path)


def test_a_missing_target_column_names_the_columns_there_are(tmp_path):
    with pytest.raises(ConfigError, match="target: 'rain' .*allowed: a column of numbers in sunspots_monthly.csv: sunspots"):
        user_files.with_files(cfg.Config(), data=str(SUNSPOTS), overrides=["target=rain"])


def test_a_window_longer_than_the_data_allows_is_refused_with_the_limit(tmp_path):
    config = user_files.with_files(cfg.Config(), data=str(TEXT))
    with pytest.raises(ConfigError, match="seq_len: 5000 .*allowed: 1 to 1678 for lady_susan.txt"):
        Trainer(config.replace(seq_len=5000))


@pytest.mark.parametrize("args,named", [
    (["--model", "nothing.pt"], "nothing.pt' does not exist"),
    (["--data", "nothing.csv"], "nothing.csv' does not exist"),
    (["--data", ""], "--data: '' is empty"),
    (["--set", "task=data"], "task: data is set, but no data file is"),
    (["--set", "target=x"], "target: x is not allowed; allowed: none, or a column name together with a .csv data file"),
])
def test_bad_file_options_exit_2_with_one_line(tmp_path, capsys, args, named):
    assert cli.main(["train", "--steps", "1", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_file_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(user_data.bounded_reading, "memory_available", lambda: 1000)
    path = _text(tmp_path, "big.txt", "x" * 4000)
    with pytest.raises(ConfigError, match="is 4 kB"):
        user_data.read(path)
    torch.save(UserModel().state_dict(), tmp_path / "m.pt")
    monkeypatch.setattr(user_model.bounded_reading, "memory_available", lambda: 1000)
    with pytest.raises(ConfigError, match="more than the 500 bytes this machine can read"):
        user_model.read(tmp_path / "m.pt")


def _badges(trainer):
    from types import SimpleNamespace

    from engine.diagnosis import diagnose
    snap = trainer.step()
    return [b.text for b in diagnose(SimpleNamespace(latest=snap, diverged_at_step=None, loss=[],
                                                     info=SimpleNamespace(config=trainer.config, baseline_loss=1.0,
                                                                          gate_names=trainer.gate_names)))]


def test_badges_speak_about_the_users_model(tmp_path):
    data = save_npz(tmp_path / "d.npz", y="float-last")
    shut = UserModel("lstm")
    with torch.no_grad():
        shut.encoder.bias_ih_l0[6:12] = -3.0  # the forget slice (hidden 6): the gate nearly shut
    assert any(t.startswith("your model: forget gate 0.0") for t in _badges(lab(tmp_path, shut, data)))
    small = UserModel("rnn_tanh")
    with torch.no_grad():
        small.encoder.weight_hh_l0.mul_(0.2 / torch.linalg.matrix_norm(small.encoder.weight_hh_l0, ord=2))
    assert "your model: recurrent weights shrink (σ 0.20)" in _badges(lab(tmp_path, small, data))
    healthy = UserModel("lstm")
    with torch.no_grad():
        healthy.encoder.bias_ih_l0[6:12] = 2.0
    assert not any(t.startswith("your model") for t in _badges(lab(tmp_path, healthy, data)))
