"""engine.api.probe on users' own nn.RNN/LSTM/GRU, against an independent truth.

The truth is a float64 unroll written below from PyTorch's documented equations (not engine.api's unroll,
not torch's cell kernels), whose hidden and cell states carry an added zero perturbation: the gradient of
the loss with respect to that perturbation is dL/dh_t (or dL/dc_t) by definition. Finite differences check
one entry of each array once more, with the module's own forward for dL/dx_t. The probe runs the module as
it is, in float32, so comparisons allow float32 rounding but nothing more.
"""
import copy
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine import api, probes
from engine.lessons import LESSONS

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
INPUT, HIDDEN, CLASSES, BATCH, STEPS = 3, 5, 4, 3, 7
SVG = "{http://www.w3.org/2000/svg}"


def make_rnn(cell, layers=1, batch_first=False, bias=True, seed=0, **kw):
    torch.manual_seed(seed)
    if cell.startswith("rnn"):
        return nn.RNN(INPUT, HIDDEN, layers, nonlinearity=cell[4:], bias=bias, batch_first=batch_first, **kw)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[cell](INPUT, HIDDEN, layers, bias=bias, batch_first=batch_first, **kw)


def make_batch(rnn, target, readout, steps=STEPS, seed=1):
    """x in the module's layout, and y: 'float-last' (N, O), 'int-last' (N,), 'float-every' (N, T, O) or
    'int-every' (N, T), O the readout's width or hidden_size."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, steps, INPUT, generator=gen)
    width = readout.out_features if readout is not None else HIDDEN
    y = {"float-last": lambda: torch.randn(BATCH, width, generator=gen),
         "int-last": lambda: torch.randint(0, width, (BATCH,), generator=gen),
         "float-every": lambda: torch.randn(BATCH, steps, width, generator=gen),
         "int-every": lambda: torch.randint(0, width, (BATCH, steps), generator=gen)}[target]()
    return (x if rnn.batch_first else x.transpose(0, 1).contiguous()), y


# ----------------------------------------------------------------------------- the independent truth

def reference_unroll(rnn, x, dh=None, dc=None):
    """PyTorch's documented equations in float64, step by step. x: (N, T, input) float64. dh/dc: optional
    [layer][t] perturbations added to h_t / c_t. Returns [layer][t] hidden states and the last cell states."""
    m = copy.deepcopy(rnn).double()
    N, T = x.shape[:2]
    inp, states, cells = list(x.unbind(1)), [], []
    for k in range(m.num_layers):
        W_ih, W_hh = getattr(m, f"weight_ih_l{k}").detach(), getattr(m, f"weight_hh_l{k}").detach()
        zeros = torch.zeros(W_ih.shape[0], dtype=torch.float64)
        b_ih = getattr(m, f"bias_ih_l{k}").detach() if m.bias else zeros
        b_hh = getattr(m, f"bias_hh_l{k}").detach() if m.bias else zeros
        h = c = torch.zeros(N, m.hidden_size, dtype=torch.float64)
        hs = []
        for t in range(T):
            if isinstance(m, nn.LSTM):
                i, f, g, o = (inp[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                if dc is not None:
                    c = c + dc[k][t]
                h = torch.sigmoid(o) * torch.tanh(c)
            elif isinstance(m, nn.GRU):
                x_r, x_z, x_n = (inp[t] @ W_ih.T + b_ih).chunk(3, dim=1)
                h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                n = torch.tanh(x_n + r * h_n)
                h = (1 - z) * n + z * h
            else:
                a = inp[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
                h = torch.tanh(a) if m.nonlinearity == "tanh" else torch.relu(a)
            if dh is not None:
                h = h + dh[k][t]
            hs.append(h)
        states.append(hs)
        cells.append(c)
        inp = hs
    return states, cells


def reference_loss(rnn, x, y, readout, dh=None, dc=None):
    """The loss the probe should see, from the reference unroll; x (N, T, input) float64."""
    states, _ = reference_unroll(rnn, x, dh, dc)
    top = torch.stack(states[-1], dim=1)
    if readout is not None:
        top = copy.deepcopy(readout).double()(top)
    every_step = y.dim() == (3 if y.is_floating_point() else 2)
    predictions = top if every_step else top[:, -1]
    if y.is_floating_point():
        return F.mse_loss(predictions, y.double())
    return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), y.reshape(-1))


def batch_first(rnn, x):
    return (x if rnn.batch_first else x.transpose(0, 1)).double()


def reference_probe(rnn, x, y, readout):
    x = batch_first(rnn, x).clone().requires_grad_(True)
    layers, steps = rnn.num_layers, x.shape[1]
    perturbation = lambda: [[torch.zeros(BATCH, HIDDEN, dtype=torch.float64, requires_grad=True)
                             for _ in range(steps)] for _ in range(layers)]
    dh = perturbation()
    dc = perturbation() if isinstance(rnn, nn.LSTM) else None
    loss = reference_loss(rnn, x, y, readout, dh, dc)
    loss.backward()
    norms = lambda d: np.array([[p.grad.norm().item() for p in layer] for layer in d])
    return {"loss": loss.item(), "grad_h": norms(dh), "grad_c": None if dc is None else norms(dc),
            "grad_x": x.grad.norm(dim=(0, 2)).numpy()}


def relative_error(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


def assert_matches_reference(rnn, x, y, readout):
    ref = reference_probe(rnn, x, y, readout)
    got = api.probe(rnn, x, y, readout=readout)
    assert got.grad_h.shape == (rnn.num_layers, x.shape[1 if rnn.batch_first else 0]) and got.grad_x.shape == (STEPS,)
    assert got.loss == pytest.approx(ref["loss"], rel=1e-5)
    np.testing.assert_allclose(got.grad_h, ref["grad_h"], rtol=1e-4, atol=0)
    np.testing.assert_allclose(got.grad_x, ref["grad_x"], rtol=1e-4, atol=0)
    if ref["grad_c"] is None:
        assert got.grad_c is None
    else:
        np.testing.assert_allclose(got.grad_c, ref["grad_c"], rtol=1e-4, atol=0)
    assert got.orders_lost == pytest.approx(probes.orders_lost(ref["grad_h"][-1]), abs=1e-4)  # the top layer's
    return got


# ----------------------------------------------------------------------------- the unroll is the module

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first_", [True, False])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_unroll_reproduces_the_modules_own_forward(cell, layers, batch_first_, bias):
    """Guards against a gate-order or layout slip: every layer's last state and the top layer's outputs
    at every timestep equal what rnn(x) returns."""
    rnn = make_rnn(cell, layers, batch_first_, bias)
    x, _ = make_batch(rnn, "float-last", None)
    with torch.no_grad():
        out, final = rnn(x)
        run = api.unroll(cell, api.layer_weights(rnn), x.transpose(0, 1) if batch_first_ else x)
    top = torch.stack(run.hidden[-1], dim=1 if batch_first_ else 0)
    h_n = final[0] if cell == "lstm" else final
    torch.testing.assert_close(top, out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.stack([hs[-1] for hs in run.hidden]), h_n, rtol=1e-5, atol=1e-6)
    if cell == "lstm":
        torch.testing.assert_close(torch.stack([cs[-1] for cs in run.cell]), final[1], rtol=1e-5, atol=1e-6)


def test_the_reference_reproduces_the_modules_own_forward():
    """The truth itself is checked against PyTorch, once per cell."""
    for cell in CELLS:
        rnn = make_rnn(cell, 2, batch_first=True)
        x, _ = make_batch(rnn, "float-last", None)
        states, _ = reference_unroll(rnn, x.double())
        torch.testing.assert_close(torch.stack(states[-1], dim=1).float(), rnn(x)[0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- gradients against the truth

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first_", [True, False])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_the_reference_for_every_structure(cell, layers, batch_first_, bias):
    rnn = make_rnn(cell, layers, batch_first_, bias)
    readout = nn.Linear(HIDDEN, 2)
    x, y = make_batch(rnn, "float-last", readout)
    assert_matches_reference(rnn, x, y, readout)


@pytest.mark.parametrize("with_readout", [True, False])
@pytest.mark.parametrize("target", ["float-last", "int-last", "float-every", "int-every"])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_the_reference_for_every_target(cell, target, with_readout):
    rnn = make_rnn(cell, 2, batch_first=cell in ("lstm", "rnn_relu"))
    readout = nn.Linear(HIDDEN, CLASSES) if with_readout else None
    x, y = make_batch(rnn, target, readout)
    assert_matches_reference(rnn, x, y, readout)


def test_a_loss_of_ones_own_is_the_one_differentiated():
    """L1 instead of the default MSE: the loss is the reference's L1 and dL/dh_T of the top layer, read at
    every timestep, is its gradient: sign(prediction - target) / (N T H) per entry."""
    rnn = make_rnn("gru", 2)
    x, y = make_batch(rnn, "float-every", None)
    got = api.probe(rnn, x, y, loss=F.l1_loss)
    states, _ = reference_unroll(rnn, batch_first(rnn, x))
    top = torch.stack(states[-1], dim=1)
    assert got.loss == pytest.approx(F.l1_loss(top, y.double()).item(), rel=1e-5)
    last = torch.sign(top[:, -1] - y[:, -1].double()) / y.numel()
    assert got.grad_h[-1, -1] == pytest.approx(last.norm().item(), rel=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_one_entry_of_each_array_matches_finite_differences(cell):
    """In float64, central differences: dL/dx_t through the module's own forward (no unroll of ours at all),
    dL/dh_t and dL/dc_t through the reference unroll's perturbations, each at one (layer, timestep)."""
    rnn = make_rnn(cell, 2, batch_first=True).double()
    readout = nn.Linear(HIDDEN, 2).double()
    x, y = make_batch(rnn, "float-last", readout)
    x, y = x.double(), y.double()
    got = api.probe(rnn, x, y, readout=readout)
    eps, t, k = 1e-6, 2, 0

    def module_loss(xs):
        with torch.no_grad():
            return F.mse_loss(readout(rnn(xs)[0][:, -1]), y).item()

    def entry(i, j, sign, which):
        if which == "x":
            xs = x.clone()
            xs[i, t, j] += sign * eps
            return module_loss(xs)
        d = [[torch.zeros(BATCH, HIDDEN, dtype=torch.float64) for _ in range(STEPS)] for _ in range(2)]
        d[k][t][i, j] = sign * eps
        with torch.no_grad():
            return reference_loss(rnn, x, y, readout, **{"dh" if which == "h" else "dc": d}).item()

    def fd_norm(which, width):
        return math.hypot(*[(entry(i, j, 1, which) - entry(i, j, -1, which)) / (2 * eps)
                            for i in range(BATCH) for j in range(width)])

    assert got.grad_x[t] == pytest.approx(fd_norm("x", INPUT), rel=1e-6)
    assert got.grad_h[k, t] == pytest.approx(fd_norm("h", HIDDEN), rel=1e-6)
    if cell == "lstm":
        assert got.grad_c[k, t] == pytest.approx(fd_norm("c", HIDDEN), rel=1e-6)


