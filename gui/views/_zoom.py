"""What the zoomed-in views (units, answers) share: reading a step seen closely (engine.detail) for the
chosen run and sequence, writing a sequence's inputs along the time axis, and saying why there is
nothing to show yet.

GUI thread only. Reads `RunHistory.detail` (or a replay's `PastHistory.detail`).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

MAX_LABELS = 60   # input characters written under the time axis at most; longer sequences write every k-th
PX_PER_LABEL = 8   # ... and each gets this much room, so that a narrow view writes fewer

WAITING = "Measuring the next step closely…"
PAUSED = "Press Step (or Play) to measure a step closely"


def visible_character(ch: str) -> str:
    """A character that shows as itself on an axis: space, newline and tab as symbols."""
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(ch, ch)


def label_ticks(labels: str, steps: int, width_px: float) -> list | None:
    """Bottom-axis ticks [(t, character)] for a sequence's per-timestep labels along an axis `width_px`
    wide: every one where there is room (PX_PER_LABEL each), else every k-th."""
    if not labels:
        return None
    room = max(1, int(width_px // PX_PER_LABEL))
    every = max(1, int(np.ceil(steps / min(room, MAX_LABELS))))
    return [(t, visible_character(labels[t])) for t in range(0, min(steps, len(labels)), every)]


def missing_text(history, sequence: int | None) -> str:
    """Why a zoomed-in view has nothing to show for `history`, and what to do."""
    if history is None:
        return PAUSED
    if sequence is not None and sequence >= history.info.config.batch:
        return f"This run's batch holds {history.info.config.batch} sequences: choose one of them"
    trained = getattr(history, "history", history).latest  # (under gui/one_sequence.py's lens, the history it wraps)
    if trained is not None and trained.diverged:  # nothing is measured past a NaN
        return f"The run diverged at step {trained.step}: nothing to see closely (Reset, or change a setting)"
    if trained is None and getattr(history, "step", None) is None:
        return PAUSED
    if getattr(history, "step", None) is not None:  # a replay (gui/history_at_step.py): only live steps are measured
        return (f"Step {history.step} was not seen closely (the views measure live steps, and keep the last "
                "16): press End to go live")
    return WAITING


def detail_for(history, sequence: int | None):
    """The history's step seen closely, when it is of the sequence asked for (any, for the whole batch)."""
    detail = getattr(history, "detail", None) if history is not None else None
    if detail is None or (sequence is not None and detail.sequence != sequence):
        return None
    return detail


def control_row(*widgets) -> QWidget:
    """A thin row of a view's own choosers, under the run and layer choosers (one row would not fit a
    narrow view)."""
    row = QWidget()
    row.setObjectName("controls")
    row.setAttribute(Qt.WA_StyledBackground, True)
    layout = QHBoxLayout(row)
    layout.setContentsMargins(4, 0, 4, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return row


def style_row(row: QWidget, theme) -> None:
    row.setStyleSheet(f"QWidget#controls, QLabel {{ background: {theme.background}; color: {theme.foreground}; }}")
