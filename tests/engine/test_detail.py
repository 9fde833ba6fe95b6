"""engine.detail (per unit, per gate, per sequence, per answer) against an independent float64 reference:
the network rebuilt step by step from PyTorch's own cells' equations, its gradients taken by autograd."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine import api
from engine.config import Config
from engine.detail import DetailBudget, DetailRequest, loss_terms
from engine.model import GATE_NAMES
from engine.trainer import Trainer

TOL = 1e-9  # float64 against float64


def reference_forward(model, cell, x, output_steps):
    """The engine's network (no skip, no attention) rebuilt in float64 from the equations of PyTorch's
    nn.RNNCell / nn.LSTMCell / nn.GRUCell documentation. Returns the predictions at `output_steps` and, per
    layer, the hidden states and gate values (GATE_NAMES order) of every timestep. Each layer's hidden
    state is checked against PyTorch's own cell module on the way."""
    layer_input = list(x.transpose(0, 1).unbind(0))
    hiddens, gates = [], []
    for layer in model.layers:
        w_ih, w_hh, b_ih, b_hh = (getattr(layer, n).detach().double() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        H = w_hh.shape[1]
        torch_cell = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell](w_ih.shape[1], H).double()
        with torch.no_grad():
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (w_ih, w_hh, b_ih, b_hh)):
                getattr(torch_cell, name).copy_(value)
        h = layer_input[0].new_zeros(layer_input[0].shape[0], H)
        c = h
        hs, gs = [], []
        for x_t in layer_input:
            if cell == "rnn":
                h_new = torch.tanh(F.linear(x_t, w_ih, b_ih) + F.linear(h, w_hh, b_hh))
                expected = torch_cell(x_t, h)
                g = []
            elif cell == "lstm":
                i, f, gg, o = (F.linear(x_t, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=1)
                i, f, gg, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg), torch.sigmoid(o)
                expected = torch_cell(x_t, (h, c))[0]
                c = f * c + i * gg
                h_new = o * torch.tanh(c)
                g = [i, f, gg, o]
            else:
                x_r, x_z, x_n = F.linear(x_t, w_ih, b_ih).chunk(3, dim=1)
                h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                n = torch.tanh(x_n + r * h_n)
                expected = torch_cell(x_t, h)
                h_new = (1 - z) * n + z * h
                g = [r, z, n]
            torch.testing.assert_close(h_new, expected, rtol=1e-12, atol=1e-12)
            h = h_new
            hs.append(h)
            gs.append(g)
        hiddens.append(hs)
        gates.append([list(kind) for kind in zip(*gs)] if gs[0] else [])
        layer_input = hs
    w, b = model.readout.weight.detach().double(), model.readout.bias.detach().double()
    predictions = torch.stack([F.linear(hiddens[-1][t], w, b) for t in output_steps], dim=1)
    return predictions, hiddens, gates


def reference_terms(task_name, predictions, target):
    if task_name == "adding":
        return [F.mse_loss(predictions[:, -1], target)]
    steps = predictions.shape[1]
    return [F.cross_entropy(predictions[:, k], target[:, k]) / steps for k in range(steps)]


def reference_detail(trainer, x, target, layer):
    """Per-unit norms over the batch (hidden, then gates) of `layer`, and the (T_out, T) connectivity."""
    x = x.double().requires_grad_(True)
    predictions, hiddens, gates = reference_forward(trainer.model, trainer.config.cell, x, trainer.task.output_steps)
    terms = reference_terms(trainer.config.task, predictions, target.double() if target.is_floating_point() else target)
    states = [hiddens[layer]] + gates[layer]
    flat = [t for kind in states for t in kind]
    grads = torch.autograd.grad(sum(terms), flat, retain_graph=True)
    T = len(hiddens[layer])
    units = np.stack([np.stack([g.norm(dim=0).numpy() for g in grads[k * T:(k + 1) * T]]) for k in range(len(states))])
    rows = [torch.autograd.grad(term, x, retain_graph=True)[0].norm(dim=(0, 2)).numpy() for term in terms]
    return units, np.stack(rows)


