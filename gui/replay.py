"""The replay bar: a scrubber over the steps each run keeps, and the keys that move it.

GUI thread only. The bar asks the run session (gui/session.py) to show a step (`show_step`) and
follows what it says back (`shown_step_changed`, new data, a rebuilt run set); the session owns which
step is shown, and the display scheduler redraws every view and badge from it. Dragging the handle
back shows every view as it was at that step and pauses training; the picture then holds still on
that step until the user moves it, drags it to the right end, or presses Live (End), Play or Step.
The keys are application-wide actions (`actions_by_name`), so they work in lecture mode too: Left
and Right go one step back and forward (Right trains one step where the replay is live, as it always
did), Shift with them ten steps, Home the oldest kept step, End live, G types a step number.
The bar's sequence box chooses what the views of the latest step show: the whole batch, or one sequence
of it alone (gui/one_sequence.py); Q types a sequence number, [ and ] go to the previous and next.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QFont, QFontMetrics, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QWidget

from gui.history import EXPORT_ROWS
from gui.theme import REPLAY

BIG_STEP = 10   # Shift+Left / Shift+Right

SLIDER_TIP = (f"Replay: drag back to show every view, badge and export as it was at an earlier training step "
              f"(each run keeps its newest {EXPORT_ROWS:,} steps). Training pauses while you look; drag to the "
              f"right end, or press Live (End), Play or Step, to return to the newest step. "
              f"Left/Right: one step, Shift+Left/Right: {BIG_STEP} steps, Home: the oldest kept step.")


SEQUENCE_TIP = ("Show one sequence of the batch alone: the gradient of its own loss, its inputs written along the "
                "time axis of the Units and Answers views. The views of the latest step (gradient profile, layers, "
                "unrolled, input influence, units, answers) follow it; those of many steps (waterfall, loss, "
                "weight gradients) stay over the whole batch. Q: type a sequence, [ and ]: previous and next.")


class ReplayBar(QWidget):
    """The scrubber under the views: ◀ [slider] ▶ step [box] of the kept steps, and Live."""

    def __init__(self, session, window: QWidget):
        super().__init__()
        self.session = session
        self.setObjectName("replay")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(4)
        self.mark = QLabel("LIVE")
        self.mark.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mark.setToolTip("LIVE: the views follow training. REPLAY: they show the step chosen on this bar.")
        self.back = QPushButton("◀")
        self.back.setToolTip(f"One step back (Left; Shift+Left: {BIG_STEP} steps)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip(SLIDER_TIP)
        self.slider.setAccessibleName("Replay step")
        self.forward = QPushButton("▶")
        self.forward.setToolTip(f"One step forward (Right; Shift+Right: {BIG_STEP} steps); live, Right trains one step")
        self.box = QSpinBox()
        self.box.setPrefix("step ")
        self.box.setGroupSeparatorShown(True)
        self.box.setKeyboardTracking(False)  # "800" shows step 800, not 8 and 80 on the way
        self.box.setToolTip("The step the views show. Type a step and press Enter to show it (G goes here).")
        self.box.setAccessibleName("Step shown")
        self.kept = QLabel("")
        self.kept.setToolTip(f"The steps a replay can show: each run keeps its newest {EXPORT_ROWS:,}.")
        # the first to give way in a narrow window: the bar must not widen it (the slider says as much)
        self.kept.setMinimumWidth(1)
        self.sequence = QSpinBox()
        self.sequence.setPrefix("sequence ")
        self.sequence.setSpecialValueText("whole batch")
        self.sequence.setKeyboardTracking(False)
        self.sequence.setAccessibleName("Sequence shown")
        self.sequence.setToolTip(SEQUENCE_TIP)
        self.sequence.setMinimumWidth(1)  # gives way in a narrow window, as the kept steps' label does
        self.live = QPushButton("Live")
        self.live.setToolTip("Back to the newest step: the views follow training again (End)")
        for button, name in ((self.back, "One step back"), (self.forward, "One step forward")):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setAccessibleName(name)
        for widget, stretch in ((self.mark, 0), (self.back, 0), (self.slider, 1), (self.forward, 0),
                                (self.box, 0), (self.kept, 0), (self.live, 0), (self.sequence, 0)):
            layout.addWidget(widget, stretch)
        self.back.clicked.connect(lambda: self.step_back(1))
        self.forward.clicked.connect(lambda: self.step_forward(1))
        self.live.clicked.connect(lambda: self.session.show_step(None))
        self.slider.valueChanged.connect(self._on_slider)
        self.box.valueChanged.connect(self._on_box)
        self.sequence.valueChanged.connect(lambda value: self.session.show_sequence(value - 1 if value else None))
        self.sequence.lineEdit().returnPressed.connect(self.slider.setFocus)
        session.shown_sequence_changed.connect(self.sync)
        # after Enter, Left/Right step again instead of moving the box's cursor (only after Enter: on
        # losing the focus, editingFinished would take it back from wherever the user clicked)
        self.box.lineEdit().returnPressed.connect(self.slider.setFocus)
        session.shown_step_changed.connect(self.sync)
        session.steps_arrived.connect(self.sync)
        session.runs_rebuilt.connect(self.sync)
        self.actions_by_name = self._make_actions(window)
        self.set_scale(1.0)
        self.sync()

    def _make_actions(self, window: QWidget) -> dict[str, QAction]:
        actions = {}
        for name, text, keys, slot, tip in (
                ("replay_back", "Replay one step back", ("Left",), lambda: self.step_back(1),
                 "Show the step before the one shown (a replay: training pauses)"),
                ("replay_forward", "Replay one step forward", ("Right",), lambda: self.step_forward(1),
                 "Show the next step; where the views are live, pause and train exactly one step"),
                ("replay_back_big", f"Replay {BIG_STEP} steps back", ("Shift+Left",),
                 lambda: self.step_back(BIG_STEP), f"Show the step {BIG_STEP} before the one shown"),
                ("replay_forward_big", f"Replay {BIG_STEP} steps forward", ("Shift+Right",),
                 lambda: self.step_forward(BIG_STEP), f"Show the step {BIG_STEP} after the one shown"),
                ("replay_oldest", "Replay the oldest kept step", ("Home",), self.show_oldest,
                 f"Show the oldest step kept (each run keeps its newest {EXPORT_ROWS:,})"),
                ("live", "Live", ("End",), lambda: self.session.show_step(None),
                 "Back to the newest step: the views follow training again"),
                ("go_to_step", "Go to step…", ("G",), self.type_step,
                 "Type the step to show in the replay bar's box, then press Enter"),
                ("choose_sequence", "Show one sequence…", ("Q",), self.type_sequence,
                 "Type the sequence of the batch to show alone (0: the whole batch), then press Enter"),
                ("next_sequence", "Next sequence", ("]",), lambda: self.sequence.stepBy(1),
                 "Show the next sequence of the batch alone"),
                ("previous_sequence", "Previous sequence", ("[",), lambda: self.sequence.stepBy(-1),
                 "Show the previous sequence of the batch alone (before the first: the whole batch)")):
            action = QAction(text, window)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.setToolTip(f"{tip} ({' or '.join(keys)})")
            action.triggered.connect(slot)
            window.addAction(action)  # the keys work with the menus hidden (lecture mode)
            actions[name] = action
        return actions

    # ------------------------------------------------------------------ commands
    def shown(self) -> int | None:
        """The step the views show (the newest kept where they are live; None before any step)."""
        span = self.session.replay_span()
        if self.session.shown_step is not None:
            return self.session.shown_step
        return span[1] if span is not None else None

    def step_back(self, steps: int):
        shown = self.shown()
        if shown is not None:
            self.session.show_step(shown - steps)

    def step_forward(self, steps: int):
        if self.session.shown_step is None:
            if steps == 1:  # live: Right trains one step, as before the replay bar
                self.session.step_once()
            return
        self.session.show_step(self.session.shown_step + steps)

    def show_oldest(self):
        span = self.session.replay_span()
        if span is not None:
            self.session.show_step(span[0])

    def type_step(self):
        if self.box.isEnabled():
            self.box.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.box.selectAll()

    def type_sequence(self):
        self.sequence.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.sequence.selectAll()

    # ------------------------------------------------------------------ following the session
    def sync(self, *_):
        """Range, handle, box and marks as the session has them now."""
        span = self.session.replay_span()
        replaying = self.session.shown_step is not None
        low, high = span if span is not None else (0, 0)
        shown = self.shown() if span is not None else 0
        for widget in (self.slider, self.box):
            widget.blockSignals(True)  # not a user's choice: no show_step back
            widget.setRange(low, high)
            if not (widget is self.box and widget.hasFocus()):  # not over a step being typed
                widget.setValue(shown)
            widget.blockSignals(False)
        usable = high > low
        for widget in (self.slider, self.box, self.back):
            widget.setEnabled(usable)
        self.forward.setEnabled(replaying)
        self.live.setEnabled(replaying)
        self.kept.setText(f"of {low:,}–{high:,}" if span is not None else "no steps yet")
        self.mark.setText("REPLAY" if replaying else "LIVE")
        self._style_mark(replaying)
        self.sequence.blockSignals(True)
        self.sequence.setMaximum(max((h.info.config.batch for h in self.session.histories), default=1))
        chosen = self.session.shown_sequence
        if not self.sequence.hasFocus():
            self.sequence.setValue(0 if chosen is None else chosen + 1)
        self.sequence.blockSignals(False)
        self.sequence.setStyleSheet("" if chosen is None else f"QSpinBox {{ color: white; background: {REPLAY}; }}")

    def _on_slider(self, value: int):
        self.session.show_step(value)  # the right end is live

    def _on_box(self, value: int):
        self.session.show_step(value)

    # ------------------------------------------------------------------ looks
    def set_scale(self, factor: float):
        """Lecture mode: the bar's text as large as the status bar's, and the handle and buttons large
        enough to read and to grab from the back of the room."""
        self._scale = factor
        font = QFont()  # at 1: the window's own (an empty font takes every attribute from the parent)
        if factor != 1.0:
            font.setPointSizeF(10 * factor)
        for widget in (self.mark, self.back, self.forward, self.box, self.kept, self.live, self.sequence):
            widget.setFont(font)
        self._restyle()

    def changeEvent(self, event):
        """A new theme: the style sheets are set again, as a widget's style sheet keeps the palette it was set in
        (the LIVE mark was black on the dark theme's grey, and pale grey on the light one's)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_scale"):  # (not while being built)
            self._restyle()

    def _restyle(self):
        k = self._scale
        for button in (self.back, self.forward):
            button.setFixedWidth(round(button.fontMetrics().horizontalAdvance("◀") * 2 + 16 * k))
        self.live.setFixedWidth(round(self.live.fontMetrics().horizontalAdvance("Live") + 24 * k))
        # measured in the font set_scale gave the bar's text, not in the mark's own: its style sheet still
        # holds the previous scale's size here (leaving lecture mode, the bar stayed 21 px wider, the window too)
        bold = QFont(self.live.font())
        bold.setBold(True)
        # as wide as REPLAY either way: the slider must not move under the mouse as a drag begins
        self.mark.setFixedWidth(round(QFontMetrics(bold).horizontalAdvance("REPLAY") + 12 * k))
        # palette roles, not colours: the window's palette follows the theme
        self.slider.setStyleSheet(
            f"QSlider::groove:horizontal {{ height: {round(6 * k)}px; background: palette(mid); "
            f"border-radius: {round(3 * k)}px; }} "
            f"QSlider::sub-page:horizontal {{ background: palette(highlight); border-radius: {round(3 * k)}px; }} "
            f"QSlider::handle:horizontal {{ width: {round(16 * k)}px; margin: {-round(6 * k)}px 0; "
            f"background: palette(button-text); border-radius: {round(8 * k)}px; }}")
        self.slider.setMinimumHeight(round(22 * k))
        self._style_mark(self.session.shown_step is not None)

    def _style_mark(self, replaying: bool):
        # the size too in lecture mode: a label with a style sheet takes the application's font
        size = f"font-size: {round(10 * self._scale)}pt;" if self._scale != 1.0 else ""
        color = f"color: white; background: {REPLAY}; border-radius: 3px;" if replaying else ""
        self.mark.setStyleSheet(f"font-weight: bold; {size} padding: 0 {round(4 * self._scale)}px; {color}")
