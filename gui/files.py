"""Files: experiments (.rgl) and settings files opened and saved, recent files, and the exports
(a view or the window as an image, the run data as CSV or NPZ, the config that reproduces run 1).

GUI thread only. It talks to the run session (what to save, what an opened file becomes) and says
what happened in signals: `reported` for the status line, `failed` for the banner; the window
shows both. Anything wrong with a file is reported and changes nothing.
"""
from __future__ import annotations

import gc
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QProgressDialog, QWidget

from engine import experiment as experiments
from engine import admission, user_files, memory
from engine.config import ConfigError, apply_overrides
from engine.experiment import DATA_SUFFIXES, MODEL_SUFFIXES, kind_of
from gui import exporting
from gui.settings import AppSettings

OPENABLE = (".rgl", ".json", ".toml") + MODEL_SUFFIXES + DATA_SUFFIXES
LOAD_IN_BACKGROUND_BYTES = 2_000_000   # larger files are read off the GUI thread, which keeps drawing
SWEEP_FILES = ("sweep.json", "sweep.npz", "sweep.csv")  # engine/sweep.py's folder


def _sweep_folder(path: Path) -> Path | None:
    """The sweep folder `path` is or is a file of (main.py sweep writes sweep.json first), else None."""
    folder = path if path.is_dir() else path.parent if path.name in SWEEP_FILES else None
    return folder if folder is not None and (folder / SWEEP_FILES[0]).is_file() else None


class _Loading(QObject):
    """Reads one file in a Python thread (no Qt there: it only calls engine code and emits), showing a
    progress dialog whose Cancel stops the reading at the next array (an experiment's) or drops what is
    read (a model or data file, read in one go); `done(path, result or exception)` arrives on the GUI
    thread. `work(progress)` does the reading; `progress` raises Cancelled once Cancel was pressed."""
    done = Signal(object, object)
    progressed = Signal(int)

    def __init__(self, path: Path, files: "Files", work, measured: bool = True):
        super().__init__(files)
        self.path, self.work = path, work
        self._cancelled = threading.Event()
        self.dialog = QProgressDialog(f"Opening {path.name}…", "Cancel", 0, 100 if measured else 0, files.parent_widget)
        self.dialog.setWindowTitle("Opening a file")
        self.dialog.setMinimumDuration(300)  # a file read in a blink shows no dialog
        self.dialog.canceled.connect(self.cancel)
        self.progressed.connect(self.dialog.setValue)
        self.thread = threading.Thread(target=self._run, name="open-file", daemon=True)

    def start(self):
        self.thread.start()

    def cancel(self):
        self._cancelled.set()

    def _progress(self, fraction: float):
        if self._cancelled.is_set():
            raise experiments.Cancelled(f"{self.path.name}: opening was cancelled")
        self.progressed.emit(round(100 * fraction))

    def _run(self):  # the reading thread
        # No garbage collection while it reads: a collection this thread's allocations set off would run
        # here, and free the GUI's cyclic garbage (Qt objects' wrappers) off the GUI thread, which crashed
        # the process now and then while a large CSV was parsed. What is garbage waits for the GUI thread.
        collecting = gc.isenabled()
        gc.disable()
        try:
            result = self.work(self._progress)
        except (experiments.ExperimentError, ConfigError, OSError) as exc:
            result = exc
        except MemoryError:
            result = experiments.ExperimentError(f"{self.path.name}: more than this machine's memory can hold")
        finally:
            if collecting:
                gc.enable()
        if self._cancelled.is_set():  # (a model or data file read in one go: what was read is dropped)
            result = experiments.Cancelled(f"{self.path.name}: opening was cancelled")
        self.done.emit(self.path, result)

    def close(self):
        self.dialog.reset()
        self.dialog.deleteLater()