def trained_trainer(cell, task, layers=2):
    seq_len = 4 if task == "copy" else 8
    trainer = Trainer(Config(task=task, cell=cell, hidden=6, seq_len=seq_len, batch=4, layers=layers, seed=3))
    trainer.keep_last_batch = True
    for _ in range(3):
        trainer.step()
    return trainer


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task", ["copy", "adding"])
def test_units_gates_and_connectivity_match_the_reference(cell, task):
    trainer = trained_trainer(cell, task)
    step, x, target, params = trainer._last_batch
    weights_after = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for name, p in trainer.model.named_parameters():  # the reference reads the weights the step's gradients were taken at
        p.data.copy_(params[name])
    detail = trainer.detail(DetailRequest(layer=None, sequence=2))
    assert detail.step == step == 3
    assert detail.gate_names == ("hidden",) + GATE_NAMES[cell]
    for layer in range(2):
        units, connectivity = reference_detail(trainer, x, target, layer)
        np.testing.assert_allclose(detail.units[layer], units, rtol=TOL, atol=1e-300)
        np.testing.assert_allclose(detail.connectivity, connectivity, rtol=TOL, atol=1e-300)
    assert detail.connectivity.shape == (len(trainer.task.output_steps), trainer.task.n_steps)
    if task == "copy":  # a causal model: no answer depends on an input after it
        for k, t_out in enumerate(trainer.task.output_steps):
            assert np.all(detail.connectivity[k, t_out + 1:] == 0) and np.all(detail.connectivity[k, :t_out + 1] > 0)
    for name, p in trainer.model.named_parameters():
        p.data.copy_(weights_after[name])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_sequence_is_the_gradient_of_its_own_loss(cell):
    """A sequence's numbers are those of a batch that holds it alone, computed by the reference on that batch."""
    trainer = trained_trainer(cell, "copy")
    _, x, target, params = trainer._last_batch
    for name, p in trainer.model.named_parameters():
        p.data.copy_(params[name])
    detail = trainer.detail(DetailRequest(layer=1, sequence=3))
    assert detail.layers == (1,) and detail.sequence == 3
    units, connectivity = reference_detail(trainer, x[3:4], target[3:4], layer=1)
    np.testing.assert_allclose(detail.sequence_units[0], units, rtol=TOL, atol=1e-300)
    np.testing.assert_allclose(detail.sequence_connectivity, connectivity, rtol=TOL, atol=1e-300)
    for row in range(4):  # the per-sequence profiles, for every sequence
        units, _ = reference_detail(trainer, x[row:row + 1], target[row:row + 1], layer=1)
        np.testing.assert_allclose(detail.sequence_grad_h[row, 1], np.sqrt((units[0] ** 2).sum(-1)), rtol=TOL)
        np.testing.assert_allclose(detail.sequence_grad_x[row], _input_norm(trainer, x[row:row + 1], target[row:row + 1]),
                                   rtol=TOL)
    assert detail.input_labels[0][:5] == "".join("ABCDEFGH"[c] for c in x[0, :5].argmax(-1).tolist())


def _input_norm(trainer, x, target):
    x = x.double().requires_grad_(True)
    predictions, _, _ = reference_forward(trainer.model, trainer.config.cell, x, trainer.task.output_steps)
    terms = reference_terms(trainer.config.task, predictions, target)
    return torch.autograd.grad(sum(terms), x)[0].norm(dim=(0, 2)).numpy()


RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@pytest.mark.parametrize("task, data", [("adding", None), ("copy", None), ("digits", None),
                                        ("data", "lady_susan.txt"), ("data", "sunspots_monthly.csv")])
def test_the_loss_terms_sum_to_the_loss(task, data):
    trainer = Trainer(Config(task=task, hidden=8, seq_len=8, batch=5, data=data and str(RESOURCES / data)))
    x, target = trainer.task.sample(torch.Generator().manual_seed(0))
    out, _ = trainer.model(x, trainer.task.output_steps)
    terms = loss_terms(trainer.task, out, target)
    assert terms.shape == (len(trainer.task.output_steps),)
    torch.testing.assert_close(terms.sum(), trainer.task.loss(out, target), rtol=1e-6, atol=0)


def test_a_detail_is_of_the_last_step_and_leaves_the_model_alone():
    trainer = Trainer(Config(task="copy", hidden=8, seq_len=5, batch=4))
    trainer.step()
    assert trainer.detail() is None  # not kept: keep_last_batch is off by default
    trainer.keep_last_batch = True
    snapshot = trainer.step()
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    detail = trainer.detail(DetailRequest(layer=0, connectivity=False))
    assert detail.connectivity is None and detail.units.shape == (1, 1, snapshot.grad_h.shape[1], 8)
    for name, p in trainer.model.named_parameters():
        assert torch.equal(p, before[name]) and p.grad is None
    # the batch norm of the per-unit norms is the snapshot's (float32) grad_h of that step
    np.testing.assert_allclose(np.sqrt((detail.units[0, 0] ** 2).sum(-1)), snapshot.grad_h[0], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(((detail.sequence_grad_x / 4) ** 2).sum(0)), snapshot.grad_x, rtol=1e-5)


