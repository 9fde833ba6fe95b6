"""Train an nn.LSTM in plain PyTorch, save it, probe it, and open it in the lab.

    python docs/your_own_lstm.py                   # trains for a few seconds, writes my_lstm.pt
    python main.py --model my_lstm.pt --data resources/sunspots_monthly.csv --set seq_len=48

The model is what a practitioner writes: an LSTM encoder and a Linear head in a module of their own,
trained on the monthly sunspot numbers that ship with the lab (resources/DATA.md), windows of 48
months predicting the next month, features scaled as the lab scales them (mean 0, sd 1 over the first
nine tenths). Only the state_dict is saved: the lab reads it with torch.load(weights_only=True).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere in a checkout

from engine.api import probe  # noqa: E402  (after the path: the lab's Python API)

SERIES = ROOT / "resources" / "sunspots_monthly.csv"


class Forecaster(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.encoder = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.encoder(x)
        return self.head(out[:, -1])  # the next month, from the last step


def windows(window: int):
    with open(SERIES, newline="") as fh:
        values = np.array([float(row["sunspots"]) for row in csv.DictReader(fh)], dtype=np.float32)
    train = int(len(values) * 0.9)
    scaled = (values - values[:train].mean()) / values[:train].std()
    starts = np.arange(train - window)
    x = np.stack([scaled[s:s + window] for s in starts])[:, :, None]
    y = scaled[starts + window][:, None]
    return torch.from_numpy(x), torch.from_numpy(y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="my_lstm.pt", help="where to save the state_dict (default my_lstm.pt)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--hidden", type=int, default=64, help="LSTM units (default 64)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = windows(48)
    model = Forecaster(args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(1, args.steps + 1):
        batch = torch.randint(0, len(x), (64,))
        loss = nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.4f} (predicting the mean scores about 1.0)")
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out}")
    result = probe(model.encoder, x[:64], y[:64], readout=model.head)
    print(result.summary())
    print(f"\nopen it in the lab:\n  python main.py --model {args.out} --data {SERIES.relative_to(ROOT)} --set seq_len=48")
    return 0


if __name__ == "__main__":
    sys.exit(main())
