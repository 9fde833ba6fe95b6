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
from torch.autograd.function import once_differentiable

from engine import cells, registry
from engine.config import Config

GATE_NAMES = {"rnn": (), "lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"),
              **cells.GATE_NAMES}
BUILT_IN = ("rnn", "lstm", "gru")  # written out below; every other cell follows engine.cells' protocol


@dataclass
class Trace:
    """What one forward pass leaves behind for the probes (time-major lists, one per layer)."""
    hidden: list = field(default_factory=list)      # [layer][t] -> (batch, hidden), in the graph
    outputs: list = field(default_factory=list)     # [layer] -> (T, batch, hidden) the same states, detached
    cell: list = field(default_factory=list)        # LSTM only: [layer][t] -> (batch, hidden)
    preact: list = field(default_factory=list)      # [layer][t] -> (batch, hidden) activation inputs
    gates: list = field(default_factory=list)       # [layer][t] -> (batch, n_sigmoid * hidden) sigmoid gate
    #   values: LSTM (input, forget, output), GRU (reset, update); None for rnn
    candidate: list = field(default_factory=list)   # LSTM, GRU: [layer][t] -> (batch, hidden) tanh candidate
    attention: torch.Tensor | None = None           # (batch, T) weights of the last output step
    factors: list = field(default_factory=list)     # protocol cells (engine.cells): [layer] -> [t] -> the step's
    #   own factor per unit where it depends on the input (minGRU 1 - z_t, S6 exp(delta_t A)), detached; else None


class _States:
    """Filled after the time loop with the layer's detached hidden states (T, batch, hidden)."""
    hidden: torch.Tensor | None = None


class _RecurrentWeightGrad(torch.autograd.Function):
    """`base + bias_hh`, whose backward also returns the gradient of the recurrent weights.

    The time loop multiplies by a detached copy of weight_hh, so each step's backward computes
    only dL/dh_{t-1} (one small matmul). The weight's gradient, sum_t dL/dz_t^T h_{t-1}, is then
    one large matmul here over all timesteps, instead of a small matmul and an add per step.
    `base` may be narrower than `bias_hh` (GRU: the candidate's recurrent term has no input part);
    the missing columns are the bias alone.
    """

    @staticmethod
    def forward(ctx, base, bias_hh, weight_hh, states):
        ctx.states, ctx.width = states, base.shape[-1]
        if base.shape[-1] == bias_hh.shape[0]:
            return base + bias_hh
        out = bias_hh.expand(*base.shape[:-1], bias_hh.shape[0]).clone()
        out[..., :base.shape[-1]] += base
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        rows = grad.shape[-1]
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[2]:
            hidden = ctx.states.hidden  # (T, batch, H): h_{t-1} for step t is hidden[t - 1]; h_{-1} = 0
            ctx.states = None
            grad_weight = grad[1:].reshape(-1, rows).t().mm(hidden[:-1].reshape(-1, hidden.shape[-1]))
        # (with detached weights, as in engine.detail, nothing is let go of: its graph may be walked again)
        if ctx.needs_input_grad[1]:
            grad_bias = grad.sum(dim=(0, 1))
        grad_base = grad if ctx.width == rows else grad[..., :ctx.width]
        return grad_base, grad_bias, grad_weight, None


def _recurrent_base(base, bias_hh, weight_hh, states):
    """`base + bias_hh` (bias_hh's extra columns alone where `base` is narrower), through
    _RecurrentWeightGrad where the weights learn; with weights that take no gradient (engine.detail's
    float64 copies) in plain operations, whose backward torch.func can batch over many answers at once."""
    if weight_hh.requires_grad or bias_hh.requires_grad:
        return _RecurrentWeightGrad.apply(base, bias_hh, weight_hh, states)
    if base.shape[-1] == bias_hh.shape[0]:
        return base + bias_hh
    width = base.shape[-1]
    return torch.cat([base + bias_hh[:width], bias_hh[width:].expand(*base.shape[:-1], -1)], dim=-1)


def _lstm_order(hidden: int) -> torch.Tensor:
    """Rows of PyTorch's (input, forget, cell, output) gate layout in the order (input, forget, output,
    cell), so the three sigmoid gates are one contiguous block inside the time loop."""
    i, f, g, o = torch.arange(4 * hidden).split(hidden)
    return torch.cat([i, f, o, g])