def test_the_budget_keeps_detail_passes_to_their_share():
    budget = DetailBudget(share=0.1, min_interval=0.5)
    assert budget.due(now=0.0)
    budget.spent(0.2, now=0.0)  # a pass of 0.2 s: the next after 1.8 s of training and 0.5 s of time
    budget.trained_for(1.0)
    assert not budget.due(now=10.0)
    budget.trained_for(0.8)
    assert budget.due(now=10.0) and not budget.due(now=0.4)
    budget.spent(5.0, now=20.0)  # a costly pass: the next is far off ...
    assert not budget.due(now=20.6)
    budget.at_once()             # ... unless the user asks for something new
    assert budget.due(now=20.6)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_the_api_reports_units_and_connectivity(mode):
    torch.manual_seed(0)
    rnn = getattr(nn, mode)(3, 5, num_layers=2, batch_first=True).double()
    readout = nn.Linear(5, 4).double()
    x = torch.randn(6, 7, 3, dtype=torch.float64)
    y = torch.randint(0, 4, (6, 7))
    result = api.probe(rnn, x, y, readout=readout)
    assert result.grad_h_units.shape == (2, 7, 5) and result.connectivity.shape == (7, 7)
    np.testing.assert_allclose(np.sqrt((result.grad_h_units ** 2).sum(-1)), result.grad_h, rtol=1e-12)
    # independent: the Jacobian of each timestep's loss term through PyTorch's own module
    def terms(inputs):
        logits = readout(rnn(inputs)[0])
        return torch.stack([F.cross_entropy(logits[:, t], y[:, t]) / 7 for t in range(7)])
    jacobian = torch.autograd.functional.jacobian(terms, x)  # (T_out, N, T, F)
    np.testing.assert_allclose(result.connectivity, jacobian.norm(dim=(1, 3)).numpy(), rtol=1e-10, atol=1e-300)
    last = api.probe(rnn, x, y[:, -1], readout=readout)  # many-to-one: one row, the input gradient itself
    np.testing.assert_allclose(last.connectivity, last.grad_x[None], rtol=1e-12)
    assert api.probe(rnn, x, y, readout=readout, loss=lambda p, t: p.pow(2).mean()).connectivity is None


def test_train_writes_the_details_it_is_asked_for(tmp_path):
    from engine import cli
    out = tmp_path / "run"
    assert cli.main(["train", "--set", "task=copy", "--set", "cell=gru", "--set", "seq_len=6", "--set", "hidden=8",
                     "--steps", "9", "--detail-every", "4", "--out", str(out)]) == 0
    arrays = np.load(out / "metrics.npz")
    assert arrays["detail_steps"].tolist() == [4, 8]
    assert arrays["grad_h_units"].shape == (2, 1, 16, 8) and arrays["gate_units"].shape == (2, 1, 3, 16, 8)
    assert arrays["connectivity"].shape == (2, 5, 16) and arrays["output_steps"].tolist() == [11, 12, 13, 14, 15]
    for row, step in enumerate(arrays["detail_steps"]):  # the units' norms over units are the step's grad_h
        np.testing.assert_allclose(np.sqrt((arrays["grad_h_units"][row] ** 2).sum(-1)), arrays["grad_h"][step - 1],
                                   rtol=1e-5)
    assert "detail_steps" not in np.load(_plain_run(tmp_path))


def _plain_run(tmp_path):
    from engine import cli
    assert cli.main(["train", "--steps", "2", "--out", str(tmp_path / "plain")]) == 0
    return tmp_path / "plain" / "metrics.npz"


def test_train_refuses_details_that_do_not_fit(tmp_path, capsys):
    from engine import cli
    assert cli.main(["train", "--set", "seq_len=1000", "--set", "hidden=512", "--steps", "1000",
                     "--detail-every", "1", "--out", str(tmp_path / "big")]) == 2
    error = capsys.readouterr().err
    assert "--detail-every: 1 is not allowed" in error and "at least 2 for 1000 steps" in error
    assert not (tmp_path / "big").exists()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_large_detail_in_batch_chunks_gives_the_same_figures(cell, monkeypatch):
    """Where float64 states would pass the step's float32 ones, the pass goes in batch chunks as the redo
    does (never more memory than the step): forced here, every figure is the whole batch's."""
    from engine import probes
    trainer = trained_trainer(cell, "copy")
    request = DetailRequest(layer=None, sequence=3)
    whole = trainer.detail(request)
    monkeypatch.setattr(probes, "REDO_WHOLE_BATCH_BYTES", 0)
    assert probes.redo_chunks(4, 1) == 4
    chunked = trainer.detail(request)
    for name in ("units", "connectivity", "sequence_units", "sequence_connectivity", "sequence_grad_h",
                 "sequence_grad_c", "sequence_grad_x"):
        if getattr(whole, name) is None:  # the GRU has no cell state
            assert getattr(chunked, name) is None and cell == "gru" and name == "sequence_grad_c"
            continue
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-12, atol=1e-300)
