"""The lesson browser walks through every lesson and says where to look."""
from engine.lessons import LESSONS
from gui.lesson_panel import LessonPanel


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
