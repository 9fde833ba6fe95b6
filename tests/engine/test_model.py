"""The unrolled model computes exactly what PyTorch's fused nn.RNN/LSTM/GRU compute with the same weights,
and the recurrent initializers do what their names promise."""
import pytest
import torch
from torch import nn

from engine.config import Config
from engine.model import RecurrentLayer, RecurrentNet, Trace

T, B, IN, H = 7, 3, 4, 5


def _copy_into(module: nn.Module, layers):
    """Copy our layers' weights into a fused PyTorch module (names differ only by the _l{k} suffix)."""
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{name}_l{k}").copy_(getattr(layer, name))


def _reference(cell, activation, num_layers, input_size=IN):
    if cell == "rnn":
        return nn.RNN(input_size, H, num_layers=num_layers, nonlinearity=activation).double()
    return {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, H, num_layers=num_layers).double()


CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@pytest.mark.parametrize("cell, activation", CELLS)
def test_layer_matches_pytorch(cell, activation):
    torch.manual_seed(1)
    layer = RecurrentLayer(cell, IN, H, activation).double()
    ref = _reference(cell, activation, 1)
    _copy_into(ref, [layer])
    x = torch.randn(T, B, IN, dtype=torch.float64)
    trace = Trace()
    ours = layer(x, trace)
    theirs, final = ref(x)
    assert ours.shape == (T, B, H)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.stack(trace.hidden[0]), theirs, rtol=0, atol=1e-10)
    if cell == "lstm":
        h_n, c_n = final
        torch.testing.assert_close(trace.cell[0][-1], c_n[0], rtol=0, atol=1e-10)
    else:
        assert trace.cell == []


