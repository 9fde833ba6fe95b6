"""Modern recurrent cells (LRU, minGRU, IndRNN, a selective state space), written against one protocol
that the lab's unrolled network accepts, so every probe works on them as on rnn, lstm and gru, and on a
cell of your own.

Runs on the trainer's thread. No Qt.

The protocol (as nn.RNNCell: a cell is a small module with one step; the loop is engine.model.CellLayer's):

    class MyCell(nn.Module):
        hidden_size: int                        # H, its units (the Units view's rows)
        gate_names: tuple = ()                  # names of per-step values whose gradients are shown too

        def initial_state(self, batch, like):   # the state before the first step: zeros, (batch, H) or
            ...                                 #   (batch, H, k) (k numbers per unit: LRU's (re, im), S6's N)
        def step(self, x_t, state):             # one step: the new state (same shape)
            ...
        def read(self, states, x):              # the hidden output (..., batch, H) the next layer and the
            ...                                 #   readout see, from states (..., batch, H[, k]) and inputs
                                                #   (..., batch, features): called once on all timesteps

    optional:
        project(x) -> x'                        # work on all timesteps at once before the loop (x W^T);
                                                #   step and read then get x' instead of x. It runs first in
                                                #   every pass, so it may also keep what all steps share
                                                #   (LRU's lambda) on the module for `step` to use
        step_parts(x_t, state) -> (state, parts)  # step, plus a dict of per-step values the probes read:
                                                #   "gates" (a tuple in gate_names order, each (batch, H),
                                                #   computed inside the step so their gradients are real),
                                                #   "preact" (the activation's input, for its histogram),
                                                #   "factor" (the step's own factor per unit where it depends
                                                #   on the input: minGRU's 1 - z_t, S6's exp(delta_t A))
        scan(x') -> (states, nodes, parts)      # a parallel form of the same recurrence, used for training
                                                #   (engine.model asks the loop for probes of one step seen
                                                #   closely); `nodes` are tensors whose gradient is dL/dh_t
        eigenvalues() -> complex (H,)           # the recurrence's fixed factors, where it has them
        max_slope() -> float                    # the largest slope one step back multiplies by
        constrain_()                            # called after every update (IndRNN's bound on |u|)

The state is what the probes measure: dL/d state_t at every timestep is grad_h; a unit's gradient is
the norm over its k numbers (LRU: the modulus of the complex gradient; S6: over its N state entries).

LRU keeps its complex state as real and imaginary parts, the last dimension of a real (batch, H, 2)
tensor: every probe, the float64 redo and the detail pass (float64 copies of the parameters) then work
unchanged, and PyTorch's complex autograd conventions never enter a gradient the lab reports.

References (their reference code was read for each): LRU, Orvieto et al. 2023, "Resurrecting recurrent
neural networks for long sequences"; minGRU, Feng et al. 2024, "Were RNNs all we needed?"; IndRNN, Li et
al. 2018, "Independently recurrent neural network"; S6, Gu and Dao 2023, "Mamba" (here without its
convolution and gate branches: the selective scan alone).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SSM_DT_MIN, SSM_DT_MAX = 1e-3, 1e-1   # Mamba's range for the initial step sizes (log-uniform)
LRU_MAX_PHASE = 2 * math.pi           # the LRU paper's default: phases anywhere on the circle
INDRNN_GROWTH = 2.0                   # IndRNN: |u| <= INDRNN_GROWTH ** (1 / T), so that u^T stays within it


class LRU(nn.Module):
    """Linear recurrent unit: h_t = lambda * h_{t-1} + gamma * (B x_t), y_t = Re(C h_t) + D x_t, with a
    diagonal complex lambda = exp(-exp(nu_log) + i exp(theta_log)), |lambda| < 1 however it trains.

    Ring initialisation: |lambda| on the ring r_min..r_max (uniform over the ring's area, as the
    paper's code draws it: |lambda|^2 uniform), phases uniform on 0..2 pi. gamma = sqrt(1 - |lambda|^2)
    normalises each state's input so a slow state (|lambda| near 1) does not grow large."""
    gate_names = ()

    def __init__(self, input_size: int, hidden: int, r_min: float = 0.9, r_max: float = 0.999,
                 normalise: bool = True):
        super().__init__()
        self.hidden_size = hidden
        r_min, r_max = min(r_min, r_max), max(r_min, r_max)
        u1, u2 = torch.rand(hidden), torch.rand(hidden)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)))
        self.theta_log = nn.Parameter(torch.log(LRU_MAX_PHASE * u2.clamp(min=1e-6)))
        self.B_re = nn.Parameter(torch.randn(hidden, input_size) / math.sqrt(2 * input_size))
        self.B_im = nn.Parameter(torch.randn(hidden, input_size) / math.sqrt(2 * input_size))
        self.C_re = nn.Parameter(torch.randn(hidden, hidden) / math.sqrt(hidden))
        self.C_im = nn.Parameter(torch.randn(hidden, hidden) / math.sqrt(hidden))
        self.D = nn.Parameter(torch.randn(hidden, input_size) / math.sqrt(input_size))
        self.gamma_log = None
        if normalise:
            modulus = torch.exp(-torch.exp(self.nu_log.detach()))
            self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus ** 2)))

    def _lambda(self):
        modulus = torch.exp(-torch.exp(self.nu_log))
        phase = torch.exp(self.theta_log)
        return modulus * torch.cos(phase), modulus * torch.sin(phase)

    def eigenvalues(self) -> torch.Tensor:
        re, im = self._lambda()
        return torch.complex(re.detach().float(), im.detach().float())

    def max_slope(self) -> float:
        return 1.0

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.hidden_size, 2)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """(T, batch, 3H): gamma * B x (real part, imaginary part) and D x, for every timestep at once; and
        lambda, which every step of this pass shares (kept until the next pass's project)."""
        gamma = torch.exp(self.gamma_log) if self.gamma_log is not None else 1.0
        self._pass_lambda = self._lambda()
        return torch.cat([(x @ self.B_re.t()) * gamma, (x @ self.B_im.t()) * gamma, x @ self.D.t()], dim=-1)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        H = self.hidden_size
        lam_re, lam_im = self._pass_lambda
        h_re, h_im = state.unbind(-1)
        new_re = lam_re * h_re - lam_im * h_im + x_t[..., :H]
        new_im = lam_re * h_im + lam_im * h_re + x_t[..., H:2 * H]
        return torch.stack([new_re, new_im], dim=-1)

    def read(self, states: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h_re, h_im = states.unbind(-1)
        return h_re @ self.C_re.t() - h_im @ self.C_im.t() + x[..., 2 * self.hidden_size:]


def _g(x):
    """minGRU's candidate activation: positive everywhere, so the scan can run on logarithms."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


class MinGRU(nn.Module):
    """minGRU: z_t = sigmoid(W_z x_t), h~_t = g(W_h x_t), h_t = (1 - z_t) h_{t-1} + z_t h~_t. Neither
    gate nor candidate sees h_{t-1}, so the recurrence is linear in h with factors 1 - z_t decided by
    the input alone, and all T states come from one parallel scan in log space (`scan`)."""
    gate_names = ("update", "candidate")

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden_size = hidden
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden, input_size))  # rows: update gate, candidate
        self.bias_ih = nn.Parameter(torch.empty(2 * hidden))
        bound = 1.0 / math.sqrt(input_size)  # nn.Linear's default
        for p in (self.weight_ih, self.bias_ih):
            nn.init.uniform_(p, -bound, bound)

    def max_slope(self) -> float:
        return 1.0

    def initial_state(self, batch, like):
        return like.new_zeros(batch, self.hidden_size)

    def project(self, x):
        return torch.addmm(self.bias_ih, x.reshape(-1, x.shape[-1]), self.weight_ih.t()).view(*x.shape[:-1], -1)

    def step_parts(self, x_t, state):
        k, c = x_t.split(self.hidden_size, dim=-1)
        z = torch.sigmoid(k)
        candidate = _g(c)
        h = torch.lerp(state, candidate, z)  # (1 - z) h + z h~
        return h, {"gates": (z, candidate), "factor": (1 - z).detach()}

    def step(self, x_t, state):
        return self.step_parts(x_t, state)[0]

    def read(self, states, x):
        return states

    def scan(self, xp):
        """All T states at once (Heinsen's log-space scan, as the paper's code): h_t = sum_k (prod_{j=k+1..t}
        a_j) b_k with a = 1 - z, b = z h~, from h_{-1} = 0. Returns the states, the T tensors b_t (their
        gradient is dL/dh_t: b_t enters h_t with factor 1 and nothing else), and the gates."""
        k, c = xp.split(self.hidden_size, dim=-1)
        z = torch.sigmoid(k)
        nodes = list((z * _g(c)).unbind(0))
        # the sums of logarithms in float64: in float32, a_star of a long sequence (-700 at T = 1000) keeps
        # only 5 digits, and every state after it would be off by 1e-5 of itself
        log_a = -F.softplus(k.double())  # log(1 - z)
        a_star = torch.cumsum(log_a, dim=0)
        log_h = a_star + torch.logcumsumexp(torch.log(torch.stack(nodes).double()) - a_star, dim=0)
        return torch.exp(log_h).to(xp.dtype), nodes, {"gates": (z, _g(c)), "factor": (1 - z).detach()}


class IndRNN(nn.Module):
    """IndRNN: h_t = act(W x_t + u * h_{t-1} + b), one recurrent weight per unit. The Jacobian one step
    back is diagonal, act'(.) * u: with ReLU a unit's gradient is multiplied by u_j exactly while it is
    active, so |u_j| <= 2^(1/T) keeps u_j^T within 2 (the paper's constraint, enforced after each update)."""
    gate_names = ()

    def __init__(self, input_size: int, hidden: int, activation: nn.Module, steps: int):
        super().__init__()
        self.hidden_size = hidden
        self.act = activation
        self.bound = INDRNN_GROWTH ** (1.0 / max(steps, 1))
        self.weight_ih = nn.Parameter(torch.randn(hidden, input_size) / math.sqrt(input_size))
        self.bias_ih = nn.Parameter(torch.zeros(hidden))
        self.weight_hh = nn.Parameter(torch.rand(hidden) * self.bound)  # u, uniform on [0, bound]

    def eigenvalues(self):
        return torch.complex(self.weight_hh.detach().float(), torch.zeros_like(self.weight_hh.detach().float()))

    def max_slope(self) -> float:
        return self.act.max_slope()

    @torch.no_grad()
    def constrain_(self):
        self.weight_hh.clamp_(-self.bound, self.bound)

    def initial_state(self, batch, like):
        return like.new_zeros(batch, self.hidden_size)

    def project(self, x):
        return torch.addmm(self.bias_ih, x.reshape(-1, x.shape[-1]), self.weight_ih.t()).view(*x.shape[:-1], -1)

    def step_parts(self, x_t, state):
        pre = torch.addcmul(x_t, self.weight_hh, state)
        return self.act(pre), {"preact": pre}

    def step(self, x_t, state):
        return self.step_parts(x_t, state)[0]

    def read(self, states, x):
        return states


class SelectiveSSM(nn.Module):
    """A small selective state space (S6, Mamba's scan without its convolution and gate branches): the
    input u_t = W_in x_t (H channels) decides a step size delta_t = softplus(W_dt u_t + b) per channel
    and B_t, C_t (N each); each channel j keeps N states,
        h_t[j, n] = exp(delta_t[j] A[j, n]) h_{t-1}[j, n] + delta_t[j] B_t[n] u_t[j],
        y_t[j] = sum_n C_t[n] h_t[j, n] + D[j] u_t[j],
    with A < 0 fixed in sign (S4D-real initialisation, A[j, n] = -(n + 1)). A large delta forgets and
    takes the input in; a small one keeps the state: the input decides when to remember."""
    gate_names = ("step size",)

    def __init__(self, input_size: int, hidden: int, state_size: int = 16):
        super().__init__()
        self.hidden_size, self.state_size = hidden, state_size
        self.rank = max(1, math.ceil(hidden / 16))  # Mamba's dt_rank
        self.in_proj = nn.Linear(input_size, hidden)
        self.x_proj = nn.Linear(hidden, self.rank + 2 * state_size, bias=False)
        self.dt_proj = nn.Linear(self.rank, hidden)
        with torch.no_grad():
            nn.init.uniform_(self.dt_proj.weight, -self.rank ** -0.5, self.rank ** -0.5)
            dt = torch.exp(torch.rand(hidden) * (math.log(SSM_DT_MAX) - math.log(SSM_DT_MIN)) + math.log(SSM_DT_MIN))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus(bias) = dt
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state_size + 1, dtype=torch.float32)).repeat(hidden, 1))
        self.D = nn.Parameter(torch.ones(hidden))

    def max_slope(self) -> float:
        return 1.0

    def initial_state(self, batch, like):
        return like.new_zeros(batch, self.hidden_size, self.state_size)

    def project(self, x):
        """(T, batch, 2H + 2N): u, the step size before its softplus, B and C, for every timestep at once."""
        u = self.in_proj(x)
        dt_in, B, C = self.x_proj(u).split([self.rank, self.state_size, self.state_size], dim=-1)
        self._pass_A = -torch.exp(self.A_log)  # every step of this pass shares it (kept until the next pass)
        return torch.cat([u, self.dt_proj(dt_in), B, C], dim=-1)

    def step_parts(self, x_t, state):
        H, N = self.hidden_size, self.state_size
        u, dt_pre, B = x_t[..., :H], x_t[..., H:2 * H], x_t[..., 2 * H:2 * H + N]
        delta = F.softplus(dt_pre)
        decay = torch.exp(delta.unsqueeze(-1) * self._pass_A)  # (batch, H, N)
        h = torch.addcmul(decay * state, (delta * u).unsqueeze(-1), B.unsqueeze(-2))
        return h, {"gates": (delta,), "factor": decay.detach()}

    def step(self, x_t, state):
        return self.step_parts(x_t, state)[0]

    def read(self, states, x):
        H, N = self.hidden_size, self.state_size
        u, C = x[..., :H], x[..., 2 * H + N:]
        return (states * C.unsqueeze(-2)).sum(-1) + self.D * u


# Factories, as registry.CELLS names them: factory(input_size, hidden, config, activation) -> a cell for one
# layer (`activation`: the activation setting's module, for a cell that uses it).

def lru(input_size: int, hidden: int, config, activation=None) -> LRU:
    return LRU(input_size, hidden, config.lru_r_min, config.lru_r_max, config.lru_gamma)


def mingru(input_size: int, hidden: int, config, activation=None) -> MinGRU:
    return MinGRU(input_size, hidden)


def indrnn(input_size: int, hidden: int, config, activation=None) -> IndRNN:
    return IndRNN(input_size, hidden, activation, config.seq_len)


def ssm(input_size: int, hidden: int, config, activation=None) -> SelectiveSSM:
    return SelectiveSSM(input_size, hidden, config.ssm_state)


GATE_NAMES = {"lru": LRU.gate_names, "mingru": MinGRU.gate_names, "indrnn": IndRNN.gate_names,
              "ssm": SelectiveSSM.gate_names}
