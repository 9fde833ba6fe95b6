"""Every control, view and button has a name a screen reader can say; the app has its icon; the
folders the app proposes come from the desktop's own (QStandardPaths); a check box's edge shows on both themes."""
from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from gui.accessibility import announced, name_for_screen_readers, spoken_name
from gui.views import ALL_VIEWS


def test_no_control_view_or_button_is_left_without_a_name(make_window, qtbot):
    window = make_window(view_classes=ALL_VIEWS)
    widgets = [w for w in [window] + window.findChildren(QWidget) if announced(w)]
    assert len(widgets) > 60  # the walk reached the controls, the toolbar and every view
    unnamed = [f"{type(w).__name__} {w.objectName()!r} in {type(w.parentWidget()).__name__}"
               for w in widgets if not spoken_name(w).strip()]
    assert not unnamed
    by_name = {spoken_name(w): w for w in widgets}
    for name in ("learning rate", "sequence length", "hidden units", "forget-gate bias", "Play", "Reset",
                 "Waterfall view", "Waterfall plot", "Waterfall: run", "Settings", "Lesson", "Training"):
        assert name in by_name, name
    assert by_name["learning rate"] is window.controls.controls["lr"]
    assert "how big each update is" in by_name["learning rate"].accessibleDescription()
    play = by_name["Play"]  # a button's name is its text, as the text changes
    window.session.play()
    qtbot.waitUntil(lambda: window.session.state == "running", timeout=30_000)
    assert spoken_name(play) == "Pause"
    window.session.pause()


def test_the_recording_dialog_names_its_fields(make_window, qtbot):
    window = make_window()
    window.recorder.edit_options(window)
    dialog = window.recorder.dialog
    assert name_for_screen_readers(dialog) == []
    assert spoken_name(dialog.folder_edit) == "Save to folder" and spoken_name(dialog.fps_box) == "Frame rate"
    dialog.reject()


def test_the_app_has_its_icon(qapp):
    from gui.app import _apply_style
    from resources import ICON
    _apply_style(qapp)
    icon = QApplication.windowIcon()
    assert not icon.isNull() and not QIcon(str(ICON)).pixmap(64, 64).isNull()
    assert qapp.desktopFileName() == "rnn-gradient-lab"


def test_videos_and_files_go_to_the_desktops_own_folders(make_window, tmp_path, monkeypatch):
    from gui.recording_dialog import default_folder
    QStandardPaths.setTestModeEnabled(True)  # its folders under ~/.qttest, made here
    try:
        movies = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation))
        documents = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation))
        movies.mkdir(parents=True, exist_ok=True)
        documents.mkdir(parents=True, exist_ok=True)
        assert default_folder() == movies
        window = make_window()
        assert window.files.start_folder() == documents
        saved = window.files.save_experiment(tmp_path / "a.rgl")
        assert window.files.start_folder() == saved.parent == tmp_path  # then where the user last was
    finally:
        QStandardPaths.setTestModeEnabled(False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(QStandardPaths, "writableLocation", lambda location: str(tmp_path / "no-such-folder"))
    assert default_folder() == tmp_path  # no videos folder: the current one


@pytest.mark.parametrize("theme_name", ["dark", "light"])
def test_a_check_box_shows_its_edge_on_either_themes_panel(qapp, theme_name):
    """Fusion draws a check box's frame in the window colour darkened: on the dark theme's panel that is the box's
    own colour, and the settings' "skip connections" was a dark square with no edge. LabStyle draws it in the
    palette's placeholder grey: its edge stands out from the panel by at least a third of the scale."""
    from PySide6.QtWidgets import QCheckBox, QStyle, QStyleOptionButton

    from gui.theme import DARK, LIGHT, LabStyle, window_palette
    style = LabStyle()
    box = QCheckBox("skip connections")
    box.setStyle(style)
    box.setPalette(window_palette(DARK if theme_name == "dark" else LIGHT))
    box.resize(200, 30)
    image = box.grab().toImage()
    option = QStyleOptionButton()
    option.initFrom(box)
    edge = style.subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    panel = box.palette().color(box.backgroundRole()).lightness()
    frame = [image.pixelColor(x, edge.top()).lightness() for x in range(edge.left() + 2, edge.right() - 1)]
    assert max(abs(value - panel) for value in frame) >= 85, (panel, frame)
