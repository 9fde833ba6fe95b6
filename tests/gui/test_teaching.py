"""The teaching features of the main window: lessons, lecture mode, themes, recording, exports,
experiment files (menus, drag and drop, recent files) and what the window remembers between sessions."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage, QPalette
from PySide6.QtWidgets import QSpinBox

from engine import config as cfg
from engine import experiment as experiments
from engine.config import Config
from engine.lessons import LESSONS, VIEWS
from gui.lecture import lecture_scale
from gui.recording_dialog import RecordingOptions
from gui.settings import AppSettings
from gui.theme import DARK, LIGHT
from tests.gui.conftest import RecordingView

TIMEOUT = 30_000
SMALL = Config(seq_len=12, hidden=8, batch=4)


class ThemedView(RecordingView):
    """A stand-in view that remembers the theme it was given (fast to build)."""

    def __init__(self):
        super().__init__()
        self.theme = None

    def apply_theme(self, theme):
        self.theme = theme


# One stand-in per view id the lessons point at, so highlighting can be checked without real plots.
STUB_VIEWS = [type(f"Stub_{vid}", (ThemedView,), {"view_id": vid, "title": vid.replace("_", " ").title()})
              for vid in VIEWS]


def ini_settings(path) -> AppSettings:
    return AppSettings(QSettings(str(path), QSettings.Format.IniFormat))


def take_some_steps(qtbot, window, n=3):
    for _ in range(n):
        window.session.step_once()
    qtbot.waitUntil(lambda: len(window.session.histories[0].steps) >= n, timeout=TIMEOUT)


def message(window) -> str:
    return window.banner.message.text() if window.banner.isVisible() else ""


# ---------------------------------------------------------------------------- lessons
def test_lesson_browser_walks_lessons_loading_configs_and_highlighting(make_window, qtbot):
    window = make_window(view_classes=STUB_VIEWS)
    assert window.lesson_dock.widget().widget() is window.lesson_panel
    names = list(LESSONS)
    for index, name in enumerate(names[:4]):
        if index % 2:
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        else:
            window.actions_by_name["next_lesson"].trigger()
        lesson = LESSONS[name]
        assert window.lesson_panel.current == name
        assert window.session.configs == lesson.runs()
        assert window.controls.config() == lesson.config()
        assert window.grid.highlighted() == lesson.look_at
        assert window.actions_by_name["compare"].isChecked() == bool(lesson.compare)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.lesson_panel.current == names[2]
    assert window.session.configs == LESSONS[names[2]].runs()
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.lesson_panel.current == names[2]
    # The panel's own list picks a lesson the same way.
    window.lesson_panel.picker.activated.emit(len(names))
    assert window.session.configs == LESSONS[names[-1]].runs()
    assert window.grid.highlighted() == LESSONS[names[-1]].look_at


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 720)])
def test_the_lesson_card_fits_each_lessons_text_without_scrolling(size, make_window, qtbot):
    """Free play has one line of text, fix-lstm four: the card above the views follows, tall enough
    that it does not scroll and not much taller. At 1280x720 a third of the window was too short for 21 of
    the 25 lessons (fix-lstm's "Try next" scrolled out of sight): the card may take two fifths, its type
    shrinking a little where that is still too short; a short lesson's type stays full size."""
    from PySide6.QtWidgets import QApplication
    window = make_window(view_classes=STUB_VIEWS)
    window.resize(*size)
    scroll, panel = window.lesson_scroll, window.lesson_panel

    def settle():  # the refit is queued behind the new text's layout, and the dock's behind the refit
        for _ in range(6):
            QApplication.processEvents()
    settle()
    for name in ("fix-lstm", "vanishing-tanh", "dead-units", "fix-lstm"):
        window.load_lesson(name)
        settle()
        needed = panel.layout().heightForWidth(scroll.viewport().width())
        assert not scroll.verticalScrollBar().isVisible(), (name, scroll.viewport().height(), needed)
        assert 0 <= scroll.viewport().height() - needed < 30, (name, scroll.viewport().height(), needed)
        assert panel._fit == 1.0 if name == "vanishing-tanh" or size[1] > 720 else panel._fit >= panel.SMALLEST_TYPE
        assert window.lesson_dock.height() <= size[1] * 2 // 5 + 1


def test_page_down_goes_to_the_next_lesson_while_a_spin_box_has_focus(make_window, qtbot):
    window = make_window(view_classes=STUB_VIEWS)
    spin = next(w for w in window.controls.findChildren(QSpinBox) if w.isEnabled())
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5_000)
    qtbot.keyClick(spin, Qt.Key.Key_PageDown)
    first = list(LESSONS)[0]
    assert window.lesson_panel.current == first
    assert window.session.configs == LESSONS[first].runs()