# ----------------------------------------------------------------------------- the module is only read

@pytest.mark.parametrize("cell", CELLS)
def test_the_module_is_left_as_it_was(cell):
    rnn = make_rnn(cell, 2, batch_first=True)
    readout = nn.Linear(HIDDEN, CLASSES)
    rnn.train()
    earlier = [torch.full_like(p, 0.5) for p in rnn.parameters()]
    for p, g in zip(rnn.parameters(), earlier):  # a caller mid-training: .grad already holds something
        p.grad = g.clone()
    state = {name: v.clone() for name, v in rnn.state_dict().items()}
    x, y = make_batch(rnn, "int-every", readout)
    x.requires_grad_(True)
    x_before = x.detach().clone()
    api.probe(rnn, x, y, readout=readout)
    assert state.keys() == rnn.state_dict().keys()
    assert all(torch.equal(state[name], v) for name, v in rnn.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(rnn.parameters(), earlier))
    assert all(p.grad is None for p in readout.parameters())
    assert x.grad is None and torch.equal(x.detach(), x_before)
    assert rnn.training
    for module in (rnn, readout):
        assert not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)
        assert all(not p._backward_hooks for p in module.parameters())


def test_probing_inside_no_grad_still_gets_gradients():
    rnn = make_rnn("rnn_tanh")
    x, y = make_batch(rnn, "float-last", None)
    with torch.no_grad():
        got = api.probe(rnn, x, y)
    assert np.all(got.grad_h > 0)