class RecurrentLayer(nn.Module):
    """One recurrent layer. Parameters are named and laid out exactly as in nn.RNN/LSTM/GRU."""

    def __init__(self, cell: str, input_size: int, hidden: int, activation: str = "tanh"):
        super().__init__()
        self.cell, self.hidden = cell, hidden
        self.gate_names = GATE_NAMES[cell]
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden))
        self.bias_hh = nn.Parameter(torch.empty(gates * hidden))
        bound = 1.0 / math.sqrt(hidden)  # PyTorch's default for its recurrent modules
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.act = registry.ACTIVATIONS[activation].factory() if cell == "rnn" else None
        if cell == "lstm":
            self.register_buffer("_gate_order", _lstm_order(hidden), persistent=False)

    def recurrent_blocks(self):
        """The square (hidden x hidden) blocks of the recurrent matrix, one per gate."""
        return self.weight_hh.data.split(self.hidden, dim=0)

    def max_slope(self) -> float:
        return self.act.max_slope() if self.act is not None else 1.0

    def gate_means(self, sigmoid_sums: torch.Tensor, sigmoid_count: int, candidate_sum: torch.Tensor) -> torch.Tensor:
        """LSTM and GRU: each gate's mean over a forward pass, in GATE_NAMES order, from sums over the
        pass's Trace: `sigmoid_sums` is each column of Trace.gates summed over time and batch,
        `sigmoid_count` how many values went into them, `candidate_sum` all of Trace.candidate summed.
        The time loop keeps its sigmoid gates side by side in an order of its own and the tanh candidate
        apart; only this layer knows that layout, so the probes ask it."""
        per_gate = max(sigmoid_count, 1) / (sigmoid_sums.numel() // self.hidden)  # T * batch * hidden values each
        sigmoid = sigmoid_sums.view(-1, self.hidden).sum(dim=1) / per_gate  # LSTM (input, forget, output), GRU (reset, update)
        candidate = (candidate_sum / per_gate).view(1)
        if self.cell == "lstm":  # PyTorch's order: input, forget, cell, output
            return torch.cat([sigmoid[:2], candidate, sigmoid[2:]])
        return torch.cat([sigmoid, candidate])  # gru: reset, update, new

    def forward(self, x: torch.Tensor, trace: Trace) -> torch.Tensor:
        """x: (T, batch, input). Returns the stacked hidden states (T, batch, hidden)."""
        return self.run(x, trace, stack=True)

    def run(self, x: torch.Tensor, trace: Trace, stack: bool):
        """The forward pass; with stack=False returns the list of hidden states instead, for a caller
        that needs only a few of them (stacking all T puts a gradient add on every step)."""
        steps, batch, H = x.shape[0], x.shape[1], self.hidden
        w_ih, b_ih, w_hh, b_hh = self.weight_ih, self.bias_ih, self.weight_hh, self.bias_hh
        # x W_ih^T takes W_ih^T as a contiguous (input, gates * H) copy where the input has a few channels
        # (the task's, into layer 0): the backward's input gradient, dL/dz @ W_ih, then multiplies by a
        # transposed view, 2-5x faster there than by the contiguous W_ih (measured: 61 against 238 us at
        # 2 channels, 6400 rows; from 16 channels on, alike)
        if self.cell == "lstm":  # work in (input, forget, output, cell) order; gradients map back
            order = self._gate_order  # (indexing copies either way: the columns' copy is the contiguous one)
            w_in, b_ih, w_hh, b_hh = w_ih.t()[:, order], b_ih[order], w_hh[order], b_hh[order]
        else:
            w_in = w_ih.t().contiguous() if w_ih.shape[1] < 16 else w_ih.t()
        xproj = torch.addmm(b_ih, x.reshape(steps * batch, -1), w_in).view(steps, batch, -1)
        states = _States()
        if self.cell == "gru":
            x_rz, x_n = xproj.split([2 * H, H], dim=2)
            # per step: [x_r + b_hr, x_z + b_hz, b_hn] + h W_hh^T, split after the matmul
            base = _recurrent_base(x_rz, b_hh, w_hh, states)
        else:
            base = _recurrent_base(xproj, b_hh, w_hh, states)
        w_rec = w_hh.detach().t()  # its gradient comes from _RecurrentWeightGrad
        h = x.new_zeros(batch, H)
        hs, pre = [], []
        if self.cell == "rnn":
            act = self.act.forward
            for zb in base.unbind(0):
                a = torch.addmm(zb, h, w_rec)
                h = act(a)
                pre.append(a)
                hs.append(h)
            trace.gates.append(None)
        elif self.cell == "lstm":
            c = h
            cs, sigmoid_gates, candidates = [], [], []
            for zb in base.unbind(0):
                z = torch.addmm(zb, h, w_rec)
                s_pre, g_pre = z.split([3 * H, H], dim=1)
                s = torch.sigmoid(s_pre)
                i, f, o = s.chunk(3, dim=1)
                g = torch.tanh(g_pre)
                c = torch.addcmul(f * c, i, g)
                h = o * torch.tanh(c)
                cs.append(c)
                hs.append(h)
                sigmoid_gates.append(s)
                candidates.append(g)
                pre.append(g_pre)
            trace.cell.append(cs)
            trace.gates.append(sigmoid_gates)
            trace.candidate.append(candidates)
        else:  # gru
            sigmoid_gates, candidates = [], []
            for zb, xn in zip(base.unbind(0), x_n.unbind(0)):
                z = torch.addmm(zb, h, w_rec)
                rz_pre, hn = z.split([2 * H, H], dim=1)
                rz = torch.sigmoid(rz_pre)
                r, u = rz.chunk(2, dim=1)
                n_pre = torch.addcmul(xn, r, hn)
                n = torch.tanh(n_pre)
                h = torch.lerp(n, h, u)  # (1 - u) * n + u * h
                hs.append(h)
                sigmoid_gates.append(rz)
                candidates.append(n)
                pre.append(n_pre)
            trace.gates.append(sigmoid_gates)
            trace.candidate.append(candidates)
        trace.preact.append(pre)
        trace.hidden.append(hs)
        if not stack:
            with torch.no_grad():
                states.hidden = torch.stack(hs)
            trace.outputs.append(states.hidden)
            return hs
        out = torch.stack(hs)
        states.hidden = out.detach()
        trace.outputs.append(states.hidden)
        return out


def register_cell(name: str, label: str, description: str, factory, gate_names: tuple = ()):
    """Offer a cell of your own (engine.cells' protocol) as the setting cell=`name` everywhere: the menus,
    --set, the probes. `factory(input_size, hidden, config, activation)` makes one layer's cell."""
    registry.CELLS[name] = registry.Entry(name, label, description, factory)
    GATE_NAMES[name] = tuple(gate_names)


class CellLayer(nn.Module):
    """One layer of a cell that follows engine.cells' protocol: the time loop around its `step`, filling
    the Trace as RecurrentLayer does, so every probe reads it the same way. The state at each step is the
    hidden node the probes measure (Trace.hidden); `read` turns the states into the layer's output.
    A cell with a parallel `scan` trains with it (its nodes' gradients are dL/dh_t all the same); the
    loop itself runs where `sequential` is asked for (engine.detail's look at one step)."""

    def __init__(self, cell: str, input_size: int, hidden: int, config: Config):
        super().__init__()
        self.cell, self.hidden = cell, hidden
        act = registry.ACTIVATIONS[config.activation].factory()
        self.module = registry.CELLS[cell].factory(input_size, hidden, config, act)
        self.gate_names = tuple(getattr(self.module, "gate_names", ()))

    def max_slope(self) -> float:
        slope = getattr(self.module, "max_slope", None)
        return float(slope()) if slope is not None else 1.0

    def eigenvalues(self) -> torch.Tensor | None:
        """The recurrence's fixed factors (complex, one per unit), or None where the input decides them."""
        fixed = getattr(self.module, "eigenvalues", None)
        return fixed() if fixed is not None else None

    def forward(self, x: torch.Tensor, trace: Trace, sequential: bool = False) -> torch.Tensor:
        return self.run(x, trace, True, sequential)

    def run(self, x: torch.Tensor, trace: Trace, stack: bool, sequential: bool = False) -> torch.Tensor:
        """x: (T, batch, input). Returns the outputs (T, batch, hidden) whatever `stack` says (indexing them
        per timestep costs nothing here: the states are stacked for `read` anyway)."""
        cell = self.module
        xp = cell.project(x) if hasattr(cell, "project") else x
        if not sequential and hasattr(cell, "scan"):
            states, nodes, parts = cell.scan(xp)
            gates = list(zip(*(g.unbind(0) for g in parts.get("gates", ())))) or [()] * len(nodes)
            factors = list(parts["factor"].unbind(0)) if "factor" in parts else None
            pre = list(parts["preact"].unbind(0)) if "preact" in parts else []
        else:
            state = cell.initial_state(x.shape[1], x)
            nodes, gates, pre, factors = [], [], [], []
            stepper = getattr(cell, "step_parts", None)
            for x_t in xp.unbind(0):
                state, parts = stepper(x_t, state) if stepper is not None else (cell.step(x_t, state), {})
                nodes.append(state)
                gates.append(tuple(parts.get("gates", ())))
                if "preact" in parts:
                    pre.append(parts["preact"])
                factors.append(parts.get("factor"))
            factors = factors if factors and factors[0] is not None else None
            states = torch.stack(nodes)
        out = cell.read(states, xp)
        trace.hidden.append(nodes)
        trace.gates.append(gates)
        trace.candidate.append([])
        trace.preact.append(pre)
        trace.factors.append(factors)
        trace.outputs.append(out.detach())
        return out


class RecurrentNet(nn.Module):
    """Stacked recurrent layers, optional residual skips between them, and a readout that sees
    either each answering step's top hidden state or (with attention) that plus an attention-
    weighted sum over all earlier top-layer states."""

    def __init__(self, config: Config, input_size: int, output_size: int):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            RecurrentLayer(config.cell, input_size if i == 0 else config.hidden, config.hidden, config.activation)
            if config.cell in BUILT_IN else
            CellLayer(config.cell, input_size if i == 0 else config.hidden, config.hidden, config)
            for i in range(config.layers))
        readout_in = config.hidden * (2 if config.attention else 1)
        if config.attention:
            self.query = nn.Linear(config.hidden, config.hidden, bias=False)
        self.readout = nn.Linear(readout_in, output_size)
        self.init_recurrent(config.init, config.spectral_radius)

    @torch.no_grad()
    def init_recurrent(self, init: str, spectral_radius: float | None):
        if self.config.cell not in BUILT_IN:  # the protocol's cells start as their papers do
            return
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
            if self.config.cell == "lstm" and self.config.forget_bias is not None:
                H = layer.hidden  # PyTorch's gate order: input, forget, cell, output
                layer.bias_ih[H:2 * H] = self.config.forget_bias
                layer.bias_hh[H:2 * H] = 0.0

    def layer_parameters(self):
        """Parameters grouped by recurrent layer (readout and attention excluded)."""
        return [list(layer.parameters()) for layer in self.layers]

    @torch.no_grad()
    def after_update(self):
        """Constraints a cell keeps on its weights (IndRNN's bound on |u|), after every optimizer step."""
        for layer in self.layers:
            constrain = getattr(getattr(layer, "module", None), "constrain_", None)
            if constrain is not None:
                constrain()

    def forward(self, x: torch.Tensor, output_steps: list[int], sequential: bool = False):
        """x: (batch, T, input). Returns outputs (batch, len(output_steps), out) and the Trace.
        `sequential`: a cell with a parallel scan (minGRU) walks time step by step instead, so each
        gate value is a node of its own (engine.detail)."""
        trace = Trace()
        inp = x.transpose(0, 1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            skip = self.config.skip and i > 0
            extra = {"sequential": True} if sequential and isinstance(layer, CellLayer) else {}
            if i == last and not self.config.attention:  # only the answering steps are read out
                hs = layer.run(inp, trace, stack=False, **extra)
                feats = torch.stack([hs[t] for t in output_steps])  # (n_out, batch, hidden)
                if skip:
                    feats = feats + inp[output_steps]
                break
            out = layer(inp, trace, **extra)
            inp = out + inp if skip else out
        else:
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
