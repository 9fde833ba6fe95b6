"""The lesson browser walks through every lesson, says where to look, and at a lesson's pause whether
its claim holds, read from a real session's runs."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

from engine.config import Config
from engine.lessons import LESSONS
from gui.lesson_panel import LessonPanel
from gui.session import RunSession


def test_next_and_previous_walk_every_lesson_in_order(qtbot):
    panel = LessonPanel()
    qtbot.addWidget(panel)
    seen = []
    panel.lesson_chosen.connect(seen.append)
    for _ in range(len(LESSONS) + 2):  # pressing past the end stays on the last lesson
        panel.next()
    assert seen[:len(LESSONS)] == list(LESSONS) and seen[-1] == list(LESSONS)[-1]
    assert not panel.next_button.isEnabled()
    panel.previous()
    assert panel.current == list(LESSONS)[-2] if len(LESSONS) > 1 else panel.current == list(LESSONS)[0]


def test_card_shows_title_narration_and_where_to_look(qtbot):
    name, lesson = next(iter(LESSONS.items()))
    panel = LessonPanel(view_titles={lesson.look_at: "The Look-At View"})
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.highlight_requested) as blocker:
        panel.show_lesson(name)
    assert blocker.args == [lesson.look_at]
    assert lesson.title in panel.title.text() and "The Look-At View" in panel.look_at.text()
    assert panel.narration.text()


def test_picking_from_the_list_emits_the_lesson(qtbot):
    panel = LessonPanel()
    qtbot.addWidget(panel)
    last = list(LESSONS)[-1]
    with qtbot.waitSignal(panel.lesson_chosen) as blocker:
        panel.picker.activated.emit(len(LESSONS))
    assert blocker.args == [last] and panel.current == last


def test_lessons_name_views_by_the_titles_the_window_shows():
    """A lesson that says 'the X view' must name a view the window has under that title (they said
    'attribution view' and 'parameter-gradient view', names only the code used)."""
    import re
    from gui.views import ALL_VIEWS
    titles = {v.title.lower() for v in ALL_VIEWS}
    for lesson in LESSONS.values():
        for text in (lesson.narration, lesson.next_change, lesson.claim):
            for match in re.finditer(r"the ([A-Za-z][\w -]*?) view\b", text):
                words = match.group(1).lower()
                assert any(words.endswith(title) for title in titles), (lesson.name, match.group(0))


def run_to_the_pause(qtbot, name: str, overrides=()):
    """A real session (in-process worker) trains lesson `name` to its pause; the panel follows it."""
    session = RunSession([Config(seq_len=6, hidden=4, batch=2)], in_process=True)
    panel = LessonPanel()
    qtbot.addWidget(panel)
    panel.follow(session)
    session.lesson_changed.connect(panel.show_lesson)
    session.lesson_stop_changed.connect(panel.show_stop)
    with qtbot.waitSignal(session.stopped_at_lesson, timeout=60_000) as paused:
        session.load_lesson(name, overrides)
        session.play()
    return session, panel, paused.args[0]


def test_at_the_pause_the_card_says_the_claim_holds_at_every_step_with_its_figure(qtbot):
    session, panel, steps = run_to_the_pause(qtbot, "learning-rate")
    try:
        lesson = LESSONS["learning-rate"]
        assert steps == lesson.steps and session.lesson == "learning-rate"
        expected = lesson.check([list(h.log.snapshots) for h in session.histories], session.infos)
        assert expected.holds_throughout
        text = panel.claim_note.text()
        assert panel.claim_note.isVisibleTo(panel) and "Paused at step 30" in panel.pause_note.text()
        assert text.startswith("✓ The claim holds at every step to 30: about right (0.05): loss ")
        assert f"{expected.figure:.3g}x its first (5-step average)" in text and "(and 2 more parts, all holding)" in text
        assert "too large (1.0): diverged at step" in panel.claim_note.toolTip()
        session.load_lesson("vanishing-tanh")  # another lesson's card says nothing of the claim yet
        assert not panel.claim_note.isVisibleTo(panel)
    finally:
        session.shutdown()


def test_where_the_users_settings_break_the_claim_the_card_says_at_which_step(qtbot):
    session, panel, _ = run_to_the_pause(qtbot, "vanishing-tanh", ["activation=relu", "init=identity"])
    try:
        text = panel.claim_note.text()
        assert text.startswith("✗ The claim does not hold at step 1: ") and text.endswith("(claim: over 15)")
    finally:
        session.shutdown()


def test_the_cards_notes_show_an_apostrophe_and_an_ampersand_as_themselves(qtbot):
    panel = LessonPanel()
    qtbot.addWidget(panel)
    panel.set_pause_note("Paused at the step's end")
    panel.set_claim_note("✓ smallest timestep's gradient < 1e-6 & falling")
    panel.show()
    for label, shown in ((panel.pause_note, "step's end"), (panel.claim_note, "timestep's gradient < 1e-6 & falling")):
        document = QTextDocument()
        document.setHtml(label.text())
        assert label.textFormat() == Qt.TextFormat.RichText and shown in document.toPlainText()


def test_a_long_card_shrinks_its_type_until_try_next_is_in_sight(qtbot):
    """dead-units, lru-ring and indrnn in lecture mode at 1280x720 scrolled "Try next" out of the card: its type
    shrinks in steps until the whole text fits the card's height, never below 0.9 of the normal card's size."""
    from PySide6.QtWidgets import QScrollArea
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    panel = LessonPanel()
    scroll.setWidget(panel)
    qtbot.addWidget(scroll)
    scroll.resize(380, 560)
    scroll.show()
    qtbot.waitExposed(scroll)
    panel.show_lesson("lru-ring")
    panel.set_scale(1.6)

    def fits():
        return panel.layout().heightForWidth(panel.width()) <= scroll.viewport().height()
    assert panel._fit < 1.0 and fits()
    assert panel._scale * panel._fit >= panel.SMALLEST_TYPE
    scroll.resize(380, 2000)  # room enough: the full lecture size again, once the text changes or the card resizes
    qtbot.waitUntil(lambda: panel._fit == 1.0, timeout=5_000)
    panel.set_scale(1.0)  # the normal card: a little smaller where it does not fit, never below SMALLEST_TYPE
    scroll.resize(380, 200)
    qtbot.waitUntil(lambda: scroll.viewport().height() < 200, timeout=5_000)
    qtbot.waitUntil(lambda: panel._fit == panel.SMALLEST_TYPE, timeout=5_000)
    assert not fits()  # (too long to fit at any size: it scrolls)
    scroll.resize(380, 2000)
    qtbot.waitUntil(lambda: panel._fit == 1.0, timeout=5_000)


def test_a_title_too_long_for_the_chooser_ends_in_an_ellipsis_not_mid_letter(qtbot):
    """Lecture mode's narrow card cut the chosen lesson's title mid-letter ('24. IndRNN: one weight p'): the chooser
    now shows it shortened with an ellipsis where it does not fit, whole where it does."""
    panel = LessonPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    panel.show_lesson("indrnn")
    picker = panel.picker
    whole = picker.currentText()
    qtbot.waitUntil(lambda: picker.shown_text() == whole)
    panel.resize(320, 400)
    qtbot.waitUntil(lambda: picker.shown_text() != whole)
    shown = picker.shown_text()
    assert shown.endswith("…") and whole.startswith(shown[:-1]) and len(shown) > 4, shown
    assert picker.fontMetrics().horizontalAdvance(shown) <= picker.width()
    picker.grab()  # painted through the eliding paint
