"""The recurrent network, unrolled step by step so every hidden state is a node we can probe.

Runs on the trainer's thread. PyTorch's fused nn.RNN/LSTM/GRU hide the per-timestep states, so
the cells are written out here with PyTorch's own parameter names and gate order (tests load
the same weights into nn.RNN/LSTM/GRU and compare). For speed, each layer projects its input for
all timesteps at once, walks time with `unbind`, and uses `addmm` for the recurrence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from engine import registry
from engine.config import Config

GATE_NAMES = {"rnn": (), "lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}


@dataclass
class Trace:
    """What one forward pass leaves behind for the probes (time-major lists, one per layer)."""
    hidden: list = field(default_factory=list)      # [layer][t] -> (batch, hidden), in the graph
    cell: list = field(default_factory=list)        # LSTM only: [layer][t] -> (batch, hidden)
    preact: list = field(default_factory=list)      # [layer] -> (T, batch, hidden) activation inputs
    gates: list = field(default_factory=list)       # [layer] -> (T, batch, n_gates, hidden) gate values
    attention: torch.Tensor | None = None           # (batch, T) weights of the last output step


class RecurrentLayer(nn.Module):
    """One recurrent layer. Parameters are named and laid out exactly as in nn.RNN/LSTM/GRU."""

    def __init__(self, cell: str, input_size: int, hidden: int, activation: str = "tanh"):
        super().__init__()
        self.cell, self.hidden = cell, hidden
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden))
        self.bias_hh = nn.Parameter(torch.empty(gates * hidden))
        bound = 1.0 / math.sqrt(hidden)  # PyTorch's default for its recurrent modules
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.act = registry.ACTIVATIONS[activation].factory() if cell == "rnn" else None

    def recurrent_blocks(self):
        """The square (hidden x hidden) blocks of the recurrent matrix, one per gate."""
        return self.weight_hh.data.split(self.hidden, dim=0)

    def max_slope(self) -> float:
        return self.act.max_slope() if self.act is not None else 1.0

    def forward(self, x: torch.Tensor, trace: Trace) -> torch.Tensor:
        """x: (T, batch, input). Returns the stacked hidden states (T, batch, hidden)."""
        steps, batch = x.shape[0], x.shape[1]
        xproj = torch.addmm(self.bias_ih, x.reshape(steps * batch, -1), self.weight_ih.t())
        xproj = xproj.view(steps, batch, -1)
        w_hh = self.weight_hh.t()
        h = x.new_zeros(batch, self.hidden)
        hs = []
        if self.cell == "rnn":
            xproj = xproj + self.bias_hh
            pre = []
            act = self.act
            for xp in xproj.unbind(0):
                a = torch.addmm(xp, h, w_hh)
                h = act(a)
                pre.append(a)
                hs.append(h)
            trace.preact.append(pre)
            trace.gates.append(None)
        elif self.cell == "lstm":
            xproj = xproj + self.bias_hh
            c = h
            cs, gate_values, pre = [], [], []
            H = self.hidden
            for xp in xproj.unbind(0):
                z = torch.addmm(xp, h, w_hh)
                s = torch.sigmoid(z)
                i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
                g_pre = z[:, 2 * H:3 * H]
                g = torch.tanh(g_pre)
                c = torch.addcmul(f * c, i, g)
                h = o * torch.tanh(c)
                cs.append(c)
                hs.append(h)
                gate_values.append(s)
                pre.append(g_pre)
            trace.cell.append(cs)
            trace.preact.append(pre)
            trace.gates.append(gate_values)
        else:  # gru
            H = self.hidden
            gate_values, pre = [], []
            b_hh = self.bias_hh
            for xp in xproj.unbind(0):
                hp = torch.addmm(b_hh, h, w_hh)
                rz = torch.sigmoid(xp[:, :2 * H] + hp[:, :2 * H])
                r, u = rz[:, :H], rz[:, H:]
                n_pre = torch.addcmul(xp[:, 2 * H:], r, hp[:, 2 * H:])
                n = torch.tanh(n_pre)
                h = torch.lerp(n, h, u)  # (1 - u) * n + u * h
                hs.append(h)
                gate_values.append(rz)
                pre.append(n_pre)
            trace.preact.append(pre)
            trace.gates.append(gate_values)
        trace.hidden.append(hs)
        return torch.stack(hs)


class RecurrentNet(nn.Module):
    """Stacked recurrent layers, optional residual skips between them, and a readout that sees
    either each answering step's top hidden state or (with attention) that plus an attention-
    weighted sum over all earlier top-layer states."""

    def __init__(self, config: Config, input_size: int, output_size: int):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            RecurrentLayer(config.cell, input_size if i == 0 else config.hidden, config.hidden, config.activation)
            for i in range(config.layers))
        readout_in = config.hidden * (2 if config.attention else 1)
        if config.attention:
            self.query = nn.Linear(config.hidden, config.hidden, bias=False)
        self.readout = nn.Linear(readout_in, output_size)
        self.init_recurrent(config.init, config.spectral_radius)

    @torch.no_grad()
    def init_recurrent(self, init: str, spectral_radius: float | None):
        fn = registry.INITIALIZERS[init].factory
        for layer in self.layers:
            for block in layer.recurrent_blocks():
                fn(block)
                if spectral_radius is not None:
                    rho = torch.linalg.eigvals(block.double()).abs().max().item()
                    if rho > 0:
                        block.mul_(spectral_radius / rho)
            if init == "identity":  # the IRNN recipe starts from zero biases
                layer.bias_ih.zero_()
                layer.bias_hh.zero_()

    def layer_parameters(self):
        """Parameters grouped by recurrent layer (readout and attention excluded)."""
        return [list(layer.parameters()) for layer in self.layers]

    def forward(self, x: torch.Tensor, output_steps: list[int]):
        """x: (batch, T, input). Returns outputs (batch, len(output_steps), out) and the Trace."""
        trace = Trace()
        inp = x.transpose(0, 1)
        for i, layer in enumerate(self.layers):
            out = layer(inp, trace)
            inp = out + inp if (self.config.skip and i > 0) else out
        top = inp  # (T, batch, hidden)
        feats = top[output_steps]  # (n_out, batch, hidden)
        if self.config.attention:
            q = self.query(feats)  # (n_out, batch, hidden)
            scores = torch.einsum("obh,tbh->bot", q, top) / math.sqrt(self.config.hidden)
            steps = torch.arange(top.shape[0], device=x.device)
            causal = steps[None, :] > torch.as_tensor(output_steps, device=x.device)[:, None]
            weights = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
            context = torch.einsum("bot,tbh->obh", weights, top)
            feats = torch.cat([feats, context], dim=-1)
            trace.attention = weights[:, -1, :]
        return self.readout(feats).transpose(0, 1), trace
