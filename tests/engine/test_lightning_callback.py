"""The Lightning callback, driven as Lightning drives a callback (a stand-in `lightning` module: Lightning is
not a dependency): it records what watch() records around the same plain loop, and says how to install
Lightning where it is not there."""
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from engine.lightning_callback import lightning_callback
from engine.run_folder import load_run


class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn, self.head = nn.GRU(2, 5, batch_first=True), nn.Linear(5, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


@pytest.fixture
def fake_lightning(monkeypatch):
    package, pytorch = types.ModuleType("lightning"), types.ModuleType("lightning.pytorch")

    class Callback:
        pass
    pytorch.Callback = Callback
    package.pytorch = pytorch
    monkeypatch.setitem(sys.modules, "lightning", package)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", pytorch)
    return Callback


def test_the_callback_records_each_measured_step_with_its_loss(tmp_path, fake_lightning):
    model = Seq()
    callback = lightning_callback(out=tmp_path / "run", every=2)
    assert isinstance(callback, fake_lightning)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    callback.on_fit_start(None, model)
    losses = []
    for step in range(4):  # what Lightning does around training_step
        x, y = torch.randn(3, 6, 2, generator=generator), torch.randn(3, 1, generator=generator)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        callback.on_train_batch_end(None, model, {"loss": loss.detach()}, (x, y), step)
        losses.append(float(loss.detach()))
    callback.on_fit_end(None, model)
    run = load_run(tmp_path / "run")
    assert run.steps.tolist() == [1, 2, 4]
    np.testing.assert_allclose(run.loss, [losses[0], losses[1], losses[3]], rtol=1e-6)
    assert run.modules["rnn"].grad_h.shape == (3, 1, 6) and np.all(run.modules["rnn"].grad_h > 0)
    assert not model._forward_hooks and not model._forward_pre_hooks  # nothing left on the model


def test_without_lightning_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    with pytest.raises(ImportError, match="pip install lightning"):
        lightning_callback(out="unused")
