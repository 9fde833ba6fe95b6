"""The modern cells (engine/cells.py): every probe measures them as it measures rnn, lstm and gru, and the
numbers agree with plain float64 loops written here from the papers' equations."""
import math
import subprocess
import sys
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import cells, detail, registry
from engine.config import Config
from engine.model import CellLayer, RecurrentNet, Trace, register_cell
from engine.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
NEW = ("lru", "mingru", "indrnn", "ssm")
SMALL = dict(seq_len=30, batch=6, hidden=8)


# ----------------------------------------------------------------------------- float64 references

def _reference_states(cell: str, p: dict, x: torch.Tensor, config: Config):
    """The states h_t (a list, each (batch, ...) and requiring grad through the loop) and outputs (T, batch, H)
    of one layer, from the parameters `p` (float64, names inside the cell) and inputs x (T, batch, input)."""
    T, batch = x.shape[0], x.shape[1]
    H = config.hidden
    states, outputs = [], []
    if cell == "lru":
        lam = torch.exp(-torch.exp(p["nu_log"]) + 1j * torch.exp(p["theta_log"]))
        B = torch.complex(p["B_re"], p["B_im"]) * (torch.exp(p["gamma_log"])[:, None] if "gamma_log" in p else 1)
        C = torch.complex(p["C_re"], p["C_im"])
        h = torch.zeros(batch, H, dtype=torch.complex128)
        for t in range(T):
            h = lam * h + x[t].to(torch.complex128) @ B.t()
            states.append(h)
            outputs.append((h @ C.t()).real + x[t] @ p["D"].t())
    elif cell == "mingru":
        h = torch.zeros(batch, H, dtype=x.dtype)
        for t in range(T):
            k, c = (x[t] @ p["weight_ih"].t() + p["bias_ih"]).split(H, dim=1)
            z = torch.sigmoid(k)
            h = (1 - z) * h + z * torch.where(c >= 0, c + 0.5, torch.sigmoid(c))
            states.append(h)
            outputs.append(h)
    elif cell == "indrnn":
        h = torch.zeros(batch, H, dtype=x.dtype)
        for t in range(T):
            h = torch.relu(x[t] @ p["weight_ih"].t() + p["bias_ih"] + p["weight_hh"] * h)
            states.append(h)
            outputs.append(h)
    else:  # ssm
        N = config.ssm_state
        A = -torch.exp(p["A_log"])
        h = torch.zeros(batch, H, N, dtype=x.dtype)
        for t in range(T):
            u = x[t] @ p["in_proj.weight"].t() + p["in_proj.bias"]
            dt_in, Bt, Ct = (u @ p["x_proj.weight"].t()).split([p["dt_proj.weight"].shape[1], N, N], dim=1)
            delta = F.softplus(dt_in @ p["dt_proj.weight"].t() + p["dt_proj.bias"])
            h = torch.exp(delta[:, :, None] * A) * h + delta[:, :, None] * Bt[:, None, :] * u[:, :, None]
            states.append(h)
            outputs.append(torch.einsum("bhn,bn->bh", h, Ct) + p["D"] * u)
    return states, torch.stack(outputs)


def reference_grad_h(trainer: Trainer, x: torch.Tensor, target: torch.Tensor, params: dict) -> np.ndarray:
    """(layers, T) norms of dL/dh_t from a float64 loop of our own (one layer, readout of the answer steps)."""
    config, task = trainer.config, trainer.task
    p = {name.removeprefix("layers.0.module."): v.double() for name, v in params.items()}
    states, outputs = _reference_states(config.cell, p, x.double().transpose(0, 1).requires_grad_(True), config)
    out = (outputs[task.output_steps] @ p["readout.weight"].t() + p["readout.bias"]).transpose(0, 1)
    loss = task.loss(out, target.double() if target.is_floating_point() else target)
    grads = torch.autograd.grad(loss, states)
    return np.array([[float(torch.linalg.vector_norm(g)) for g in grads]])


@pytest.mark.parametrize("cell", NEW)
def test_each_cells_gradients_agree_with_a_float64_loop_of_our_own(cell):
    config = Config(cell=cell, activation="relu", **SMALL)
    trainer = Trainer(config)
    trainer.keep_last_batch = True
    snap = trainer.step()
    step, x, target, params = trainer._last_batch
    expected = reference_grad_h(trainer, x, target, params)
    np.testing.assert_allclose(snap.grad_h, expected, rtol=2e-4)  # the float32 step
    seen = trainer.detail(detail.DetailRequest(layer=0, connectivity=False))  # the float64 look at the step
    np.testing.assert_allclose(np.linalg.norm(seen.units[0, 0], axis=1), expected[0], rtol=1e-9)


