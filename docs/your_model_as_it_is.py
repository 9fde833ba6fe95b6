"""Your own model as it is, in your own training loop: watch its LSTM's gradients, probe every module.

    python docs/your_model_as_it_is.py       # about 10 s on two CPU cores; writes runs/lm where it runs
    python main.py --follow runs/lm          # the window follows that run folder

The source of docs/your_model_as_it_is.ipynb: each `# %%` below is one notebook cell (`[markdown]` cells
are the notebook's text). After an edit here, `python docs/run_notebook.py` rebuilds the notebook and
saves its outputs in it. It needs the lab installed (`pip install` it, or `make` in a checkout), or
PYTHONPATH pointing to a checkout.
"""

# %% [markdown]
# # Your model as it is
#
# A character-level language model written in plain PyTorch, trained in its own plain loop. The lab
# watches that loop without changing it (`rnn_gradient_lab.watch`), then measures one batch through
# every recurrent module inside the model (`rnn_gradient_lab.probe_model`): how much of the loss's
# gradient reaches each timestep of each layer. The window can follow the run as it trains.

# %%
import torch
from torch import nn

import rnn_gradient_lab  # the lab's Python API, under a name your own folders cannot shadow

torch.manual_seed(0)
text = (rnn_gradient_lab.RESOURCES / "lady_susan.txt").read_text(encoding="utf-8")  # ships with the lab
vocabulary = sorted(set(text))
codes = torch.tensor([vocabulary.index(ch) for ch in text])
print(f"{len(text):,} characters, {len(vocabulary)} distinct")

# %% [markdown]
# ## The model: embedding, a two-layer LSTM, a small head
#
# Nothing here knows about the lab.

# %%
class CharLM(nn.Module):
    def __init__(self, vocab: int, embed: int = 16, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, vocab))

    def forward(self, x):                # x: (batch, time) character codes
        states, _ = self.lstm(self.embed(x))
        return self.head(states)         # (batch, time, vocab): the next character at every timestep


def batch(size: int = 32, length: int = 48):
    starts = torch.randint(0, len(codes) - length - 1, (size,))
    window = torch.stack([codes[s:s + length + 1] for s in starts])
    return window[:, :-1], window[:, 1:]  # inputs, and the characters that follow them


model = CharLM(len(vocabulary))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

# %% [markdown]
# ## Your loop, watched
#
# `watch` measures step 1 and every 10th step on that step's own batch, before the optimizer moves the
# weights, and appends it to the run folder `runs/lm`. The loop itself is unchanged: training goes
# exactly as it would unwatched. `replace=True` lets the notebook run again over its last run.

# %%
with rnn_gradient_lab.watch(model, out="runs/lm", every=10, replace=True) as watcher:
    for step in range(1, 151):
        x, y = batch()
        loss = nn.functional.cross_entropy(model(x).reshape(-1, len(vocabulary)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        watcher.log(loss)  # optional: the run records the loss of the steps it measures
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step}: loss {loss.item():.3f}")

# %% [markdown]
# The run folder holds what was measured, as arrays: one row per measured step.

# %%
run = rnn_gradient_lab.load_run("runs/lm")
lstm = run.modules["lstm"]
print("measured steps:", run.steps.tolist())
print("loss:", [round(value, 2) for value in run.loss.tolist()])
print("grad_h:", lstm.grad_h.shape, "(steps, layers, timesteps)")

# %% [markdown]
# ## Every recurrent module, on one batch
#
# `probe_model` runs the model on a batch with its LSTM unrolled one timestep at a time and asks autograd
# for d loss / d h_t at every timestep of both layers (float64 where float32 would lose it). The model is
# left exactly as it was. A notebook shows a module's result as its gradient profile, one line per layer.

# %%
x, y = batch()
result = rnn_gradient_lab.probe_model(model, x, y)  # cross-entropy, as the loop above
print(result.summary())
result.modules["lstm"]  # one module's profile; `result` alone shows every module's, with the summary

# %% [markdown]
# Every timestep has a prediction of its own here, so each h_t gets gradient from its own loss term and
# the profile stays level. How far back does one prediction reach? Give `probe_model` a loss that reads
# the last character's prediction only:

# %%
def last_character(output, targets):
    return nn.functional.cross_entropy(output[:, -1], targets[:, -1])


last = rnn_gradient_lab.probe_model(model, x, y, loss=last_character)
print(last.summary())
last.modules["lstm"]

# %% [markdown]
# What the last prediction learns from the first characters of its window arrives some eight powers of ten
# weaker than what it learns from the last few. The finding names the remedy, and a lesson shows it
# working: `python main.py --lesson fix-lstm`.

# %% [markdown]
# ## In the window
#
# The window follows a run folder while the loop writes it, and opens a finished one:
#
#     python main.py --follow runs/lm
#
# (from the lab's checkout; give the path to the folder this notebook ran in).
