"""Eigenvalues view: the complex plane with the unit circle, and in it what one step back in time
multiplies each unit's gradient by: the recurrence's eigenvalues where they are fixed (tanh RNN: those of
weight_hh, with a dashed circle at its largest singular value; LRU: lambda; IndRNN: u), or, where the input
decides them anew at every step (minGRU: 1 - z_t; selective SSM: exp(delta_t A)), each unit's factors over
the step's timesteps and batch. They move as training runs; a fading trail shows the last few steps.

GUI thread only. Reads `RunHistory.latest.eigenvalues` / `.step_factors` / `.sigma_max` and `RunHistory.trail`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.probes import EIGEN_MAX_HIDDEN
from gui.views._axes import add_plot
from gui.views._common import PlotArea, TitleLabel, brush, pen, style_plot, vbox
from gui.views.base import ChooserView

CIRCLE = np.exp(1j * np.linspace(0, 2 * np.pi, 361))
TRAIL_ALPHA = 0.12       # the oldest trail step's dots; newer ones up to TRAIL_ALPHA * 3
SPREAD = 0.08            # real factors (step factors; IndRNN's u): each unit's dot sits this far above or below the
#   axis at most, by its unit number, so a thousand dots (and their 10%-90% bars) do not hide behind each other
LABELS = {"left": ("imaginary part", "imag"), "bottom": ("real part (one step back multiplies by this)", "real part")}
EMPTY = "No fixed factors for this cell: the LSTM's and GRU's gates decide them anew at every step."
NOT_TAKEN = ("The tanh RNN's eigenvalues are taken at each step while this view is shown (or a lesson reads "
             "them): from the next step trained")
TOO_LARGE = f"The tanh RNN's eigenvalues are taken up to {EIGEN_MAX_HIDDEN} units: this network has {{hidden}}"


def spread(units: int) -> np.ndarray:
    """(units,) offsets of a real factor's dots from the axis: unit j at a fixed height in -SPREAD..SPREAD."""
    return (((np.arange(units) * 0.618034) % 1.0) * 2 - 1) * SPREAD


def points(snap, layer: int):
    """(x, y, low, high) of one layer in a snapshot: the eigenvalues' real and imaginary parts (low, high
    None), or each unit's median step factor at its spread height with its 10% and 90% quantiles; None
    where the snapshot has neither."""
    if snap is None:
        return None
    if snap.eigenvalues is not None and layer < len(snap.eigenvalues):
        values = np.asarray(snap.eigenvalues[layer])
        if not np.any(values.imag):  # a diagonal of real numbers (IndRNN's u): spread off the axis as well
            return values.real.astype(float), spread(len(values)), None, None
        return values.real.astype(float), values.imag.astype(float), None, None
    if snap.step_factors is not None and layer < len(snap.step_factors):
        low, mid, high = np.asarray(snap.step_factors[layer], dtype=float).T
        return mid, spread(len(mid)), low, high
    return None


def summary(snap, layers: int, config=None) -> str:
    """The title: what the largest factor is and what that means for the gradient (`config`: the run's, to say
    why a tanh RNN's step has no eigenvalues)."""
    if snap is None:
        return "Waiting for a training step"
    if snap.eigenvalues is None and config is not None and config.cell == "rnn":
        return TOO_LARGE.format(hidden=config.hidden) if config.hidden > EIGEN_MAX_HIDDEN else NOT_TAKEN
    if snap.eigenvalues is not None:
        sizes = np.abs(np.asarray(snap.eigenvalues))
        reach = np.where(sizes < 1, 1 / np.maximum(1 - sizes, 1e-12), np.inf)
        longest = float(reach.max())
        words = (f"|λ| {factor(sizes.min())} to {factor(sizes.max())}" + (
            f", largest singular value {float(np.max(snap.sigma_max)):.3g}" if snap.eigenvalues.shape[-1] > 1
            and snap.step_factors is None and _square(snap) else ""))
        if np.isfinite(longest):
            return f"{words}: the slowest keeps a gradient 1/(1 - |λ|) = {longest:,.0f} steps"
        return f"{words}: at or outside the unit circle, a gradient can keep or grow its size"
    if snap.step_factors is not None:
        f = np.asarray(snap.step_factors)
        return (f"factors per step, decided by the input: units' medians {factor(f[..., 1].min())} to "
                f"{factor(f[..., 1].max())} (90% quantile up to {factor(f[..., 2].max())})")
    return EMPTY


def factor(value: float) -> str:
    """A factor per step in enough digits to tell it from 1 (0.9987, not 1.0): two after its leading 9s."""
    value = float(value)
    if not 0.99 <= value < 1:
        return f"{value:.3g}"
    nines = int(-np.floor(np.log10(1 - value)))
    return f"{value:.{nines + 2}f}".rstrip("0")


def _square(snap) -> bool:
    """Whether sigma_max belongs to a full recurrent matrix (the tanh RNN's), not a diagonal's own |eigenvalue|."""
    return not np.allclose(np.max(snap.sigma_max), np.abs(np.asarray(snap.eigenvalues)).max(), rtol=1e-4)


