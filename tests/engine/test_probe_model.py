"""engine.api.probe_model on users' own models holding nn.RNN/LSTM/GRU, against an independent truth.

The truth is written here: a float64 copy of the model whose recurrent modules run PyTorch's documented
equations in a loop of this file's own (not engine's unroll, not torch's cell kernels), with a zero
perturbation added to every h_t, c_t and module input. The gradient of the loss with respect to a
perturbation is d loss / d h_t (c_t, input) by definition, and its norm is taken without squaring past
float64's range. probe_model runs the model as it is, in float32, so comparisons allow float32 rounding
(1e-4 relative per timestep) but nothing more.
"""
import contextlib
import copy
import math
import xml.etree.ElementTree as ET
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine import api, model_probe

SVG = "{http://www.w3.org/2000/svg}"


# ----------------------------------------------------------------------------- models a user might have

class CharLM(nn.Module):
    """Embedding, a 2-layer LSTM (dropout between its layers), an MLP head: logits at every step."""
    def __init__(self, vocab=11, hidden=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, 6)
        self.lstm = nn.LSTM(6, hidden, num_layers=2, batch_first=True, dropout=0.3)
        self.head = nn.Sequential(nn.Linear(hidden, 16), nn.ReLU(), nn.Linear(16, vocab))

    def forward(self, tokens):
        return self.head(self.lstm(self.embed(tokens))[0])


class PooledBiGRU(nn.Module):
    """Time-major bidirectional GRU, mean over time, a linear head."""
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 6, bidirectional=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        return self.head(self.gru(x)[0].mean(dim=0))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 7, batch_first=True)
        self.out = nn.Linear(7, 2)

    def forward(self, y_in, state):
        return self.out(self.rnn(y_in, state)[0])


class Seq2Seq(nn.Module):
    """An encoder LSTM whose (h_n, c_n) start a decoder LSTM."""
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(4, 7, batch_first=True)
        self.decoder = Decoder()

    def forward(self, source, y_in):
        _, state = self.encoder(source)
        return self.decoder(y_in, state)


class LastStep(nn.Module):
    """A recurrent module and a linear readout of its last output."""
    def __init__(self, rnn, width):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(width, 2)

    def forward(self, x):
        out = self.rnn(x)[0]
        return self.head(out[:, -1] if self.rnn.batch_first else out[-1])


def seeded(make, seed=0):
    torch.manual_seed(seed)
    return make()


def randn(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the independent truth

def reference_forward(m, x, hx=None, *, record):
    """nn.RNN/LSTM/GRU `m` (float64) by PyTorch's documented equations, each h_t, c_t and the input
    perturbed by a zero leaf whose gradient is then d loss / d that tensor. Batched input only."""
    lstm, gru = isinstance(m, nn.LSTM), isinstance(m, nn.GRU)
    D, L, H = 2 if m.bidirectional else 1, m.num_layers, m.hidden_size
    out_size = m.proj_size if lstm and m.proj_size else H
    leaf = lambda t: torch.zeros_like(t, requires_grad=True)
    dx = leaf(x)
    seq = (x + dx).transpose(0, 1) if m.batch_first else x + dx  # (T, N, F)
    T, N = seq.shape[:2]
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    h0 = torch.zeros(L * D, N, out_size, dtype=x.dtype) if h0 is None else h0
    c0 = torch.zeros(L * D, N, H, dtype=x.dtype) if c0 is None else c0
    layer_in, dh, dc, h_n, c_n = list(seq), [], [], [], []
    for layer in range(L):
        outputs = []
        for d in range(D):
            p = lambda name: getattr(m, f"{name}_l{layer}{'_reverse' if d else ''}")
            b = lambda name: p(name) if m.bias else 0.0
            row = layer * D + d
            h, c = h0[row], c0[row]
            hs, dhs, dcs = [None] * T, [None] * T, [None] * T
            for t in (range(T) if d == 0 else range(T - 1, -1, -1)):
                gx = layer_in[t] @ p("weight_ih").T + b("bias_ih")
                gh = h @ p("weight_hh").T + b("bias_hh")
                if lstm:
                    i, f, g, o = (gx + gh).chunk(4, dim=1)
                    dcs[t] = leaf(c)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g) + dcs[t]
                    h = torch.sigmoid(o) * torch.tanh(c)
                    h = h @ p("weight_hr").T if m.proj_size else h
                elif gru:
                    (x_r, x_z, x_n), (h_r, h_z, h_n_) = gx.chunk(3, dim=1), gh.chunk(3, dim=1)
                    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                    h = (1 - z) * torch.tanh(x_n + r * h_n_) + z * h
                else:
                    h = torch.tanh(gx + gh) if m.nonlinearity == "tanh" else torch.relu(gx + gh)
                dhs[t] = leaf(h)
                h = h + dhs[t]
                hs[t] = h
            dh.append(dhs)
            dc.append(dcs)
            h_n.append(h)
            c_n.append(c)
            outputs.append(hs)
        layer_in = [torch.cat(pair, dim=1) for pair in zip(*outputs)]
    record.append((dh, dc if lstm else None, dx, 1 if m.batch_first else 0))
    out = torch.stack(layer_in)
    out = out.transpose(0, 1) if m.batch_first else out
    return (out, (torch.stack(h_n), torch.stack(c_n))) if lstm else (out, torch.stack(h_n))


