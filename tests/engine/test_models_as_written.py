"""Models written the way practitioners write them, opened with --model: what the lab cannot rebuild
is refused in one line naming the keys and the way that works; what it assumes is said; a head's
classes are the head's, not the data's. The truth: the files' own keys and PyTorch's modules."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import user_model, user_files
from engine import config as cfg
from engine.errors import ConfigError
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]


class CharLM(nn.Module):
    def __init__(self, vocabulary=89, embed=32, hidden=48):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, vocabulary)


class MLPHead(nn.Module):
    def __init__(self, inputs=3, hidden=16, classes=4):
        super().__init__()
        self.rnn = nn.GRU(inputs, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, 12), nn.ReLU(), nn.Linear(12, classes))


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.LSTM(3, 8), nn.LSTM(2, 8)


def _saved(tmp_path, module, name="m.pt") -> Path:
    torch.save(module.state_dict(), tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("module,words", [
    (CharLM(), ["has an Embedding in front of its recurrent module (embed.weight: 89 tokens x 32 features)",
                "engine.api.probe_model(model, inputs, targets)"]),
    (MLPHead(), ["has a head of more than one layer (head.0.weight (12, 16), head.2.weight (4, 12))",
                 "torch.save(model.rnn.state_dict(), path)", "engine.api.watch(model, out=DIR)"]),
    (EncoderDecoder(), ["holds 2 recurrent modules ('decoder', 'encoder'); the lab trains one",
                        "torch.save(model.encoder.state_dict(), path)", "main.py --follow DIR"]),
])
def test_what_the_lab_cannot_rebuild_is_one_line_naming_the_keys_and_the_way(tmp_path, module, words):
    with pytest.raises(ConfigError) as caught:
        user_model.read(_saved(tmp_path, module))
    message = str(caught.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_relu_rnn_is_said_to_be_read_as_tanh_and_how_to_change_it(tmp_path):
    rnn = nn.Module()
    rnn.rnn, rnn.head = nn.RNN(2, 6, nonlinearity="relu", batch_first=True), nn.Linear(6, 1)
    path = _saved(tmp_path, rnn)
    assert "tanh assumed: nn.RNN's nonlinearity is not saved in its weights; --set activation=relu" \
        in user_model.read(path).describe()
    result = subprocess.run([sys.executable, "main.py", "train", "--model", str(path), "--steps", "1",
                             "--set", "task=adding", "--set", "seq_len=10", "--out", str(tmp_path / "o")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "tanh assumed" in result.stderr, result.stderr
    relu = user_files.with_files(cfg.Config(task="adding"), str(path), overrides=["activation=relu"])
    assert "RNN (relu, as set: nn.RNN's nonlinearity is not saved in its weights)" in user_files.describe(relu)[0]


def test_the_classes_come_from_the_head_when_the_data_lacks_one(tmp_path):
    model = nn.Module()
    model.rnn, model.head = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 4)
    path = _saved(tmp_path, model)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.standard_normal((20, 7, 3)).astype(np.float32), y=rng.integers(0, 3, 20))
    config = user_files.with_files(cfg.Config(batch=4), str(path), str(tmp_path / "d.npz"))
    trainer = Trainer(config)
    trainer.keep_last_batch = True
    snapshot = trainer.step()
    assert trainer.task.output_size == 4 and trainer.model.readout.weight.shape == (4, 8)
    _, x, y, _ = trainer._last_batch  # the user's own modules score the same batch the same way
    expected = nn.functional.cross_entropy(model.head(model.rnn(x)[0][:, -1]), y)
    assert snapshot.loss == pytest.approx(float(expected), rel=1e-5)