def test_lru_unit_gradients_fall_by_exactly_lambda_per_step_back():
    """Only the last step is read (adding): dL/dh_t = conj(lambda) dL/dh_{t+1} for every unit and sequence,
    so ||dL/dh_t[:, j]|| = |lambda_j|^(T-1-t) ||dL/dh_{T-1}[:, j]||, read from metrics' eigenvalues and the
    detail's grad_h_units."""
    trainer = Trainer(Config(cell="lru", seq_len=60, batch=4, hidden=6, lru_r_min=0.5, lru_r_max=0.99))
    trainer.keep_last_batch = True
    snap = trainer.step()
    units = trainer.detail(detail.DetailRequest(layer=0, connectivity=False)).grad_h_units()[0]  # (T, H)
    modulus = np.abs(snap.eigenvalues[0]).astype(np.float64)  # (H,)
    T = units.shape[0]
    powers = modulus[None, :] ** (T - 1 - np.arange(T))[:, None]
    np.testing.assert_allclose(units, powers * units[-1][None, :], rtol=2e-5)  # eigenvalues are complex64
    kept = units[0] / units[-1]  # each unit by its own |lambda|: some vanish, others keep far more
    assert kept.min() < 1e-12 and kept.max() > 1e-4, kept


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_mingru_parallel_scan_and_sequential_unroll_agree_forward_and_backward(dtype, tolerance):
    torch.manual_seed(0)
    layer = CellLayer("mingru", 3, 8, Config(cell="mingru")).to(dtype)
    x = torch.randn(20, 5, 3, dtype=dtype)
    results = []
    for sequential in (False, True):
        layer.zero_grad()
        trace = Trace()
        out = layer.run(x, trace, stack=True, sequential=sequential)
        loss = (out ** 2).sum() / out.numel() + out[-1].sum()
        nodes = trace.hidden[0]  # scan: b_t, whose gradient is dL/dh_t; unroll: h_t itself
        node_grads = torch.autograd.grad(loss, nodes + list(layer.parameters()))
        results.append((out.detach(), node_grads))
    (out_scan, g_scan), (out_loop, g_loop) = results
    assert (out_scan - out_loop).abs().max() <= tolerance * out_loop.abs().max()
    for a, b in zip(g_scan, g_loop):
        assert (a - b).abs().max() <= tolerance * max(float(b.abs().max()), 1e-30)


def test_the_trainer_uses_the_scan_and_the_detail_the_unroll_with_the_same_gradients():
    trainer = Trainer(Config(cell="mingru", **SMALL))
    trainer.keep_last_batch = True
    snap = trainer.step()
    seen = trainer.detail(detail.DetailRequest(layer=0, connectivity=False))
    np.testing.assert_allclose(snap.grad_h[0], np.linalg.norm(seen.units[0, 0], axis=1), rtol=1e-5)
    assert seen.gate_names == ("hidden", "update", "candidate") and seen.units.shape[1] == 3


def test_indrnn_keeps_its_recurrent_weights_within_the_papers_bound():
    trainer = Trainer(Config(cell="indrnn", activation="relu", lr=0.5, **SMALL))
    u = trainer.model.layers[0].module.weight_hh
    bound = 2 ** (1 / 30)  # |u|^T at most 2 over the task's 30 steps
    for _ in range(3):
        trainer.step()
        assert float(u.detach().abs().max()) <= bound * (1 + 1e-7)
    with torch.no_grad():
        u[0], u[1] = 5.0, -5.0
    trainer.model.after_update()  # what the trainer calls after every update
    assert u[0].item() == pytest.approx(bound) and u[1].item() == pytest.approx(-bound)


def test_eigenvalues_and_step_factors_are_reported_where_each_cell_has_them():
    shapes = {}
    for cell in ("rnn", "lstm") + NEW:
        trainer = Trainer(Config(cell=cell, layers=2, **SMALL))
        trainer.take_eigenvalues = True  # (the tanh RNN's are taken only when asked: tests/engine/test_probes.py)
        snap = trainer.step()
        shapes[cell] = (None if snap.eigenvalues is None else snap.eigenvalues.shape,
                        None if snap.step_factors is None else snap.step_factors.shape)
    assert shapes == {"rnn": ((2, 8), None), "lstm": (None, None), "lru": ((2, 8), None), "indrnn": ((2, 8), None),
                      "mingru": (None, (2, 8, 3)), "ssm": (None, (2, 8, 3))}
    snap = Trainer(Config(cell="ssm", **SMALL)).step()
    low, mid, high = snap.step_factors[0].T
    assert np.all((0 < low) & (low <= mid) & (mid <= high) & (high < 1))