# ---------------------------------------------------------------------------- lecture mode and themes
@pytest.mark.parametrize("lines, scale", [(1080, 1.8), (2160, 1.8), (900, 1.5), (720, 1.2), (600, 1.2)])
def test_lecture_text_keeps_its_share_of_the_screen(lines, scale):
    """1.8x at 1080 lines, as much of the picture at fewer (a 720p projector), never below 1.2x."""
    assert lecture_scale(lines) == pytest.approx(scale)


@pytest.mark.parametrize("width, height", [(700, 600), (1280, 720)])
def test_lecture_mode_gives_back_the_windows_exact_width(make_window, qtbot, width, height):
    """It came back 2x26 pixels smaller (restoreGeometry), then wider (787 for 700): the settings dock was
    restored beside the replay bar's lecture-size minimum, and the bar's mark was measured in lecture type."""
    window = make_window(view_classes=STUB_VIEWS)
    window.load_lesson("vanishing-tanh")
    window.setGeometry(20, 30, width, height)
    geometry = window.geometry()
    status_width = window.status.minimumSizeHint().width()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.geometry() == geometry  # where and as large as it was
    assert window.status.minimumSizeHint().width() == status_width  # (else a window without the settings dock cannot go back below it)


def test_entering_lecture_mode_leaves_no_input_looking_active(make_window, qtbot):
    """An input with the focus shows as a highlighted box, its text selected, on the projector (the lesson
    renders had the replay bar's sequence box so in every lecture): entering lecture mode takes the focus
    from whatever input had it, and the window's shortcuts work without one."""
    from PySide6.QtWidgets import QApplication
    window = make_window(view_classes=STUB_VIEWS)
    window.load_lesson("vanishing-tanh")
    window.replay.sequence.setFocus()
    qtbot.waitUntil(lambda: window.replay.sequence.hasFocus(), timeout=5_000)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.lecture_mode.active and QApplication.focusWidget() is None
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.lecture_mode.active


def test_lecture_mode_goes_full_screen_large_and_esc_restores(make_window, qtbot):
    window = make_window(view_classes=STUB_VIEWS)
    window.load_lesson("vanishing-tanh")
    assert window.controls_dock.isVisible() and window.menuBar().isVisible()
    normal_font = window.font().pointSizeF()
    window.setGeometry(20, 30, 700, 600)
    geometry = window.geometry()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.lecture_mode.active and window.isFullScreen()
    assert not window.controls_dock.isVisible() and window.lesson_dock.isVisible()
    assert window.toolbar.isVisible()
    for name in ("play", "step", "reset", "compare", "record"):
        assert window.actions_by_name[name] in window.toolbar.actions()
    scale = lecture_scale(window.screen().geometry().height())  # the test screen's: 1.2 or more
    assert window.lecture_mode.scale == scale >= 1.2
    themes = {key: view.theme for key, view in window.views.items()}
    assert all(t.font_pt == round(DARK.font_pt * scale) and t.line_width == pytest.approx(DARK.line_width * scale)
               for t in themes.values())
    assert window.font().pointSizeF() == pytest.approx(normal_font * scale * 0.9, abs=0.5)
    assert window.lesson_panel._scale == scale
    assert window.status.state.font().pointSizeF() == pytest.approx(10 * scale, abs=0.5)
    shown = [key for key, frame in window.view_frames.items() if frame.isVisible()]
    # fewer, larger views, the lesson's one among them; what the screen cannot hold readable is in tabs
    assert "waterfall" in shown and 1 <= len(shown) <= 4
    assert set(window.grid.lecture_views()) <= set(shown) | set(window.grid.in_tabs)
    assert QKeySequenceText(window.actions_by_name["record"]) >= {"Ctrl+R", "V"}
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.lecture_mode.active and not window.isFullScreen()
    assert window.geometry().topLeft() == geometry.topLeft() and window.geometry().height() == geometry.height()
    assert window.controls_dock.isVisible() and window.menuBar().isVisible()
    assert all(frame.isVisible() or key in window.grid.in_tabs for key, frame in window.view_frames.items())
    assert all(view.theme.font_pt == DARK.font_pt for view in window.views.values())
    assert window.font().pointSizeF() == pytest.approx(normal_font)
    assert "V" not in QKeySequenceText(window.actions_by_name["record"])
    qtbot.keyClick(window, Qt.Key.Key_L)  # L toggles too
    assert window.lecture_mode.active
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert not window.lecture_mode.active and window.controls_dock.isVisible()