def scaled_norm(t: torch.Tensor) -> float:
    largest = float(t.abs().max())
    return 0.0 if largest == 0 else largest * float(torch.linalg.vector_norm(t / largest))


def reference(model, inputs, targets, loss):
    """{name: {grad_h, grad_c, grad_x}} and the loss, from a float64 copy in eval mode."""
    ref = copy.deepcopy(model).double().eval()
    records = {name: [] for name, m in ref.named_modules() if isinstance(m, nn.RNNBase)}
    as64 = lambda t: t.double() if t.is_floating_point() else t
    args = tuple(as64(t) for t in inputs) if isinstance(inputs, tuple) else (as64(inputs),)
    with contextlib.ExitStack() as stack:
        for name, m in ref.named_modules():
            if name in records:
                stack.enter_context(mock.patch.object(m, "forward", lambda x, hx=None, m=m, r=records[name]:
                                                      reference_forward(m, x, hx, record=r)))
        value = loss(ref(*args), as64(targets))
        value.backward()
    truth = {}
    for name, calls in records.items():
        dh, dc, dx, time_axis = calls[0]
        truth[name] = {
            "grad_h": np.array([[scaled_norm(p.grad) for p in row] for row in dh]),
            "grad_c": None if dc is None else np.array([[scaled_norm(p.grad) for p in row] for row in dc]),
            "grad_x": np.array([scaled_norm(g) for g in dx.grad.unbind(time_axis)])}
    return value.item(), truth


def relative_error(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


def assert_matches_reference(model, inputs, targets, loss=None):
    """probe_model against the truth, every module, every array; returns the result and the worst error."""
    got = api.probe_model(model, inputs, targets, loss=loss)
    want_loss, truth = reference(model, inputs, targets, loss or model_probe.default_loss)
    assert got.loss == pytest.approx(want_loss, rel=1e-5)
    assert list(got.modules) == list(truth)
    worst = 0.0
    for name, want in truth.items():
        probe = got.modules[name]
        assert probe.grad_h.shape == want["grad_h"].shape
        assert np.array_equal(probe.grad_h > 0, want["grad_h"] > 0)  # 0 only where the truth is 0
        for key in ("grad_h", "grad_c", "grad_x"):
            if want[key] is None:
                assert getattr(probe, key) is None
                continue
            error = relative_error(getattr(probe, key), want[key])
            assert error < 1e-4, (name, key, error)
            worst = max(worst, error)
        assert probe.orders_lost == pytest.approx(math.log10(want["grad_h"][probe.top_row, -1]
                                                             / want["grad_h"][probe.top_row, 0]), abs=1e-4)
    return got, worst


# ----------------------------------------------------------------------------- the twin is the module

TWINS = [("RNN", dict(nonlinearity="tanh")), ("RNN", dict(nonlinearity="relu", bias=False)),
         ("GRU", dict(bidirectional=True)), ("LSTM", dict(proj_size=3)), ("LSTM", dict(bidirectional=True)),
         ("LSTM", dict(bidirectional=True, proj_size=2, bias=False)), ("GRU", dict(bias=False))]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kind,options", TWINS)
def test_the_twin_returns_what_the_fused_module_returns(kind, options, batch_first, dtype, tolerance):
    """Output and final states, with and without a given hx, batched and unbatched, in the module's layout."""
    rnn = seeded(lambda: getattr(nn, kind)(4, 5, num_layers=2, batch_first=batch_first, **options)).to(dtype)
    rows, out = 2 * (2 if rnn.bidirectional else 1), options.get("proj_size") or 5
    x = randn(3, 6, 4).to(dtype)
    x = x if batch_first else x.transpose(0, 1)
    hx = randn(rows, 3, out, seed=2).to(dtype)
    hx = (hx, randn(rows, 3, 5, seed=3).to(dtype)) if kind == "LSTM" else hx
    unbatched = (x[0] if batch_first else x[:, 0], tuple(h[:, 0] for h in hx) if kind == "LSTM" else hx[:, 0])
    for args in [(x,), (x, hx), unbatched]:
        with torch.no_grad():
            want = rnn(*args)
        got = model_probe.forward_unrolled(rnn, *args)[:2]
        torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance)


