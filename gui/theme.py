"""Colour themes and scale for the views: dark (default), high-contrast light, and lecture sizes.

GUI thread only. Views read a Theme in `apply_theme`; the window's own widgets take `window_palette`
and the fixed colours below. Nothing else holds colours.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QProxyStyle, QStyle


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

HIGHLIGHT = "#E69F00"            # the frame and title of the view a lesson points at
BANNER_BACKGROUND, BANNER_TEXT = "#5c1a1a", "#ffffff"  # the banner that reports a problem
RECORDING = "#e02020"            # the status bar's REC clock
REPLAY = "#6a1b9a"               # the replay bar's REPLAY mark, white on it (a past step is shown)
ERROR_TEXT = "#ff6b6b"           # a refused setting, under its box (readable on both themes' panels)
DIALOG_ERROR_TEXT = "#c62828"    # a refused value in a dialog
SEVERITY_COLORS = {"ok": "#2e7d32", "info": "#1565c0", "warning": "#b26a00", "error": "#c62828",
                   "bad": "#c62828", "good": "#2e7d32"}
NEUTRAL_BADGE = "#555555"
INK_ON_LIGHT, INK_ON_DARK = "#000000", "#ffffff"  # text drawn over a colour-mapped fill: ink_on


def relative_luminance(color: QColor) -> float:
    """WCAG 2's relative luminance of an sRGB colour (0 black .. 1 white)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
              for c in (color.redF(), color.greenF(), color.blueF())]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ink_on(fill: QColor) -> QColor:
    """Black or white text, whichever has the higher contrast on `fill` (WCAG's ratio: black wins above a relative
    luminance of 0.179). By HSL lightness, viridis's bright yellow sat at 0.5 and got white (the Unrolled network's
    "10¹" was white on yellow)."""
    return QColor(INK_ON_LIGHT if relative_luminance(fill) > 0.179 else INK_ON_DARK)
LEGEND_BORDER_LIGHT = "#888888"  # the legend's frame in the light theme (the dark one darkens its text colour)
LETTERBOX = "#000000"            # a video frame's bars where the picture does not fill it
STATE_COLORS = {"running": "#2e7d32", "diverged": "#c62828", "stopped": "#c62828"}


def window_palette(theme: Theme) -> QPalette:
    """Fusion colours for the window's own widgets (menus, docks, controls) matching a plot theme."""
    if theme.name == "light":  # high contrast for a washed-out projector: black on white
        colors = {"Window": "#f2f2f2", "WindowText": "#000000", "Base": "#ffffff", "AlternateBase": "#e8e8e8",
                  "Text": "#000000", "Button": "#e0e0e0", "ButtonText": "#000000", "Highlight": "#0b5cad",
                  "HighlightedText": "#ffffff", "BrightText": "#c00000", "ToolTipBase": "#fffbe6",
                  "ToolTipText": "#000000", "PlaceholderText": "#555555"}
        disabled = "#6b6b6b"
    else:
        colors = {"Window": "#2a2d34", "WindowText": "#e8e8e8", "Base": "#1e2127", "AlternateBase": "#2a2d34",
                  "Text": "#e8e8e8", "Button": "#343842", "ButtonText": "#e8e8e8", "Highlight": "#3d7ab8",
                  "HighlightedText": "#ffffff", "BrightText": "#ff5050", "ToolTipBase": "#fffbe6",
                  "ToolTipText": "#000000", "PlaceholderText": "#9a9a9a"}
        disabled = "#777777"
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(color))
    for role in ("Text", "ButtonText", "WindowText"):
        palette.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role), QColor(disabled))
    return palette


class LabStyle(QProxyStyle):
    """Fusion, with a check box's frame that shows on the dark theme's panel: Fusion draws it in the window colour
    darkened, which there is the colour of the box itself (the settings' "skip connections" was a dark square on a
    dark panel, its edge lost); this frame is in the palette's placeholder grey, on both themes."""

    def __init__(self):
        super().__init__("Fusion")

    def drawPrimitive(self, element, option, painter, widget=None):
        super().drawPrimitive(element, option, painter, widget)
        if element == QStyle.PrimitiveElement.PE_IndicatorCheckBox:
            painter.save()
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
            painter.setBrush(QColor(0, 0, 0, 0))
            painter.drawRect(option.rect.adjusted(0, 0, -1, -1))
            painter.restore()