def QKeySequenceText(action) -> set:
    return {s.toString() for s in action.shortcuts()}


def test_theme_toggle_changes_views_window_and_status_bar(make_window, qtbot):
    from gui.views.loss import LossView
    window = make_window(view_classes=[LossView, ThemedView])
    loss = window.views["loss"]
    assert loss.area.backgroundBrush().color().name() == DARK.background
    qtbot.keyClick(window, Qt.Key.Key_T)
    assert window.base_theme is LIGHT
    assert loss.area.backgroundBrush().color().name() == LIGHT.background
    # the legend's labels are redrawn in the new colour (pyqtgraph only stores it until a text changes)
    drawn = [label.item.toHtml() for _, label in loss.legend.items]
    assert drawn and all(f"color:{LIGHT.foreground};" in html for html in drawn), drawn
    window.set_lecture(True)  # ... and in the lecture mode's larger size
    size = f"font-size:{loss.theme.font_pt - 2}pt;"
    drawn = [label.item.toHtml() for _, label in loss.legend.items]
    assert loss.theme.font_pt > LIGHT.font_pt and all(size in html for html in drawn), (size, drawn)
    window.set_lecture(False)
    assert window.views["recording"].theme is LIGHT
    assert window.palette().color(QPalette.ColorRole.Window).lightness() > 200
    assert LIGHT.background in window.status.styleSheet()
    assert window.theme_actions["light"].isChecked()
    window.theme_actions["dark"].trigger()
    assert loss.area.backgroundBrush().color().name() == DARK.background
    assert window.palette().color(QPalette.ColorRole.Window).lightness() < 100


def test_view_titles_take_the_new_theme_after_a_lesson_highlighted_one(make_window, qtbot):
    """A lesson highlights the view to look at, restyling every title; the titles then kept the dark
    theme's light text on the light theme's white (T after loading a lesson)."""
    from gui.views.loss import LossView
    window = make_window(view_classes=[LossView, ThemedView])
    window.show()
    window.load_lesson("vanishing-tanh")
    window.grid.highlight("loss")

    def lightness(key):  # of the title's pixels, as the window draws them (a grab of the label alone has
        from PySide6.QtCore import QPoint, QRect  # no background): darkest and lightest
        title = window.view_frames[key].title
        image = window.grab(QRect(title.mapTo(window, QPoint(0, 0)), title.size())).toImage()
        values = [image.pixelColor(x, y).lightness() for x in range(image.width()) for y in range(image.height())]
        return min(values), max(values)

    assert lightness("recording")[1] > 150  # light text on dark
    qtbot.keyClick(window, Qt.Key.Key_T)
    assert window.base_theme is LIGHT
    assert lightness("recording")[0] < 100  # dark text on light
    qtbot.keyClick(window, Qt.Key.Key_T)
    assert lightness("recording")[1] > 150


def test_a_highlighted_views_run_and_layer_boxes_keep_the_theme(make_window, qtbot):
    """The highlight was a style sheet on the view's frame, which restyled the boxes inside and gave
    them back the palette they were built with: in a window opened in the light theme, the Layers
    view's run box turned dark once a lesson pointed at it."""
    from PySide6.QtGui import QPalette
    from gui.views.layers import LayersView
    from gui.views.waterfall import WaterfallView
    window = make_window(view_classes=[WaterfallView, LayersView], theme="light")

    def base_colours():
        boxes = [box for view in window.views.values() for box in (view.selectors.run_combo, view.selectors.layer_spin)]
        return {box.palette().color(QPalette.ColorRole.Base).name() for box in boxes}
    assert base_colours() == {LIGHT.background}
    for key in ("layers", "waterfall", ""):
        window.grid.highlight(key)
        assert base_colours() == {LIGHT.background}, key
    qtbot.keyClick(window, Qt.Key.Key_T)
    window.grid.highlight("layers")
    assert base_colours() == {DARK.background}


