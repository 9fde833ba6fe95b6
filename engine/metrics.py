"""A log of snapshots, turned into one array per probe (one row per step) for files and exports.

Runs on any thread. Used by the headless runner (metrics.npz) and by the GUI's exports. If the
shape of a probe changes mid-log (a rebuild with another seq_len or layer count), shorter rows
are padded with NaN so every array stays rectangular.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from engine.trainer import Snapshot

SCALARS = ("step", "loss", "metric", "grad_norm", "grad_norm_clipped", "clipped", "step_time", "diverged",
           "held_out_loss", "exploded")
ARRAYS = ("grad_h", "grad_c", "grad_x", "grad_norm_layer", "grad_norm_layer_clipped", "sigma_max",
          "max_slope", "saturation", "gate_means", "preact_hist", "attention", "eigenvalues", "step_factors")
# eigenvalues (steps, layers, H) complex: the recurrence's fixed factors (rnn: weight_hh's eigenvalues; lru:
# lambda; indrnn: u); step_factors (steps, layers, H, 3): each unit's factor per step at its 10/50/90% quantiles
# where the input decides it (mingru: 1 - z_t; ssm: exp(delta_t A)). Each only for the cells that have it, and
# the tanh RNN's eigenvalues only when asked for (`train --eigenvalues`; NaN at steps taken without them).


def _stack_padded(rows: list) -> np.ndarray:
    shape = tuple(max(s) for s in zip(*(r.shape for r in rows)))
    if all(r.shape == shape for r in rows):
        return np.stack(rows)
    out = np.full((len(rows),) + shape, np.nan, dtype=np.result_type(np.float64, *rows))  # complex stays complex
    for i, r in enumerate(rows):
        out[(i,) + tuple(slice(0, n) for n in r.shape)] = r
    return out


class MetricsLog:
    """Keeps snapshots (all of them, or the newest `max_rows`) and exports them as arrays."""

    def __init__(self, max_rows: int | None = None):
        self.snapshots: deque[Snapshot] = deque(maxlen=max_rows)

    def append(self, snap: Snapshot) -> None:
        self.snapshots.append(snap)

    def __len__(self):
        return len(self.snapshots)

    def to_arrays(self) -> dict[str, np.ndarray]:
        snaps = list(self.snapshots)
        out = {name: np.asarray([getattr(s, name) for s in snaps]) for name in SCALARS}
        for name in ARRAYS:
            rows = [None if getattr(s, name) is None else np.asarray(getattr(s, name)) for s in snaps]
            present = [r for r in rows if r is not None]
            if present and len(present) < len(rows):  # taken at some steps only (the tanh RNN's eigenvalues
                #                                       while asked for): NaN at the others
                blank = np.full(present[0].shape, np.nan, dtype=np.result_type(np.float64, present[0]))
                rows = [blank if r is None else r for r in rows]
            if present:
                out[name] = _stack_padded(rows)
        return out

    def save_npz(self, path, extra: dict | None = None) -> None:
        """The arrays, plus `extra` ones (engine.detail.to_arrays for `train --detail-every`)."""
        np.savez_compressed(path, **self.to_arrays(), **(extra or {}))

    def save_csv(self, path) -> None:
        """Scalar probes, one row per step, plus the per-layer first/last-timestep gradient norms."""
        arrays = self.to_arrays()
        columns = {name: arrays[name] for name in SCALARS}
        if "grad_h" in arrays:
            for layer in range(arrays["grad_h"].shape[1]):
                columns[f"grad_h_first_l{layer}"] = arrays["grad_h"][:, layer, 0]
                columns[f"grad_h_last_l{layer}"] = arrays["grad_h"][:, layer, -1]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(",".join(columns) + "\n")
            for i in range(len(self.snapshots)):
                fh.write(",".join(repr(float(col[i])) for col in columns.values()) + "\n")
