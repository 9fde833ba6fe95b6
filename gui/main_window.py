"""The main window: controls on the left, the lesson card on top, the eight views in a resizable grid,
a toolbar and a status bar; plus lecture mode, themes, recording, exports and experiment files.

GUI thread only. The window owns the TrainingController (the only thing that talks to the worker)
and one RunHistory per run. A display-rate QTimer empties the controller's mailbox, feeds the
histories and asks the visible views to redraw; views only ever read histories. Menus and actions
are built in one place (`_build_actions`, `_build_menus`); every action has an application-wide
shortcut, so the whole window can be driven from the keyboard (lecture mode hides the menus).
What the window remembers between sessions goes through an AppSettings (none: remember nothing).
"""
from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QKeySequence, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QDockWidget, QFileDialog, QFrame,
                               QHBoxLayout, QLabel, QLineEdit, QMainWindow, QMenu, QMessageBox, QPushButton,
                               QScrollArea, QSplitter, QToolBar, QVBoxLayout, QWidget)

from engine import experiment as experiments
from engine.config import Config, ConfigError
from engine.lessons import LESSONS
from gui import exporting
from gui.controller import TrainingController
from gui.controls import ComparePanel, ControlPanel
from gui.history import RunHistory
from gui.lesson_panel import LessonPanel
from gui.recording import FrameGrabber, RecordingError
from gui.recording_dialog import RecordingDialog, RecordingOptions
from gui.settings import AppSettings
from gui.status import StatusBar
from gui.theme import DARK, THEMES, Theme

DISPLAY_INTERVAL_MS = 16         # ~60 Hz redraws at most
DIAGNOSIS_INTERVAL_S = 0.25      # badges need not update every frame
GRID_COLUMNS = 4
HIGHLIGHT = "#E69F00"  # the frame and title of the view a lesson points at
PACE_LATE_MS = 12.0              # a display tick this late means the last one drew too much
MAX_INTERVAL_MS = 100
LECTURE_SCALE = 1.8              # fonts and lines in lecture mode on a 1080-line screen, for the back row


def lecture_scale(screen_height: int) -> float:
    """Lecture mode's scale for a screen `screen_height` pixels high: text keeps the same share of the
    picture a projector throws (1.8 at 1080 lines, 1.2 at 720), so a 720p projector's views are not
    squeezed by text sized for 1080p; never below 1.2."""
    return min(LECTURE_SCALE, max(1.2, LECTURE_SCALE * screen_height / 1080))
LECTURE_VIEWS = 4                # lecture mode shows fewer, larger views
OPENABLE = (".rgl", ".npz", ".json", ".toml")
# Single keys that mean nothing in a number box, so the window's shortcut wins there.
SHORTCUT_KEYS = {Qt.Key.Key_Space, Qt.Key.Key_S, Qt.Key.Key_R, Qt.Key.Key_C, Qt.Key.Key_N, Qt.Key.Key_P,
                 Qt.Key.Key_T, Qt.Key.Key_L, Qt.Key.Key_V}
# Lesson navigation wins over every input widget (spin boxes and lists would otherwise page through values).
NAVIGATION_KEYS = {Qt.Key.Key_PageDown, Qt.Key.Key_PageUp}


class ViewFrame(QFrame):
    """A view with its title above it; the explanation is the tooltip; right-click saves it as an image."""

    def __init__(self, view, theme):
        super().__init__()
        self.view = view
        self.highlighted = False
        self.export_requested = None   # set by the window: callable(frame, suffix)
        self._scale = 1.0
        self._foreground = theme.foreground
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self.title = QLabel(view.title or view.view_id)
        self.title.setToolTip(view.explanation + "\n(Right-click to save this view as PNG or SVG.)")
        view.setToolTip(view.explanation)
        layout.addWidget(self.title)
        layout.addWidget(view, 1)
        self._restyle()

    def highlight(self, on: bool):
        self.highlighted = on
        self._restyle()

    def set_scale(self, factor: float):
        self._scale = factor
        self._restyle()

    def set_theme(self, theme):
        self._foreground = theme.foreground
        self._restyle()

    def _restyle(self):
        # The highlight is painted (paintEvent), not a style sheet on the frame: a style sheet there
        # restyles every widget inside, and Qt then gave the view's boxes back the palette of the theme
        # they were built with (a dark run box in the light theme). The title's colour is in its own
        # style sheet, which the theme must then set: it kept the colour it was first styled with.
        border = max(2, round(2 * self._scale)) if self.highlighted else 0
        self.layout().setContentsMargins(*[max(2, border)] * 4)
        self._border = border
        self.update()
        self.title.setStyleSheet(f"font-weight: bold; padding-left: 4px; font-size: {round(10 * self._scale)}pt; "
                                 f"color: {HIGHLIGHT if self.highlighted else self._foreground};")

    def paintEvent(self, event):
        super().paintEvent(event)
        if self._border:
            painter = QPainter(self)
            pen = QPen(QColor(HIGHLIGHT), self._border)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            half = self._border / 2
            painter.drawRect(QRectF(self.rect()).adjusted(half, half, -half, -half))
            painter.end()

    def context_menu(self) -> QMenu:
        menu = QMenu(self)
        for suffix in (".png", ".svg"):
            action = menu.addAction(f"Save view as {suffix[1:].upper()}…")
            action.triggered.connect(lambda _=False, s=suffix: self.export_requested and self.export_requested(self, s))
        return menu

    def contextMenuEvent(self, event):
        self._menu = self.context_menu()
        self._menu.popup(event.globalPos())