# ---------------------------------------------------------------------------- recording
def test_recording_from_the_window_writes_a_fixed_size_mp4_in_real_time(make_window, qtbot, tmp_path):
    import imageio_ffmpeg
    window = make_window(view_classes=STUB_VIEWS[:2])
    window.recorder.options = RecordingOptions(size=(320, 240), fps=20.0, format="mp4", folder=tmp_path)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert window.recorder.recording and window.actions_by_name["record"].isChecked()
    assert window.status.recording.isVisible() and window.status.recording.text().startswith("● REC 00:0")
    qtbot.waitUntil(lambda: window.recorder.grabber.elapsed >= 1.0, timeout=10_000)
    elapsed = window.recorder.grabber.elapsed
    path = window.recorder.grabber.writer.path
    assert path.parent == tmp_path and path.name.startswith("rnn-gradient-lab-") and path.suffix == ".mp4"
    window.actions_by_name["record"].trigger()
    assert not window.recorder.recording and not window.status.recording.isVisible()
    assert not window.actions_by_name["record"].isChecked()
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    frames = sum(1 for _ in reader)
    assert tuple(meta["size"]) == (320, 240)
    assert window.recorder.last_recording == (str(path), frames)
    assert elapsed * 20 - 2 <= frames <= elapsed * 20 + 6


def test_closing_while_recording_saves_the_video(make_window, qtbot, tmp_path):
    import imageio_ffmpeg
    window = make_window()
    assert window.recorder.start(tmp_path / "talk.mp4")
    qtbot.waitUntil(lambda: window.recorder.grabber.elapsed >= 0.3, timeout=10_000)
    window.close()
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "talk.mp4"))
    meta = reader.__next__()
    assert tuple(meta["size"]) == (1280, 720) and sum(1 for _ in reader) >= 5


def test_a_recording_that_cannot_start_is_reported(make_window, tmp_path):
    window = make_window()
    assert not window.recorder.start(tmp_path / "talk.avi")
    assert "talk.avi" in message(window) and not window.actions_by_name["record"].isChecked()


