"""Plain-language badges naming what is happening in a run, for the status bar.

Pure functions of numpy and plain Python, no Qt and no torch: `diagnose(history) -> list[Badge]`,
most severe first. Runs on the GUI thread, every few frames, over any run history that offers
`.latest` (a Snapshot or None), `.diverged_at_step`, `.info.config`, `.info.baseline_loss` and
`.loss` (with `len()` and `.view()`, the loss per step, oldest first), and optionally `.exploded_at_step`,
as gui.history.RunHistory does. It also holds the bounds past which engine.trainer flags a run as exploded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SEVERITIES = ("error", "warning", "info")   # most severe first
SATURATION_SHOWN = 0.10                     # report saturation from 10% of units
BASELINE_FRACTION = 0.9                     # loss within 10% of the baseline counts as "at baseline"
ABOVE_BASELINE = 1.1                        # ... more than 10% over it as above it
FAR_ABOVE_BASELINE = 2.0                    # ... and twice the baseline or more as far above it
BASELINE_MIN_STEPS = 50                     # ... but only after this many steps
RECENT = 20                                 # steps averaged for "the loss now"
EXPLODED_LOSS = 1e8                         # a finite loss above this many times the task's baseline: exploded
#                                             (the answers are off by 10^4 times the targets' spread)
EXPLODED_GRAD_NORM = 1e8                    # ... and so is a finite total parameter-gradient norm above this,
#                                             as applied (after clipping: a gradient that clipping tames is no
#                                             explosion); ordinary runs stay under 1e4 (the IRNN lessons' first
#                                             steps reach 2e3), a spectral radius of 3 starts at 1e14
EXPLODING_ORDERS = 3                        # a gradient that grows a thousandfold going back is exploding;
#                                             less is "growing" (it may rise towards the inputs that matter)


def past_explosion_bounds(loss: float, baseline: float, grad_norm: float) -> bool:
    """Whether a finite step has exploded: loss above EXPLODED_LOSS x `baseline` (where the task has a
    positive baseline) or total parameter-gradient norm as applied (after clipping) above EXPLODED_GRAD_NORM."""
    return (baseline > 0 and loss > EXPLODED_LOSS * baseline) or grad_norm > EXPLODED_GRAD_NORM


def explosion_detail(loss: float, baseline: float, grad_norm: float) -> str:
    """Which bound a step passed, in plain words: `loss 5.1e+21 (3.1e+22 x the baseline; the bound is 1e+08 x)`."""
    parts = []
    if baseline > 0 and loss > EXPLODED_LOSS * baseline:
        parts.append(f"loss {loss:.2g} ({loss / baseline:.2g} x the baseline; the bound is {EXPLODED_LOSS:.0e} x)")
    if grad_norm > EXPLODED_GRAD_NORM:
        parts.append(f"gradient norm {grad_norm:.2g} (the bound is {EXPLODED_GRAD_NORM:.0e})")
    return ", ".join(parts)


@dataclass(frozen=True)
class Badge:
    text: str       # a few words for the status bar
    tooltip: str    # one or two sentences of explanation
    severity: str   # "error" | "warning" | "info"
    short: str = field(default="", compare=False)  # a word or two, for a crowded status bar ("" : none)


def saturated_what(info) -> str:
    """What a run's saturation counts (engine.probes): its sigmoid 'gates' where its cell has gates (LSTM, GRU,
    minGRU), else its activation's 'units' (the RNN, IndRNN). `info`: a RunInfo, or anything with gate_names."""
    return "gates" if getattr(info, "gate_names", ()) else "units"


