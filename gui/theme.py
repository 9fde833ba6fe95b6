"""Colour themes and scale for the views: dark (default), high-contrast light, and lecture sizes.

GUI thread only. Views read a Theme in `apply_theme`; nothing else holds colours.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    foreground: str
    grid_alpha: float
    run_colors: tuple          # one per compared run (colour-blind safe, Okabe-Ito)
    layer_ramp: tuple          # stacked layers: colours from the input side to the top (plasma, cut
    #   where it would fade into the background or look like the foreground's curves), so the order
    #   of the layers shows in their colours
    accent: str                # threshold lines, theory lines
    warning: str               # clipping marks, divergence
    colormap: str              # pyqtgraph colormap name for log-gradient heatmaps
    font_pt: int = 10
    line_width: float = 2.0

    def layer_color(self, layer: float, layers: int) -> str:
        """Layer `layer` (0 = input side; a fraction falls between two) of `layers`; a single layer takes
        the first run colour."""
        if layers <= 1:
            return self.run_colors[0].lower()
        ramp = self.layer_ramp
        where = min(max(layer / (layers - 1), 0.0), 1.0) * (len(ramp) - 1)
        k = min(int(where), len(ramp) - 2)
        a, b = _rgb(ramp[k]), _rgb(ramp[k + 1])
        f = where - k
        return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))

    def scaled(self, factor: float) -> "Theme":
        """Lecture mode: larger fonts, thicker lines."""
        from dataclasses import replace
        return replace(self, font_pt=round(self.font_pt * factor), line_width=self.line_width * factor)


def _rgb(color: str) -> tuple:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


DARK = Theme("dark", "#15171c", "#e8e8e8", 0.25,
             ("#56B4E9", "#E69F00", "#009E73", "#CC79A7"),
             ("#b12a90", "#da5b6a", "#f68f44", "#fcce25"),  # plasma 0.4 .. 0.9 (its lemon end is near white)
             "#f5f5f5", "#ff5050", "viridis")
LIGHT = Theme("light", "#ffffff", "#000000", 0.35,
              ("#0072B2", "#D55E00", "#009E73", "#CC79A7"),
              ("#7e03a8", "#a72198", "#c7427c", "#e16462"),  # plasma 0.25 .. 0.6 (its navy start is near black)
              "#000000", "#c00000", "viridis")
THEMES = {"dark": DARK, "light": LIGHT}

# Fixed colour levels (log10 of the gradient norm) for every heatmap: vanishing stays visible
# instead of being rescaled away.
LOG_GRAD_LEVELS = (-12.0, 2.0)
