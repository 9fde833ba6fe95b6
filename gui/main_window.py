"""The main window: layout, actions and menus around one run session.

GUI thread only. Controls on the left, the lesson card on top, the views in a resizable grid, a toolbar
and a status bar. The window listens to the run session (gui/session.py), which owns the worker, the
configs, the histories and the lesson; the display scheduler (gui/display.py) redraws the views; files
(gui/files.py), recording (gui/recording_control.py), lecture mode (gui/lecture.py), the replay bar
(gui/replay.py) and compare mode (gui/compare_panel.py) live in modules of their own. Every action has an
application-wide shortcut (lecture mode hides the menus); AppSettings remembers (none: nothing).
"""
from __future__ import annotations

import sys

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QFont, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFrame, QMainWindow, QScrollArea, QToolBar, QVBoxLayout, QWidget

from engine.config import Config, ConfigError
from engine.lessons import LESSONS
from gui.accessibility import name_for_screen_readers
from gui.compare_panel import ComparePanel
from gui.controls import ControlPanel
from gui.display import DisplayScheduler
from gui.files import Files
from gui.following import Follower
from gui.view_frames import Banner
from gui.grid import ViewGrid
from gui.lecture import LectureMode
from gui.lesson_panel import LessonPanel
from gui.recording_control import RecordingControl
from gui.replay import ReplayBar
from gui.session import RunSession
from gui.settings import AppSettings
from gui.shortcuts import ShortcutsOverNumbers
from gui.status import StatusBar
from gui.theme import DARK, THEMES, Theme, window_palette


def default_window_size(available: QSize) -> QSize:
    """1600x1000, or as much of the screen's free area as that leaves (a 1280x720 projector)."""
    return QSize(min(1600, available.width()), min(1000, available.height()))