# ---------------------------------------------------------------------------- exports
def test_exports_views_window_run_data_and_config(make_window, qtbot, tmp_path):
    window = make_window(view_classes=STUB_VIEWS[:2])
    take_some_steps(qtbot, window)
    key = next(iter(window.views))
    menu = window.view_frames[key].context_menu()
    assert [a.text() for a in menu.actions()] == ["Save view as PNG…", "Save view as SVG…"]
    png = window.export_view(key, tmp_path / "view.png")
    view = window.views[key]
    assert (QImage(str(png)).width(), QImage(str(png)).height()) == (view.width(), view.height())
    svg = window.export_view(key, tmp_path / "view.svg", suffix=".svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    shot = window.export_window(tmp_path / "window.png")
    assert QImage(str(shot)).width() == window.width()
    assert ET.parse(window.export_window(tmp_path / "window.svg")).getroot().tag.endswith("svg")

    (npz,) = window.files.export_data(tmp_path / "run.npz", suffix=".npz")
    expected = window.session.histories[0].log.to_arrays()
    with np.load(npz) as arrays:
        for name in expected:
            np.testing.assert_array_equal(arrays[name], expected[name])
    (csv,) = window.files.export_data(tmp_path / "run.csv")
    rows = np.genfromtxt(csv, delimiter=",", names=True)
    np.testing.assert_allclose(rows["loss"], expected["loss"])

    config_path = window.files.export_run_config(tmp_path / "config.toml")
    assert cfg.load(config_path) == window.session.configs[0]
    assert window.files.export_data(tmp_path / "run.xlsx") is None and "allowed" in message(window)


# ---------------------------------------------------------------------------- experiment files
def test_experiment_round_trip_with_and_without_data(make_window, qtbot, tmp_path):
    window = make_window(view_classes=STUB_VIEWS[:2])
    runs = [SMALL, SMALL.replace(hidden=10)]
    window.session.start_run_set(runs)
    qtbot.waitUntil(lambda: len(window.session.histories) == 2, timeout=TIMEOUT)
    take_some_steps(qtbot, window, 4)
    recorded = [len(h.steps) for h in window.session.histories]
    first_step = window.session.histories[0].steps.view()[0]
    plain = window.files.save_experiment(tmp_path / "plain")
    assert plain.suffix == ".rgl" and experiments.load(plain).logs is None
    with_data = window.files.save_experiment(tmp_path / "with-data.rgl", include_data=True)

    window.session.start_run_set([SMALL.replace(seq_len=9)])
    assert window.files.open(plain)
    assert window.session.configs == runs and window.compare_panel.isChecked()
    assert window.controls.config() == SMALL

    window.session.start_run_set([SMALL.replace(seq_len=9)])
    qtbot.waitUntil(lambda: len(window.session.histories) == 1, timeout=TIMEOUT)
    assert window.files.open(with_data)
    assert window.session.configs == runs
    qtbot.waitUntil(lambda: (window.display.tick() or True) and len(window.session.histories) == 2
                    and [len(h.steps) for h in window.session.histories] == recorded, timeout=TIMEOUT)
    assert window.session.histories[0].info.config == SMALL
    # Training after showing recorded data starts afresh from step 0.
    window.session.step_once()
    qtbot.waitUntil(lambda: (window.display.tick() or True) and len(window.session.histories[0].steps) == 1, timeout=TIMEOUT)
    assert window.session.histories[0].steps.view().tolist() == [first_step]


def test_drop_of_an_experiment_or_config_file_opens_it(make_window, tmp_path):
    window = make_window()
    json_path = tmp_path / "dropped.json"
    cfg.save(SMALL.replace(hidden=6), json_path)
    for path, expected in ((json_path, [SMALL.replace(hidden=6)]),):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        window.dropEvent(event)
        assert window.session.configs == expected
    rgl = experiments.save(tmp_path / "dropped.rgl", experiments.Experiment([SMALL.replace(batch=3)]))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.doc")), QUrl.fromLocalFile(str(rgl))])
    window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
    assert window.session.configs == [SMALL.replace(batch=3)]


@pytest.mark.parametrize("name, content", [
    ("garbage.rgl", bytes(range(256)) * 4),
    ("broken.json", b'{"seq_len": 12, "hidden": '),
    ("foreign.rgl", None),   # a valid archive that is not an experiment
])
def test_a_malformed_or_foreign_file_is_reported_and_changes_nothing(make_window, tmp_path, name, content):
    window = make_window()
    path = tmp_path / name
    if content is None:
        with open(path, "wb") as fh:
            np.savez(fh, weights=np.zeros(3))
    else:
        path.write_bytes(content)
    before = list(window.session.configs)
    assert not window.files.open(path)
    assert name in message(window) and "nothing was changed" in message(window)
    assert window.session.configs == before and window.controls.config() == before[0]


def test_recent_files_list_newest_first(make_window, tmp_path):
    window = make_window(settings=ini_settings(tmp_path / "settings.ini"))
    paths = []
    for i in range(3):
        path = tmp_path / f"exp{i}.rgl"
        experiments.save(path, experiments.Experiment([SMALL.replace(seed=i)]))
        paths.append(str(path.resolve()))
        assert window.files.open(path)
    window.files.open(paths[0])
    window._rebuild_recent_menu()
    listed = [a.data() for a in window.recent_menu.actions()]
    assert listed == [paths[0], paths[2], paths[1]]
    window.recent_menu.actions()[1].trigger()
    assert window.session.configs == [SMALL.replace(seed=2)]
    assert window.settings.last_experiment() == paths[2]


# ---------------------------------------------------------------------------- remembered settings
def test_theme_and_geometry_are_remembered_and_a_broken_ini_falls_back(make_window, qtbot, tmp_path):
    ini = tmp_path / "settings.ini"
    first = make_window(settings=ini_settings(ini))
    assert first.base_theme is DARK
    first.set_theme("light")
    first.resize(700, 560)  # within the 800x800 offscreen screen: restoring clamps to it
    qtbot.waitUntil(lambda: first.size().width() == 700, timeout=5_000)
    first.close()
    second = make_window(settings=ini_settings(ini))
    assert second.base_theme is LIGHT
    assert (second.width(), second.height()) == (700, 560)
    second.close()

    ini.write_bytes(b"[window]\ngeometry=@ByteArray(\\0\\x1garbage)\nstate=12\n[view]\ntheme=purple\n"
                    b"[experiment]\nrecent=3\nlast=\x00\xff\n")
    third = make_window(settings=ini_settings(ini))
    assert third.base_theme is DARK
    free = third.screen().availableGeometry()  # the default, 1600x1000, kept within the screen
    assert (third.width(), third.height()) == (min(1600, free.width()), min(1000, free.height()))
    assert free.width() < 1600  # (the offscreen screen is 800x800): a window larger than it was the bug
    assert third.files.recent_files() == []


# ---------------------------------------------------------------------------- command line
def test_without_a_display_the_app_says_so_and_exits_2():
    from gui.app import _display_available
    assert not _display_available({}, "linux")
    assert _display_available({"DISPLAY": ":0"}, "linux") and _display_available({"WAYLAND_DISPLAY": "w"}, "linux")
    assert _display_available({"QT_QPA_PLATFORM": "offscreen"}, "linux") and _display_available({}, "darwin")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "main.py", "--theme", "light"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no display found" in result.stderr and "xvfb-run" in result.stderr
    result = subprocess.run([sys.executable, "main.py", "--theme", "sepia"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "sepia" in result.stderr


def test_recording_settings_dialog_sets_size_rate_format_and_folder(make_window, qtbot, tmp_path):
    window = make_window()
    window.actions_by_name["recording_settings"].trigger()
    dialog = window.recorder.dialog
    dialog.size_box.setCurrentText("641x360")   # odd width: refused, options unchanged
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert "641x360" in dialog.error.text() and window.recorder.options == RecordingOptions()
    dialog.size_box.setCurrentText("854x480")
    dialog.fps_box.setValue(24)
    dialog.format_box.setCurrentIndex(1)
    dialog.folder_edit.setText(str(tmp_path))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    options = window.recorder.options
    assert (options.size, options.fps, options.format, options.folder) == ((854, 480), 24.0, "gif", tmp_path)
    assert options.next_path().parent == tmp_path and options.next_path().suffix == ".gif"


def test_compare_panel_names_what_a_lesson_compares(make_window):
    window = make_window(view_classes=STUB_VIEWS[:1])
    lesson = window.load_lesson("fix-lstm")   # run 2 differs in cell and forget bias
    assert window.session.configs == lesson.runs()
    assert window.compare_panel.compared_key() == "cell"
    assert window.compare_panel.values[0].currentText() == "rnn"


def test_in_lecture_mode_the_views_boxes_show_their_values_at_the_lecture_size(make_window, qtbot):
    """deep-stack in lecture mode at 1920x1080: the Waterfall's "layer:" box showed its value at 9 px beside an 18 pt
    label (the spin box took the lecture font, its text field kept the one it was built with); the Answers view's
    "answer:" box the same."""
    from gui.views.answers import AnswersView
    from gui.views.waterfall import WaterfallView
    window = make_window([Config(layers=3, seq_len=12, hidden=8, batch=4)], view_classes=[WaterfallView, AnswersView])
    window.set_lecture(True)
    boxes = [window.views["waterfall"].selectors.layer_spin, window.views["answers"].answer_spin]
    for on in (True, False):
        qtbot.waitUntil(lambda: window.lecture_mode.active == on, timeout=5_000)
        size = window.views["waterfall"].theme.font_pt
        assert (size > DARK.font_pt) == on
        for box in boxes:
            assert box.font().pointSizeF() == box.lineEdit().font().pointSizeF() == size, box
        window.set_lecture(False)
    window.set_theme("light")  # the Answers box's text field showed grey on black in the light theme
    for box in boxes:
        assert box.lineEdit().palette().color(QPalette.ColorRole.Base).name() == LIGHT.background, box