# ----------------------------------------------------------------------------- bad input

def bad_cases():
    rnn = make_rnn("gru", batch_first=True)
    x, y = make_batch(rnn, "float-last", None)
    return [
        ((nn.Linear(3, 5), x, y), {}, TypeError, r"rnn must be a torch.nn.RNN, nn.LSTM or nn.GRU, got Linear"),
        ((make_rnn("lstm", bidirectional=True), x, y), {}, ValueError, r"rnn is bidirectional: not supported by "
                                                                        r"probe\(\).*probe_model"),
        ((make_rnn("lstm", proj_size=2), x, y), {}, ValueError, r"rnn is an LSTM with proj_size=2: projections.*"
                                                                r"probe_model"),
        ((rnn, x[0], y), {}, ValueError, r"x has shape \(7, 3\): expected \(N, T, input_size\) with input_size=3 "
                                         r"\(batch_first=True\); an unbatched"),
        ((rnn, torch.randn(3, 7, 4), y), {}, ValueError, r"x has shape \(3, 7, 4\): expected \(N, T, input_size\)"),
        ((rnn, torch.ones(3, 7, 3, dtype=torch.long), y), {}, ValueError,
         r"x has dtype torch.int64: expected floating"),
        ((rnn, x, torch.randn(2, 5)), {}, ValueError,
         r"y has shape \(2, 5\) \(torch.float32\): expected float \(N, O\) = \(3, 5\) for the last timestep or "
         r"\(N, T, O\) = \(3, 7, 5\) for every timestep \(targets are batch-first"),
        ((rnn, x, torch.randn(3, 6, 5)), {}, ValueError, r"y has shape \(3, 6, 5\)"),
        ((rnn, x, torch.randn(3)), {}, ValueError, r"y has shape \(3,\) \(torch.float32\)"),
        ((rnn, x, torch.zeros(3, 7, 2, dtype=torch.long)), {}, ValueError, r"integer classes \(N,\) = \(3,\)"),
        ((rnn, x, torch.tensor([0, 5, 1])), {}, ValueError, r"y holds class indices from 0 to 5: expected 0 to 4"),
        ((rnn, x, torch.ones(3, dtype=torch.bool)), {}, ValueError, r"y has dtype torch.bool"),
        ((rnn, x, y), {"readout": nn.Linear(4, 2)}, ValueError, r"readout takes in_features=4: expected the "
                                                                 r"module's hidden_size=5"),
        ((rnn, x, y), {"readout": nn.Tanh()}, TypeError, r"readout must be a torch.nn.Linear or None, got Tanh"),
        ((rnn, x, y), {"loss": "mse"}, TypeError, r"loss must be a callable"),
        ((rnn, x, y), {"loss": lambda p, t: (p - t) ** 2}, ValueError, r"loss\(predictions, y\) must return a "
                                                                       r"scalar tensor"),
        ((rnn, nn.utils.rnn.pack_padded_sequence(x, [7, 7, 7], batch_first=True), y), {}, ValueError,
         r"x is a PackedSequence: not supported"),
    ]


