"""The lesson browser: a narration card with previous/next, a hint of where to look, and what to try.

GUI thread only. The panel only shows lessons and says which one the user picked
(`lesson_chosen`) and which view to highlight (`highlight_requested`); the run session loads the
lesson's configs, and the window shows the session's lesson stop here (`show_stop`). Once it `follow`s
the session, the panel hears training pause at the lesson's step (`show_paused_at`) and says there
whether the lesson's claim holds at every step to it, with its figure, read from the session's run
histories by the lesson's own check (engine/claims.py): a view of the session, never of the worker.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStyle, QStyleOptionComboBox,
                               QStylePainter, QVBoxLayout, QWidget)

from engine.lessons import LESSONS


class ElidingComboBox(QComboBox):
    """A combo box whose shown choice ends in an ellipsis where it is cut: Qt cut the lesson's title mid-letter
    ("24. IndRNN: one weight p", lecture mode's narrow card); the list shows every title whole."""

    def shown_text(self) -> str:
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        room = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                           QStyle.SubControl.SC_ComboBoxEditField, self).width()
        return self.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event):
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self.shown_text()
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class LessonPanel(QWidget):
    lesson_chosen = Signal(str)        # the user picked a lesson (by list, previous or next)
    highlight_requested = Signal(str)  # view id the current lesson says to look at
    free_play_chosen = Signal()        # the user picked free play

    def __init__(self, view_titles: dict[str, str] | None = None, parent=None):
        super().__init__(parent)
        self.view_titles = view_titles or {}
        self.names = list(LESSONS)
        self.current: str | None = None
        self._scale = 1.0
        self._fit = 1.0  # lecture mode: the card's type made this much smaller where it would not fit (fit_text)
        self._fitting = False

        self.picker = ElidingComboBox()
        self.picker.addItem("Free play (no lesson)", None)
        for i, name in enumerate(self.names, 1):
            self.picker.addItem(f"{i}. {LESSONS[name].title}", name)
        self.picker.setToolTip("Guided lessons: each sets up the network and says what to look at.")
        # Long lesson titles must not set the panel's minimum width (a narrow dock, large lecture fonts).
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setMinimumContentsLength(8)
        self.picker.activated.connect(lambda index: self._choose(self.picker.itemData(index)))
        self.prev_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.prev_button.setToolTip("Previous lesson (Page Up)")
        self.next_button.setToolTip("Next lesson (Page Down)")
        self.prev_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.narration = QLabel()
        self.narration.setWordWrap(True)
        self.narration.setTextFormat(Qt.TextFormat.RichText)
        self.narration.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        self.look_at = QLabel()
        self.look_at.setWordWrap(True)
        self.try_next = QLabel()
        self.try_next.setWordWrap(True)
        self.pause_note = QLabel()  # where training will pause, or has paused, for the lesson's point
        self.pause_note.setWordWrap(True)
        self.pause_note.hide()
        self.claim_note = QLabel()  # at the pause: whether the claim holds, and its figure
        self.claim_note.setWordWrap(True)
        self.claim_note.hide()
        for label in (self.look_at, self.try_next, self.pause_note, self.claim_note):
            # their text is escaped HTML: as plain text (Qt guesses plain where there is no tag) an
            # apostrophe read "&#x27;" ("timestep&#x27;s gradient" on the card at the pause)
            label.setTextFormat(Qt.TextFormat.RichText)
        self.session = None         # the run session followed (gui/session.py), once `follow` is called

        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.picker, 1)
        nav.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addLayout(nav)
        for w in (self.title, self.narration, self.look_at, self.pause_note, self.claim_note, self.try_next):
            layout.addWidget(w)
        layout.addStretch(1)
        self.set_scale(1.0)
        self.show_lesson(None)

    def minimumSizeHint(self):
        """As tall as the wrapped text needs at the panel's width: Qt's own guess wraps the labels at a
        narrow width, far taller, so the lesson card's scroll area scrolled through empty space."""
        hint = super().minimumSizeHint()
        if self.width() > hint.width() and self.layout().hasHeightForWidth():
            hint.setHeight(self.layout().heightForWidth(self.width()))
        return hint

    # ------------------------------------------------------------------ navigation
    def _choose(self, name):
        self.show_lesson(name)
        if name is not None:
            self.lesson_chosen.emit(name)
        else:
            self.free_play_chosen.emit()

    def next(self):
        i = -1 if self.current is None else self.names.index(self.current)
        self._choose(self.names[min(i + 1, len(self.names) - 1)])

    def previous(self):
        i = len(self.names) if self.current is None else self.names.index(self.current)
        self._choose(self.names[max(i - 1, 0)])

    # ------------------------------------------------------------------ display
    def show_lesson(self, name: str | None):
        """Show a lesson's card without emitting lesson_chosen (the window calls this on load)."""
        self.current = name
        self.picker.setCurrentIndex(0 if name is None else self.names.index(name) + 1)
        if name is None:
            self.set_pause_note("")
            self.title.setText("Free play")
            self.narration.setText("Change any setting on the left and watch the views respond. Pick a "
                                   "lesson above for a guided tour of the vanishing gradient problem.")
            self.look_at.setText("")
            self.try_next.setText("")
            self.prev_button.setEnabled(False)
            self.next_button.setEnabled(True)
            self.fit_text()
            return
        lesson = LESSONS[name]
        index = self.names.index(name)
        self.title.setText(f"Lesson {index + 1} of {len(self.names)}: {lesson.title}")
        self.narration.setText(html.escape(lesson.narration).replace("\n", "<br>"))
        where = self.view_titles.get(lesson.look_at, lesson.look_at)
        self.look_at.setText(f"<b>Look at:</b> {html.escape(where)}" if where else "")
        self.try_next.setText(f"<b>Try next:</b> {html.escape(lesson.next_change)}" if lesson.next_change else "")
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(self.names) - 1)
        if lesson.look_at:
            self.highlight_requested.emit(lesson.look_at)
        self.fit_text()

    def set_scale(self, factor: float):
        """Lecture mode shows the card large."""
        self._scale = factor
        self._fit = 1.0
        self._apply_fonts()
        self.fit_text()

    def _apply_fonts(self):
        base = 10 * self._scale * self._fit
        self.title.setStyleSheet(f"font-size: {base * 1.4:.0f}pt; font-weight: bold;")
        self.narration.setStyleSheet(f"font-size: {base * 1.15:.0f}pt;")
        for w in (self.look_at, self.try_next, self.claim_note):
            w.setStyleSheet(f"font-size: {base:.0f}pt;")
        self.pause_note.setStyleSheet(f"font-size: {base:.0f}pt; font-style: italic;")

    FIT_STEPS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7)
    SMALLEST_TYPE = 0.9  # the card's type never shrinks below this share of the normal card's

    def fit_text(self):
        """A long narration in a short card scrolled "Try next" out of sight (in lecture mode dead-units, lru-ring and
        indrnn at 1280x720; in the normal layout 21 of the 25 lessons there): the card's type shrinks, in steps, until
        the text fits the height it is shown in (the scroll area's), never below SMALLEST_TYPE of the normal card's."""
        viewport = self.parentWidget()
        if self._fitting or viewport is None or not self.layout().hasHeightForWidth():
            return
        self._fitting = True
        try:
            for fit in self.FIT_STEPS:
                if self._scale * fit < self.SMALLEST_TYPE - 1e-9:
                    break
                self._set_fit(fit)
                if self.layout().heightForWidth(max(self.width(), 1)) <= viewport.height():
                    break
        finally:
            self._fitting = False

    def full_height(self, width: int) -> int:
        """The card's height at `width` with its type at full size (the window sizes the card to it; fit_text then
        shrinks the type where the card could not be given that)."""
        self._set_fit(1.0)
        return self.layout().heightForWidth(width)

    def _set_fit(self, fit: float):
        if fit != self._fit:
            self._fit = fit
            self._apply_fonts()
            for label in (self.title, self.narration, self.look_at, self.pause_note, self.claim_note, self.try_next):
                label.ensurePolished()
            self.layout().invalidate()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.fit_text()

    def changeEvent(self, event):
        """A new theme's palette reaches the card's labels: a label with a style sheet (its font size)
        kept the colours of the palette it was first styled in (dark grey on the light theme's panel)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_fonts()

    def set_pause_note(self, text: str):
        """A line on the card about where training pauses for the lesson's point ("" hides it); the claim's
        verdict of an earlier pause goes with the note it belonged to."""
        self.pause_note.setText(html.escape(text))
        self.pause_note.setVisible(bool(text))
        self.set_claim_note("")

    def set_claim_note(self, text: str, details: str = ""):
        self.claim_note.setText(html.escape(text))
        self.claim_note.setToolTip(details)
        self.claim_note.setVisible(bool(text))
        self.fit_text()

    def follow(self, session, refit=None):
        """Hear the session (gui/session.py) pause at its lesson's step, to say there whether the claim holds;
        `refit()` (the window's) is asked once the card's new lines are laid out, so they are not cut off."""
        self.session, self._refit = session, refit
        session.stopped_at_lesson.connect(self.show_paused_at)

    def show_stop(self, steps: int | None):
        """Training will pause by itself at `steps` (None: it will not, and the card says nothing)."""
        self.set_pause_note("" if steps is None else
                            f"Play trains {steps} step{'s' if steps != 1 else ''} and pauses where this shows; "
                            "Play again trains on.")

    def show_paused_at(self, steps: int):
        self.set_pause_note(f"Paused at step {steps}, where this shows. Press Play (Space) to train on.")
        result = self.claim_at_pause()
        if result is not None:
            self.set_claim_note(claim_words(result), result.text.replace("; ", "\n"))
        if getattr(self, "_refit", None) is not None:
            QTimer.singleShot(0, self._refit)

    def claim_at_pause(self):
        """The lesson's check over the session's run histories (engine.claims.ClaimResult), or None where
        the session's runs are not the lesson's (another lesson, a file's runs)."""
        session = self.session
        if session is None or self.current is None or session.lesson != self.current:
            return None
        lesson = LESSONS[self.current]
        histories = list(session.histories)
        if len(histories) != len(lesson.compare) + 1:
            return None
        return lesson.check([list(h.log.snapshots) for h in histories], [h.info for h in histories])


def claim_words(result) -> str:
    """'✓ The claim holds at every step to 500: 21.3 orders lost at step 1 (claim: over 15)', or where
    it fails: '✗ The claim does not hold at step 37: ...'."""
    if result.holds_throughout:
        where = "at step 1" if result.steps == 1 else f"at every step to {result.steps}"
        more = len(result.parts) - 1
        also = f" (and {more} more part{'s' if more != 1 else ''}, all holding)" if more else ""
        return f"✓ The claim holds {where}: {result.parts[0].words(result.names)}{also}"
    if result.first_failure is None:  # a part claimed at a step not trained yet
        return f"The claim is not checked yet: {result.text}"
    return f"✗ The claim does not hold at step {result.first_failure}: {result.failing_words()}"
