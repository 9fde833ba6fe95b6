"""The status bar: run state, steps/s, frames/s, the gradient ratio per run, and diagnosis badges.

GUI thread only. It follows the run session (`follow`): the run state, and each run's gradient ratio
and clipping count as data arrives; the display scheduler asks it for badges (`update_diagnosis`)
and rates at its own pace. It computes nothing about training itself: the badges come from the
diagnosis module, the clipping count in the parameter-gradient view's words. Every item explains
itself on hover.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStatusBar, QWidget

from engine.diagnosis import diagnose
from gui.views._common import lesson_run_labels, power_of_ten
from gui.theme import DARK, NEUTRAL_BADGE, RECORDING, SEVERITY_COLORS, STATE_COLORS
from gui.views.param_grads import clipping_text

QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum"


def state_text(state: str, diverged_at: int | None = None) -> str:
    if state == "diverged":
        return f"diverged at step {diverged_at}" if diverged_at is not None else "diverged"
    if state == "stopped":
        return "worker stopped"
    return state


def ratio_text(log10_ratio: float) -> str:
    """log10(|grad at first step| / |grad at last step|) as words a student reads at a glance."""
    if log10_ratio is None or math.isnan(log10_ratio):
        return "n/a"
    if log10_ratio == -math.inf:
        return "0 (none reaches it: below 10⁻³⁰⁰, or cut off)"  # float32 underflow is redone in float64
    if log10_ratio == math.inf:
        return "infinite (exploded)"
    # whole powers in superscript characters, as the views' titles: a rich-text <sup> rose above the
    # status bar's label and lost its top (10^-16.7 read 10^-16./)
    return power_of_ten(round(log10_ratio))


def run_names(configs) -> list[str]:
    """What the status bar calls each run: the lesson's name for it ("sigmoid", "tanh RNN (before)") while
    the runs are a lesson's, as the views' legends do, else "run 1", "run 2", ..."""
    return lesson_run_labels(configs) or [f"run {i + 1}" for i in range(len(configs))]


def badge_style(severity: str) -> str:
    color = SEVERITY_COLORS.get(severity, NEUTRAL_BADGE)
    return f"background: {color}; color: white; border-radius: 3px; padding: 1px 6px;"


class BadgeLabel(QLabel):
    """A coloured status-bar badge. When the bar is too narrow for it, its text is shortened, longest
    first: words dropped from the end (at a word boundary, with an ellipsis), but never the finding's
    first word; then `prefix + short`; then the short form behind only the run numbers ("1, 2:
    vanishing"); then Qt's ellipsis. The whole text is then the first line of its tooltip."""

    def __init__(self, text: str = "", tooltip: str = "", severity: str = "info", short: str = "", prefix: str = ""):
        super().__init__()
        self.setStyleSheet(badge_style(severity))
        # no indent: the style sheet's padding gives the label a frame, for which QLabel would indent the
        # text by half an "x" that sizeHint and _fit do not count, cutting the last letter off
        self.setIndent(0)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._explanation = tooltip
        self.set_full_text(text, short, prefix)

    def set_full_text(self, text: str, short: str = "", prefix: str = ""):
        """`prefix` (such as "runs 1, 2: ") + `text` is the whole text; `short`, a word or two of `text`."""
        self.full_text, self.short, self.prefix = prefix + text, short, prefix
        self.updateGeometry()
        self._fit()

    def sizeHint(self) -> QSize:
        self.ensurePolished()  # the style sheet's padding is in the margins only once polished
        hint = super().sizeHint()
        margins = self.contentsMargins()
        return QSize(self.fontMetrics().horizontalAdvance(self.full_text) + margins.left() + margins.right() + 2,
                     hint.height())

    def minimumSizeHint(self) -> QSize:
        """Room for the shortest form (for "1, 2: vanishing", not for "1: …"): where even that is more
        than the bar has, the bar shows fewer badges (StatusBar._fit_badges)."""
        self.ensurePolished()
        margins = self.contentsMargins()
        shortest = min(self.fontMetrics().horizontalAdvance(t) for t in self.shortenings())
        return QSize(max(shortest, self.fontMetrics().horizontalAdvance("MMMM…")) + margins.left() + margins.right() + 2,
                     super().minimumSizeHint().height())

    def squeezed_width(self) -> int:
        """The least room in which a squeezed badge still says something: four letters and an ellipsis."""
        self.ensurePolished()
        margins = self.contentsMargins()
        return self.fontMetrics().horizontalAdvance("MMMM…") + margins.left() + margins.right() + 2

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event):  # lecture mode scales the fonts
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self.updateGeometry()
            self._fit()

    def shortenings(self) -> list[str]:
        """The texts `_fit` tries, longest first: the whole text cut at ever earlier words (while that
        says more than the short form: "runs 1, 2: loss…" says less than "runs 1, 2: at baseline"),
        then the short form behind the prefix, then behind the bare run numbers."""
        width = self.fontMetrics().horizontalAdvance
        short = [self.prefix + self.short, self.prefix.removeprefix("runs ").removeprefix("run ") + self.short] \
            if self.short else []
        floor = width(short[0]) if short else 0
        words, keep = self.full_text.split(" "), len(self.prefix.split()) + 1
        out = [self.full_text]
        while len(words) > keep:
            words.pop()
            cut = " ".join(words).rstrip(",:;") + "…"
            if short and (width(cut) <= floor or cut[:-1] == short[0]):
                break
            if not words[-1].rstrip(",:;%").isdigit():  # not "vanishing: 5…" (5 what?)
                out.append(cut)
        return out + short

    def _fit(self):
        room = self.contentsRect().width() - 2
        metrics = self.fontMetrics()
        options = self.shortenings()
        text = next((t for t in options if metrics.horizontalAdvance(t) <= room), None)
        if text is None:
            text = metrics.elidedText(options[-1], Qt.TextElideMode.ElideRight, max(room, 0))
        if text != self.text():
            self.setText(text)
        shown_whole = text == self.full_text
        self.setToolTip(self._explanation if shown_whole else f"{self.full_text}\n\n{self._explanation}".strip())