@pytest.mark.parametrize("case", range(len(bad_cases())))
def test_bad_input_is_named_with_its_shape_and_what_is_expected(case):
    args, kwargs, error, message = bad_cases()[case]
    with pytest.raises(error, match=message):
        api.probe(*args, **kwargs)


def test_a_loss_of_ones_own_is_not_held_to_the_default_width():
    rnn = make_rnn("rnn_tanh")
    x, _ = make_batch(rnn, "float-last", None)
    got = api.probe(rnn, x, torch.randn(BATCH, 1), loss=lambda p, t: ((p.sum(-1, keepdim=True) - t) ** 2).mean())
    assert np.isfinite(got.loss)


# ----------------------------------------------------------------------------- findings

def findings_by_lesson(result):
    assert all(f.lesson in LESSONS for f in result.findings)
    return {f.lesson: f for f in result.findings}


def scaled_recurrence(rnn, sigma):
    """weight_hh scaled so that its largest singular value is `sigma`."""
    with torch.no_grad():
        for k in range(rnn.num_layers):
            w = getattr(rnn, f"weight_hh_l{k}")
            w.mul_(sigma / torch.linalg.matrix_norm(w, ord=2))
    return rnn


@pytest.mark.parametrize("steps", [30, 100])
def test_small_recurrent_weights_vanish_and_are_named(steps):
    """At 30 steps the gradient at the first is tens of powers of ten weaker; at 100 it has left float32's
    range (as it does for any largest singular value below 0.5 here), so it is measured again in float64
    and still read, tens of orders further down."""
    torch.manual_seed(0)
    rnn = scaled_recurrence(nn.RNN(4, 16), 0.45)
    x = torch.randn(steps, 8, 4, generator=torch.Generator().manual_seed(0))
    result = api.probe(rnn, x, torch.zeros(8, 16))
    found = findings_by_lesson(result)
    assert list(found) == ["fix-lstm", "fix-init"]
    assert 4 < result.orders_lost < math.inf and result.float64_redo == (steps == 100)
    assert found["fix-lstm"].text.startswith(f"Vanishing gradient: at the first of {steps} timesteps the top "
                                             f"layer's gradient is {result.orders_lost:.1f} powers of ten weaker")
    assert ("measured again in float64" in result.summary()) == (steps == 100)
    assert "(layer 1: 0.45)" in found["fix-init"].text
    assert result.sigma_max[0] == pytest.approx(0.45, rel=1e-5)