def test_parameter_layout_matches_pytorch():
    for cell in ("rnn", "lstm", "gru"):
        ours = dict(RecurrentLayer(cell, IN, H).named_parameters())
        theirs = {k[:-3]: v for k, v in _reference(cell, "tanh", 1).named_parameters()}
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("cell, activation", CELLS)
def test_stacked_net_matches_pytorch(cell, activation):
    config = Config(cell=cell, activation=activation, hidden=H, layers=3, seq_len=T)
    torch.manual_seed(2)
    net = RecurrentNet(config, IN, 2).double()
    ref = _reference(cell, activation, 3)
    _copy_into(ref, net.layers)
    x = torch.randn(B, T, IN, dtype=torch.float64)
    out, trace = net(x, [T - 1])
    theirs, final = ref(x.transpose(0, 1))
    h_n = final[0] if cell == "lstm" else final
    torch.testing.assert_close(torch.stack(trace.hidden[-1]), theirs, rtol=0, atol=1e-10)
    for k in range(3):  # every layer's last state
        torch.testing.assert_close(trace.hidden[k][-1], h_n[k], rtol=0, atol=1e-10)
    expected = net.readout(theirs[-1]).unsqueeze(1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell, activation", CELLS)
@pytest.mark.parametrize("input_size", [2, 20])  # a few input channels (W_ih^T copied), and many
def test_stacked_net_gradients_match_pytorch(cell, activation, input_size):
    """dL/dx and every layer's weight gradients equal those of PyTorch's fused module: the engine's own
    backward pieces (the recurrent weight's gradient in one matmul, the input projection's transposed
    copy, the LSTM's gate reordering) change how they are computed, not what."""
    config = Config(cell=cell, activation=activation, hidden=H, layers=3, seq_len=T)
    torch.manual_seed(4)
    net = RecurrentNet(config, input_size, 2).double()
    ref = _reference(cell, activation, 3, input_size)
    _copy_into(ref, net.layers)
    x = torch.randn(B, T, input_size, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().transpose(0, 1).clone().requires_grad_(True)
    out, _ = net(x, list(range(T)))
    theirs, _ = ref(x_ref)
    weights = torch.randn(B, T, 2, dtype=torch.float64)  # a loss that reads every output step
    (out * weights).sum().backward()
    (net.readout(theirs).transpose(0, 1) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad.transpose(0, 1), rtol=0, atol=1e-10)
    for k, layer in enumerate(net.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            torch.testing.assert_close(getattr(layer, name).grad, getattr(ref, f"{name}_l{k}").grad,
                                       rtol=0, atol=1e-10, msg=f"layer {k} {name}")


def test_skip_connections_add_each_layers_input_above_the_first():
    config = Config(hidden=H, layers=3, seq_len=T, skip=True)
    torch.manual_seed(3)
    net = RecurrentNet(config, IN, 1).double()
    singles = [_reference("rnn", "tanh", 1, IN if k == 0 else H) for k in range(3)]
    for ref, layer in zip(singles, net.layers):
        _copy_into(ref, [layer])
    x = torch.randn(B, T, IN, dtype=torch.float64)
    out, trace = net(x, list(range(T)))
    h0 = singles[0](x.transpose(0, 1))[0]
    h1 = singles[1](h0)[0]
    top_in = h1 + h0
    h2 = singles[2](top_in)[0]
    torch.testing.assert_close(torch.stack(trace.hidden[2]), h2, rtol=0, atol=1e-10)
    torch.testing.assert_close(out, net.readout(h2 + top_in).transpose(0, 1), rtol=0, atol=1e-10)


def _manual_rnn(x, layer, act):
    h = x.new_zeros(x.shape[1], layer.hidden)
    hs = []
    for x_t in x:
        h = act(x_t @ layer.weight_ih.T + layer.bias_ih + h @ layer.weight_hh.T + layer.bias_hh)
        hs.append(h)
    return torch.stack(hs)


@pytest.mark.parametrize("activation, fn", [
    ("sigmoid", torch.sigmoid), ("linear", lambda a: a),
    ("leaky_relu", lambda a: torch.where(a > 0, a, 0.01 * a)),
    ("prelu", lambda a: torch.where(a > 0, a, 0.25 * a)),  # PReLU starts at slope 0.25
])
def test_other_activations_follow_the_textbook_recurrence(activation, fn):
    torch.manual_seed(4)
    layer = RecurrentLayer("rnn", IN, H, activation).double()
    x = torch.randn(T, B, IN, dtype=torch.float64)
    torch.testing.assert_close(layer(x, Trace()), _manual_rnn(x, layer, fn), rtol=0, atol=1e-10)


def test_attention_is_causal_and_normalised():
    config = Config(task="copy", hidden=H, seq_len=4, attention=True)
    torch.manual_seed(5)
    net = RecurrentNet(config, IN, 3).double()
    x = torch.randn(B, T, IN, dtype=torch.float64)
    out, trace = net(x, [2, T - 1])
    assert out.shape == (B, 2, 3)
    torch.testing.assert_close(trace.attention.sum(-1), torch.ones(B, dtype=torch.float64))
    # the answer at step 2 must not depend on inputs after step 2
    x2 = x.clone()
    x2[:, 3:] += 1.0
    out2, _ = net(x2, [2, T - 1])
    torch.testing.assert_close(out2[:, 0], out[:, 0], rtol=0, atol=1e-12)
    assert not torch.allclose(out2[:, 1], out[:, 1])


# ----------------------------------------------------------------------------- initializers

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("init, radius", [("default", 1.5), ("orthogonal", 0.9), ("normal", 0.5), ("he", 2.0)])
def test_spectral_radius_init_gives_that_radius_in_every_gate_block(cell, init, radius):
    torch.manual_seed(6)
    net = RecurrentNet(Config(cell=cell, init=init, spectral_radius=radius, hidden=16, layers=2), 2, 1)
    blocks = [b for layer in net.layers for b in layer.weight_hh.detach().double().split(16)]
    assert len(blocks) == 2 * {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    for block in blocks:
        rho = torch.linalg.eigvals(block).abs().max().item()
        assert rho == pytest.approx(radius, rel=1e-5)


def test_orthogonal_init_is_orthogonal_and_identity_init_zeroes_biases():
    torch.manual_seed(7)
    net = RecurrentNet(Config(init="orthogonal", hidden=12), 2, 1)
    w = net.layers[0].weight_hh.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(12, dtype=torch.float64), atol=1e-5, rtol=0)
    net = RecurrentNet(Config(init="identity", activation="relu", hidden=12, layers=2), 2, 1)
    for layer in net.layers:
        assert torch.equal(layer.weight_hh.detach(), torch.eye(12))
        assert not layer.bias_ih.any() and not layer.bias_hh.any()


def test_default_init_is_pytorchs_uniform_bound():
    torch.manual_seed(8)
    net = RecurrentNet(Config(hidden=400), 2, 1)
    for p in net.layers[0].parameters():
        assert p.abs().max().item() <= 400 ** -0.5
        assert p.abs().max().item() > 0.95 * 400 ** -0.5


def test_forget_bias_sets_only_the_lstm_forget_gate_biases():
    import pytest as _pytest
    from engine.config import Config as _Config, ConfigError as _ConfigError
    from engine.model import RecurrentNet as _Net
    torch.manual_seed(0)
    net = _Net(_Config(cell="lstm", hidden=6, layers=2, forget_bias=1.5), input_size=2, output_size=1)
    for layer in net.layers:
        H = layer.hidden
        assert torch.all(layer.bias_ih[H:2 * H] == 1.5) and torch.all(layer.bias_hh[H:2 * H] == 0)
        assert not torch.all(layer.bias_ih[:H] == 1.5)  # the other gates keep PyTorch's init
    torch.manual_seed(0)
    plain = _Net(_Config(cell="lstm", hidden=6, layers=2), input_size=2, output_size=1)
    torch.manual_seed(0)
    again = _Net(_Config(cell="lstm", hidden=6, layers=2, forget_bias=1.5), input_size=2, output_size=1)
    H = 6
    assert torch.equal(plain.layers[0].weight_hh, again.layers[0].weight_hh)
    assert torch.equal(plain.layers[0].bias_ih[:H], again.layers[0].bias_ih[:H])
    for bad in (float("nan"), 11.0, True, "high"):
        with _pytest.raises(_ConfigError, match="forget_bias"):
            _Config(forget_bias=bad)