def diagnose(history) -> list[Badge]:
    """What is happening in one run (a RunHistory), in plain words. A list of histories gives
    every run's badges, prefixed with the run number."""
    if isinstance(history, (list, tuple)):
        badges = []
        for i, h in enumerate(history):
            badges += [Badge(f"run {i + 1}: {b.text}", b.tooltip, b.severity, b.short and f"{i + 1}: {b.short}")
                       for b in diagnose(h)]
        return sorted(badges, key=lambda b: SEVERITIES.index(b.severity))
    badges: list[Badge] = []
    snap = history.latest
    if history.diverged_at_step is not None:
        badges.append(Badge(
            f"run diverged at step {history.diverged_at_step}",
            "The loss or the gradient became infinite or NaN, so training stopped. Lower the learning rate, "
            "turn on gradient clipping, or shrink the recurrent weights (spectral radius), then reset.",
            "error", "diverged"))
    exploded_at = getattr(history, "exploded_at_step", None)
    if exploded_at is not None and history.diverged_at_step is None:
        badges.append(Badge(
            f"run exploded at step {exploded_at}",
            f"Its loss passed {EXPLODED_LOSS:.0e} times the baseline, or the gradient norm of a training step "
            f"(after any clipping) passed {EXPLODED_GRAD_NORM:.0e}, "
            "while every number stayed finite: the training steps are huge and unstable. Training goes on and "
            "everything is kept: go on to see whether it recovers, or lower the learning rate, turn on "
            "gradient clipping or shrink the recurrent weights, then reset.",
            "error", "exploded"))
    if snap is not None and snap.grad_h.shape[1] > 1:
        orders = snap.orders_of_magnitude  # engine.probes.orders_lost of the top layer; NaN once diverged
        if orders == math.inf:  # the first step's gradient is exactly 0
            badges.append(Badge(
                "vanished: no gradient reaches the first step",
                "The learning signal is exactly zero at the first timestep: on every path back it meets a "
                "unit whose slope is 0 (a dead ReLU), or it shrank below the smallest number the computer "
                "can store (some 300 orders of magnitude below the last timestep). Nothing that depends on "
                "early inputs can be learned.",
                "warning", "vanished"))
        elif np.isfinite(orders) and orders >= 1:
            consequence = ("learning anything that depends on early inputs is slow or stalls while it lasts "
                           "(vanishing gradient)." if orders >= 4 else
                           "early inputs get a weaker learning signal, but a fall this small still lets a network "
                           "learn from them (the remedy lessons' LSTM and attention runs start under 2 and learn).")
            badges.append(Badge(  # under VANISHING_ORDERS (engine.api's: 4) it fades but is not vanishing (the LRU's
                #                     1.65 over 1000 steps, the lesson whose point is that it keeps its gradient)
                f"{'vanishing' if orders >= 4 else 'fading'}: {_orders(orders)} lost",
                f"The gradient at the first timestep is about 10^{orders:.0f} times weaker than at the last "
                f"({_orders(orders)}, powers of ten): {consequence}",
                "warning" if orders >= 4 else "info", "vanishing"))
        elif np.isfinite(orders) and -EXPLODING_ORDERS < orders <= -1:
            badges.append(Badge(
                f"growing: {_orders(-orders)} gained",
                f"The gradient at the first timestep is about 10^{-orders:.0f} times larger than at the last "
                f"({_orders(-orders)}, powers of ten): it grows on its way back. That can be healthy, where the "
                "answer depends on early inputs; a growth of a thousandfold or more is an exploding gradient.",
                "info", "growing"))
        elif np.isfinite(orders) and orders <= -EXPLODING_ORDERS:
            badges.append(Badge(
                f"exploding: {_orders(-orders)} gained",
                f"The gradient at the first timestep is about 10^{-orders:.0f} times larger than at the last "
                f"({_orders(-orders)}, powers of ten; an exploding gradient): training steps "
                "become huge and unstable. Clipping caps them.",
                "warning", "exploding"))
    # clipping has its own badge in the status bar (StatusBar.set_clipping), updated with every step
    if snap is not None and len(snap.saturation):
        sat = np.asarray(snap.saturation, dtype=np.float64)
        if np.isfinite(sat).any():
            worst = int(np.nanargmax(sat))
            share = float(sat[worst])
            if share >= SATURATION_SHOWN:
                what = saturated_what(history.info)
                where = f" (layer {worst + 1})" if len(sat) > 1 else ""
                badges.append(Badge(
                    f"{share * 100:.0f}% of {what} saturated{where}",
                    f"These {what} get inputs where their activation is flat (slope under 10% of its maximum), "
                    "so almost no gradient passes through them. Try: inputs scaled to mean 0 and sd 1, smaller "
                    "input weights, or a cell that does not saturate (lessons vanishing-tanh, fix-irnn).",
                    "warning" if share >= 0.5 else "info", f"{share * 100:.0f}% saturated"))
    badges += _baseline_badges(history)
    if snap is not None and getattr(history.info.config, "model", None):
        badges += _model_badges(history.info.config, snap)
    return sorted(badges, key=lambda b: SEVERITIES.index(b.severity))


