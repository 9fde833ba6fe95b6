"""The main window: controls on the left, the eight views in a resizable grid, a toolbar and a status bar.

GUI thread only. The window owns the TrainingController (the only thing that talks to the worker)
and one RunHistory per run. A display-rate QTimer empties the controller's mailbox, feeds the
histories and asks the visible views to redraw; views only ever read histories. Menus and actions
are built in one place (`_build_actions`, `_build_menus`) so later features can add to them.
"""
from __future__ import annotations

import collections
import sys
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractSpinBox, QDockWidget, QFileDialog, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QMainWindow, QMessageBox, QPushButton, QScrollArea, QSplitter,
                               QToolBar, QVBoxLayout, QWidget)

from engine import config as cfg
from engine.config import Config, ConfigError
from gui.controller import TrainingController
from gui.controls import ComparePanel, ControlPanel
from gui.history import RunHistory
from gui.status import StatusBar
from gui.theme import DARK

DISPLAY_INTERVAL_MS = 16         # ~60 Hz redraws at most
DIAGNOSIS_INTERVAL_S = 0.25      # badges need not update every frame
GRID_COLUMNS = 4
PACE_LATE_MS = 12.0              # a display tick this late means the last one drew too much
MAX_INTERVAL_MS = 100
SHORTCUT_KEYS = {Qt.Key.Key_Space, Qt.Key.Key_S, Qt.Key.Key_R, Qt.Key.Key_C}


class ViewFrame(QFrame):
    """A view with its title above it; the explanation is the tooltip."""

    def __init__(self, view, theme):
        super().__init__()
        self.view = view
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self.title = QLabel(view.title or view.view_id)
        self.title.setToolTip(view.explanation)
        self.title.setStyleSheet("font-weight: bold; padding-left: 4px;")
        view.setToolTip(view.explanation)
        layout.addWidget(self.title)
        layout.addWidget(view, 1)

    def highlight(self, on: bool):
        self.setStyleSheet("ViewFrame { border: 2px solid #E69F00; }" if on else "")


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