class Files(QObject):
    reported = Signal(str)       # something was opened, saved or exported: a line for the status bar
    failed = Signal(str)         # it could not be: a line for the banner
    opened = Signal(str)         # a file was opened (and shown): its path
    recent_changed = Signal()    # the recent files list changed
    sweep_opened = Signal(str)   # a sweep's folder (main.py sweep) to show: gui/views/phase.py shows it

    def __init__(self, session, settings: AppSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.settings, self.parent_widget = session, settings, parent
        self.current_file: str | None = None
        self._loading: _Loading | None = None     # a large file being read off the GUI thread
        self._reading_kind = "model"              # what that file is, when it is a model or data file
        self._recent_fallback: list[str] = []   # recent files when there is no AppSettings

    def start_folder(self) -> Path:
        """Where the file dialogs open: the folder of the file last opened or saved, else the desktop's
        documents folder (QStandardPaths knows its name on each system), else the current folder."""
        if self.current_file:
            return Path(self.current_file).parent
        documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(documents) if documents and Path(documents).is_dir() else Path.cwd()

    # ------------------------------------------------------------------ opening
    def open_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open experiment or settings", str(self.start_folder()),
                                              "Experiments and settings (*.rgl *.json *.toml);;All files (*)")
        if path:
            self.open(path)

    def open(self, path) -> bool | None:
        """Open an experiment or a settings file, or a model or data file of the user's own (by its kind,
        kind_of). Anything wrong is reported and changes nothing. True or False once done; None for an
        experiment large enough to be read off the GUI thread (with a progress dialog that can cancel it):
        `opened` or `failed` says how that ended."""
        path = Path(path)
        if _sweep_folder(path) is not None:
            self.sweep_opened.emit(str(_sweep_folder(path)))
            return True
        if kind_of(path) != "experiment":
            return self.open_user_file(path, kind_of(path))
        if self._busy(path):
            return False
        try:
            if _large(path):
                self._read_in_background(path, lambda progress: experiments.open_any(path, progress=progress),
                                         self._loaded)
                return None
            exp = experiments.open_any(path)
        except (experiments.ExperimentError, OSError) as exc:
            return self._loaded(path, exc)
        return self._loaded(path, exp)

    def _busy(self, path: Path) -> bool:
        if self._loading is None:
            return False
        self.failed.emit(f"Could not open {path.name}: {self._loading.path.name} is still being opened.")
        return True

    def _read_in_background(self, path: Path, work, then, measured: bool = True):
        self._loading = _Loading(path, self, work, measured)
        self._loading.done.connect(then)
        self._loading.start()

    def _finished_reading(self, path: Path, result) -> bool:
        """The dialog closed; False (and said) where the reading was cancelled."""
        loading, self._loading = self._loading, None
        if loading is not None:
            loading.close()
        if isinstance(result, experiments.Cancelled):
            self.reported.emit(f"Opening {path.name} was cancelled; nothing was changed.")
            return False
        return True

    def _loaded(self, path: Path, result) -> bool:
        if not self._finished_reading(path, result):
            return False
        if isinstance(result, Exception):
            text = str(result)
            if path.name not in text:
                text = f"{path.name}: {text}"
            self.failed.emit(f"Could not open {path.name}; nothing was changed. {text}")
            return False
        self.session.show_experiment(result)
        self._remember(path)
        self.opened.emit(str(path))
        self.reported.emit(f"Opened {path}")
        return True

    # ------------------------------------------------------------------ the user's own model and data
    def open_model_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget, "Open a model of your own", str(self.start_folder()),
            "PyTorch weights (*.pt *.pth *.ckpt);;All files (*)")
        if path:
            self.open_user_file(Path(path), "model")

    def open_data_dialog(self):
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget, "Open data of your own", str(self.start_folder()),
            "Sequences, time series or text (*.npz *.csv *.txt);;All files (*)")
        if path:
            self.open_user_file(Path(path), "data")

    def open_user_file(self, path: Path, kind: str) -> bool | None:
        """Every run trains the model (or on the data) in `path` from step 0; a file that cannot be
        used is reported and nothing changes (engine/user_files.py checks it whole first). A large file is
        read off the GUI thread (None: `opened` or `failed` says how it ended), as experiments are."""
        if self._busy(path):
            return False
        configs = list(self.session.configs)

        def work(progress=None):
            changed = [user_files.with_files(c, **{kind: str(path)}) for c in configs]
            admission.admit(changed, kept=memory.WINDOW)
            return configs, changed
        if _large(path):
            self._reading_kind = kind
            self._read_in_background(path, work, self._user_file_read_in_background, measured=False)
            return None
        try:
            result = work()
        except ConfigError as exc:
            result = exc
        return self._user_file_read(path, kind, result)

    def _user_file_read_in_background(self, path: Path, result) -> bool:
        # (a method of this QObject, not a lambda: the signal from the reading thread is then queued
        # to the GUI thread, where this runs)
        return self._user_file_read(path, self._reading_kind, result)

    def _user_file_read(self, path: Path, kind: str, result) -> bool:
        if not self._finished_reading(path, result):
            return False
        if isinstance(result, Exception):
            self.failed.emit(f"Could not open {path.name}; nothing was changed. {result}")
            return False
        read_for, configs = result
        if read_for != list(self.session.configs):  # settings changed while it was read are kept:
            try:                                     # the file is applied to them again, from the cache
                configs = [user_files.with_files(c, **{kind: str(path)}) for c in self.session.configs]
                admission.admit(configs, kept=memory.WINDOW)
            except ConfigError as exc:
                self.failed.emit(f"Could not open {path.name}; nothing was changed. {exc}")
                return False
        self._start(configs)
        self._remember(path, last=False)
        self.opened.emit(str(path))
        self.reported.emit(f"Opened {user_files.describe(configs[0])[0 if kind == 'model' else -1]}")
        return True

    def close_user_files(self):
        """Back to the lab's own network (new weights, same shape) and its own task."""
        if not any(c.model or c.data for c in self.session.configs):
            self.reported.emit("No model or data of your own is open.")
            return
        self._start([apply_overrides(c, ["model=none", "data=none"]) for c in self.session.configs])
        self.reported.emit("Closed your model and data: the lab's own network and task train again.")

    def _start(self, configs):
        self.session.free_play()  # the user's own run, not a lesson's
        self.session.start_run_set(configs)

    def cancel_loading(self):
        """Stop reading a file in the background (nothing of it is applied) and wait for the thread."""
        if self._loading is not None:
            self._loading.cancel()
            self._loading.thread.join()

    def restore_last_experiment(self) -> bool:
        """Reopen the experiment of the last session, if there was one and it still opens."""
        last = self.settings.last_experiment() if self.settings is not None else None
        if not last or not Path(last).is_file():
            return False
        return self.open(last)

    def take_drag(self, event):
        event.acceptProposedAction() if self.dropped_file(event.mimeData()) else event.ignore()

    def take_drop(self, event):
        path = self.dropped_file(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open(path)

    @staticmethod
    def dropped_file(mime) -> str | None:
        """The first local file of a drag that this window opens, or None."""
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and (Path(url.toLocalFile()).suffix.lower() in OPENABLE
                                      or _sweep_folder(Path(url.toLocalFile())) is not None):
                return url.toLocalFile()
        return None

    # ------------------------------------------------------------------ saving
    def save_experiment_dialog(self, include_data: bool):
        default = self.current_file if self.current_file and self.current_file.endswith(".rgl") \
            else str(self.start_folder() / "experiment.rgl")
        path, _ = QFileDialog.getSaveFileName(self.parent_widget,
                                              "Save experiment with data" if include_data else "Save experiment",
                                              default, "RNN Gradient Lab experiment (*.rgl)")
        if path:
            self.save_experiment(path, include_data)

    def save_experiment(self, path, include_data: bool = False) -> Path | None:
        """Every run's config and the lesson (and the recorded data, when asked) in one .rgl file."""
        histories = self.session.histories
        logs = [h.log for h in histories] if include_data and histories else None
        exp = experiments.Experiment(list(self.session.configs), lesson=self.session.lesson, logs=logs)
        try:
            written = experiments.save(path, exp, include_data=include_data)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Could not save the experiment to {path}: {exc}")
            return None
        self._remember(written)
        self.reported.emit(f"Saved the experiment to {written}")
        return written

    # ------------------------------------------------------------------ recent files
    def _remember(self, path, last: bool = True):
        """A recent file; `last`: the experiment the next session reopens (not a model or data file)."""
        path = str(Path(path).resolve())
        self.current_file = path
        if self.settings is not None:
            self.settings.add_recent_file(path)
            if last:
                self.settings.set_last_experiment(path)
        else:
            self._recent_fallback = [path] + [p for p in self._recent_fallback if p != path]
        self.recent_changed.emit()

    def recent_files(self) -> list[str]:
        return self.settings.recent_files() if self.settings is not None else list(self._recent_fallback)

    def fill_recent_menu(self, menu: QMenu):
        """The File menu's "Open recent": one entry per file, newest first, numbered for the keyboard."""
        menu.clear()
        files = self.recent_files()
        for number, path in enumerate(files, 1):
            action = menu.addAction(f"&{number} {Path(path).name}")
            action.setData(path)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open(p))
        if not files:
            menu.addAction("(no recent files)").setEnabled(False)

    # ------------------------------------------------------------------ exports
    def _ask_path(self, title: str, default_name: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, title, str(self.start_folder() / default_name), filters)
        return path or None

    def _export(self, what: str, do):
        try:
            written = do()
        except (exporting.ExportError, OSError, ValueError) as exc:
            self.failed.emit(f"Could not export {what}: {exc}")
            return None
        names = ", ".join(str(p) for p in (written if isinstance(written, list) else [written]))
        self.reported.emit(f"Exported {what} to {names}")
        return written

    def export_widget(self, widget: QWidget, what: str, default_stem: str, path=None, suffix: str = ".png"):
        """A view or the window as PNG (pixels) or SVG (vector). Without a path, asks for one."""
        if path is None:
            path = self._ask_path(f"Save {what}", f"{default_stem}{suffix}",
                                  "PNG image (*.png);;SVG drawing (*.svg)" if suffix == ".png"
                                  else "SVG drawing (*.svg);;PNG image (*.png)")
            if path is None:
                return None
        return self._export(what, lambda: exporting.export_widget(widget, path))

    def export_data(self, path=None, suffix: str = ".csv"):
        """Each run's recorded probes (the newest steps kept in memory), one file per run; in a replay,
        those up to the step shown, as the views show them."""
        if path is None:
            path = self._ask_path("Save the run data", f"run-data{suffix}",
                                  "CSV table (*.csv);;NumPy arrays (*.npz)" if suffix == ".csv"
                                  else "NumPy arrays (*.npz);;CSV table (*.csv)")
            if path is None:
                return None
        step = self.session.shown_step
        what = "the run data" if step is None else f"the run data up to step {step:,} (the step shown)"
        return self._export(what, lambda: exporting.export_run_data(self.session.shown_histories(), path))

    def export_run_config(self, path=None):
        if path is None:
            path = self._ask_path("Save the config that reproduces run 1", "config.toml",
                                  "TOML settings (*.toml);;JSON settings (*.json)")
            if path is None:
                return None
        return self._export("the config", lambda: exporting.export_config(self.session.configs[0], path))


def _large(path: Path) -> bool:
    """Whether `path` is read off the GUI thread: a large regular file (a device or pipe, which the
    readers refuse at once, is not)."""
    try:
        return path.is_file() and path.stat().st_size > LOAD_IN_BACKGROUND_BYTES
    except OSError:
        return False