# ----------------------------------------------------------------------------- gradients against the truth

def test_a_char_level_language_model():
    """Embedding, 2-layer LSTM, MLP head, cross-entropy at every step; in training mode, with dropout
    between the LSTM's layers: the probe measures the deterministic network, as the truth does in eval."""
    model = seeded(CharLM).train()
    tokens = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(2))
    got, _ = assert_matches_reference(model, tokens, targets)
    probe = got.modules["lstm"]
    assert probe.cell == "lstm" and probe.grad_h.shape == (2, 12) and probe.grad_h_units.shape == (2, 12, 8)
    assert not got.float64_redo and model.training


def test_a_time_major_bidirectional_gru_pooled_over_time():
    """Rows in h_n's order (forward, backward), timesteps in input order for both directions."""
    got, _ = assert_matches_reference(seeded(PooledBiGRU), randn(9, 3, 4), randn(3, 3, seed=2))
    probe = got.modules["gru"]
    assert probe.directions == 2 and probe.grad_h.shape == (2, 9) and probe.grad_x.shape == (9,)
    assert "bidirectional" in probe.summary()


def test_an_encoder_whose_state_starts_a_decoder():
    """Both modules are reported; the encoder's gradient arrives only through the decoder's initial state."""
    model = seeded(Seq2Seq)
    got, _ = assert_matches_reference(model, (randn(3, 8, 4), randn(3, 5, 5, seed=2)), randn(3, 5, 2, seed=3))
    assert set(got.modules) == {"encoder", "decoder.rnn"}
    assert got.modules["encoder"].grad_c.shape == (1, 8) and got.modules["decoder.rnn"].grad_h.shape == (1, 5)
    assert "encoder: LSTM" in got.summary() and "decoder.rnn: LSTM" in got.summary()


def test_a_relu_rnn_without_bias():
    rnn = nn.RNN(3, 6, num_layers=2, nonlinearity="relu", bias=False, batch_first=True)
    got, _ = assert_matches_reference(seeded(lambda: LastStep(rnn, 6)), randn(4, 7, 3), randn(4, 2, seed=2))
    assert got.modules["rnn"].cell == "rnn_relu"


def test_a_bidirectional_lstm_with_a_projection():
    rnn = nn.LSTM(4, 8, num_layers=2, proj_size=3, bidirectional=True, batch_first=True)
    got, _ = assert_matches_reference(seeded(lambda: LastStep(rnn, 6)), randn(3, 7, 4), randn(3, 2, seed=2))
    probe = got.modules["rnn"]
    assert probe.grad_h.shape == (4, 7) and probe.grad_h_units.shape == (4, 7, 3) and probe.grad_c.shape == (4, 7)
    # read at the last timestep only, the top backward row's first state (t = T-1) is the only one read
    assert np.all(probe.grad_h[3, :-1] == 0) and probe.grad_h[3, -1] > 0 and np.all(probe.grad_h[:3] > 0)


def test_a_gradient_that_falls_far_below_float32s_range_is_read_exactly():
    """A float32 tanh RNN with small recurrent weights over 300 steps: in float32 the early timesteps read
    0; measured again in float64 every one matches the float64 truth, the first near 1e-294."""
    def make():
        model = LastStep(nn.RNN(3, 8), 8)
        with torch.no_grad():
            model.rnn.weight_hh_l0.mul_(0.16)
        return model
    got, worst = assert_matches_reference(seeded(make), randn(300, 4, 3), randn(4, 2, seed=2))
    probe = got.modules["rnn"]
    assert got.float64_redo and probe.float64_redo and "float64" in got.summary()
    assert 1e-300 < probe.grad_h[0, 0] < 1e-290 and 1e-300 < probe.grad_x[0] < 1e-290
    assert 280 < probe.orders_lost < math.inf
    assert worst < 1e-8  # float64 against float64