class Narration(QFrame):
    """A lesson's narration card across the top."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("narration")
        self.setStyleSheet("#narration { background: #1f3a52; } QLabel { color: white; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.text = QLabel()
        self.text.setWordWrap(True)
        layout.addWidget(self.text, 1)
        close = QPushButton("Hide")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self.hide()


class _ShortcutsOverNumbers(QObject):
    """Let Space/S/R/C reach the window's shortcuts even when a number box has focus.

    A spin box's line edit claims every printable key, but letters and spaces mean nothing in a
    number, so for those widgets the shortcut wins. Text fields (editable combos) keep their keys."""

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in SHORTCUT_KEYS \
                and event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier) \
                and isinstance(obj, (QLineEdit, QAbstractSpinBox)):
            owner = obj if isinstance(obj, QAbstractSpinBox) else obj.parent()
            if isinstance(owner, QAbstractSpinBox):
                event.ignore()
                return True
        return False


class MainWindow(QMainWindow):
    def __init__(self, controller: TrainingController | None = None, configs: list[Config] | None = None,
                 view_classes=None, theme=DARK, in_process: bool = False):
        super().__init__()
        self.setWindowTitle("RNN Gradient Lab")
        if controller is None:
            controller = TrainingController(list(configs or [Config()]), in_process=in_process)
        self.controller = controller
        self.configs: list[Config] = list(controller.configs)
        self.theme = theme
        self.histories: list[RunHistory] = []
        self.infos: list = []
        self.state = "starting"
        self.frames = 0                   # display ticks that redrew at least one view
        self.training_steps = 0           # steps of the run set received (each step trains every run)
        self.first_frame_time: float | None = None
        self.first_data_time: float | None = None
        self.last_data_time: float | None = None
        self.steps_per_second: float | None = None
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
        self.narration = Narration()
        self._build_views(view_classes)
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
        self.resize(1600, 1000)

    # ------------------------------------------------------------------ building
    def _build_views(self, view_classes):
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.narration)
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
            self.view_frames[key] = frame
            rows[-1].addWidget(frame)
            rows[-1].setStretchFactor(rows[-1].count() - 1, 1)
        self.grid_rows = rows
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

    def _action(self, text, slot, shortcuts=(), tip="", checkable=False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        keys = " or ".join(shortcuts)
        action.setToolTip(f"{tip} ({keys})" if keys else tip)
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)  # shortcuts work even when the toolbar is hidden
        return action

    def _build_actions(self):
        self.actions_by_name = {
            "play": self._action("Play", self.toggle_play, ("Space",), "Start or pause training"),
            "step": self._action("Step", self.step_once, ("S", "Right"), "Pause and train exactly one step"),
            "reset": self._action("Reset", self.reset, ("R",),
                                  "Start again from step 0 with the current settings (restarts a stopped worker)"),
            "compare": self._action("Compare", self.set_compare, ("C",),
                                    "Train 2 to 4 runs side by side with one setting different", checkable=True),
            "open": self._action("Open config…", self.open_config, ("Ctrl+O",), "Load settings from a JSON or TOML file"),
            "save": self._action("Save config…", self.save_config, ("Ctrl+Shift+S",), "Save run 1's settings to a file"),
            "quit": self._action("Quit", self.close, ("Ctrl+Q",), "Stop training and close the window"),
        }

    def _build_toolbar(self):
        self.toolbar = QToolBar("Training")
        self.toolbar.setObjectName("training")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("play", "step", "reset", "compare"):
            self.toolbar.addAction(self.actions_by_name[name])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)

    def _build_menus(self):
        bar = self.menuBar()
        self.menus = {}
        file_menu = self.menus["file"] = bar.addMenu("&File")
        for name in ("open", "save", None, "quit"):
            file_menu.addSeparator() if name is None else file_menu.addAction(self.actions_by_name[name])
        run_menu = self.menus["run"] = bar.addMenu("&Run")
        for name in ("play", "step", "reset", "compare"):
            run_menu.addAction(self.actions_by_name[name])
        view_menu = self.menus["view"] = bar.addMenu("&View")
        view_menu.addAction(self.controls_dock.toggleViewAction())
        view_menu.addSeparator()
        for key, frame in self.view_frames.items():
            action = QAction(frame.title.text(), self, checkable=True, checked=True)
            action.setToolTip(frame.view.explanation)
            action.toggled.connect(frame.setVisible)
            view_menu.addAction(action)
        lessons_menu = self.menus["lessons"] = bar.addMenu("&Lessons")
        from engine.lessons import LESSONS
        for name, lesson in LESSONS.items():
            action = QAction(lesson.title, self)
            action.setToolTip(lesson.narration)
            action.triggered.connect(lambda _=False, n=name: self.load_lesson(n))
            lessons_menu.addAction(action)

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
            self.controller.start()

    def play(self):
        self.controller.start()

    def pause(self):
        self.controller.pause()

    def step_once(self):
        if self.state == "running":
            self.controller.pause()
        self.controller.step()

    def reset(self):
        """Back to step 0, paused, with the current settings; a dead worker is replaced."""
        self._fresh_runs = True
        self.banner.hide()
        if self.controller.alive():
            self.controller.pause()
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
        if configs != self.configs:
            self.configs = configs
            self.controller.set_configs(configs)

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

    def load_lesson(self, name: str):
        """Set run 1 (and the compared runs) from a lesson and show its narration."""
        from engine.lessons import LESSONS
        lesson = LESSONS[name]
        base = lesson.config()
        self.controls.set_config(base)
        extras = [base.replace(**settings) for settings in lesson.compare]
        keys = {k for settings in lesson.compare for k in settings}
        self.compare_panel.blockSignals(True)
        if len(keys) == 1:
            key = next(iter(keys))
            self.compare_panel.set_compare(key, [getattr(c, key) for c in extras], base)
        self.compare_panel.setChecked(bool(extras))
        self.compare_panel.set_base(base)
        self.compare_panel.blockSignals(False)
        self._sync_compare_action(bool(extras))
        self._fresh_runs = True
        self.apply_configs([base] + extras)
        parts = [f"<b>{lesson.title}</b> — {lesson.narration}"]
        if lesson.look_at in self.view_frames:
            parts.append(f"Look at: <i>{self.view_frames[lesson.look_at].title.text()}</i>.")
        if lesson.next_change:
            parts.append(f"Try next: {lesson.next_change}")
        self.narration.text.setText(" ".join(parts))
        self.narration.show()
        for key, frame in self.view_frames.items():
            frame.highlight(key == lesson.look_at)
        return lesson

    def open_config(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open settings", "", "Settings (*.json *.toml)")
        if path:
            try:
                config = cfg.load(path)
            except ConfigError as exc:
                self.banner.show_message(f"Could not load the settings: {exc}")
                return
            self.controls.set_config(config)
            self._on_config_changed(config)

    def save_config(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save settings", "settings.toml", "Settings (*.toml *.json)")
        if path:
            cfg.save(self.controls.config(), path)

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
        else:  # a structural change mid-run: curves continue, the trainer marked it as an event
            for history, info in zip(self.histories, infos):
                history.reshape(info)
        self._fresh_runs = False
        self.infos = infos
        for view in self.views.values():
            view.set_runs(infos)
        if self.state == "diverged":
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
                if self.state == "diverged":  # the state may have arrived before its last snapshots
                    self._on_state_changed("diverged")
                if now - self._last_diagnosis >= DIAGNOSIS_INTERVAL_S:
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

    def equalize_grid(self):
        for row in self.grid_rows:
            row.setSizes([10_000] * row.count())
        self.grid.setSizes([10_000] * self.grid.count())

    # ------------------------------------------------------------------ closing
    def shutdown(self):
        if self._closed:
            return
        self._closed = True
        self.display_timer.stop()
        QCoreApplication.instance().removeEventFilter(self._shortcut_filter)
        self.controller.shutdown()

    def closeEvent(self, event):
        self.shutdown()
        super().closeEvent(event)
