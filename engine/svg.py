"""A gradient profile as a small, self-contained SVG: what a notebook shows for an engine.api.Probe.

Runs on the caller's thread (a notebook kernel, a script). Plain strings, no matplotlib and no Qt, so
`Probe._repr_svg_()` works wherever the engine does. One <path> per layer, log10 of the gradient norm
against timestep; a value that a log axis cannot place (0, inf, NaN) leaves a gap in its line, and a
note under the title says how many there are and why.
"""
from __future__ import annotations

import math
from xml.sax.saxutils import escape

import numpy as np

WIDTH, HEIGHT = 520, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 52, 44  # margins around the plot area
LEGEND_WIDTH = 128                          # added on the right when there is more than one layer
INK, GRID, MUTED = "#000000", "#d0d0d0", "#555555"
SINGLE_LAYER = "#0072B2"
LAYER_RAMP = ("#7e03a8", "#a72198", "#c7427c", "#e16462")  # the light theme's layer ramp (gui/theme.py):
#   dark at the input side, light at the top, as in the window's gradient profile
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def layer_color(layer: int, layers: int) -> str:
    """The colour of `layer` (0 = input side) of `layers`, interpolated along LAYER_RAMP."""
    if layers <= 1:
        return SINGLE_LAYER
    where = layer / (layers - 1) * (len(LAYER_RAMP) - 1)
    k = min(int(where), len(LAYER_RAMP) - 2)
    a, b = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in LAYER_RAMP[k:k + 2])
    return "#" + "".join(f"{round(x + (y - x) * (where - k)):02x}" for x, y in zip(a, b))


def power_of_ten(exponent: int) -> str:
    return "1" if exponent == 0 else "10" + str(exponent).translate(SUPERSCRIPT)


def nice_step(span: float, most: int) -> float:
    """The smallest of 1, 2, 5 times a power of ten that cuts `span` into at most `most` pieces."""
    raw = max(span, 1e-12) / most
    base = 10.0 ** math.floor(math.log10(raw))
    return next(base * m for m in (1, 2, 5, 10) if base * m >= raw)


def profile_svg(grad_h: np.ndarray, title: str) -> str:
    """log10(grad_h[layer, t]) against t, one line per layer, under `title`."""
    grad_h = np.asarray(grad_h, dtype=np.float64).reshape(len(grad_h), -1)
    layers, steps = grad_h.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(grad_h)
    drawable = np.isfinite(logs)
    width = WIDTH + (LEGEND_WIDTH if layers > 1 else 0)
    x0, x1, y0, y1 = LEFT, width - RIGHT - (LEGEND_WIDTH if layers > 1 else 0), HEIGHT - BOTTOM, TOP

    if drawable.any():
        low, high = float(logs[drawable].min()), float(logs[drawable].max())
    else:
        low, high = -1.0, 1.0
    low, high = math.floor(low), math.ceil(high)
    if high - low < 1:  # a flat profile still gets a decade of axis around it
        low, high = low - 1, high + 1
    decade_step = max(1, math.ceil((high - low) / 6))
    low = decade_step * math.floor(low / decade_step)

    def px(t: float) -> float:
        return x0 + (x1 - x0) * (t / (steps - 1) if steps > 1 else 0.5)

    def py(value: float) -> float:
        return y0 - (y0 - y1) * (value - low) / (high - low)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
           f'viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{width}" height="{HEIGHT}" fill="#ffffff"/>',
           f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="13" fill="{INK}">{escape(title)}</text>']
    notes = _gap_notes(grad_h)
    if notes:
        out.append(f'<text x="{width / 2:.1f}" y="35" text-anchor="middle" fill="{MUTED}">{escape(notes)}</text>')

    for exponent in range(low, high + 1, decade_step):
        y = py(exponent)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">{power_of_ten(exponent)}</text>')
    tick = max(1, int(nice_step(steps - 1, 8)))
    for t in range(0, steps, tick):
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}" stroke="{INK}" stroke-width="1"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" fill="{INK}">{t}</text>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="{INK}" stroke-width="1"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="{INK}" stroke-width="1"/>')
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="{INK}">'
               'timestep (earlier ←)</text>')
    out.append(f'<text x="14" y="{(y0 + y1) / 2:.1f}" text-anchor="middle" fill="{INK}" '
               f'transform="rotate(-90 14 {(y0 + y1) / 2:.1f})">gradient (log scale)</text>')

    for layer in range(layers):
        color = layer_color(layer, layers)
        out.append(f'<path class="layer" data-layer="{layer + 1}" d="{_line(logs[layer], drawable[layer], px, py)}" '
                   f'fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>')
        if layers > 1:
            y = TOP + 10 + 18 * layer
            where = " (input side)" if layer == 0 else " (top)" if layer == layers - 1 else ""
            out.append(f'<line x1="{x1 + 14}" y1="{y}" x2="{x1 + 34}" y2="{y}" stroke="{color}" stroke-width="2"/>')
            out.append(f'<text x="{x1 + 40}" y="{y + 4}" fill="{INK}">layer {layer + 1}{where}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _line(logs: np.ndarray, drawable: np.ndarray, px, py) -> str:
    """Path data through the drawable points; a point that cannot be drawn breaks the line (the next
    drawable one starts a new subpath), and a lone point becomes a short dash centred on it (a
    zero-length segment is a dot in a browser but next to nothing in other renderers)."""
    parts, pen_down = [], False
    for t, (value, ok) in enumerate(zip(logs, drawable)):
        if not ok:
            pen_down = False
            continue
        lone = not pen_down and (t + 1 >= len(logs) or not drawable[t + 1])
        if lone:
            parts.append(f"M{px(t) - 3:.2f} {py(value):.2f} h6")
        else:
            parts.append(f"{'L' if pen_down else 'M'}{px(t):.2f} {py(value):.2f}")
        pen_down = True
    return " ".join(parts) or "M0 0"  # a lone moveto draws nothing, and an empty d is an error to some readers


def _gap_notes(grad_h: np.ndarray) -> str:
    """What the lines leave out: exact zeros (below floating-point range, or cut off by dead units) and
    values that are infinite or NaN (the gradient overflowed)."""
    notes = []
    zeros = int(np.count_nonzero(grad_h == 0))
    bad = int(np.count_nonzero(~np.isfinite(grad_h)))
    if zeros:
        notes.append(f"{zeros} value{'s' if zeros > 1 else ''} exactly 0 (no gradient at all): not drawn")
    if bad:
        notes.append(f"{bad} value{'s' if bad > 1 else ''} inf or NaN: not drawn")
    return "; ".join(notes)