SMALL_SIGMA = 0.5          # recurrent weights that shrink every vector to half or less, every step
SHUT_FORGET_GATE = 0.6     # an LSTM forget gate open less than this on average keeps too little per step


def _model_badges(config, snap) -> list[Badge]:
    """What the user's own model's weights and activity say, each with the remedy and the lesson that
    shows it (engine/api.py says the same of a probed module)."""
    name = config.model.replace("\\", "/").rsplit("/", 1)[-1]
    badges = []
    sigma = np.asarray(snap.sigma_max, dtype=np.float64)
    small = [k for k in range(len(sigma)) if np.isfinite(sigma[k]) and sigma[k] < SMALL_SIGMA]
    if small and config.cell == "rnn":
        badges.append(Badge(
            f"your model: recurrent weights shrink (σ {np.nanmin(sigma):.2f})",
            f"In {name}, the recurrent matrix of layer{'s' if len(small) > 1 else ''} "
            f"{', '.join(str(k + 1) for k in small)} stretches no vector by more than {np.nanmin(sigma):.2f}, so what "
            "each step hands back to the one before is at most that share of what it got (times the activation's "
            "slope: at most 1 for tanh and ReLU). Try: start it orthogonal, or rescale it towards a spectral radius "
            "of 1 (lesson fix-init).", "warning", "σ small"))
    if config.cell == "lstm" and snap.gate_means.shape[-1] >= 2:
        forget = np.asarray(snap.gate_means, dtype=np.float64)[:, 1]
        if np.isfinite(forget).any() and np.nanmin(forget) < SHUT_FORGET_GATE:
            badges.append(Badge(
                f"your model: forget gate {np.nanmin(forget):.2f} open",
                f"In {name}, the LSTM's forget gate is on average only {np.nanmin(forget):.2f} open, so the cell "
                "state keeps about that share of itself per step, and the part of the gradient handed back along "
                "it shrinks by the same share. "
                "Try: set the forget slice of bias_ih to 1 or 2 (bias_hh to 0), the standard recipe "
                "(lesson fix-lstm).", "warning", "forget gate"))
    return badges


def _baseline_badges(history) -> list[Badge]:
    baseline = history.info.baseline_loss
    if len(history.loss) < BASELINE_MIN_STEPS or not (np.isfinite(baseline) and baseline > 0):
        return []
    recent = history.loss.view()[-RECENT:]
    recent = recent[np.isfinite(recent)]
    if len(recent) == 0:
        return []
    mean = float(np.mean(recent))
    if mean >= FAR_ABOVE_BASELINE * baseline:
        return [Badge(
            "loss far above baseline",
            f"The loss ({mean:.3g}) is {mean / baseline:.3g} times that of always giving the best constant "
            f"answer ({baseline:.3g}): training has made the network worse than guessing, typically because "
            "its steps are too large (an exploding gradient, or too high a learning rate).",
            "warning", "far above baseline")]
    if mean > ABOVE_BASELINE * baseline:
        return [Badge(
            "loss above baseline",
            f"The loss ({mean:.3g}) is {mean / baseline:.3g} times that of always giving the best constant "
            f"answer ({baseline:.3g}): so far the network does worse than guessing.",
            "warning", "above baseline")]
    if mean >= BASELINE_FRACTION * baseline:
        return [Badge(
            "loss still at baseline",
            f"The loss ({mean:.3g}) is no better than always giving the best constant answer "
            f"({baseline:.3g}): the network has not learned anything yet.",
            "warning", "at baseline")]
    return []


def _orders(orders: float) -> str:
    """'1 order of magnitude', '12 orders of magnitude' (rounded to a whole number)."""
    n = round(orders)
    return f"{n} order{'' if n == 1 else 's'} of magnitude"