def test_a_module_called_step_by_step_reports_its_calls_in_order():
    """A decoder fed one step at a time reads as the same module run over the whole sequence."""
    class Stepwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(3, 5, batch_first=True), nn.Linear(5, 2)

        def forward(self, x):
            h, outs = None, []
            for t in range(x.shape[1]):
                out, h = self.rnn(x[:, t:t + 1], h)
                outs.append(out)
            return self.head(torch.cat(outs, dim=1))
    model, x, y = seeded(Stepwise), randn(3, 6, 3), randn(3, 6, 2, seed=2)
    whole = nn.Module()
    whole.rnn, whole.head = model.rnn, model.head
    whole.forward = lambda x: whole.head(whole.rnn(x)[0])
    stepwise, at_once = api.probe_model(model, x, y).modules["rnn"], api.probe_model(whole, x, y).modules["rnn"]
    assert stepwise.grad_h.shape == (1, 6)
    for key in ("grad_h", "grad_x", "grad_h_units"):
        np.testing.assert_allclose(getattr(stepwise, key), getattr(at_once, key), rtol=1e-5)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_bare_module_reads_as_probe_reads_it(kind):
    """probe_model on an nn.RNN/LSTM/GRU itself, its hidden states the predictions at every step, is probe()."""
    rnn = seeded(lambda: getattr(nn, kind)(3, 5, num_layers=2, batch_first=True))
    x, y = randn(4, 6, 3), randn(4, 6, 5, seed=2)
    got, want = api.probe_model(rnn, x, y), api.probe(rnn, x, y)
    assert list(got.modules) == [""] and got.loss == pytest.approx(want.loss, rel=1e-6)
    for key in ("grad_h", "grad_c", "grad_x", "grad_h_units", "sigma_max"):
        if getattr(want, key) is not None:
            np.testing.assert_allclose(getattr(got.modules[""], key), getattr(want, key), rtol=1e-6)
    assert [f.text for f in got.findings] == [f"(the model itself): {f.text}" for f in want.findings]


# ----------------------------------------------------------------------------- the model is only read

def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [m.training for m in model.modules()])


def assert_untouched(model, before):
    state, grads, flags = before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all((g is None and p.grad is None) or torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert [m.training for m in model.modules()] == flags
    for m in model.modules():
        assert "forward" not in m.__dict__
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            assert all(w is getattr(m, name) for w, name in zip(m._flat_weights, m._flat_weights_names))


def mixed_model():
    """A model mid-training: a pre-existing .grad on some parameters, None on others, mixed modes."""
    model = seeded(CharLM).train()
    model.head.eval()
    model.lstm.weight_hh_l0.grad = torch.full_like(model.lstm.weight_hh_l0, 0.5)
    model.embed.weight.grad = torch.ones_like(model.embed.weight)
    return model


def test_the_model_is_left_exactly_as_it_was():
    model = mixed_model()
    tokens = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before_output = model.eval()(tokens)
    model.train().head.eval()
    before = snapshot(model)
    api.probe_model(model, tokens, torch.randint(0, 11, (3, 12)))
    assert_untouched(model, before)
    with torch.no_grad():
        assert torch.equal(model.eval()(tokens), before_output)  # the fused forward is back


@pytest.mark.parametrize("where", ["model", "loss"])
def test_the_model_is_left_as_it_was_when_the_model_or_the_loss_raises(where):
    model = mixed_model()

    def broken(tokens):
        CharLM.forward(model, tokens)  # the recurrent module runs (its twin, here), then the user's code fails
        raise RuntimeError("the user's own bug")
    if where == "model":
        model.forward = broken
    before = snapshot(model)

    def loss(output, targets):
        raise KeyError("no such target")
    with pytest.raises(ValueError, match=r"model\(inputs\) raised RuntimeError: the user's own bug" if where == "model"
                       else r"loss\(output, targets\) raised KeyError: 'no such target'"):
        api.probe_model(model, torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long), loss=loss)
    if where == "model":
        del model.forward
    assert_untouched(model, before)


# ----------------------------------------------------------------------------- bad input

class Packs(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)

    def forward(self, x):
        packed = nn.utils.rnn.pack_padded_sequence(x, [x.shape[1]] * len(x), batch_first=True)
        return nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]


class WrongState(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 4, batch_first=True)

    def forward(self, x):
        return self.rnn(x, torch.zeros(1, len(x), 3))[0][:, -1, :2]


class OwnForward(nn.GRU):
    def forward(self, x, hx=None):
        return super().forward(2 * x, hx)