class _BadgeRow(QWidget):
    """The badges' row, which re-fits them whenever its width changes."""

    def __init__(self, on_resize):
        super().__init__()
        self._on_resize = on_resize

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._on_resize()


class StatusBar(QStatusBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = QLabel("starting")
        self.state.setToolTip("What training is doing: starting, running, paused, diverged (the loss or "
                              "gradient became NaN or infinite) or worker stopped.")
        self.step = QLabel("step 0")
        self.step.setToolTip("The training step the views show: the newest step any run has trained "
                             "since it started (Reset starts again at 0), or in a replay the step chosen "
                             "on the replay bar.")
        self.steps = QLabel("- steps/s")
        self.steps.setToolTip("Training steps per second, measured in the worker (all runs together).")
        self.fps = QLabel("- frames/s")
        self.fps.setToolTip("Redraws per second of the views (at most the display rate, about 60).")
        self.ratios = QLabel("")
        self.ratios.setToolTip("Per run: how the top layer's gradient at the first timestep compares with the "
                               "last one. 10^-6 means it arrives a million times weaker: it vanished. "
                               "10^+3 means it grew a thousandfold: it exploded.")
        self.badges = _BadgeRow(self._fit_badges)
        self.badge_layout = QHBoxLayout(self.badges)
        self.badge_layout.setContentsMargins(0, 0, 0, 0)
        self.badge_layout.setSpacing(4)
        self._badge_labels: list[BadgeLabel] = []
        self._badge_key = None
        self._lesson_names: list | None = None  # the lesson's names for its runs, while they are a lesson's
        # The clipping count is its own badge, which the window updates with every batch of steps:
        # the diagnosis runs only every few frames, and a count there lagged the parameter-gradient
        # view's title (and stayed behind once training paused). It comes after the diagnosis badges.
        self.clipping = BadgeLabel("", "How many training steps clipping changed the gradient (it was larger than the "
                                  "threshold and was scaled down or capped), counted since the run started: "
                                  "setting changes and rebuilds do not restart the count, Reset does. "
                                  "The parameter-gradient view's title shows the same count.")
        self.clipping.hide()
        self._clipping_wanted = False
        self.badge_layout.addWidget(self.clipping)
        # where the badges' shortest forms do not all fit, the last (least severe) give way to this
        self.more = QLabel("")
        self.more.hide()
        self.badge_layout.addWidget(self.more)
        self.badge_layout.addStretch(1)
        self._reserve_widths()
        for widget in (self.state, self.step, self.steps, self.fps, self.ratios):
            self.addWidget(widget)
        # Badges may be many (one set per compared run): they must never widen the window.
        self.badges.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.addWidget(self.badges, 1)
        self.recording = QLabel("")
        self.recording.setToolTip("Recording the views to a video file. Press Ctrl+R (V in lecture mode) to stop "
                                  "and save it.")
        self.recording.setStyleSheet(f"color: {RECORDING}; font-weight: bold;")
        self.recording.hide()
        self.addPermanentWidget(self.recording)
        self.run_colors = DARK.run_colors
        self._scale = 1.0
        self._session = None  # the run session it follows (follow)

    def follow(self, session):
        """Show the run session's state, and each run's ratio and clipping count as they change."""
        self._session = session
        session.state_changed.connect(self._on_state_changed)
        session.runs_rebuilt.connect(self._on_runs)
        session.steps_arrived.connect(self._on_runs)
        session.settings_applied.connect(self._on_runs)
        session.shown_step_changed.connect(self._on_runs)
        self.set_state(session.state)

    def _on_state_changed(self, state: str):
        self.set_state(state, self._session.diverged_at)

    def _on_runs(self, *_):
        histories = self._session.shown_histories()  # live, or a replay's step
        steps = [int(h.steps.last()) for h in histories if len(h.steps)]
        replay = " (replay)" if self._session.shown_step is not None else ""
        self.step.setText(f"step {max(steps, default=0):,}{replay}")
        self.set_ratios(histories)
        self.set_clipping(histories)  # a reset restarts the count

    def set_recording(self, seconds: float | None):
        """A red "● REC mm:ss" while recording; hidden (None) otherwise."""
        if seconds is None:
            self.recording.hide()
            return
        minutes, secs = divmod(int(seconds), 60)
        self.recording.setText(f"● REC {minutes:02d}:{secs:02d}")
        self.recording.show()

    def set_scale(self, factor: float):
        """Lecture mode: everything in the status bar large enough to read from the back of the room."""
        self._scale = factor
        if not hasattr(self, "_normal_font"):  # the font it had before lecture mode: what factor 1 returns to
            self._normal_font = self.font()
        font = QFont(self._normal_font)
        if factor != 1:
            font.setPointSizeF(10 * factor)
        for widget in (self, self.state, self.step, self.steps, self.fps, self.ratios, self.badges, self.clipping,
                       self.more, self.recording):
            widget.setFont(font)
        self._reserve_widths()
        for label in self._badge_labels:  # at the new size now, not at the next diagnosis (none while paused)
            label.setFont(font)
        self._badge_key = None  # rebuild the badges at the new size
        for widget in (self.steps, self.fps):  # speed figures are for the lab, not the lecture hall
            widget.setVisible(factor == 1.0)
        self._fit_badges()

    def _reserve_widths(self):
        """Room for the longest text of the labels that change, so the bar does not jump as they do;
        measured in the bar's own font, so that scale 1 gives back the widths the bar started with (in
        the state label's bold, they came back 45 px wider from lecture mode, and so did the window)."""
        metrics = self.fontMetrics()
        for widget, sample in ((self.state, "diverged at step 00000"), (self.step, "step 000,000"),
                               (self.steps, "0000.0 steps/s"), (self.fps, "00 frames/s")):
            widget.setMinimumWidth(metrics.horizontalAdvance(sample) + 8)

    def set_theme(self, theme):
        """Status text in the theme's colours (the window palette follows the theme as well), the runs' ratios in
        its run colours at once (they were left in the theme before until the next step: all of a paused lesson)."""
        self.run_colors = theme.run_colors
        if self._session is not None:
            self._on_runs()
        self.setStyleSheet(f"QStatusBar {{ background: {theme.background}; color: {theme.foreground}; }} "
                           f"QStatusBar QLabel {{ color: {theme.foreground}; }}")
        self.recording.setStyleSheet(f"color: {RECORDING}; font-weight: bold;")

    def set_state(self, state: str, diverged_at: int | None = None):
        self.state.setText(state_text(state, diverged_at))
        color = STATE_COLORS.get(state, "")
        self.state.setStyleSheet(f"color: {color}; font-weight: bold;" if color else "font-weight: bold;")

    def set_rates(self, steps_per_second: float | None, frames_per_second: float | None):
        self.steps.setText("- steps/s" if steps_per_second is None else f"{steps_per_second:.1f} steps/s")
        self.fps.setText("- frames/s" if frames_per_second is None else f"{frames_per_second:.0f} frames/s")

    def set_ratios(self, histories):
        names = run_names([h.info.config for h in histories])
        parts = []
        for i, h in enumerate(histories):
            value = h.first_last_ratio.last()
            color = self.run_colors[i % len(self.run_colors)]
            name = f"{names[i]}: " if len(histories) > 1 else ""
            text = ratio_text(value) if len(histories) == 1 else ratio_text(value).split(" (")[0]
            parts.append(f"<span style='color:{color}'>{name}{text}</span>")
        self.ratios.setText("gradient first/last step: " + "&nbsp;&nbsp;".join(parts))

    def set_clipping(self, histories):
        """The clipping count, in the parameter-gradient view's words; hidden until a run has clipped."""
        wanted = any(h.clip_count for h in histories)
        if wanted:
            self.clipping.set_full_text(clipping_text(histories), "clipping fired")
        if wanted != self._clipping_wanted:
            self._clipping_wanted = wanted
            self._fit_badges()

    def set_badges(self, badges: list):
        """badges: (run_index or None, Badge) pairs; a Badge has text, tooltip and severity."""
        key = [(run, b.text, b.tooltip, getattr(b, "severity", "")) for run, b in badges]
        if key == self._badge_key:
            return  # unchanged: do not relayout the status bar every frame
        self._badge_key = key
        for label in self._badge_labels:
            self.badge_layout.removeWidget(label)
            label.hide()  # at once: until deleteLater runs it would still be drawn, under the new ones
            label.deleteLater()
        self._badge_labels = []
        grouped: dict[str, list] = {}  # the same finding in several runs shows once: "runs 1, 3: ..."
        for run, badge in badges:
            grouped.setdefault(badge.text, []).append((run, badge))
        for text, items in grouped.items():
            badge = items[0][1]
            runs = [run + 1 for run, _ in items if run is not None]
            severity = str(getattr(badge, "severity", "info"))
            if not runs:
                prefix = ""
            elif self._lesson_names:  # the lesson's names for its runs, as the views say them
                prefix = ", ".join(self._lesson_names[r - 1] for r in runs) + ": "
            else:
                prefix = f"run {runs[0]}: " if len(runs) == 1 else "runs " + ", ".join(map(str, runs)) + ": "
            label = BadgeLabel(text, badge.tooltip, severity, getattr(badge, "short", ""), prefix)
            label.setFont(self.state.font())
            self.badge_layout.insertWidget(self.badge_layout.indexOf(self.clipping), label)
            self._badge_labels.append(label)
        self._fit_badges()

    def _fit_badges(self):
        """Show the badges, most severe first, as long as each has room for at least its shortest
        form; any left over are counted in a "+N more" whose tooltip lists them (squeezed below their
        shortest forms they all read "1: …")."""
        wanted = self._badge_labels + ([self.clipping] if self._clipping_wanted else [])
        room, spacing = self.badges.width(), self.badge_layout.spacing()
        widths = [label.minimumSizeHint().width() for label in wanted]
        fits, cap = len(wanted), None
        if sum(widths) + spacing * max(len(wanted) - 1, 0) > room:
            more = self.more.fontMetrics().horizontalAdvance(f"+{len(wanted)} more") + spacing + 4
            fits, used = 0, more
            while fits < len(wanted) and used + widths[fits] + spacing <= room:
                used += widths[fits] + spacing
                fits += 1
            if fits == 0 and wanted:  # the most severe finding shows, squeezed, and the count keeps its room
                fits, cap = 1, (max(room - more, 0) if len(wanted) > 1 else None)
                if cap is not None and cap < wanted[0].squeezed_width():  # squeezed to "a…", it says nothing:
                    fits, cap = 0, None  # the count alone, its tooltip listing them (learning-rate, lecture)
        for k, label in enumerate(wanted):
            label.setMaximumWidth(cap if k == 0 and cap is not None else QWIDGETSIZE_MAX)
            label.setVisible(k < fits)  # explicitly, even if not shown yet: a widget added to a shown
            #                             layout is shown later by Qt unless explicitly hidden
        if self.clipping not in wanted and not self.clipping.isHidden():
            self.clipping.hide()
        left = wanted[fits:]
        self.more.setText(f"+{len(left)} more" if left else "")
        self.more.setToolTip("\n".join(label.full_text for label in left))
        self.more.setVisible(bool(left))

    def badge_texts(self) -> list[str]:
        """The badges' whole texts (what is on screen may end in an ellipsis)."""
        clipping = [self.clipping.full_text] if self._clipping_wanted else []
        return [label.full_text for label in self._badge_labels] + clipping

    def update_diagnosis(self, histories):
        names = lesson_run_labels([h.info.config for h in histories]) if len(histories) > 1 else None
        if names != self._lesson_names:
            self._lesson_names = names
            self._badge_key = None  # the same findings, named anew
        badges = []
        for i, h in enumerate(histories):
            if h.latest is None:
                continue
            try:
                found = diagnose(h)
            except Exception:  # a diagnosis bug must not take the window down
                continue
            badges += [(i if len(histories) > 1 else None, b) for b in found]
        self.set_badges(badges)
