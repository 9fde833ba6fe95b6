"""Follow a run folder that a script writes (engine.watching.watch): the views show it as it grows.

GUI thread only. A `Follower` polls the folder with a QTimer (every POLL_MS), reads only the records
appended since its last look (engine.watching.RunReader: one small read when nothing is new), and keeps
one gui.history.RunHistory per recurrent module of the watched model, fed with a trainer Snapshot made
from each record (`snapshot_of`), the form every view already draws. The session shows one module at a
time (`RunSession.show_outside`), as it shows a file's recorded data: the module chooser, which names the
modules by their qualified names (`encoder.rnn`), picks which. The views a record has no numbers for
(the activation and the weight gradients) are the window's to hide (`NOT_RECORDED`).

What it says (`label`, in the status bar): "following DIR, step N" while records arrive;
"writer stopped" when none came for STOPPED_AFTER_S; "run finished" when the writer closed the run;
"waiting for a run" before its run.json exists; "folder gone". A cut-short record (a writer killed
mid-write) is never shown; a damaged one, or a run of another format version, stops following with the
reader's message. After training, opening the same folder shows the whole run as a record.

Following ends when the session shows anything else (Play, Step, Reset, a lesson, a file): the
follower sees its histories replaced and stops polling. `Follower.in_window` puts it into the main window:
File > Open run folder…, its line and chooser in the status bar, and, while it follows, the views it has
no numbers for hidden and the lab's own settings greyed (all back after).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel

from engine.config import MAX_LAYERS, MAX_SEQ_LEN, RANGES, Config
from engine.model import GATE_NAMES
from engine.probes import HIST_EDGES
from engine.trainer import Snapshot
from engine.run_folder import HEADER, Record, RunFormatError, RunReader
from engine.worker import RunInfo
from gui.history import RunHistory

POLL_MS = 500               # how often the folder is looked at
STOPPED_AFTER_S = 30.0      # no new record for this long: "writer stopped"
READ_AT_MOST = 8 << 20      # bytes read in one poll; a long finished run comes in over a few polls
NOT_RECORDED = ("activation", "param_grads")  # views a run folder has no numbers for


def module_info(index: int, name: str, shape: dict, steps: int) -> RunInfo | None:
    """What the views know of a watched module as a run: its cell, rows (layers x directions) and width
    as settings (within the lab's ranges, for the titles), its name as the task. None where its rows are
    more than the views lay out (MAX_LAYERS)."""
    rows = int(shape["layers"]) * int(shape.get("directions", 1))
    if rows > MAX_LAYERS:
        return None
    cell = shape["cell"]
    config = Config(task="copy", seq_len=min(max(steps, 1), MAX_SEQ_LEN), layers=rows,
                    hidden=min(max(int(shape["hidden"]), 1), RANGES["hidden"][1]),
                    cell="rnn" if cell.startswith("rnn") else cell,
                    activation="relu" if cell == "rnn_relu" else "tanh")
    return RunInfo(index, config, name, "no task score (a run folder)", math.nan, steps,
                   GATE_NAMES[config.cell], "a run folder")


def snapshot_of(record: Record, name: str) -> Snapshot:
    """One record's numbers for one module as the trainer's Snapshot; what a record does not hold
    (parameter gradients, activations, gate means) is NaN or empty, and the views that draw it are hidden."""
    m = record.modules[name]
    rows = m.grad_h.shape[0]
    nan = np.full(rows, np.nan)
    sigma = m.sigma_max if m.sigma_max is not None and len(m.sigma_max) == rows else nan
    return Snapshot(step=record.step, loss=record.loss, metric=math.nan, grad_h=m.grad_h, grad_c=m.grad_c,
                    grad_x=m.grad_x, grad_norm=math.nan, grad_norm_clipped=math.nan, grad_norm_layer=nan,
                    grad_norm_layer_clipped=nan, clipped=False, sigma_max=sigma,
                    max_slope=np.ones(rows),  # tanh's, ReLU's; a gated cell's steepest path, as engine.model says
                    saturation=nan, gate_means=np.zeros((rows, 0)),
                    preact_hist=np.zeros((rows, len(HIST_EDGES) - 1)), attention=None, step_time=math.nan)


def short_path(folder: Path) -> str:
    """The folder as the status bar names it: relative to the working folder where it is inside it."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


class Follower(QObject):
    started = Signal(str)          # following this folder now
    stopped = Signal()             # following ended (the session shows something else)
    failed = Signal(str)           # the folder cannot be followed: the reader's message

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.folder: Path | None = None
        self.reader: RunReader | None = None
        self.histories: dict[str, RunHistory] = {}
        self.module: str | None = None        # the module shown
        self.state = "off"                    # off | waiting | following | writer stopped | finished | gone
        self.last_step = 0
        self._last_news = 0.0
        self._shown = False                   # the session shows this folder's histories
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.chooser = QComboBox()
        self.chooser.setToolTip("Which recurrent module of the followed model the views show (its name in "
                                "the model, as named_modules() gives it)")
        self.chooser.currentTextChanged.connect(self.choose_module)
        self.chooser.hide()
        self.label = QLabel()
        self.label.setToolTip("A run folder written by engine.watching.watch() in a script of your own; the views "
                              f"show its records as they arrive (the folder is looked at every {POLL_MS} ms)")
        self.label.hide()
        session.runs_rebuilt.connect(self._on_runs_rebuilt)

    @property
    def active(self) -> bool:
        return self.state != "off"

    # ------------------------------------------------------------------ in the main window
    @classmethod
    def in_window(cls, window) -> "Follower":
        """A follower for `window`'s session, wired into the window (its menus already built): File > Open
        run folder… after Open data…, its line and module chooser first in the status bar, the banner for a
        folder it cannot follow; it stops when the window closes."""
        follower = cls(window.session, window)
        follower._window = window
        follower._hidden_views: list[str] | None = None
        follower._settings_shown: bool | None = None   # whether the settings dock showed before following
        action = QAction("Open run folder…", window)
        action.setToolTip("Follow a run folder that engine.watching.watch() writes from your own training script: "
                          "live while it trains, or the whole run after")
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(follower.open_dialog)
        window.actions_by_name["open_run_folder"] = action
        window.menus["file"].insertAction(window.actions_by_name["close_files"], action)
        window.status.insertWidget(0, follower.label)
        window.status.insertWidget(1, follower.chooser)
        follower.failed.connect(window.banner.show_message)
        follower.started.connect(lambda _: (window.banner.hide(), follower._window_shows(True)))
        follower.stopped.connect(lambda: follower._window_shows(False))
        window.installEventFilter(follower)
        return follower

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Close:  # before the window saves its layout: the views it hid come back
            self.stop()
        return False

    def open_dialog(self):
        window = self._window
        folder = QFileDialog.getExistingDirectory(window, "Follow a run folder", str(window.files.start_folder()))
        if folder:
            self.follow(folder)

    def _window_shows(self, following: bool):
        """While following, the views a record has no numbers for are hidden (and come back after), the
        lab's own settings are greyed (they are not the followed run's), and this follower's line stands
        for the status bar's run state and step."""
        window = self._window
        if following and self._hidden_views is None:
            self._hidden_views = [k for k in NOT_RECORDED if k in window.view_actions
                                  and window.view_actions[k].isChecked()]
            for key in self._hidden_views:
                window.view_actions[key].setChecked(False)
        elif not following and self._hidden_views is not None:
            for key in self._hidden_views:
                window.view_actions[key].setChecked(True)
            self._hidden_views = None
        window.status.state.setVisible(not following)
        window.status.step.setVisible(not following)
        window.controls_dock.widget().setEnabled(not following)
        # the lab's own settings are not the followed run's: out of sight while following, back after
        if following and self._settings_shown is None:
            self._settings_shown = not window.controls_dock.isHidden()
            window.controls_dock.hide()
        elif not following and self._settings_shown is not None:
            window.controls_dock.setVisible(self._settings_shown)
            self._settings_shown = None

    # ------------------------------------------------------------------ commands
    def follow(self, folder) -> bool:
        """Follow `folder` from its first record (it may not hold a run yet: then wait for one).
        False, with `failed` emitted, where it cannot be followed."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            self.failed.emit(f"{folder}: is a file, not a run folder")
            return False
        self.stop(quietly=True)
        self.folder, self.reader, self.histories, self.module = folder, None, {}, None
        self.last_step, self._last_news = 0, time.monotonic()
        self._set_state("waiting")
        self.label.show()
        self.started.emit(str(folder))
        self.timer.start()
        return self.poll()

    def stop(self, quietly: bool = False):
        """Stop following; `quietly`: without `stopped` (another folder follows at once, or the window closes)."""
        was = self.active
        self.timer.stop()
        self.state = "off"
        self._shown = False
        self.label.hide()
        self.chooser.hide()
        if was and not quietly:
            self.stopped.emit()

    def choose_module(self, name: str):
        if not name or name == self.module or name not in self.histories:
            return
        self.module = name
        self._show()

    # ------------------------------------------------------------------ polling
    def poll(self) -> bool:
        """Read what is new; False where following failed."""
        if not self.active:
            return False
        try:
            if self.reader is None or self.reader.replaced():
                if not (self.folder / HEADER).is_file():
                    self._set_state("waiting" if self.reader is None else "gone")
                    return True
                if self.reader is not None:  # a new run in the same folder: from its start
                    self.histories, self.module, self.last_step, self._shown = {}, None, 0, False
                    self._set_modules()
                self.reader = RunReader(self.folder)
            records = self.reader.read_new(max_bytes=READ_AT_MOST)
        except RunFormatError as exc:
            self.stop()
            self.failed.emit(f"Stopped following: {exc}")
            return False
        if records:
            self._take(records)
            if self.reader.pending_bytes > self.reader.partial_bytes:  # more whole records to read: soon
                QTimer.singleShot(0, self.poll)
        now = time.monotonic()
        if self.reader.ended:
            self._set_state("finished")
        elif records:
            self._set_state("following")
        elif self.state == "following" and now - self._last_news > STOPPED_AFTER_S:
            self._set_state("writer stopped")
        else:
            self._set_state(self.state if self.state != "waiting" else "following")
        return True

    def _take(self, records: list[Record]):
        self._last_news = time.monotonic()
        header = self.reader.header["modules"]
        added = False
        for record in records:
            for name, module_record in record.modules.items():
                steps = module_record.grad_h.shape[1]
                history = self.histories.get(name)
                if history is None:
                    info = module_info(len(self.histories), name, header.get(name, _shape_of(module_record)), steps)
                    if info is None:
                        continue
                    history = self.histories[name] = RunHistory(info)
                    added = True
                elif history.info.n_steps != steps:  # another sequence length: the shaped views start again
                    history.reshape(module_info(history.info.index, name, header.get(name, _shape_of(module_record)),
                                                steps))
                history.extend([snapshot_of(record, name)])
            self.last_step = max(self.last_step, record.step)
        if added:
            self._set_modules()
        if self.module is None and self.histories:
            self.module = next(iter(self.histories))
        if not self._shown:
            self._show()
        else:
            self.session.outside_data_arrived(len(records))

    def _set_modules(self):
        self.chooser.blockSignals(True)
        self.chooser.clear()
        self.chooser.addItems(list(self.histories))
        if self.module in self.histories:
            self.chooser.setCurrentText(self.module)
        self.chooser.blockSignals(False)
        self.chooser.setVisible(len(self.histories) > 1)

    def _show(self):
        history = self.histories.get(self.module)
        if history is None:
            return
        if self.session.generation is None and not self.session.histories:
            return  # the worker's first run set is yet to come, and would take the views back: after it
        self._shown = True
        self.session.show_outside([history], len(history.steps))
        self._set_state(self.state)

    def _on_runs_rebuilt(self, fresh: bool):
        """The session shows something else: following ends. (Before the worker's first run set came, the
        histories wait for it.)"""
        if self.active and not self._shown and self.histories and self.session.generation is not None:
            self._show()
        elif self._shown and not any(h is mine for h in self.session.histories for mine in self.histories.values()):
            self.stop()

    # ------------------------------------------------------------------ the status text
    def _set_state(self, state: str):
        self.state = state
        where = short_path(self.folder) if self.folder is not None else ""
        module = f" ({self.module})" if self.module is not None and len(self.histories) > 1 else ""
        step = f", step {self.last_step:,}" if self.last_step else ""
        text = {"waiting": f"waiting for a run in {where}",
                "following": f"following {where}{module}{step}",
                "writer stopped": f"{where}{module}{step}: writer stopped (nothing new for {STOPPED_AFTER_S:.0f} s)",
                "finished": f"{where}{module}{step}: run finished",
                "gone": f"{where}{module}{step}: folder gone"}.get(state, "")
        if text != self.label.text():
            self.label.setText(text)


def _shape_of(record) -> dict:
    """A module's shape as its record shows it, for a module run.json does not name."""
    rows = record.grad_h.shape[0]
    hidden = record.grad_h_units.shape[2] if record.grad_h_units is not None else 1
    return {"cell": "lstm" if record.grad_c is not None else "rnn_tanh", "layers": rows, "directions": 1,
            "hidden": hidden}