def bad_cases():
    model = seeded(lambda: LastStep(nn.GRU(3, 4, batch_first=True), 4))
    x, y = randn(2, 5, 3), randn(2, 2, seed=2)
    nan_x = x.clone()
    nan_x[1, 3, 0] = math.nan
    return [
        ((nn.Sequential(nn.Linear(3, 4)), x, y), {}, ValueError, r"model \(Sequential\) holds no nn.RNN, nn.LSTM or nn.GRU"),
        ((nn.GRU(3, 4).forward, x, y), {}, TypeError, r"model must be a torch.nn.Module, got method"),
        ((model, randn(2, 5, 4), y), {}, ValueError, r"model\(inputs\) raised ValueError: rnn takes \(N, T, input_size\) "
                                                     r"or unbatched \(T, input_size\) input with input_size=3, got a tensor "
                                                     r"of shape \(2, 5, 4\)"),
        ((seeded(CharLM), torch.full((2, 5), 99), torch.zeros(2, 5, dtype=torch.long)), {}, ValueError,
         r"model\(inputs\) raised IndexError: index out of range"),
        ((model, x, y), {"loss": lambda o, t: (o - t) ** 2}, ValueError,
         r"loss\(output, targets\) must return a scalar tensor computed from the predictions, got a tensor of shape \(2, 2\)"),
        ((model, x, y), {"loss": "mse"}, TypeError, r"loss must be a callable\(output, targets\)"),
        ((model, x, randn(2, 3)), {}, ValueError, r"targets has shape \(2, 3\): the default loss for float targets, mean "
                                                  r"squared error, needs the output's shape \(2, 2\)"),
        ((model, x, torch.zeros(2, 5, dtype=torch.long)), {}, ValueError,
         r"targets has shape \(2, 5\): the default loss for integer targets, cross-entropy, reads the output \(2, 2\) "
         r"as 2 rows of 2 class scores and needs 2 class indices"),
        ((model, x, torch.tensor([0, 2])), {}, ValueError, r"targets holds class indices from 0 to 2: expected 0 to 1"),
        ((model, nan_x, y), {}, ValueError, r"inputs holds NaN at index \(1, 3, 0\): the probe needs a finite batch"),
        ((seeded(Seq2Seq), (x[..., :1].expand(2, 5, 4), nan_x[..., :1].expand(2, 5, 5)), y), {}, ValueError,
         r"inputs\[1\] holds NaN at index \(1, 3, 0\)"),
        ((model, x, y.masked_fill(y > -10, math.inf)), {}, ValueError, r"targets holds inf at index \(0, 0\)"),
        ((seeded(Packs), x, randn(2, 5, 4)), {}, ValueError, r"rnn was given a PackedSequence: not supported"),
        ((seeded(WrongState), x, y), {}, ValueError, r"model\(inputs\) raised ValueError: rnn was given hx = a tensor "
                                                     r"of shape \(1, 2, 3\) \(torch.float32\): expected h_0 of shape "
                                                     r"\(1, 2, 4\)"),
        ((seeded(lambda: LastStep(OwnForward(3, 4), 4)), randn(2, 5, 3), y), {}, ValueError,
         r"rnn \(OwnForward\) has a forward of its own: not supported"),
    ]


@pytest.mark.parametrize("case", range(len(bad_cases())))
def test_bad_input_is_named_and_leaves_the_model_untouched(case):
    args, kwargs, error, message = bad_cases()[case]
    model = args[0]
    before = snapshot(model) if isinstance(model, nn.Module) else None
    with pytest.raises(error, match=message):
        api.probe_model(*args, **kwargs)
    if before is not None:
        assert_untouched(model, before)


# ----------------------------------------------------------------------------- what it shows

def test_the_picture_shows_every_module_and_the_findings_name_theirs():
    def make():
        model = Seq2Seq()
        with torch.no_grad():
            model.encoder.bias_ih_l0[7:14] = -3.0  # a shut forget gate
        return model
    got = api.probe_model(seeded(make), (randn(3, 8, 4), randn(3, 5, 5, seed=2)), randn(3, 5, 2, seed=3))
    root = ET.fromstring(got._repr_svg_())
    assert len(root.findall(f"{SVG}svg")) == 2 and len(root.findall(f".//{SVG}path")) == 2
    titles = " ".join(t.text for t in root.iter(f"{SVG}text"))
    assert "encoder: LSTM gradient profile" in titles and "decoder.rnn: LSTM gradient profile" in titles
    assert any(f.text.startswith("encoder: The LSTM's forget gate is not held open") for f in got.findings)
    assert got._repr_html_().count("<svg") == 2
    with pytest.raises(TypeError):
        got.modules["new"] = None  # read-only