def test_metrics_npz_keeps_complex_eigenvalues(tmp_path):
    from engine.metrics import MetricsLog
    log = MetricsLog()
    trainer = Trainer(Config(cell="lru", **SMALL))
    for _ in range(2):
        log.append(trainer.step())
    log.save_npz(tmp_path / "m.npz")
    arrays = np.load(tmp_path / "m.npz")
    assert arrays["eigenvalues"].shape == (2, 1, 8) and np.iscomplexobj(arrays["eigenvalues"])
    assert np.all(np.abs(arrays["eigenvalues"]) < 1)


def test_lru_keeps_the_gradient_over_1000_steps_where_the_tanh_rnn_loses_20_orders():
    lost = {cell: Trainer(Config(cell=cell, task="adding", seq_len=1000, batch=8)).step().orders_of_magnitude
            for cell in ("lru", "rnn")}
    assert lost["lru"] < 3 and lost["rnn"] > 20, lost


def test_main_train_lru_at_seq_len_1000(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--set", "cell=lru", "--set", "task=adding",
                           "--set", "seq_len=1000", "--steps", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    arrays = np.load(tmp_path / "run" / "metrics.npz")
    g = arrays["grad_h"][0, -1]
    assert math.log10(g[-1] / g[0]) < 3


COPY_RUNS = {"lru": (dict(), 30), "mingru": (dict(lr=0.03), 40), "indrnn": (dict(activation="relu"), 30),
             "ssm": (dict(lr=0.03), 30)}


@pytest.mark.parametrize("cell", NEW)
def test_every_cell_trains_on_the_copy_task_at_seq_len_200(cell):
    """A short run: the loss falls (here mostly towards the task's baseline, ln 8: learning which symbols
    come; remembering them takes longer, below)."""
    settings, steps = COPY_RUNS[cell]
    trainer = Trainer(Config(**{**dict(cell=cell, task="copy", seq_len=200, batch=16, hidden=32, lr=0.01), **settings}))
    snaps = [trainer.step() for _ in range(steps)]
    losses = [s.loss for s in snaps]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.005, losses
    assert all(np.all(s.grad_h[-1] > 0) for s in snaps)  # the gradient reaches the symbols, however small


def test_the_lru_remembers_the_symbols_within_60_steps():
    trainer = Trainer(Config(cell="lru", task="copy", seq_len=200, batch=16, hidden=32, lr=0.01))
    losses = [trainer.step().loss for _ in range(60)]
    assert np.mean(losses[-5:]) < math.log(8) - 0.03, losses[-5:]


def test_a_cell_of_your_own_follows_the_protocol_and_every_probe_reads_it():
    class Leaky(torch.nn.Module):
        """h_t = 0.9 h_{t-1} + tanh(W x_t): the protocol's required parts only."""
        gate_names = ()

        def __init__(self, input_size, hidden):
            super().__init__()
            self.hidden_size = hidden
            self.w = torch.nn.Linear(input_size, hidden)

        def initial_state(self, batch, like):
            return like.new_zeros(batch, self.hidden_size)

        def step(self, x_t, state):
            return 0.9 * state + torch.tanh(self.w(x_t))

        def read(self, states, x):
            return states

    register_cell("leaky", "leaky integrator", "A test's cell.", lambda i, h, config, act: Leaky(i, h))
    try:
        trainer = Trainer(Config(cell="leaky", **SMALL))
        trainer.keep_last_batch = True
        snap = trainer.step()
        g = snap.grad_h[0]
        np.testing.assert_allclose(g[:-1] / g[1:], 0.9, rtol=1e-5)  # adding reads the last step only
        assert trainer.detail().units.shape == (1, 1, 30, 8)
    finally:
        del registry.CELLS["leaky"]


def test_indrnn_takes_relu_unless_the_activation_is_said(tmp_path):
    """IndRNN's paper uses ReLU: `--set cell=indrnn` or a config file naming the cell alone gives relu; an
    activation given with it (before or after, or in the same file) is kept; other cells keep tanh."""
    from engine.config import apply_overrides, load
    assert apply_overrides(Config(), ["cell=indrnn"]).activation == "relu"
    assert apply_overrides(Config(), ["cell=indrnn", "activation=tanh"]).activation == "tanh"
    assert apply_overrides(Config(), ["activation=sigmoid", "cell=indrnn"]).activation == "sigmoid"
    assert apply_overrides(Config(), ["cell=gru"]).activation == "tanh"
    (tmp_path / "alone.toml").write_text('cell = "indrnn"\n')
    (tmp_path / "said.json").write_text('{"cell": "indrnn", "activation": "leaky_relu"}')
    assert load(tmp_path / "alone.toml").activation == "relu"
    assert load(tmp_path / "said.json").activation == "leaky_relu"
