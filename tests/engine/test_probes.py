"""Every probe in a Snapshot against an independent truth.

The truth comes from a separate float64 unroll written out below (not engine.model), whose hidden and cell
states carry an added zero perturbation: the gradient of the loss with respect to that perturbation is
dL/dh_t (or dL/dc_t) by definition, and is checked once more by central finite differences. The trainer
runs in float32, so comparisons allow float32 rounding but nothing more.
"""
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from engine import probes
from engine.config import Config
from engine.probes import HIST_EDGES, histogram_timesteps
from engine.trainer import Trainer

ACTS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda a: a, "sigmoid": torch.sigmoid,
        "leaky_relu": lambda a: torch.nn.functional.leaky_relu(a, 0.01)}


def upcoming_batch(trainer):
    """The batch the trainer's next step() will draw, without advancing its generator."""
    gen = torch.Generator()
    gen.set_state(trainer.data_gen.get_state())
    x, target = trainer.task.sample(gen)
    return x.double(), target.double() if target.is_floating_point() else target


def frozen_weights(trainer):
    """A float64 copy of the model as it is now (before the next update)."""
    return copy.deepcopy(trainer.model).double()


def unroll(model, config, task, x, target, dh=None, dc=None):
    """Textbook forward pass of the stacked net, written independently of engine.model.

    dh/dc: optional [layer][t] perturbations added to h_t / c_t. Returns loss and the per-layer records.
    """
    T, H = x.shape[1], config.hidden
    inp = list(x.unbind(1))
    records = []
    for k, layer in enumerate(model.layers):
        W_ih, W_hh, b_ih, b_hh = layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh
        h = x.new_zeros(x.shape[0], H)
        c = h
        hs, pre, gates = [], [], []
        for t in range(T):
            if config.cell == "rnn":
                a = inp[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
                pre.append(a)
                h = ACTS[config.activation](a)
            elif config.cell == "lstm":
                i, f, g, o = (inp[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
                pre.append(g)
                gates.append(torch.stack([torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)]))
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                if dc is not None:
                    c = c + dc[k][t]
                h = torch.sigmoid(o) * torch.tanh(c)
            else:  # gru, PyTorch's equations
                xr, xz, xn = (inp[t] @ W_ih.T + b_ih).chunk(3, dim=1)
                hr, hz, hn = (h @ W_hh.T + b_hh).chunk(3, dim=1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n_pre = xn + r * hn
                pre.append(n_pre)
                gates.append(torch.stack([r, z, torch.tanh(n_pre)]))
                h = (1 - z) * torch.tanh(n_pre) + z * h
            if dh is not None:
                h = h + dh[k][t]
            hs.append(h)
        records.append({"pre": torch.stack(pre), "gates": torch.stack(gates) if gates else None})
        inp = hs
    out = model.readout(torch.stack([inp[t] for t in task.output_steps], dim=1))
    if config.task == "adding":
        loss = ((out[:, -1, 0] - target[:, 0]) ** 2).mean()
    else:
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1))
    return loss, records


def zeros_like_states(config, batch, T):
    return [[torch.zeros(batch, config.hidden, dtype=torch.float64, requires_grad=True) for _ in range(T)]
            for _ in range(config.layers)]


def reference_probes(trainer):
    """All gradient probes of the next step, computed with plain loss.backward() on leaf perturbations."""
    config, task = trainer.config, trainer.task
    model = frozen_weights(trainer)
    x, target = upcoming_batch(trainer)
    x.requires_grad_(True)
    T = task.n_steps
    dh = zeros_like_states(config, x.shape[0], T)
    dc = zeros_like_states(config, x.shape[0], T) if config.cell == "lstm" else None
    loss, records = unroll(model, config, task, x, target, dh, dc)
    loss.backward()
    params = list(model.parameters())
    return {
        "loss": loss.item(),
        "grad_h": np.array([[d.grad.norm().item() for d in layer] for layer in dh]),
        "grad_c": None if dc is None else np.array([[d.grad.norm().item() for d in layer] for layer in dc]),
        "grad_x": x.grad.norm(dim=(0, 2)).numpy(),
        # clip_grad_norm_ with an infinite threshold changes nothing and returns the total norm
        "grad_norm": torch.nn.utils.clip_grad_norm_(params, math.inf).item(),
        "grad_norm_layer": np.array([torch.nn.utils.clip_grad_norm_(list(layer.parameters()), math.inf).item()
                                     for layer in model.layers]),
        "sigma_max": np.array([torch.linalg.svdvals(layer.weight_hh.detach())[0].item()
                               for layer in model.layers]),
        "records": records,
    }


CONFIGS = {
    "rnn-tanh-2layers": Config(seq_len=25, hidden=12, batch=6, layers=2),
    "rnn-relu": Config(seq_len=25, hidden=12, batch=6, activation="relu", init="he"),
    "rnn-sigmoid": Config(seq_len=12, hidden=12, batch=6, activation="sigmoid"),
    "lstm-2layers": Config(seq_len=20, hidden=10, batch=5, layers=2, cell="lstm"),
    "gru-2layers": Config(seq_len=20, hidden=10, batch=5, layers=2, cell="gru"),
    "copy-lstm": Config(task="copy", seq_len=6, hidden=10, batch=5, cell="lstm"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_gradient_probes_match_an_independent_backward_pass(name):
    trainer = Trainer(CONFIGS[name])
    ref = reference_probes(trainer)
    snap = trainer.step()
    L, T = trainer.config.layers, trainer.task.n_steps
    assert snap.loss == pytest.approx(ref["loss"], rel=1e-5)
    assert snap.grad_h.shape == (L, T) and snap.grad_x.shape == (T,)
    np.testing.assert_allclose(snap.grad_h, ref["grad_h"], rtol=2e-4)
    np.testing.assert_allclose(snap.grad_x, ref["grad_x"], rtol=2e-4, atol=1e-12)
    if ref["grad_c"] is None:
        assert snap.grad_c is None
    else:
        assert snap.grad_c.shape == (L, T)
        np.testing.assert_allclose(snap.grad_c, ref["grad_c"], rtol=2e-4)
    assert snap.grad_norm == pytest.approx(ref["grad_norm"], rel=1e-4)
    np.testing.assert_allclose(snap.grad_norm_layer, ref["grad_norm_layer"], rtol=1e-4)
    np.testing.assert_allclose(snap.sigma_max, ref["sigma_max"], rtol=1e-5)
    # without clipping nothing changes
    assert not snap.clipped and snap.grad_norm_clipped == snap.grad_norm
    np.testing.assert_array_equal(snap.grad_norm_layer_clipped, snap.grad_norm_layer)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_state_and_input_gradients_match_finite_differences(cell):
    """dL/dh_t, dL/dc_t and dL/dx_t by central differences, element by element: no autograd at all."""
    config = Config(seq_len=5, hidden=3, batch=2, layers=2, cell=cell)
    trainer = Trainer(config)
    model = frozen_weights(trainer)
    x, target = upcoming_batch(trainer)
    T, B, H, eps = 5, 2, 3, 1e-6

    def loss_with(which, k=0, t=0, b=0, j=0, sign=0.0):
        xs = x.clone()
        dh = [[torch.zeros(B, H, dtype=torch.float64) for _ in range(T)] for _ in range(2)]
        dc = [[torch.zeros(B, H, dtype=torch.float64) for _ in range(T)] for _ in range(2)]
        if which == "h":
            dh[k][t][b, j] = sign * eps
        elif which == "c":
            dc[k][t][b, j] = sign * eps
        else:
            xs[b, t, j] += sign * eps
        with torch.no_grad():
            return unroll(model, config, trainer.task, xs, target, dh, dc if cell == "lstm" else None)[0].item()

    def fd_norm(which, k, t, width):
        g = [(loss_with(which, k, t, b, j, +1) - loss_with(which, k, t, b, j, -1)) / (2 * eps)
             for b in range(B) for j in range(width)]
        return float(np.linalg.norm(g))

    snap = trainer.step()
    fd_h = np.array([[fd_norm("h", k, t, H) for t in range(T)] for k in range(2)])
    fd_x = np.array([fd_norm("x", 0, t, trainer.task.input_size) for t in range(T)])
    np.testing.assert_allclose(snap.grad_h, fd_h, rtol=1e-4)
    np.testing.assert_allclose(snap.grad_x, fd_x, rtol=1e-4)
    if cell == "lstm":
        fd_c = np.array([[fd_norm("c", k, t, H) for t in range(T)] for k in range(2)])
        np.testing.assert_allclose(snap.grad_c, fd_c, rtol=1e-4)


def test_probes_are_taken_on_the_weights_before_each_update():
    lr = 0.5
    trainer = Trainer(Config(seq_len=15, hidden=12, batch=6, optimizer="sgd", lr=lr))
    for _ in range(3):
        ref = reference_probes(trainer)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        snap = trainer.step()
        after = trainer.model.layers[0].weight_hh.detach()
        sigma_after = torch.linalg.svdvals(after.double())[0].item()
        assert snap.sigma_max[0] == pytest.approx(ref["sigma_max"][0], rel=1e-6)
        assert abs(snap.sigma_max[0] - sigma_after) > 1e-3 * sigma_after  # the update did move it
        assert snap.grad_norm == pytest.approx(ref["grad_norm"], rel=1e-4)
        np.testing.assert_allclose(snap.grad_h, ref["grad_h"], rtol=2e-4)
        # and the update was one SGD step along exactly that gradient
        step = torch.cat([(p.detach() - b).flatten() for p, b in zip(trainer.model.parameters(), before)])
        assert step.norm().item() / lr == pytest.approx(ref["grad_norm"], rel=1e-4)


def test_the_tanh_rnns_eigenvalues_are_taken_only_when_asked_and_change_nothing_else(tmp_path):
    """An eigenvalue problem a step costs a fifth of a step at 128 units: a trainer takes weight_hh's eigenvalues
    only while `take_eigenvalues` is on, then of the weights the step's gradients were taken at (numpy's float64
    geev as the reference); every other figure is the same either way, and metrics.npz keeps NaN at the steps
    taken without them."""
    from engine.metrics import MetricsLog
    config = Config(seq_len=15, hidden=12, batch=6, layers=2, optimizer="sgd", lr=0.5)
    asked, plain = Trainer(config), Trainer(config)
    log = MetricsLog()
    for step in range(4):
        asked.take_eigenvalues = step != 1  # off for the second step only
        weights = [layer.weight_hh.detach().double().numpy().copy() for layer in asked.model.layers]
        a, b = asked.step(), plain.step()
        log.append(a)
        assert b.eigenvalues is None  # off by default
        if step == 1:
            assert a.eigenvalues is None
        else:
            for k, w in enumerate(weights):
                expected = np.linalg.eigvals(w)
                got = a.eigenvalues[k].astype(np.complex128)
                # the same multiset: each expected eigenvalue has a reported one within complex64's precision
                assert np.max(np.min(np.abs(expected[:, None] - got[None, :]), axis=1)) < 1e-6
        assert a.loss == b.loss and a.grad_norm == b.grad_norm
        np.testing.assert_array_equal(a.grad_h, b.grad_h)
        np.testing.assert_array_equal(a.sigma_max, b.sigma_max)
    arrays = log.to_arrays()
    assert arrays["eigenvalues"].shape == (4, 2, 12)
    assert np.all(np.isnan(arrays["eigenvalues"][1])) and not np.any(np.isnan(arrays["eigenvalues"][[0, 2, 3]]))


@pytest.mark.parametrize("cell, activation", [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"),
                                              ("rnn", "leaky_relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_saturation_gate_means_and_histogram(cell, activation):
    # a recurrent matrix with spectral radius 4 drives some activation inputs out into the flat zones;
    # for the LSTM a forget bias of 5 holds its forget gates there (sigmoid(5) = 0.993)
    config = Config(seq_len=15, hidden=10, batch=6, cell=cell, activation=activation, init="normal",
                    spectral_radius=4.0, forget_bias=5.0 if cell == "lstm" else None)
    trainer = Trainer(config)
    ref = reference_probes(trainer)["records"][0]
    snap = trainer.step()
    pre = ref["pre"].detach()  # (T, batch, hidden): 900 values, under the histogram's sample size
    counts, _ = np.histogram(pre.numpy(), bins=HIST_EDGES)
    assert np.abs(snap.preact_hist[0] - counts).sum() <= 2  # float32 vs float64 at bin edges
    if cell == "rnn":
        a = pre.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(ACTS[activation](a).sum(), a)
        # slope below 10% of the largest (1 for tanh and relu, 1/4 for sigmoid); leaky ReLU never that flat
        largest = 0.25 if activation == "sigmoid" else 1.0
        expected = 0.0 if activation == "leaky_relu" else (slope < 0.1 * largest).double().mean().item()
        assert snap.saturation[0] == pytest.approx(expected, abs=2 / pre.numel())
        assert 0 < expected < 1 or activation == "leaky_relu"  # the case is not trivial
        assert snap.gate_means.shape == (1, 0)
    else:
        gates = ref["gates"].detach()  # (T, n_gates, batch, hidden)
        np.testing.assert_allclose(snap.gate_means[0], gates.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
        sig = gates[:, [0, 1, 3]] if cell == "lstm" else gates[:, :2]
        expected = (sig * (1 - sig) < 0.025).double().mean().item()
        assert snap.saturation[0] == pytest.approx(expected, abs=2 / sig.numel())
        assert 0 < expected < 1


def test_saturation_and_gate_means_cover_every_timestep_of_a_long_sequence(monkeypatch):
    """Saturation and gate means are exact over all T * batch * units values even when those are
    swept in blocks; only the histogram samples timesteps."""
    monkeypatch.setattr(probes, "BLOCK_VALUES", 64)  # 64 values per block: many blocks, a ragged last one
    for cell in ("rnn", "lstm"):
        # forget bias 5: sigmoid(5) = 0.993, so about a third of the sigmoid gates sit in the flat zone
        trainer = Trainer(Config(seq_len=23, hidden=10, batch=3, cell=cell, init="normal", spectral_radius=4.0,
                                 forget_bias=5.0 if cell == "lstm" else None))
        ref = reference_probes(trainer)["records"][0]
        snap = trainer.step()
        if cell == "rnn":
            h = torch.tanh(ref["pre"].detach())
            expected = (1 - h * h < 0.1).double().mean().item()
        else:
            gates = ref["gates"].detach()
            np.testing.assert_allclose(snap.gate_means[0], gates.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
            sig = gates[:, [0, 1, 3]]
            expected = (sig * (1 - sig) < 0.025).double().mean().item()
        assert 0.05 < expected < 0.95
        assert snap.saturation[0] == pytest.approx(expected, abs=2 / (23 * 3 * 10))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu"])
def test_flat_slope_counts_alike_through_numpy_and_through_torch(activation):
    """On a CPU the counts go through a numpy view; on CUDA the same formula runs on the tensor itself.
    Both agree with the slope autograd computes (grid points off the 10% boundary, so no rounding tie)."""
    a = torch.linspace(-8, 8, 4000, dtype=torch.float64).requires_grad_(True)
    (slope,) = torch.autograd.grad(ACTS[activation](a).sum(), a)
    largest = 0.25 if activation == "sigmoid" else 1.0
    expected = 0 if activation == "leaky_relu" else int((slope < 0.1 * largest).sum())
    out = ACTS[activation](a.detach()).float()
    mask = probes.flat_slope_mask(activation, out)
    via_torch = 0 if mask is None else int(torch.count_nonzero(mask))
    via_numpy = probes.count_flat(activation, out)
    assert via_numpy == via_torch
    assert abs(via_numpy - expected) <= 2  # float32 outputs against float64 slopes at the boundary
    assert (expected > 0) == (activation != "leaky_relu")


def test_state_norms_match_float64_from_the_smallest_float32_to_overflow(monkeypatch):
    """Each state-gradient norm equals the float64 norm of the same float32 tensor across float32's
    whole range: ordinary, tiny (whose float32 squares would underflow to 0), denormal, zero, huge
    (whose float32 squares overflow), mixed, and NaN; a plain float32 norm fails here. A small block
    size puts the odd ones in several blocks."""
    monkeypatch.setattr(probes, "BLOCK_VALUES", 3 * 12)
    rng = torch.Generator().manual_seed(0)
    base = torch.randn(3, 4, generator=rng)
    scales = [1.0, 1e-3, 1e-12, 1e-20, 1e-25, 1e-30, 1e-38, 1e-42, 0.0, 1e15, 1e19, 1e25, 1e37]
    per_step = [base * s for s in scales]
    per_step.append(torch.where(torch.arange(12).view(3, 4) < 6, base * 1e-30, base))  # mixed magnitudes
    per_step.append(torch.full((3, 4), 1e-44))  # every entry denormal
    expected = np.array([torch.linalg.vector_norm(t.double()).item() for t in per_step])
    got = probes.norm_per_timestep(per_step)
    assert got.dtype == np.float64 and expected[5] > 0 and expected[-1] > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    nan = base.clone()
    nan[1, 2] = math.nan
    assert np.isnan(probes.norm_per_timestep([base, nan])[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_counts_exactly_as_numpy_does_at_every_edge(dtype):
    """The bincount histogram against np.histogram itself: values on each edge, a hair either side of
    it, -6 and 6 (the last bin is closed), just past them, signed zeros, denormals, NaN and infinities."""
    edges = HIST_EDGES.astype(dtype)
    awkward = np.concatenate([edges, np.nextafter(edges, dtype(10)), np.nextafter(edges, dtype(-10)),
                              np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30], dtype)])
    values = np.concatenate([np.random.default_rng(0).normal(0, 4, 5000).astype(dtype), awkward])
    expected, _ = np.histogram(values, bins=HIST_EDGES)
    counts = probes.preactivation_histogram(torch.from_numpy(values))
    np.testing.assert_array_equal(counts, expected)
    assert counts[-1] >= 2 and counts.sum() < len(values)  # 6 itself counted, what lies outside not


def test_histogram_samples_evenly_spaced_timesteps(monkeypatch):
    assert histogram_timesteps(10, 5, budget=1000) == list(range(10))     # everything fits
    assert histogram_timesteps(100, 64, budget=64 * 5) == [10, 30, 50, 70, 90]  # middles of fifths
    assert histogram_timesteps(100, 64, budget=10) == [50]                  # one step is more than the budget
    assert histogram_timesteps(1, 64, budget=10) == [0]
    monkeypatch.setattr(probes, "HIST_SAMPLE", 3 * 6 * 10)  # three timesteps' worth
    trainer = Trainer(Config(seq_len=15, hidden=10, batch=6, init="normal"))
    ref = reference_probes(trainer)["records"][0]
    snap = trainer.step()
    counts, _ = np.histogram(ref["pre"].detach()[[2, 7, 12]].numpy(), bins=HIST_EDGES)
    assert counts.sum() > 150  # most of the 180 values fall inside -6..6
    assert np.abs(snap.preact_hist[0] - counts).sum() <= 2


# ----------------------------------------------------------------------------- closed form

@pytest.mark.parametrize("radius", [0.9, 1.1])
def test_linear_orthogonal_rnn_gradient_scales_by_exactly_the_radius_per_step(radius):
    """h_t = r Q h_{t-1} + W x_t, loss on h_T only: dL/dh_t = (r Q)^T dL/dh_{t+1}, so every row of the
    batch, and hence the Frobenius norm, shrinks (or grows) by exactly r per step back in time."""
    T = 40
    trainer = Trainer(Config(seq_len=T, hidden=16, batch=4, activation="linear", init="orthogonal",
                             spectral_radius=radius))
    snap = trainer.step()
    g = snap.grad_h[0].astype(np.float64)
    np.testing.assert_allclose(g[:-1] / g[1:], radius, rtol=1e-5)
    assert snap.orders_of_magnitude == pytest.approx((T - 1) * -math.log10(radius), rel=1e-4)
    assert snap.sigma_max[0] == pytest.approx(radius, rel=1e-5)


@pytest.mark.parametrize("activation, radius", [("tanh", None), ("tanh", 2.0), ("relu", 1.5), ("sigmoid", 3.0)])
def test_one_step_back_the_gradient_grows_at_most_by_sigma_max_times_the_steepest_slope(activation, radius):
    """dL/dh_{t-1} = W_hh^T (f'(a_t) * dL/dh_t) when the loss reads only the last step, so its norm is
    at most sigma_max * max|f'| * |dL/dh_t|: the limit line the profile view draws."""
    trainer = Trainer(Config(seq_len=30, hidden=16, batch=4, activation=activation, spectral_radius=radius))
    for _ in range(3):
        snap = trainer.step()
        limit = float(snap.sigma_max[0]) * float(snap.max_slope[0])
        g = snap.grad_h[0].astype(np.float64)
        assert np.all(g[:-1] <= limit * g[1:] * (1 + 1e-4) + 1e-300)
        assert np.any(g[:-1] > 0.2 * limit * g[1:])  # not trivially far below it


# ----------------------------------------------------------------------------- orders of magnitude lost

@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("factor", [0.5, 0.9, 1.0, 3.0])
def test_orders_lost_by_a_geometric_profile_is_the_steps_times_the_log_of_the_factor(factor):
    """g_t = g_last * factor^(T - 1 - t): going back T - 1 steps multiplies by factor^(T - 1), so
    log10(last / first) = -(T - 1) log10(factor); below 1 it vanishes (positive), above it grows."""
    T = 60
    profile = 2.5 * factor ** np.arange(T - 1, -1, -1, dtype=np.float64)
    assert probes.orders_lost(profile) == pytest.approx(-(T - 1) * math.log10(factor), abs=1e-12)


@pytest.mark.filterwarnings("error")  # the GUI calls it with numpy's warnings turned into errors
def test_orders_lost_past_the_ends_of_float_range():
    inf, nan = math.inf, math.nan
    assert probes.orders_lost([0.0, 1e-3, 1.0]) == inf      # nothing reaches the first step
    assert probes.orders_lost([1.0, 1e-3, 0.0]) == -inf     # nothing at the last
    assert probes.orders_lost([inf, 1.0, 1.0]) == -inf      # overflowed on its way back
    assert probes.orders_lost([1.0, nan, 100.0]) == 2.0     # only the ends are read
    assert probes.orders_lost([7.0]) == 0.0
    for undefined in ([], [0.0, 0.0], [inf, inf], [nan, 1.0], [1.0, nan]):
        assert math.isnan(probes.orders_lost(undefined))
    denormal = np.array([1e-40, 1.0], dtype=np.float32)     # read in float64: log10 of the float32 value itself
    assert probes.orders_lost(denormal) == -math.log10(float(denormal[0]))


def test_snapshot_orders_of_magnitude_reads_the_top_layer_and_nothing_from_a_diverged_step():
    snap = Trainer(Config(seq_len=3, hidden=4, batch=2, layers=2)).step()

    def orders(top):
        return dataclasses.replace(snap, grad_h=np.array([[1.0, 1.0, 1.0], top])).orders_of_magnitude
    assert orders([1e-3, 0.1, 1.0]) == pytest.approx(3.0, abs=1e-12)
    assert orders([1e3, 1.0, 1.0]) == pytest.approx(-3.0, abs=1e-12)
    assert orders([0.0, 0.1, 1.0]) == math.inf
    for diverged in ([1e-3, math.nan, 1.0], [math.inf, 1.0, 1.0], [1.0, 1.0, 0.0]):
        assert math.isnan(orders(diverged))


# ----------------------------------------------------------------------------- past float32's range

def exact_norm(tensor: torch.Tensor) -> float:
    """The Euclidean norm with no intermediate underflow: math.hypot scales as it sums."""
    return math.hypot(*tensor.detach().double().flatten().tolist())


def exact_reference(trainer):
    """grad_h, grad_c and grad_x of the next step from the independent float64 unroll, normed exactly
    (a plain float64 norm squares its entries and reads anything below 1e-154 as 0)."""
    config, task = trainer.config, trainer.task
    x, target = upcoming_batch(trainer)
    x.requires_grad_(True)
    T = task.n_steps
    dh = zeros_like_states(config, x.shape[0], T)
    dc = zeros_like_states(config, x.shape[0], T) if config.cell == "lstm" else None
    loss, _ = unroll(frozen_weights(trainer), config, task, x, target, dh, dc)
    loss.backward()
    return (np.array([[exact_norm(d.grad) for d in layer] for layer in dh]),
            None if dc is None else np.array([[exact_norm(d.grad) for d in layer] for layer in dc]),
            np.array([exact_norm(x.grad[:, t]) for t in range(T)]))


def test_a_default_sigmoid_rnn_loses_81_orders_with_no_timestep_flushed_to_zero():
    """float32 alone reads 47 of the 100 timesteps as 0 and 44.5 orders lost."""
    trainer = Trainer(Config(activation="sigmoid"))
    grad_h, _, grad_x = exact_reference(trainer)
    snap = trainer.step()
    assert snap.float64_redo
    assert np.all(snap.grad_h > 0) and np.all(snap.grad_x > 0)
    assert 80 < snap.orders_of_magnitude < 82
    assert snap.orders_of_magnitude == pytest.approx(math.log10(grad_h[0, -1] / grad_h[0, 0]), abs=1e-9)
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=1e-9, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=1e-9, atol=0)


def test_state_gradients_agree_with_the_float64_reference_down_to_1e_minus_300():
    trainer = Trainer(Config(seq_len=350, hidden=12, batch=6, activation="sigmoid"))
    grad_h, _, grad_x = exact_reference(trainer)
    assert 1e-305 < grad_h.min() < 1e-295 and 1e-305 < grad_x.min() < 1e-295  # the test reaches that deep
    snap = trainer.step()
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=1e-9, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_float64_redo_agrees_with_the_reference_for_every_cell(name, monkeypatch):
    """Forced at every step (any norm counts as underflowed), the redo gives the reference's grad_h,
    grad_c and grad_x to float64 rounding, for stacked, gated and copy-task nets, and trains exactly as
    the float32 step does: the redo touches no weight and no parameter gradient."""
    plain = Trainer(CONFIGS[name])
    plain_snaps = [plain.step() for _ in range(2)]
    monkeypatch.setattr(probes, "underflow_norm", lambda values: math.inf)
    trainer = Trainer(CONFIGS[name])
    for plain_snap in plain_snaps:
        grad_h, grad_c, grad_x = exact_reference(trainer)
        snap = trainer.step()
        assert snap.float64_redo and not plain_snap.float64_redo
        np.testing.assert_allclose(snap.grad_h, grad_h, rtol=1e-9, atol=0)
        np.testing.assert_allclose(snap.grad_x, grad_x, rtol=1e-9, atol=0)
        if grad_c is None:
            assert snap.grad_c is None
        else:
            np.testing.assert_allclose(snap.grad_c, grad_c, rtol=1e-9, atol=0)
        assert snap.loss == plain_snap.loss and snap.grad_norm == plain_snap.grad_norm
        np.testing.assert_allclose(snap.grad_h, plain_snap.grad_h, rtol=2e-4)


def test_flushing_denormals_in_the_backward_pass_keeps_the_norms_above_the_redo_exact():
    """Trainer.step's backward pass flushes denormal floats to 0 (probes.DENORMALS_FLUSHED: the CPU's slow
    path for them cost 10x at a practitioner's size), so the redo starts FLUSHED_MARGIN times higher. At
    seq_len 140 the smallest input-gradient norm sits a few times above that: no redo, and every timestep
    agrees with the exact float64 reference to float32's own rounding (measured 5e-7), flushing or not."""
    trainer = Trainer(Config(seq_len=140))
    grad_h, _, grad_x = exact_reference(trainer)
    snap = trainer.step()
    assert not snap.float64_redo
    margin = probes.FLUSHED_MARGIN * probes.underflow_norm(32 * 2)
    assert margin < snap.grad_x.min() < 10 * margin
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=5e-6, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=5e-6, atol=0)
    below = Trainer(Config(seq_len=145))  # under the margin: redone in float64, unflushed
    grad_h, _, grad_x = exact_reference(below)
    snap = below.step()
    assert snap.float64_redo and snap.grad_x.min() < margin
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=1e-9, atol=0)


def test_float32_is_kept_where_it_is_still_exact():
    """A default tanh RNN at seq_len 140 falls some 28 orders of magnitude, its smallest norms far below
    1e-25 yet above probes.FLUSHED_MARGIN x underflow_norm: no redo, and float32 agrees with the exact
    reference to its own rounding at every timestep, the smallest included."""
    trainer = Trainer(Config(seq_len=140))
    grad_h, _, grad_x = exact_reference(trainer)
    snap = trainer.step()
    assert not snap.float64_redo
    assert snap.grad_h.min() < 1e-25 and snap.grad_h.min() > probes.FLUSHED_MARGIN * probes.underflow_norm(32 * 64)
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=2e-4, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=2e-4, atol=0)


def test_the_redo_threshold_bounds_what_denormal_entries_can_do_to_a_norm():
    """At underflow_norm(n), n entries at float32's smallest normal number add at most 1e-6 of the norm
    (in squares: 1e-6 of its square; the norm itself moves by half that)."""
    for n in (64, 2048, 4096 * 2048):
        threshold = probes.underflow_norm(n)
        assert n * probes.FLOAT32_NORMAL ** 2 <= 1e-6 * threshold ** 2 * (1 + 1e-12)
    assert probes.underflow_norm(32 * 64) == pytest.approx(5.4e-34, rel=0.01)


@pytest.mark.parametrize("name", ["rnn-tanh-2layers", "lstm-2layers", "copy-lstm", "gru-2layers"])
def test_a_large_redo_in_batch_chunks_gives_the_same_norms(name, monkeypatch):
    """Past REDO_WHOLE_BATCH_BYTES the redo runs in batch chunks (each example's states are its own, the
    loss a mean): forced here for small nets, its norms still agree with the reference."""
    monkeypatch.setattr(probes, "underflow_norm", lambda values: math.inf)
    monkeypatch.setattr(probes, "REDO_WHOLE_BATCH_BYTES", 0)
    trainer = Trainer(CONFIGS[name])
    assert probes.redo_chunks(trainer.config.batch, 1) == min(trainer.config.batch, probes.REDO_CHUNKS) > 1
    grad_h, grad_c, grad_x = exact_reference(trainer)
    snap = trainer.step()
    assert snap.float64_redo
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=1e-9, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=1e-9, atol=0)
    if grad_c is not None:
        np.testing.assert_allclose(snap.grad_c, grad_c, rtol=1e-9, atol=0)


def test_a_step_flushes_denormals_only_in_its_float32_pass():
    """probes.DENORMALS_FLUSHED: the float32 pass runs with denormals flushed to 0 (fast), the float64 redo and
    everything after the step with them kept (a float32 1e-40 is a denormal: flushed, it would read 0)."""
    seen = []
    real = probes.norm_per_timestep

    def spy(per_step):
        seen.append(float(torch.tensor([1e-40]) * 1.0))
        return real(per_step)
    trainer = Trainer(Config(hidden=8, batch=2, seq_len=5))
    probes.norm_per_timestep, saved = spy, probes.norm_per_timestep
    try:
        trainer.step()
    finally:
        probes.norm_per_timestep = saved
    assert seen and all(v == 0.0 for v in seen)          # inside the float32 pass: flushed
    assert float(torch.tensor([1e-40]) * 1.0) > 0        # after it: kept


def test_a_scaled_backward_pass_keeps_a_fall_float32_alone_would_lose():
    """probes.GRADIENT_SCALE_TARGET: from the second step the backward pass starts from 2^k; a tanh RNN at
    seq_len 230 falls some 47 orders, past float32's smallest number unscaled (the first step is redone in
    float64), within its range scaled (no redo), and agrees with the float64 reference to float32 precision."""
    trainer = Trainer(Config(seq_len=230))
    first = trainer.step()
    assert first.float64_redo and trainer._gradient_scale > 2.0 ** 80
    grad_h, _, grad_x = exact_reference(trainer)
    snap = trainer.step()
    assert not snap.float64_redo and snap.orders_of_magnitude > 42
    np.testing.assert_allclose(snap.grad_h, grad_h, rtol=2e-4, atol=0)
    np.testing.assert_allclose(snap.grad_x, grad_x, rtol=2e-4, atol=0)


@pytest.mark.parametrize("name", ["lstm-2layers", "copy-lstm", "gru-2layers"])
def test_scaling_changes_no_number_of_the_training(name, monkeypatch):
    """A power of two scales every float32 operation exactly: losses, gradient norms and profiles are
    bit for bit those of the unscaled steps."""
    scaled = Trainer(CONFIGS[name])
    scaled_snaps = [scaled.step() for _ in range(4)]
    assert scaled._gradient_scale > 1
    monkeypatch.setattr(probes, "MAX_GRADIENT_SCALE_EXPONENT", 0)
    plain = Trainer(CONFIGS[name])
    for a, b in zip(scaled_snaps, [plain.step() for _ in range(4)]):
        assert a.loss == b.loss and a.grad_norm == b.grad_norm
        np.testing.assert_array_equal(a.grad_norm_layer, b.grad_norm_layer)
        np.testing.assert_allclose(a.grad_h, b.grad_h, rtol=1e-12)  # norms of exactly scaled values, divided back


def test_a_step_that_overflows_when_scaled_is_taken_again_unscaled(monkeypatch):
    monkeypatch.setattr(probes, "GRADIENT_SCALE_TARGET", 1e300)  # 2^100 on top of anything: float32 overflows
    monkeypatch.setattr(probes, "MAX_GRADIENT_SCALE_EXPONENT", 140)
    trainer = Trainer(Config(hidden=16, batch=4, seq_len=20))
    trainer.step()
    assert trainer._gradient_scale == 2.0 ** 140
    reference = Trainer(Config(hidden=16, batch=4, seq_len=20))
    reference.step()
    monkeypatch.setattr(probes, "MAX_GRADIENT_SCALE_EXPONENT", 0)
    reference._gradient_scale = 1.0
    snap, truth = trainer.step(), reference.step()
    assert not snap.diverged and snap.loss == truth.loss and snap.grad_norm == truth.grad_norm
    np.testing.assert_allclose(snap.grad_h, truth.grad_h, rtol=1e-12)


def test_the_gradient_scale_is_a_power_of_two_within_its_bounds_for_any_gradient():
    """Found at step 601 of a linear RNN at spectral radius 1.3: a largest norm of 1e-300 (after a float64
    redo) overflowed the quotient 1e28 / 1e-300 and stopped training."""
    top = 2.0 ** probes.MAX_GRADIENT_SCALE_EXPONENT
    for largest, expected in ((1e-300, top), (5e-324, top), (1e28, 1.0), (1e40, 1.0), (math.inf, 1.0),
                              (0.0, 1.0), (1.0, 2.0 ** math.floor(math.log2(probes.GRADIENT_SCALE_TARGET)))):
        assert probes.gradient_scale(np.array([largest]), None, np.array([0.0]), 0.0) == expected, largest


@pytest.mark.parametrize("cell", ["lru", "ssm"])
def test_a_cell_with_nothing_that_saturates_reports_no_saturation_not_zero(cell):
    """The LRU's memory passes through no activation and the selective SSM's step size is no sigmoid gate: nothing
    is counted, so the share is NaN (the window said '0% of gates saturated'); minGRU counts its update gate."""
    snap = Trainer(Config(seq_len=8, hidden=6, batch=3, cell=cell)).step()
    assert np.isnan(snap.saturation).all()
    snap = Trainer(Config(seq_len=8, hidden=6, batch=3, cell="mingru")).step()
    assert np.isfinite(snap.saturation).all()