class Banner(QFrame):
    """A non-blocking message across the top of the window, with details on demand."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("#banner { background: #5c1a1a; } QLabel { color: white; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message, 1)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self.show_details)
        layout.addWidget(self.details_button)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self.details = ""
        self._box = None
        self.hide()

    def show_message(self, message: str, details: str = ""):
        self.message.setText(message)
        self.details = details
        self.details_button.setVisible(bool(details))
        self.show()

    def show_details(self):
        self._box = QMessageBox(QMessageBox.Icon.Warning, "What went wrong", self.message.text(),
                                QMessageBox.StandardButton.Close, self)
        self._box.setDetailedText(self.details)
        self._box.open()  # not exec(): the window keeps running behind it


class _ShortcutsOverNumbers(QObject):
    """Let the window's single-key shortcuts win over number boxes, and Page Up/Down over every input.

    A spin box's line edit claims every printable key, but letters and spaces mean nothing in a
    number, so for those widgets the shortcut wins. Text fields (editable combos) keep their letters.
    Page Up/Down always go to the previous/next lesson: a lecturer presses them (or a presenter
    remote sends them) wherever the focus happens to be."""

    def eventFilter(self, obj, event):
        if event.type() != QEvent.Type.ShortcutOverride \
                or event.modifiers() not in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
            return False
        if event.key() in NAVIGATION_KEYS and isinstance(obj, (QLineEdit, QAbstractSpinBox, QComboBox)):
            event.ignore()
            return True
        if event.key() in SHORTCUT_KEYS and isinstance(obj, (QLineEdit, QAbstractSpinBox)):
            owner = obj if isinstance(obj, QAbstractSpinBox) else obj.parent()
            if isinstance(owner, QAbstractSpinBox):
                event.ignore()
                return True
        return False


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


def default_window_size(available: QSize) -> QSize:
    """1600x1000, or as much of the screen's free area as that leaves (a 1280x720 projector)."""
    return QSize(min(1600, available.width()), min(1000, available.height()))