def test_a_gradient_below_float64s_range_is_named_as_none_at_all():
    """Past float64's own range (1e-308) there is nothing left to redo: the first timestep reads 0."""
    torch.manual_seed(0)
    rnn = scaled_recurrence(nn.RNN(4, 16), 0.05).double()
    x = torch.randn(300, 8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = api.probe(rnn, x, torch.zeros(8, 16, dtype=torch.float64))
    assert result.grad_h[0, 0] == 0 and result.orders_lost == math.inf and not result.float64_redo
    assert findings_by_lesson(result)["fix-lstm"].text.startswith("No gradient reaches the first of 300 timesteps")
    assert "no gradient reaches the first timestep" in result.summary()


def test_a_float32_gradient_far_below_float32s_range_is_read_exactly():
    """The issue's case: a float32 tanh nn.RNN with its recurrent weights halved, 300 timesteps. In float32
    most timesteps read 0; the probe measures again in float64 and every timestep matches the float64
    reference, the first near 1e-147."""
    torch.manual_seed(0)
    rnn = nn.RNN(INPUT, HIDDEN)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.5)
    x = torch.randn(300, BATCH, INPUT, generator=torch.Generator().manual_seed(1))
    y = torch.randn(BATCH, HIDDEN, generator=torch.Generator().manual_seed(2))
    got = api.probe(rnn, x, y)
    x64 = x.transpose(0, 1).double().clone().requires_grad_(True)
    dh = [[torch.zeros(BATCH, HIDDEN, dtype=torch.float64, requires_grad=True) for _ in range(300)]]
    reference_loss(rnn, x64, y, None, dh).backward()
    want = np.array([scaled_norm(p.grad) for p in dh[0]])
    assert got.float64_redo and np.all(got.grad_h > 0) and math.isfinite(got.orders_lost)
    assert want[0] < 1e-100 and relative_error(got.grad_h[0], want) < 1e-4
    assert relative_error(got.grad_x, [scaled_norm(x64.grad[:, t]) for t in range(300)]) < 1e-4


def scaled_norm(t: torch.Tensor) -> float:
    """The 2-norm without squaring past float64's range: entries near 1e-160 square to 0."""
    largest = float(t.abs().max())
    return 0.0 if largest == 0 else largest * float(torch.linalg.vector_norm(t / largest))


