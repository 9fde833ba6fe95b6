"""Lecture mode: what it does to the window's frame (full screen, menus hidden, the settings dock
away, the lesson card on the right) and undoes on leaving, and which views it shows large.

GUI thread only. `LectureMode` works on any QMainWindow through Qt's own API (geometry, window
state, docks, menu bar) and keeps what it must put back; the window itself scales its text,
arranges its grid and re-themes around `enter` and `leave`. `pick_views` is shared with `record`,
which films the same four views.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow

LECTURE_SCALE = 1.8              # fonts and lines in lecture mode on a 1080-line screen, for the back row
LECTURE_VIEWS = 4                # lecture mode shows fewer, larger views
DEFAULT_VIEWS = ("waterfall", "profile", "loss", "unrolled")


def lecture_scale(screen_height: int) -> float:
    """Lecture mode's scale for a screen `screen_height` pixels high: text keeps the same share of the
    picture a projector throws (1.8 at 1080 lines, 1.2 at 720), so a 720p projector's views are not
    squeezed by text sized for 1080p; never below 1.2."""
    return min(LECTURE_SCALE, max(1.2, LECTURE_SCALE * screen_height / 1080))


def pick_views(look_at: str, available: list[str], count: int = LECTURE_VIEWS) -> list[str]:
    """The views to show large: the one a lesson points at, then the classics, then the rest."""
    chosen = [look_at] if look_at in available else []
    for view_id in DEFAULT_VIEWS + tuple(available):
        if len(chosen) == count:
            break
        if view_id in available and view_id not in chosen:
            chosen.append(view_id)
    return chosen


class LectureMode:
    """The frame of a QMainWindow in lecture mode, and the way back to how it was."""

    def __init__(self, window: QMainWindow, settings_dock: QDockWidget, lesson_dock: QDockWidget):
        self.window, self.settings_dock, self.lesson_dock = window, settings_dock, lesson_dock
        self.active = False
        self.scale = LECTURE_SCALE       # set from the screen on entering
        self.before: dict | None = None  # what leaving puts back

    def enter(self) -> float:
        """Hide the settings and the menus; returns the scale for this screen. Call `go_full_screen`
        once the window has taken that scale."""
        w = self.window
        self.before = {"state": w.saveState(), "geometry": w.geometry(), "saved_geometry": w.saveGeometry(),
                       "window_state": w.windowState(),
                       "menu": w.menuBar().isVisible(), "lesson_dock": self.lesson_dock.isVisible()}
        self.active = True
        self.settings_dock.hide()
        self.lesson_dock.show()
        w.menuBar().hide()
        focused = QApplication.focusWidget()  # where the hidden settings' focus went (the replay bar's sequence box,
        if focused is not None and w.isAncestorOf(focused):  # its text selected, highlighted on the projector):
            focused.clearFocus()  # no input looks active; the window's shortcuts work without a focus
        screen = w.screen()
        self.scale = lecture_scale(screen.geometry().height() if screen else 1080)
        return self.scale

    def go_full_screen(self):
        self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.lesson_dock)
        self.window.showFullScreen()

    def widen_lesson_dock(self):
        """The lesson card takes 30% of the width (at least 360 pixels) beside the views."""
        w = self.window
        w.resizeDocks([self.lesson_dock], [max(360, w.width() * 3 // 10)], Qt.Orientation.Horizontal)

    def leave(self):
        """The menus, window state, geometry and docks as they were before `enter`."""
        w, before = self.window, self.before or {}
        self.active = False
        # The text's normal size reaches the window's minimum through posted layout requests, one level a
        # turn of the event loop; deliver them first, or the docks come back beside contents still at their
        # lecture minimum and the restored state widens the window (700 came back 787 wide).
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        w.menuBar().setVisible(before.get("menu", True))
        state = before.get("window_state", Qt.WindowState.WindowNoState)
        w.setWindowState(state & ~Qt.WindowState.WindowFullScreen)
        if "geometry" in before and not state & Qt.WindowState.WindowMaximized:
            # the rectangle itself: restoreGeometry() guessed a title bar and frame that a frameless
            # (offscreen, kiosk) window does not have, and came back 2x26 pixels smaller
            w.setGeometry(before["geometry"])
        if "state" in before:
            w.restoreState(before["state"])  # docks as they were, the settings dock back

    def saved_geometry_and_state(self):
        """What to remember between sessions while in lecture mode: the window as it was before."""
        before = self.before if self.active else None
        if before:
            return before["saved_geometry"], before["state"]
        return self.window.saveGeometry(), self.window.saveState()