class EigenView(ChooserView):
    view_id = "eigen"
    readable_size = (280, 260)  # a title of two lines, the run chooser, and the plane at least 80 px
    title = "Eigenvalues"
    shown_at_start = False
    reads_eigenvalues = True
    explanation = ("The complex plane with the unit circle. Each dot is what one step back in time multiplies a "
                   "unit's gradient by: inside the circle it shrinks, step after step; on it, it keeps its size; "
                   "outside, it grows. Fixed eigenvalues (tanh RNN: of the recurrent weights, with a dashed circle at "
                   "their largest singular value; LRU: lambda; IndRNN: u) move as training changes them, the last "
                   "steps fading behind. Where the input decides the factor anew at every step (minGRU: 1 - z; "
                   "selective SSM: exp(delta A)) each unit's median factor is a dot, its 10% to 90% range a bar "
                   "(real numbers: the dots are spread a little off the axis so they do not hide each other).")

    def __init__(self, parent=None):
        super().__init__(parent, layer=False, run=True)
        layout = vbox(self)
        self.title_label = TitleLabel("Eigenvalues")
        layout.addWidget(self.title_label)
        layout.addWidget(self.selectors)
        self.area = PlotArea()
        self.plot = add_plot(self.area)
        self.plot.setMenuEnabled(False)
        self.plot.setAspectLocked(True)
        layout.addWidget(self.area)
        self.circle = pg.PlotCurveItem(CIRCLE.real, CIRCLE.imag)
        self.plot.addItem(self.circle)
        self.axis_line = pg.PlotCurveItem([-1.2, 1.2], [0, 0])
        self.plot.addItem(self.axis_line)
        self.layer_items: list[dict] = []
        self._layers = 0
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def set_runs(self, infos):
        super().set_runs(infos)
        if infos:
            self._arrange(infos[self.selectors.run_index(len(infos))].config.layers)

    def refresh(self, histories):
        history = self.shown_history(histories)
        snap = history.latest if history is not None else None
        layers = history.info.config.layers if history is not None else 0
        if layers != self._layers:
            self._arrange(layers)
        trail = [s for s in (history.trail if history is not None else ()) if s is not snap][-3:]
        extent = 1.15
        for k, items in enumerate(self.layer_items):
            now = points(snap, k)
            for age, item in enumerate(items["trail"]):  # the newest in the last, brightest slot
                back = age - (len(items["trail"]) - len(trail))
                old = points(trail[back], k) if back >= 0 else None
                item.setData(*(old[:2] if old is not None else ([], [])))
            if now is None:
                items["now"].setData([], [])
                items["bars"].setData(x=np.zeros(0), y=np.zeros(0), left=np.zeros(0), right=np.zeros(0))
                items["sigma"].setData([], [])
                continue
            x, y, low, high = now
            items["now"].setData(x, y)
            if low is not None:
                items["bars"].setData(x=x, y=y, left=x - low, right=high - x)
            else:
                items["bars"].setData(x=np.zeros(0), y=np.zeros(0), left=np.zeros(0), right=np.zeros(0))
            finite = np.isfinite(x) & np.isfinite(y)
            if finite.any():
                extent = max(extent, 1.08 * float(np.max(np.hypot(x[finite], y[finite]))))
            sigma = float(snap.sigma_max[k]) if k < len(snap.sigma_max) else np.nan
            if snap.eigenvalues is not None and _square(snap) and np.isfinite(sigma):
                items["sigma"].setData(sigma * CIRCLE.real, sigma * CIRCLE.imag)
                extent = max(extent, 1.08 * sigma)
            else:
                items["sigma"].setData([], [])
        extent = min(extent, 1e3)
        self.axis_line.setData([-extent, extent], [0, 0])
        self.plot.setRange(xRange=(-extent, extent), yRange=(-extent, extent), padding=0)
        where = f"layers 1 (dark) to {layers}: " if layers > 1 else ""
        self.title_label.set_text(where + summary(snap, layers, history.info.config if history is not None else None))
        self.title_label.setToolTip(f"Training step {snap.step}." if snap is not None else "")

    def clear(self):
        super().clear()
        for items in self.layer_items:
            for item in [items["now"], items["sigma"], *items["trail"]]:
                item.setData([], [])

    def apply_theme(self, theme):
        super().apply_theme(theme)
        self.area.setBackground(theme.background)
        style_plot(self.plot, theme, LABELS)
        self.title_label.apply_theme(theme)
        self.circle.setPen(pen(theme.foreground, theme, 1.0, alpha=0.7))
        self.axis_line.setPen(pen(theme.foreground, theme, 0.5, alpha=0.3))
        self._style_layers()

    # ------------------------------------------------------------------ internals
    def _arrange(self, layers: int):
        for items in self.layer_items:
            for item in [items["now"], items["sigma"], items["bars"], *items["trail"]]:
                self.plot.removeItem(item)
        self.layer_items = []
        for _ in range(layers):
            items = {"trail": [pg.ScatterPlotItem(pxMode=True) for _ in range(3)],
                     "bars": pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), beam=0),
                     "sigma": pg.PlotCurveItem(),
                     "now": pg.ScatterPlotItem(pxMode=True)}
            for item in [*items["trail"], items["bars"], items["sigma"], items["now"]]:
                self.plot.addItem(item)
            self.layer_items.append(items)
        self._layers = layers
        self._style_layers()

    def _style_layers(self):
        theme, layers = self.theme, len(self.layer_items)
        size = max(5, theme.font_pt * 0.7)
        for k, items in enumerate(self.layer_items):
            color = theme.layer_color(k, layers)
            items["now"].setPen(pg.mkPen(None))
            items["now"].setBrush(brush(color, 0.9))
            items["now"].setSize(size)
            for age, item in enumerate(items["trail"]):
                item.setPen(pg.mkPen(None))
                item.setBrush(brush(color, TRAIL_ALPHA * (age + 1)))
                item.setSize(size * 0.8)
            items["bars"].setOpts(pen=pen(color, theme, 0.5, alpha=0.35))
            items["sigma"].setPen(pen(color, theme, 0.8, dashed=True, alpha=0.8))