class MainWindow(QMainWindow):
    def __init__(self, controller: TrainingController | None = None, configs: list[Config] | None = None,
                 view_classes=None, theme: Theme | str | None = None, in_process: bool = False,
                 settings: AppSettings | None = None):
        super().__init__()
        self.setWindowTitle("RNN Gradient Lab")
        self.setAcceptDrops(True)  # drop an experiment (.rgl) or a config (.json, .toml) to open it
        if controller is None:
            controller = TrainingController(list(configs or [Config()]), in_process=in_process)
        self.controller = controller
        self.settings = settings
        self.configs: list[Config] = list(controller.configs)
        if isinstance(theme, str):
            theme = THEMES[theme]
        if theme is None:  # what the user chose last time; dark the first time
            theme = THEMES[settings.theme(tuple(THEMES))] if settings is not None else DARK
        self.base_theme: Theme = theme   # dark or light at the normal scale
        self.theme: Theme = theme        # what the views show now (scaled in lecture mode)
        self.lecture = False
        self.lecture_scale = LECTURE_SCALE  # set from the screen on entering lecture mode
        self._before_lecture: dict | None = None
        self.recording_options = RecordingOptions()
        self.grabber: FrameGrabber | None = None
        self.last_recording: tuple[str, int] | None = None   # (path, frames) of the last finished one
        self.current_file: str | None = None
        self._recent_fallback: list[str] = []   # recent files when there is no AppSettings
        self._recorded_data_shown = False       # the views show a file's recorded data, training paused
        self._pending_logs = None               # recorded data waiting for its run set to be built
        self._pending_configs: list = []
        self.histories: list[RunHistory] = []
        self.infos: list = []
        self.state = "starting"
        self.frames = 0                   # display ticks that redrew at least one view
        self.training_steps = 0           # steps of the run set received (each step trains every run)
        self.first_frame_time: float | None = None
        self.first_data_time: float | None = None
        self.last_data_time: float | None = None
        self.steps_per_second: float | None = None
        self._undiagnosed = False          # steps arrived that the badges have not looked at yet
        self.lesson_stop: int | None = None  # training pauses by itself at this step: the lesson's point
        self._frame_times: collections.deque = collections.deque(maxlen=120)
        self._fresh_runs = True            # the next run set starts new histories (start, reset, restart)
        self._last_diagnosis = 0.0
        self._closed = False
        self._broken_views: set[str] = set()
        self._dirty: set[str] = set()      # views with data they have not drawn yet
        self._next_view = 0
        self._views_per_tick = 8
        self._last_tick: float | None = None
        self.last_error: tuple[str, str] | None = None

        if view_classes is None:
            from gui.views import ALL_VIEWS
            view_classes = ALL_VIEWS
        self.views: dict = {}
        self.view_frames: dict[str, ViewFrame] = {}

        self.controls = ControlPanel(self.configs[0])
        self.compare_panel = ComparePanel()
        self.compare_panel.set_base(self.configs[0])
        self.banner = Banner()
        self._build_views(view_classes)
        self._build_lesson_dock()
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status()

        self.controls.config_changed.connect(self._on_config_changed)
        self.compare_panel.compare_changed.connect(self._on_compare_changed)
        self.compare_panel.toggled.connect(self._sync_compare_action)
        queued = Qt.ConnectionType.QueuedConnection
        controller.runs_changed.connect(self._on_runs_changed, queued)
        controller.state_changed.connect(self._on_state_changed, queued)
        controller.stopped_at.connect(self._on_stopped_at, queued)
        controller.errored.connect(self._on_errored, queued)
        self._seen_infos = None
        if controller.current_runs() is not None:  # announced before we connected (a fast worker)
            self._on_runs_changed(controller.current_runs())

        self._shortcut_filter = _ShortcutsOverNumbers(self)
        QCoreApplication.instance().installEventFilter(self._shortcut_filter)

        self.display_timer = QTimer(self)
        self.display_timer.setInterval(DISPLAY_INTERVAL_MS)
        self.display_timer.timeout.connect(self._tick)
        self.display_timer.start()
        self.recording_timer = QTimer(self)  # the REC clock in the status bar
        self.recording_timer.setInterval(250)
        self.recording_timer.timeout.connect(self._show_recording_time)
        self.set_theme(self.base_theme.name)
        self._restore_window()

    # ------------------------------------------------------------------ building
    def _build_views(self, view_classes):
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        self.grid = QSplitter(Qt.Orientation.Vertical)
        self.grid.setChildrenCollapsible(False)
        rows: list[QSplitter] = []
        for index, view_class in enumerate(view_classes):
            if index % GRID_COLUMNS == 0:
                row = QSplitter(Qt.Orientation.Horizontal)
                row.setChildrenCollapsible(False)
                self.grid.addWidget(row)
                rows.append(row)
            view = view_class()
            view.apply_theme(self.theme)
            key = view.view_id or view_class.__name__
            self.views[key] = view
            frame = ViewFrame(view, self.theme)
            frame.setMinimumSize(160, 120)
            frame.export_requested = lambda frame, suffix, key=key: self.export_view(key, suffix=suffix)
            self.view_frames[key] = frame
            rows[-1].addWidget(frame)
            rows[-1].setStretchFactor(rows[-1].count() - 1, 1)
        self.grid_rows = rows
        self.view_order = list(self.views)
        if not view_classes:
            self.grid.addWidget(QLabel("No views are installed yet (gui/views/__init__.py ALL_VIEWS is empty)."))
        layout.addWidget(self.grid, 1)
        self.setCentralWidget(central)

        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.setContentsMargins(0, 0, 0, 0)
        panel_layout.addWidget(self.controls)
        panel_layout.addWidget(self.compare_panel)
        panel_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.sizeHint().width() + 20)
        self.controls_dock = QDockWidget("Settings", self)
        self.controls_dock.setObjectName("settings")
        self.controls_dock.setWidget(scroll)
        self.controls_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                       | QDockWidget.DockWidgetFeature.DockWidgetClosable
                                       | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)

    def _build_lesson_dock(self):
        self.lesson_panel = LessonPanel({key: frame.title.text() for key, frame in self.view_frames.items()})
        self.lesson_panel.lesson_chosen.connect(self.load_lesson)
        self.lesson_panel.free_play_chosen.connect(lambda: self._arm_lesson_stop(None))
        self.lesson_panel.highlight_requested.connect(self.highlight_view)
        self.lesson_dock = QDockWidget("Lesson", self)
        self.lesson_dock.setObjectName("lesson")
        # In a scroll area: wrapped labels would otherwise force a tall minimum height on the dock,
        # and a long narration on a small screen scrolls instead of being clipped.
        self.lesson_scroll = QScrollArea()
        self.lesson_scroll.setWidget(self.lesson_panel)
        self.lesson_scroll.setWidgetResizable(True)
        self.lesson_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.lesson_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lesson_dock.setWidget(self.lesson_scroll)
        self.lesson_dock.setFeatures(self.controls_dock.features())
        self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, self.lesson_dock)  # narration spans the views
        # The settings run the full height on the left; the lesson card sits above the views only.
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)

    def _action(self, text, slot, shortcuts=(), tip="", checkable=False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        keys = " or ".join(shortcuts)
        action.setToolTip(f"{tip} ({keys})" if keys else tip)  # no status tip: it would cover the status bar
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)  # shortcuts work even when the toolbar and menus are hidden
        return action

    def _build_actions(self):
        a = self._action
        self.actions_by_name = {
            "play": a("Play", self.toggle_play, ("Space",), "Start or pause training"),
            "step": a("Step", self.step_once, ("S", "Right"), "Pause and train exactly one step"),
            "reset": a("Reset", self.reset, ("R",),
                       "Start again from step 0 with the current settings (restarts a stopped worker)"),
            "compare": a("Compare", self.set_compare, ("C",),
                         "Train 2 to 4 runs side by side with one setting different", checkable=True),
            "record": a("Record", self.set_recording, ("Ctrl+R",),
                        "Start or stop recording the views to a video file (V in lecture mode)", checkable=True),
            "recording_settings": a("Recording settings…", self.edit_recording_settings, (),
                                    "Frame size, frame rate, MP4 or GIF, and the folder videos go to"),
            "next_lesson": a("Next lesson", lambda: self.lesson_panel.next(), ("PgDown", "N"),
                             "Go to the next guided lesson"),
            "previous_lesson": a("Previous lesson", lambda: self.lesson_panel.previous(), ("PgUp", "P"),
                                 "Go back to the previous guided lesson"),
            "lecture": a("Lecture mode", self.set_lecture, ("F11", "L"),
                         "Full screen, large text and thick lines for a projector; Esc leaves it", checkable=True),
            "leave_lecture": a("Leave lecture mode", lambda: self.set_lecture(False), ("Esc",),
                               "Back to the normal window"),
            "toggle_theme": a("Switch dark/light theme", self.toggle_theme, ("T",),
                              "Switch between the dark theme and the high-contrast light theme"),
            "open": a("Open…", self.open_file_dialog, ("Ctrl+O",),
                      "Open an experiment (.rgl) or a settings file (.json, .toml)"),
            "save_experiment": a("Save experiment…", lambda: self.save_experiment_dialog(False), ("Ctrl+S",),
                                 "Save every run's settings (and the lesson) to an .rgl file"),
            "save_experiment_data": a("Save experiment with data…", lambda: self.save_experiment_dialog(True),
                                      ("Ctrl+Alt+S",),
                                      "Save the settings and the recorded training data, to show them again later"),
            "save": a("Save config…", self.save_config, ("Ctrl+Shift+S",), "Save run 1's settings to a file"),
            "export_window_png": a("Window as PNG…", lambda: self.export_window(suffix=".png"), (),
                                   "Save a picture of the whole window"),
            "export_window_svg": a("Window as SVG…", lambda: self.export_window(suffix=".svg"), (),
                                   "Save the whole window as a vector drawing"),
            "export_csv": a("Run data as CSV…", lambda: self.export_data(suffix=".csv"), (),
                            "Save each run's recorded numbers, one row per training step (one file per run)"),
            "export_npz": a("Run data as NPZ…", lambda: self.export_data(suffix=".npz"), (),
                            "Save each run's recorded arrays for NumPy (one file per run)"),
            "export_config": a("Config that reproduces the run…", lambda: self.export_run_config(), (),
                               "Save run 1's settings; `main.py train --config FILE` trains the same run"),
            "quit": a("Quit", self.close, ("Ctrl+Q",), "Stop training and close the window"),
        }
        self.actions_by_name["leave_lecture"].setEnabled(False)  # Esc belongs to dialogs and lists otherwise
        for name, short in (("next_lesson", "Lesson ▶"), ("previous_lesson", "◀ Lesson"), ("lecture", "Lecture")):
            self.actions_by_name[name].setIconText(short)  # the toolbar's shorter label

    def _build_toolbar(self):
        self.toolbar = QToolBar("Training")
        self.toolbar.setObjectName("training")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("play", "step", "reset", "compare", "record", None, "previous_lesson", "next_lesson",
                     None, "lecture"):
            self.toolbar.addSeparator() if name is None else self.toolbar.addAction(self.actions_by_name[name])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)

    def _build_menus(self):
        bar = self.menuBar()
        self.menus = {}
        by_name = self.actions_by_name
        file_menu = self.menus["file"] = bar.addMenu("&File")
        file_menu.addAction(by_name["open"])
        self.recent_menu = self.menus["recent"] = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        for name in ("save_experiment", "save_experiment_data", "save"):
            file_menu.addAction(by_name[name])
        file_menu.addSeparator()
        export_menu = self.menus["export"] = file_menu.addMenu("&Export")
        for name in ("export_window_png", "export_window_svg"):
            export_menu.addAction(by_name[name])
        for suffix in (".png", ".svg"):
            views_menu = export_menu.addMenu(f"View as {suffix[1:].upper()}")
            for key, frame in self.view_frames.items():
                action = views_menu.addAction(frame.title.text() + "…")
                action.triggered.connect(lambda _=False, k=key, s=suffix: self.export_view(k, suffix=s))
        export_menu.addSeparator()
        for name in ("export_csv", "export_npz", "export_config"):
            export_menu.addAction(by_name[name])
        file_menu.addSeparator()
        file_menu.addAction(by_name["record"])
        file_menu.addAction(by_name["recording_settings"])
        file_menu.addSeparator()
        file_menu.addAction(by_name["quit"])
        self._rebuild_recent_menu()

        run_menu = self.menus["run"] = bar.addMenu("&Run")
        for name in ("play", "step", "reset", "compare"):
            run_menu.addAction(by_name[name])

        view_menu = self.menus["view"] = bar.addMenu("&View")
        view_menu.addAction(by_name["lecture"])
        theme_menu = self.menus["theme"] = view_menu.addMenu("&Theme")
        self.theme_actions = {}
        group = QActionGroup(self)
        for name in THEMES:
            action = QAction("High-contrast light" if name == "light" else name.capitalize(), self, checkable=True)
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[name] = action
        theme_menu.addSeparator()
        theme_menu.addAction(by_name["toggle_theme"])
        view_menu.addSeparator()
        view_menu.addAction(self.controls_dock.toggleViewAction())
        view_menu.addAction(self.lesson_dock.toggleViewAction())
        view_menu.addSeparator()
        self.view_actions = {}
        for key, frame in self.view_frames.items():
            action = QAction(frame.title.text(), self, checkable=True, checked=True)
            action.setToolTip(frame.view.explanation)
            action.toggled.connect(lambda on, k=key: self._arrange_grid())
            view_menu.addAction(action)
            self.view_actions[key] = action

        lessons_menu = self.menus["lessons"] = bar.addMenu("&Lessons")
        lessons_menu.addAction(by_name["previous_lesson"])
        lessons_menu.addAction(by_name["next_lesson"])
        lessons_menu.addSeparator()
        for number, (name, lesson) in enumerate(LESSONS.items(), 1):
            action = QAction(f"{number}. {lesson.title}", self)
            action.setToolTip(lesson.narration)
            action.triggered.connect(lambda _=False, n=name: self.load_lesson(n))
            lessons_menu.addAction(action)
        for menu in self.menus.values():
            menu.setToolTipsVisible(True)

    def _build_status(self):
        self.status = StatusBar()
        self.status.run_colors = self.theme.run_colors
        self.setStatusBar(self.status)
        self.status.set_state("starting")

    # ------------------------------------------------------------------ commands
    def toggle_play(self):
        if self.state == "running":
            self.controller.pause()
        else:
            self.play()

    def play(self):
        self._leave_recorded_data()
        if self.lesson_stop is None:
            self.lesson_panel.set_pause_note("")
        self.controller.start()

    def pause(self):
        self.controller.pause()

    def step_once(self):
        if self.state == "running":
            self.controller.pause()
        self._leave_recorded_data()
        self.controller.step()

    def reset(self):
        """Back to step 0, paused, with the current settings; a dead worker is replaced."""
        self._fresh_runs = True
        self._recorded_data_shown = False
        self._pending_logs = None
        self.banner.hide()
        if self.controller.alive():
            self.controller.pause()
        self.controller.reset()
        if self.lesson_panel.current is not None:  # from step 0, the lesson's stop holds again
            self._arm_lesson_stop(LESSONS[self.lesson_panel.current].steps)

    def _leave_recorded_data(self):
        """Training after showing a file's recorded data starts afresh from step 0 (new curves)."""
        if self._recorded_data_shown:
            self._recorded_data_shown = False
            self._fresh_runs = True
            self.controller.reset()

    def set_compare(self, on: bool):
        if self.compare_panel.isChecked() != on:
            self.compare_panel.setChecked(on)  # emits compare_changed

    def _sync_compare_action(self, on: bool):
        action = self.actions_by_name["compare"]
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)

    def apply_configs(self, configs: list[Config]):
        """Hand a complete new run set to the worker (applied at its next step)."""
        configs = list(configs)
        self._pending_logs = None  # recorded data from a file belongs to that file's run set only
        if configs != self.configs:
            self.configs = configs
            self.controller.set_configs(configs)
            self._arm_lesson_stop(None)  # other settings than the lesson's: no stop at its point

    def _arm_lesson_stop(self, steps: int | None):
        """Have training pause by itself once every run has trained `steps` steps (None: never), and
        say so on the lesson card."""
        self.lesson_stop = steps
        self.controller.set_until(steps)
        self.lesson_panel.set_pause_note(
            "" if steps is None else
            f"Play trains {steps} step{'s' if steps != 1 else ''} and pauses where this shows; Play again trains on.")

    def _on_stopped_at(self, steps: int):
        self.lesson_stop = None
        self.lesson_panel.set_pause_note(f"Paused at step {steps}, where this shows. Press Play (Space) to train on.")

    def _on_config_changed(self, config: Config):
        self.compare_panel.set_base(config)
        try:
            configs = self.compare_panel.configs(config)
        except ConfigError as exc:
            self.compare_panel.show_error(str(exc))
            configs = [config] + self.configs[1:]
        self.apply_configs(configs)

    def _on_compare_changed(self):
        try:
            configs = self.compare_panel.configs(self.controls.config())
        except ConfigError as exc:
            self.compare_panel.show_error(f"{exc}. The last valid runs keep training.")
            return
        self.compare_panel.show_error("")
        self.apply_configs(configs)

    def _show_run_set(self, configs: list[Config]):
        """Put a complete run set into the controls, the compare panel and the worker, from step 0."""
        base, extras = configs[0], list(configs[1:])
        self.controls.set_config(base)
        # The compare panel shows one compared setting: the first that differs, in the controls' order
        # (a lesson may also change a setting that only matters to one of the runs, e.g. the LSTM's forget bias).
        keys = [k for k in base.to_dict() if any(getattr(c, k) != getattr(base, k) for c in extras)]
        self.compare_panel.blockSignals(True)
        if keys and self.compare_panel.key.findData(keys[0]) >= 0:
            self.compare_panel.set_compare(keys[0], [getattr(c, keys[0]) for c in extras], base)
        self.compare_panel.setChecked(bool(extras))
        self.compare_panel.set_base(base)
        self.compare_panel.blockSignals(False)
        self._sync_compare_action(bool(extras))
        self._fresh_runs = True
        self.apply_configs(configs)

    # ------------------------------------------------------------------ lessons
    def load_lesson(self, name: str):
        """Set run 1 (and the compared runs) from a lesson, show its card and highlight where to look."""
        lesson = LESSONS[name]
        self._show_run_set(lesson.runs())
        self._arm_lesson_stop(lesson.steps)
        self._recorded_data_shown = False
        if self.lesson_panel.current != name:
            self.lesson_panel.show_lesson(name)   # emits highlight_requested
        elif lesson.look_at:
            self.highlight_view(lesson.look_at)
        if not lesson.look_at:
            self.highlight_view("")
        self.lesson_dock.show()
        QTimer.singleShot(0, self.fit_lesson_dock)  # once the new narration is laid out
        return lesson

    def highlight_view(self, key: str):
        for view_key, frame in self.view_frames.items():
            frame.highlight(view_key == key)
        if self.lecture:
            self._arrange_grid()

    def lecture_views(self) -> list[str]:
        """The four views lecture mode shows large: the one the lesson points at, then the classics."""
        from gui.record import pick_views
        return pick_views(self.highlighted_view() or "", self.view_order, LECTURE_VIEWS)

    def _arrange_grid(self):
        """Lay the shown views out in rows: all of them (GRID_COLUMNS a row), or lecture mode's four in 2x2."""
        if not self.grid_rows:
            return
        if self.lecture:
            keys, columns = self.lecture_views(), 2
        else:
            keys = [k for k in self.view_order if self.view_actions[k].isChecked()] if hasattr(self, "view_actions") \
                else list(self.view_order)
            columns = GRID_COLUMNS
        while len(self.grid_rows) * columns < len(keys):
            row = QSplitter(Qt.Orientation.Horizontal)
            row.setChildrenCollapsible(False)
            self.grid.addWidget(row)
            self.grid_rows.append(row)
        shown = set(keys)
        for key in self.view_order:
            self.view_frames[key].setVisible(key in shown)
        for index, key in enumerate(keys):
            row = self.grid_rows[index // columns]
            row.insertWidget(index % columns, self.view_frames[key])
        for key in self.view_order:  # hidden ones go to the last row, out of the way
            if key not in shown:
                self.grid_rows[-1].addWidget(self.view_frames[key])
        used_rows = max(1, -(-len(keys) // columns))
        for index, row in enumerate(self.grid_rows):
            row.setVisible(index < used_rows)
        self.equalize_grid()

    def highlighted_view(self) -> str | None:
        return next((key for key, frame in self.view_frames.items() if frame.highlighted), None)

    # ------------------------------------------------------------------ lecture mode and themes
    def set_lecture(self, on: bool):
        """Full screen, large type, thick lines, settings hidden; leaving restores the previous layout."""
        on = bool(on)
        action = self.actions_by_name["lecture"]
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
        if on == self.lecture:
            return
        if on:
            self._before_lecture = {"state": self.saveState(), "geometry": self.geometry(),
                                    "window_state": self.windowState(), "menu": self.menuBar().isVisible(),
                                    "lesson_dock": self.lesson_dock.isVisible()}
            self.lecture = True
            self.controls_dock.hide()
            self.lesson_dock.show()
            self.menuBar().hide()
            self.actions_by_name["record"].setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("V")])
            self.actions_by_name["leave_lecture"].setEnabled(True)
            screen = self.screen()
            self.lecture_scale = lecture_scale(screen.geometry().height() if screen else 1080)
            self._apply_scale(self.lecture_scale)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.lesson_dock)
            self.showFullScreen()
            self._arrange_grid()
            self.resizeDocks([self.lesson_dock], [max(360, self.width() * 3 // 10)], Qt.Orientation.Horizontal)
        else:
            before = self._before_lecture or {}
            self.lecture = False
            self.actions_by_name["record"].setShortcuts([QKeySequence("Ctrl+R")])
            self.actions_by_name["leave_lecture"].setEnabled(False)
            self._apply_scale(1.0)
            self.menuBar().setVisible(before.get("menu", True))
            state = before.get("window_state", Qt.WindowState.WindowNoState)
            self.setWindowState(state & ~Qt.WindowState.WindowFullScreen)
            if "geometry" in before and not state & Qt.WindowState.WindowMaximized:
                # the rectangle itself: restoreGeometry() guessed a title bar and frame that a frameless
                # (offscreen, kiosk) window does not have, and came back 2x26 pixels smaller
                self.setGeometry(before["geometry"])
            if "state" in before:
                self.restoreState(before["state"])  # docks as they were, the settings dock back
            self._arrange_grid()
        self.set_theme(self.base_theme.name)

    def _apply_scale(self, factor: float):
        font = QFont(QApplication.font())
        font.setPointSizeF(QApplication.font().pointSizeF() * (factor if factor == 1.0 else factor * 0.9))
        self.setFont(font)
        self.lesson_panel.set_scale(factor)
        self.status.set_scale(factor)
        pt = round(10 * factor)
        self.toolbar.setStyleSheet("" if factor == 1.0 else
                                   f"QToolButton {{ font-size: {pt}pt; padding: {round(4 * factor)}px "
                                   f"{round(10 * factor)}px; }}")
        for frame in self.view_frames.values():
            frame.set_scale(factor)

    def toggle_theme(self):
        self.set_theme("light" if self.base_theme.name == "dark" else "dark")

    def set_theme(self, name: str):
        """Dark or high-contrast light, for the views, the window's widgets and the status bar."""
        self.base_theme = THEMES[name]
        self.theme = self.base_theme.scaled(self.lecture_scale) if self.lecture else self.base_theme
        for key, view in self.views.items():
            try:
                view.apply_theme(self.theme)
            except Exception as exc:  # a view that cannot restyle keeps its old colours
                self._on_errored(f"The {key} view could not change its theme: {type(exc).__name__}: {exc}", "")
        self.status.run_colors = self.theme.run_colors
        palette = window_palette(self.theme)
        QApplication.setPalette(palette)  # menus and dialogs are windows of their own: they take the app's
        self.setPalette(palette)
        self.status.set_theme(self.theme)
        for frame in self.view_frames.values():
            frame.set_theme(self.theme)
        if name in getattr(self, "theme_actions", {}):
            self.theme_actions[name].setChecked(True)
        self._dirty.update(self.views)

    # ------------------------------------------------------------------ recording
    @property
    def recording(self) -> bool:
        return self.grabber is not None and self.grabber.recording

    def set_recording(self, on: bool):
        self.start_recording() if on else self.stop_recording()

    def start_recording(self, path=None) -> bool:
        """Record the views grid to a video at the fixed size and rate of the recording options."""
        if self.recording:
            return True
        options = self.recording_options
        path = Path(path) if path is not None else options.next_path()
        try:
            self.grabber = FrameGrabber(self.grid, path, options.size, options.fps, background=self.theme.background,
                                        parent=self)
        except (RecordingError, OSError) as exc:
            self.grabber = None
            self._sync_record_action(False)
            self.banner.show_message(f"Could not start recording to {path}: {exc}")
            return False
        self.grabber.errored.connect(self._on_recording_errored)
        self.grabber.finished.connect(self._on_recording_finished)
        self.grabber.start()
        self._sync_record_action(True)
        self.recording_timer.start()
        self._show_recording_time()
        return True

    def stop_recording(self) -> int:
        """Stop, encode every queued frame and close the file; returns the frame count (0: nothing saved)."""
        grabber, self.grabber = self.grabber, None
        self.recording_timer.stop()
        self.status.set_recording(None)
        self._sync_record_action(False)
        if grabber is None:
            return 0
        return grabber.stop()

    def _show_recording_time(self):
        if self.recording:
            self.status.set_recording(self.grabber.elapsed)

    def _sync_record_action(self, on: bool):
        action = self.actions_by_name["record"]
        action.blockSignals(True)
        action.setChecked(on)
        action.setText("Stop recording" if on else "Record")
        action.blockSignals(False)

    def _on_recording_errored(self, message: str):
        if self.grabber is not None and not self.grabber.recording:  # failed mid-recording: tidy up
            self.grabber = None
            self.recording_timer.stop()
            self.status.set_recording(None)
            self._sync_record_action(False)
        self.banner.show_message(f"Recording failed: {message}")

    def _on_recording_finished(self, path: str, frames: int):
        self.last_recording = (path, frames)
        self.status.showMessage(f"Saved the recording ({frames} frames) to {path}", 8000)

    def edit_recording_settings(self):
        self._recording_dialog = RecordingDialog(self.recording_options, self)
        self._recording_dialog.accepted_options.connect(self._set_recording_options)
        self._recording_dialog.open()  # not exec(): training and redraws go on behind it

    def _set_recording_options(self, options: RecordingOptions):
        self.recording_options = options

    # ------------------------------------------------------------------ exports
    def _ask_path(self, title: str, default_name: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.cwd() / default_name), filters)
        return path or None

    def _export(self, what: str, do):
        try:
            written = do()
        except (exporting.ExportError, OSError, ValueError) as exc:
            self.banner.show_message(f"Could not export {what}: {exc}")
            return None
        names = ", ".join(str(p) for p in (written if isinstance(written, list) else [written]))
        self.status.showMessage(f"Exported {what} to {names}", 8000)
        return written

    def export_view(self, key: str, path=None, suffix: str = ".png"):
        """One view as PNG (pixels) or SVG (vector). Without a path, asks for one."""
        frame = self.view_frames[key]
        if path is None:
            path = self._ask_path(f"Save the {frame.title.text()} view", f"{key}{suffix}",
                                  "PNG image (*.png);;SVG drawing (*.svg)" if suffix == ".png"
                                  else "SVG drawing (*.svg);;PNG image (*.png)")
            if path is None:
                return None
        return self._export(f"the {frame.title.text()} view", lambda: exporting.export_widget(frame.view, path))

    def export_window(self, path=None, suffix: str = ".png"):
        if path is None:
            path = self._ask_path("Save the window", f"rnn-gradient-lab{suffix}",
                                  "PNG image (*.png);;SVG drawing (*.svg)")
            if path is None:
                return None
        return self._export("the window", lambda: exporting.export_widget(self, path))

    def export_data(self, path=None, suffix: str = ".csv"):
        """Each run's recorded probes (the newest steps kept in memory), one file per run."""
        if path is None:
            path = self._ask_path("Save the run data", f"run-data{suffix}",
                                  "CSV table (*.csv);;NumPy arrays (*.npz)" if suffix == ".csv"
                                  else "NumPy arrays (*.npz);;CSV table (*.csv)")
            if path is None:
                return None
        return self._export("the run data", lambda: exporting.export_run_data(self.histories, path))

    def export_run_config(self, path=None):
        if path is None:
            path = self._ask_path("Save the config that reproduces run 1", "config.toml",
                                  "TOML settings (*.toml);;JSON settings (*.json)")
            if path is None:
                return None
        return self._export("the config", lambda: exporting.export_config(self.configs[0], path))

    def save_config(self):
        self.export_run_config()

    # ------------------------------------------------------------------ experiment files
    def save_experiment_dialog(self, include_data: bool):
        default = self.current_file if self.current_file and self.current_file.endswith(".rgl") \
            else str(Path.cwd() / "experiment.rgl")
        path, _ = QFileDialog.getSaveFileName(self, "Save experiment with data" if include_data else "Save experiment",
                                              default, "RNN Gradient Lab experiment (*.rgl)")
        if path:
            self.save_experiment(path, include_data)

    def save_experiment(self, path, include_data: bool = False) -> Path | None:
        """Every run's config and the lesson (and the recorded data, when asked) in one .rgl file."""
        logs = [h.log for h in self.histories] if include_data and self.histories else None
        exp = experiments.Experiment(list(self.configs), lesson=self.lesson_panel.current, logs=logs)
        try:
            written = experiments.save(path, exp, include_data=include_data)
        except (OSError, ValueError) as exc:
            self.banner.show_message(f"Could not save the experiment to {path}: {exc}")
            return None
        self._remember_file(written)
        self.status.showMessage(f"Saved the experiment to {written}", 8000)
        return written

    def open_file_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open experiment or settings", str(Path.cwd()),
                                              "Experiments and settings (*.rgl *.json *.toml);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path) -> bool:
        """Open an experiment or a settings file. Anything wrong is reported and changes nothing."""
        path = Path(path)
        try:
            exp = experiments.open_any(path)
        except experiments.ExperimentError as exc:
            text = str(exc)
            if path.name not in text:
                text = f"{path.name}: {text}"
            self.banner.show_message(f"Could not open {path.name}; nothing was changed. {text}")
            return False
        except OSError as exc:
            self.banner.show_message(f"Could not open {path.name}; nothing was changed. {exc}")
            return False
        self.banner.hide()
        self.show_experiment(exp)
        self._remember_file(path)
        self.status.showMessage(f"Opened {path}", 8000)
        return True

    def show_experiment(self, exp: experiments.Experiment):
        """Load an experiment's run set from step 0; recorded data is shown, paused, until Play or Step."""
        has_data = bool(exp.logs) and len(exp.logs) == len(exp.configs) and any(len(log) for log in exp.logs)
        if has_data:
            self.controller.pause()  # show what was recorded, not new training on top of it
        self._show_run_set(list(exp.configs))
        self._pending_logs = list(exp.logs) if has_data else None
        self._pending_configs = list(exp.configs)
        self._recorded_data_shown = has_data
        self.controller.reset()  # a fresh run set (new histories) even when only a value changed
        if exp.lesson in LESSONS:
            self.lesson_panel.show_lesson(exp.lesson)
        else:
            self.lesson_panel.show_lesson(None)
            self.highlight_view("")

    def _feed_recorded_data(self):
        logs, self._pending_logs = self._pending_logs, None
        for history, log in zip(self.histories, logs):
            history.extend(list(log.snapshots))
        self.status.set_ratios(self.histories)
        self.status.set_clipping(self.histories)
        self.status.update_diagnosis(self.histories)

    def _remember_file(self, path):
        path = str(Path(path).resolve())
        self.current_file = path
        if self.settings is not None:
            self.settings.add_recent_file(path)
            self.settings.set_last_experiment(path)
        else:
            self._recent_fallback = [path] + [p for p in self._recent_fallback if p != path]
        self._rebuild_recent_menu()

    def recent_files(self) -> list[str]:
        return self.settings.recent_files() if self.settings is not None else list(self._recent_fallback)

    def _rebuild_recent_menu(self):
        self.recent_menu.clear()
        files = self.recent_files()
        for number, path in enumerate(files, 1):
            action = self.recent_menu.addAction(f"&{number} {Path(path).name}")
            action.setData(path)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if not files:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)

    def restore_last_experiment(self) -> bool:
        """Reopen the experiment of the last session, if there was one and it still opens."""
        last = self.settings.last_experiment() if self.settings is not None else None
        if not last or not Path(last).is_file():
            return False
        return self.open_file(last)

    # ------------------------------------------------------------------ drag and drop
    @staticmethod
    def _dropped_file(mime) -> str | None:
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in OPENABLE:
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event):
        if self._dropped_file(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        self.dragEnterEvent(event)

    def dropEvent(self, event):
        path = self._dropped_file(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_file(path)

    # ------------------------------------------------------------------ remembered settings
    def _restore_window(self):
        """Geometry and dock layout of the last session; defaults when there is none or it is broken."""
        geometry = self.settings.geometry() if self.settings is not None else None
        if geometry is None or geometry.isEmpty() or not self.restoreGeometry(geometry):
            self.resize(default_window_size(self.screen().availableGeometry().size()))
        state = self.settings.window_state() if self.settings is not None else None
        if state is not None and not state.isEmpty():
            self._state_restored = self.restoreState(state)

    def save_settings(self):
        if self.settings is None:
            return
        before = self._before_lecture if self.lecture else None
        geometry = before["geometry"] if before else self.saveGeometry()
        state = before["state"] if before else self.saveState()
        self.settings.save_window(geometry, state)
        self.settings.set_theme(self.base_theme.name)
        self.settings.sync()

    # ------------------------------------------------------------------ controller signals
    def _on_runs_changed(self, infos):
        if infos is self._seen_infos:
            return  # the same announcement, seen once directly and once through the queue
        self._seen_infos = infos
        infos = list(infos)
        fresh = self._fresh_runs or len(infos) != len(self.histories)
        if fresh:
            self.histories = [RunHistory(info) for info in infos]
            for view in self.views.values():
                view.clear()
            self.status.set_clipping(self.histories)  # a reset restarts the count
            if self._pending_logs is not None and [i.config for i in infos] == self._pending_configs:
                self._feed_recorded_data()
        else:  # a structural change mid-run: curves continue, the trainer marked it as an event
            for history, info in zip(self.histories, infos):
                history.reshape(info)
        self._fresh_runs = self._pending_logs is not None  # recorded data waits for the run set it belongs to
        self.infos = infos
        for view in self.views.values():
            view.set_runs(infos)
        if self.state in ("starting", "diverged", "stopped"):  # the worker has its runs and waits for Play
            self._on_state_changed("paused")
        self._dirty.update(self.views)  # redrawn round-robin by the display timer, not all at once

    def _on_state_changed(self, state: str):
        self.state = state
        diverged_at = None
        if state == "diverged":
            steps = [h.diverged_at_step for h in self.histories if h.diverged_at_step is not None]
            diverged_at = min(steps) if steps else None
        self.status.set_state(state, diverged_at)
        self.actions_by_name["play"].setText("Pause" if state == "running" else "Play")

    def _on_errored(self, message: str, details: str):
        self.last_error = (message, details)
        if not self.controller.alive() and "Reset" not in message:
            message += " Press Reset (R) to start a new worker."
        self.banner.show_message(message, details)
        print(f"error: {message}", file=sys.stderr)

    # ------------------------------------------------------------------ display
    def _tick(self):
        now = time.perf_counter()
        self._pace(now)
        # Deliver queued run-set changes first, so snapshots of a new run set never reach old histories.
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)
        update = self.controller.take_updates()
        if update is not None:
            batches, rate = update
            if len(batches) == len(self.histories):  # else: from a run set that has just been replaced
                for history, snapshots in zip(self.histories, batches):
                    history.extend(snapshots)
                new_steps = max((len(b) for b in batches), default=0)
                if new_steps:
                    if self.first_data_time is None:
                        self.first_data_time = now
                    self.last_data_time = now
                self.training_steps += new_steps
                self.steps_per_second = rate
                self._dirty.update(self.views)
                self.status.set_ratios(self.histories)
                self.status.set_clipping(self.histories)  # every batch: the view's title says the same
                if self.state == "diverged":  # the state may have arrived before its last snapshots
                    self._on_state_changed("diverged")
                self._undiagnosed = True
        # the badges follow at most every DIAGNOSIS_INTERVAL_S while data streams in, and at once for the
        # last of it (paused, or a single step): else they could name an older step than the ratio beside them
        if self._undiagnosed and (now - self._last_diagnosis >= DIAGNOSIS_INTERVAL_S or
                                  (update is None and now - (self.last_data_time or now) > 0.1)):
            self._undiagnosed = False
            self._last_diagnosis = now
            self.status.update_diagnosis(self.histories)
        if self._redraw_some():
            self.frames += 1
            if self.first_frame_time is None:
                self.first_frame_time = now
            self._frame_times.append(now)
            recent = [t for t in self._frame_times if now - t <= 1.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else None
            self.status.set_rates(self.steps_per_second, fps)

    def _pace(self, now: float):
        """Adapt how many views redraw per tick to how late this timer fires.

        Painting eight plots can take longer than a display frame on a slow or busy machine; doing
        it in one go would freeze the UI for that long. So views redraw round-robin, as many per
        tick as keeps the timer on time, and the timer slows down if even one view per tick is
        too much, leaving the CPU to the worker."""
        if self._last_tick is not None:
            late = (now - self._last_tick) * 1000.0 - self.display_timer.interval()
            if late > PACE_LATE_MS:
                if self._views_per_tick > 1:
                    self._views_per_tick -= 1
                else:
                    self.display_timer.setInterval(min(MAX_INTERVAL_MS, self.display_timer.interval() + 4))
            elif late < PACE_LATE_MS / 3:
                if self.display_timer.interval() > DISPLAY_INTERVAL_MS:
                    self.display_timer.setInterval(max(DISPLAY_INTERVAL_MS, self.display_timer.interval() - 2))
                elif self._views_per_tick < max(1, len(self.views)):
                    self._views_per_tick += 1
        self._last_tick = now

    def _redraw_some(self) -> bool:
        """Refresh up to `_views_per_tick` visible views that have new data, round-robin."""
        keys = list(self.views)
        if not keys or not self._dirty:
            return False
        visible = self.visible_views()
        drawn = 0
        for _ in range(len(keys)):
            key = keys[self._next_view % len(keys)]
            self._next_view += 1
            if key in self._dirty and key in visible:
                self._refresh_view(key, visible[key])
                self._dirty.discard(key)
                drawn += 1
                if drawn >= self._views_per_tick:
                    break
        return drawn > 0

    def visible_views(self) -> dict:
        if self.isMinimized():
            return {}
        # (visibleRegion() is no help: a plot covered by its own children reports an empty region)
        return {k: v for k, v in self.views.items() if v.isVisible() and v.width() > 0 and v.height() > 0}

    def _refresh_views(self):
        """Refresh every visible view now (after a run-set change); hidden ones catch up when shown."""
        for key, view in self.visible_views().items():
            self._refresh_view(key, view)
            self._dirty.discard(key)

    def _refresh_view(self, key, view):
        try:
            view.refresh(self.histories)
        except Exception as exc:  # one broken view must not stop the others or the window
            if key not in self._broken_views:
                self._broken_views.add(key)
                import traceback
                self._on_errored(f"The {key} view failed to draw: {type(exc).__name__}: {exc}",
                                 traceback.format_exc())

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_grid_sized", False):  # equal cells on first show; the user may drag after
            self._grid_sized = True
            QTimer.singleShot(0, self.equalize_grid)
            if not getattr(self, "_state_restored", False):  # a lesson card just tall enough for its text
                QTimer.singleShot(0, self.fit_lesson_dock)

    def fit_lesson_dock(self):
        """The lesson card above the views just tall enough for its text (at most a third of the window),
        so it neither scrolls nor takes the views' room; done on first show and for every lesson."""
        if self.lecture or self.dockWidgetArea(self.lesson_dock) != Qt.DockWidgetArea.TopDockWidgetArea \
                or not self.lesson_dock.isVisible():
            return
        width = max(200, self.lesson_scroll.viewport().width())
        layout = self.lesson_panel.layout()
        height = layout.heightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
        chrome = self.lesson_dock.height() - self.lesson_scroll.viewport().height()  # title bar, frames
        wanted = min(max(height + chrome + 2, 100), self.height() // 3)
        self.resizeDocks([self.lesson_dock], [wanted], Qt.Orientation.Vertical)

    def equalize_grid(self):
        for row in self.grid_rows:
            row.setSizes([10_000] * row.count())  # hidden views take no room
        self.grid.setSizes([10_000] * self.grid.count())

    # ------------------------------------------------------------------ closing
    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        if self.grabber is not None:
            self.stop_recording()  # save the video before anything else goes
        self.display_timer.stop()
        QCoreApplication.instance().removeEventFilter(self._shortcut_filter)
        self.controller.shutdown()

    def closeEvent(self, event):
        if self.grabber is not None:
            self.stop_recording()
        if not self._closed:
            self.save_settings()
        self.shutdown()
        super().closeEvent(event)