def test_a_shut_forget_gate_is_found_and_an_open_one_is_not():
    def lstm(forget_bias):
        torch.manual_seed(0)
        rnn = nn.LSTM(4, 8, num_layers=2)
        with torch.no_grad():
            for k in range(2):
                getattr(rnn, f"bias_ih_l{k}")[8:16] = forget_bias
                getattr(rnn, f"bias_hh_l{k}")[8:16] = 0
        return rnn
    x = torch.randn(30, 4, 4, generator=torch.Generator().manual_seed(0))
    shut = findings_by_lesson(api.probe(lstm(-3.0), x, torch.zeros(4, 8)))
    assert "layer 1: bias -3.00, gate 0.0" in shut["fix-lstm"].text and "layer 2: bias -3.00" in shut["fix-lstm"].text
    opened = api.probe(lstm(2.0), x, torch.zeros(4, 8))
    assert not any("forget gate" in f.text for f in opened.findings)
    assert opened.orders_lost < api.probe(lstm(-3.0), x, torch.zeros(4, 8)).orders_lost - 10


def test_large_recurrent_weights_explode():
    torch.manual_seed(0)
    rnn = nn.RNN(4, 16)
    with torch.no_grad():
        nn.init.orthogonal_(rnn.weight_hh_l0)
        rnn.weight_hh_l0.mul_(3.0)
    result = api.probe(rnn, 0.01 * torch.randn(50, 8, 4, generator=torch.Generator().manual_seed(0)),
                       torch.zeros(8, 16))
    assert result.orders_lost <= -3
    assert findings_by_lesson(result)["fix-clipping"].text.startswith("Exploding gradient")


def test_saturated_tanh_units_are_found():
    torch.manual_seed(0)
    rnn = nn.RNN(4, 16)
    with torch.no_grad():
        rnn.weight_ih_l0.mul_(20.0)
    result = api.probe(rnn, torch.randn(20, 8, 4), torch.zeros(8, 16))
    assert "tanh outputs are saturated" in findings_by_lesson(result)["vanishing-sigmoid"].text


def test_a_healthy_network_has_no_findings():
    torch.manual_seed(0)
    rnn = nn.GRU(4, 16)
    with torch.no_grad():
        rnn.bias_hh_l0[16:32] = 3.0  # update gate mostly keeping its memory
    result = api.probe(rnn, torch.randn(20, 8, 4), torch.zeros(8, 16))
    assert result.findings == () and "no findings" in result.summary()


# ----------------------------------------------------------------------------- the notebook picture

@pytest.mark.parametrize("layers", [1, 3])
def test_the_svg_parses_and_has_one_path_per_layer(layers):
    rnn = make_rnn("lstm", layers)
    x, y = make_batch(rnn, "float-last", None)
    result = api.probe(rnn, x, y)
    root = ET.fromstring(result._repr_svg_())
    paths = root.findall(f"{SVG}path")
    assert [p.get("data-layer") for p in paths] == [str(k + 1) for k in range(layers)]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "timestep (earlier ←)" in texts and "gradient (log scale)" in texts
    assert any(f"{abs(result.orders_lost):.1f} orders of magnitude" in t for t in texts)


def test_the_svg_leaves_gaps_for_zero_and_non_finite_values_and_says_so():
    grad_h = np.array([[0.0, 1e-3, np.nan, 1e-1, 1.0], [np.inf, 1e-2, 1e-1, 0.0, 1.0]])
    result = api.Probe("rnn_tanh", grad_h, None, np.ones(5), 1.0, math.inf, np.ones(2), ())
    root = ET.fromstring(result._repr_svg_())
    paths = root.findall(f"{SVG}path")
    assert len(paths) == 2
    assert [p.get("d").count("M") for p in paths] == [2, 2]  # each line broken where a value is missing
    texts = " ".join(t.text for t in root.iter(f"{SVG}text"))
    assert "2 values exactly 0" in texts and "2 values inf or NaN" in texts
    everything_missing = api.Probe("gru", np.full((1, 4), np.nan), None, np.ones(4), math.nan, math.nan, np.ones(1), ())
    assert len(ET.fromstring(everything_missing._repr_svg_()).findall(f"{SVG}path")) == 1


def test_results_are_read_only_arrays():
    rnn = make_rnn("lstm")
    x, y = make_batch(rnn, "float-last", None)
    result = api.probe(rnn, x, y)
    assert result.grad_h.dtype == np.float64 and result.grad_c.dtype == np.float64
    with pytest.raises(ValueError):
        result.grad_h[0, 0] = 1.0
