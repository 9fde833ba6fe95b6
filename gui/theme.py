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
    layer_colors: tuple        # one per stacked layer
    accent: str                # threshold lines, theory lines
    warning: str               # clipping marks, divergence
    colormap: str              # pyqtgraph colormap name for log-gradient heatmaps
    font_pt: int = 10
    line_width: float = 2.0

    def scaled(self, factor: float) -> "Theme":
        """Lecture mode: larger fonts, thicker lines."""
        from dataclasses import replace
        return replace(self, font_pt=round(self.font_pt * factor), line_width=self.line_width * factor)


_LAYERS = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#D55E00", "#0072B2", "#999999")

DARK = Theme("dark", "#15171c", "#e8e8e8", 0.25,
             ("#56B4E9", "#E69F00", "#009E73", "#CC79A7"), _LAYERS,
             "#f5f5f5", "#ff5050", "viridis")
LIGHT = Theme("light", "#ffffff", "#000000", 0.35,
              ("#0072B2", "#D55E00", "#009E73", "#CC79A7"),
              ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#777777"),
              "#000000", "#c00000", "viridis")
THEMES = {"dark": DARK, "light": LIGHT}

# Fixed colour levels (log10 of the gradient norm) for every heatmap: vanishing stays visible
# instead of being rescaled away.
LOG_GRAD_LEVELS = (-12.0, 2.0)