class MainWindow(QMainWindow):
    def __init__(self, session: RunSession, view_classes=None, theme: Theme | str | None = None,
                 settings: AppSettings | None = None):
        super().__init__()
        self.setWindowTitle("RNN Gradient Lab")
        self.setAcceptDrops(True)  # drop an experiment, a config, or a model or data file to open it
        self.session = session
        self.settings = settings
        if isinstance(theme, str):
            theme = THEMES[theme]
        if theme is None:  # what the user chose last time; dark the first time
            theme = THEMES[settings.theme(tuple(THEMES))] if settings is not None else DARK
        self.base_theme: Theme = theme   # dark or light at the normal scale
        self.theme: Theme = theme        # what the views show now (scaled in lecture mode)
        self._closed = False
        self._grid_sized = False
        self._state_restored = False
        if view_classes is None:
            from gui.views import ALL_VIEWS
            view_classes = ALL_VIEWS

        self.controls = ControlPanel(session.configs[0])
        self.compare_panel = ComparePanel()
        self.banner = Banner()
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._build_views(view_classes)
        self._build_lesson_dock()
        self.lecture_mode = LectureMode(self, self.controls_dock, self.lesson_dock)
        self.files = Files(session, settings, self)
        self.recorder = RecordingControl(self.grid, lambda: self.theme.background, self)
        self.display = DisplayScheduler(session, self.views, self.status, self)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self.follower = Follower.in_window(self)  # a run folder a script of the user's writes (gui/following.py)

        self.controls.config_changed.connect(self._on_config_changed)
        self.compare_panel.compare_changed.connect(self._on_compare_changed)
        self.compare_panel.toggled.connect(lambda on: self._check(self.actions_by_name["compare"], on))
        self.status.follow(session)
        session.state_changed.connect(self._on_state_changed)
        session.errored.connect(self.show_error)
        session.run_set_started.connect(self._show_run_set)
        session.lesson_changed.connect(self._on_lesson_changed)
        session.lesson_stop_changed.connect(self.lesson_panel.show_stop)
        self.lesson_panel.follow(session, refit=self.fit_lesson_dock)  # its pause note and whether the claim holds
        self.display.errored.connect(self.show_error)
        self.files.reported.connect(lambda text: self.status.showMessage(text, 8000))
        self.files.failed.connect(self.banner.show_message)
        self.files.opened.connect(lambda _: self.banner.hide())
        self.files.recent_changed.connect(self._rebuild_recent_menu)
        self.recorder.toggled.connect(self._sync_record_action)
        self.recorder.clock_ticked.connect(self.status.set_recording)
        self.recorder.failed.connect(self.banner.show_message)
        self.recorder.saved.connect(lambda path, n: self.status.showMessage(f"Saved the recording ({n} frames) to {path}", 8000))

        self._show_run_set(session.configs)  # what the session already holds (a lesson from the command line)
        self._on_lesson_changed(session.lesson)
        self.lesson_panel.show_stop(session.lesson_stop)
        self._shortcut_filter = ShortcutsOverNumbers(self)
        self._shortcut_filter.watch()  # the widget with the focus: its key events
        self.display.start()
        self.set_theme(self.base_theme.name)
        self._restore_window()
        name_for_screen_readers(self)

    # ------------------------------------------------------------------ building
    def _build_views(self, view_classes):
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        self.grid = ViewGrid(view_classes, self.theme, self.session)
        self.views, self.view_frames = self.grid.views, self.grid.frames
        for key, frame in self.view_frames.items():
            frame.export_requested = lambda frame, suffix, key=key: self.export_view(key, suffix=suffix)
        layout.addWidget(self.grid, 1)
        self.replay = ReplayBar(self.session, self)  # its keys are the window's: Left, Right, Home, End, G
        layout.addWidget(self.replay)
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
        self.lesson_panel.free_play_chosen.connect(self.session.free_play)
        self.lesson_panel.highlight_requested.connect(self.grid.highlight)
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
        a, s, files = self._action, self.session, self.files
        self.actions_by_name = {**self.replay.actions_by_name,
            "play": a("Play", s.toggle_play, ("Space",), "Start or pause training"),
            "step": a("Step", s.step_once, ("S",), "Pause and train exactly one step"),
            "reset": a("Reset", self.reset, ("R",),
                       "Start again from step 0 with the current settings (restarts a stopped worker)"),
            "compare": a("Compare", self.set_compare, ("C",),
                         "Train 2 to 4 runs side by side with one setting different", checkable=True),
            "record": a("Record", self.recorder.set_recording, ("Ctrl+R",),
                        "Start or stop recording the views to a video file (V in lecture mode)", checkable=True),
            "recording_settings": a("Recording settings…", lambda: self.recorder.edit_options(self), (),
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
            "open": a("Open…", files.open_dialog, ("Ctrl+O",),
                      "Open an experiment (.rgl), a settings file (.json, .toml), or a model or data file of your own"),
            "open_model": a("Open model…", files.open_model_dialog, ("Ctrl+M",), "Train and probe your own "
                            "nn.RNN/LSTM/GRU: a torch.save'd state_dict (.pt, .pth); its shape is read from it"),
            "open_data": a("Open data…", files.open_data_dialog, ("Ctrl+D",),
                           "Train on your own data: .npz sequences, a .csv time series or a .txt text"),
            "close_files": a("Close model and data", files.close_user_files, (),
                             "Back to the lab's own network and tasks"),
            "save_experiment": a("Save experiment…", lambda: files.save_experiment_dialog(False), ("Ctrl+S",),
                                 "Save every run's settings (and the lesson) to an .rgl file"),
            "save_experiment_data": a("Save experiment with data…", lambda: files.save_experiment_dialog(True),
                                      ("Ctrl+Alt+S",),
                                      "Save the settings and the recorded training data, to show them again later"),
            "save": a("Save config…", lambda: files.export_run_config(), ("Ctrl+Shift+S",),
                      "Save run 1's settings to a file"),
            "export_window_png": a("Window as PNG…", lambda: self.export_window(suffix=".png"), (),
                                   "Save a picture of the whole window"),
            "export_window_svg": a("Window as SVG…", lambda: self.export_window(suffix=".svg"), (),
                                   "Save the whole window as a vector drawing"),
            "export_csv": a("Run data as CSV…", lambda: files.export_data(suffix=".csv"), (),
                            "Save each run's recorded numbers, one row per training step (one file per run)"),
            "export_npz": a("Run data as NPZ…", lambda: files.export_data(suffix=".npz"), (),
                            "Save each run's recorded arrays for NumPy (one file per run)"),
            "export_config": a("Config that reproduces the run…", lambda: files.export_run_config(), (),
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
        for name in ("play", "step", "reset", "compare", "record", None, "previous_lesson", "next_lesson", None, "lecture"):
            self.toolbar.addSeparator() if name is None else self.toolbar.addAction(self.actions_by_name[name])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)

    def _build_menus(self):
        bar, by_name = self.menuBar(), self.actions_by_name
        self.menus = {}

        def menu(key, title, names=(), parent=bar):
            self.menus[key] = parent.addMenu(title)
            for name in names:
                self.menus[key].addSeparator() if name is None else self.menus[key].addAction(by_name[name])
            return self.menus[key]

        file_menu = menu("file", "&File", ("open", "open_model", "open_data", "close_files"))
        self.recent_menu = menu("recent", "Open &recent", parent=file_menu)
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        for name in ("save_experiment", "save_experiment_data", "save", None):
            file_menu.addSeparator() if name is None else file_menu.addAction(by_name[name])
        export_menu = menu("export", "&Export", ("export_window_png", "export_window_svg"), parent=file_menu)
        for suffix in (".png", ".svg"):
            views_menu = export_menu.addMenu(f"View as {suffix[1:].upper()}")
            for key, frame in self.view_frames.items():
                action = views_menu.addAction(frame.title.text() + "…")
                action.triggered.connect(lambda _=False, k=key, s=suffix: self.export_view(k, suffix=s))
        for name in (None, "export_csv", "export_npz", "export_config"):
            export_menu.addSeparator() if name is None else export_menu.addAction(by_name[name])
        for name in (None, "record", "recording_settings", None, "quit"):
            file_menu.addSeparator() if name is None else file_menu.addAction(by_name[name])
        self._rebuild_recent_menu()

        menu("run", "&Run", ("play", "step", "reset", "compare", None, "go_to_step", "replay_back", "replay_forward", "live",
                             None, "choose_sequence", "previous_sequence", "next_sequence"))
        view_menu = menu("view", "&View", ("lecture",))
        theme_menu = menu("theme", "&Theme", parent=view_menu)
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
        view_menu.addActions([self.controls_dock.toggleViewAction(), self.lesson_dock.toggleViewAction()])
        view_menu.addSeparator()
        self.view_actions = {}
        for key, frame in self.view_frames.items():
            action = QAction(frame.title.text(), self, checkable=True, checked=self.grid.shown[key])
            action.setToolTip(frame.view.explanation)
            action.toggled.connect(lambda on, k=key: self.grid.show_view(k, on))
            view_menu.addAction(action)
            self.view_actions[key] = action
        [view.in_window(self) for view in self.views.values()]  # what each adds (phase: clicks, Open sweep folder…)

        lessons_menu = menu("lessons", "&Lessons", ("previous_lesson", "next_lesson", None))
        for number, (name, lesson) in enumerate(LESSONS.items(), 1):
            action = QAction(f"{number}. {lesson.title}", self)
            action.setToolTip(lesson.narration)
            action.triggered.connect(lambda _=False, n=name: self.load_lesson(n))
            lessons_menu.addAction(action)
        for each in self.menus.values():
            each.setToolTipsVisible(True)

    def _rebuild_recent_menu(self):
        self.files.fill_recent_menu(self.recent_menu)

    @staticmethod
    def _check(action: QAction, on: bool):
        """Check or uncheck without triggering the action's slot."""
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)

    # ------------------------------------------------------------------ commands
    def reset(self):
        self.banner.hide()
        self.session.reset()

    def set_compare(self, on: bool):
        if self.compare_panel.isChecked() != on:
            self.compare_panel.setChecked(on)  # emits compare_changed

    def load_lesson(self, name: str, overrides=()):
        """A lesson's runs from step 0 (with the user's KEY=VALUE overrides), its card and where to look."""
        lesson = self.session.load_lesson(name, overrides)
        self.lesson_dock.show()
        QTimer.singleShot(0, self.fit_lesson_dock)  # once the new narration is laid out
        return lesson

    def _on_config_changed(self, config: Config):
        self.compare_panel.set_base(config)
        try:
            configs = self.compare_panel.configs(config)
        except ConfigError as exc:
            self.compare_panel.show_error(str(exc))
            configs = [config] + self.session.configs[1:]
        self.session.apply_configs(configs)

    def _on_compare_changed(self):
        try:
            configs = self.compare_panel.configs(self.controls.config())
        except ConfigError as exc:
            self.compare_panel.show_error(f"{exc}. The last valid runs keep training.")
            return
        self.compare_panel.show_error("")
        self.session.apply_configs(configs)

    def _show_run_set(self, configs: list[Config]):
        """A run set the session started (a lesson, a file), shown in the controls and the compare panel."""
        self.controls.set_config(configs[0])
        self.compare_panel.show_run_set(configs)
        self._check(self.actions_by_name["compare"], len(configs) > 1)

    # ------------------------------------------------------------------ session signals
    def _on_state_changed(self, state: str):
        self.actions_by_name["play"].setText("Pause" if state == "running" else "Play")

    def _on_lesson_changed(self, name: str | None):
        """The card follows the session's lesson; its view is highlighted (free play keeps the last one)."""
        if self.lesson_panel.current != name:
            self.lesson_panel.show_lesson(name)   # emits highlight_requested
        elif name is not None and LESSONS[name].look_at:
            self.grid.highlight(LESSONS[name].look_at)
        if name is not None and not LESSONS[name].look_at:
            self.grid.highlight("")

    def show_error(self, message: str, details: str = ""):
        if not self.session.worker_alive() and "Reset" not in message:
            message += " Press Reset (R) to start a new worker."
        self.banner.show_message(message, details)
        print(f"error: {message}", file=sys.stderr)

    def _sync_record_action(self, on: bool):
        self._check(self.actions_by_name["record"], on)
        self.actions_by_name["record"].setText("Stop recording" if on else "Record")

    def fit_lesson_dock(self):
        """The lesson card above the views just tall enough for its text (at most two fifths of the window, where
        its type then shrinks a little: LessonPanel.fit_text), so it neither scrolls nor takes the views' room; done
        on first show and for every lesson."""
        if self.lecture_mode.active or self.dockWidgetArea(self.lesson_dock) != Qt.DockWidgetArea.TopDockWidgetArea \
                or not self.lesson_dock.isVisible():
            return
        height = self.lesson_panel.full_height(max(200, self.lesson_scroll.viewport().width()))
        chrome = self.lesson_dock.height() - self.lesson_scroll.viewport().height()  # title bar, frames
        wanted = min(max(height + chrome + 2, 100), self.height() * 2 // 5)
        self.resizeDocks([self.lesson_dock], [wanted], Qt.Orientation.Vertical)
        QTimer.singleShot(0, self.lesson_panel.fit_text)  # (where the dock's height did not change)

    # ------------------------------------------------------------------ lecture mode and themes
    def set_lecture(self, on: bool):
        """Full screen, large type, thick lines, settings hidden; leaving restores the previous layout."""
        on = bool(on)
        self._check(self.actions_by_name["lecture"], on)
        if on == self.lecture_mode.active:
            return
        record, leave = self.actions_by_name["record"], self.actions_by_name["leave_lecture"]
        record.setShortcuts([QKeySequence("Ctrl+R")] + ([QKeySequence("V")] if on else []))
        leave.setEnabled(on)
        if on:
            self._apply_scale(self.lecture_mode.enter())
            self.lecture_mode.go_full_screen()
            self.grid.set_lecture(True)
            self.lecture_mode.widen_lesson_dock()
        else:
            self._apply_scale(1.0)
            self.lecture_mode.leave()
            self.grid.set_lecture(False)
        self.set_theme(self.base_theme.name)

    def _apply_scale(self, factor: float):
        font = QFont(QApplication.font())
        font.setPointSizeF(QApplication.font().pointSizeF() * (factor if factor == 1.0 else factor * 0.9))
        self.setFont(font)
        self.toolbar.setStyleSheet("" if factor == 1.0 else
                                   f"QToolButton {{ font-size: {round(10 * factor)}pt; padding: {round(4 * factor)}px "
                                   f"{round(10 * factor)}px; }}")
        for part in (self.lesson_panel, self.status, self.replay, *self.view_frames.values()):
            part.set_scale(factor)

    def toggle_theme(self):
        self.set_theme("light" if self.base_theme.name == "dark" else "dark")

    def set_theme(self, name: str):
        """Dark or high-contrast light, for the views, the window's widgets and the status bar."""
        self.base_theme = THEMES[name]
        self.theme = self.base_theme.scaled(self.lecture_mode.scale) if self.lecture_mode.active else self.base_theme
        for key, view in self.views.items():
            try:
                view.apply_theme(self.theme)
            except Exception as exc:  # a view that cannot restyle keeps its old colours
                self.show_error(f"The {key} view could not change its theme: {type(exc).__name__}: {exc}")
        palette = window_palette(self.theme)
        QApplication.setPalette(palette)  # menus and dialogs are windows of their own: they take the app's
        self.setPalette(palette)
        self.status.set_theme(self.theme)
        for frame in self.view_frames.values():
            frame.set_theme(self.theme)
        self.theme_actions[name].setChecked(True)
        self.display.mark_all_dirty()

    # ------------------------------------------------------------------ exports of what is on screen
    def export_view(self, key: str, path=None, suffix: str = ".png"):
        """One view as PNG (pixels) or SVG (vector), drawn up to date first. Without a path, asks for one."""
        self.display.bring_up_to_date(key)  # (a view in a tab behind another is not drawn while hidden)
        frame = self.view_frames[key]
        return self.files.export_widget(frame.view, f"the {frame.title.text()} view", key, path, suffix)

    def export_window(self, path=None, suffix: str = ".png"):
        return self.files.export_widget(self, "the window", "rnn-gradient-lab", path, suffix)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event):  # what a drop opens is the files' business
        self.files.take_drag(event)
    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event):
        self.files.take_drop(event)

    # ------------------------------------------------------------------ remembered settings, showing, closing
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
        self.settings.save_window(*self.lecture_mode.saved_geometry_and_state())
        self.settings.set_theme(self.base_theme.name)
        self.settings.sync()

    def showEvent(self, event):
        super().showEvent(event)
        if not self._grid_sized:  # equal cells on first show; the user may drag after
            self._grid_sized = True
            QTimer.singleShot(0, self.grid.equalize)
            if not self._state_restored:  # a lesson card just tall enough for its text
                QTimer.singleShot(0, self.fit_lesson_dock)

    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        if self.recorder.grabber is not None:
            self.recorder.stop()  # save the video before anything else goes
        self.display.shutdown()
        self.files.cancel_loading()
        self._shortcut_filter.unwatch()
        self.session.shutdown()

    def closeEvent(self, event):
        if not self._closed:
            self.save_settings()
        self.shutdown()
        super().closeEvent(event)
