"""What the window remembers between sessions (QSettings): geometry, theme, last experiment,
recent files. Every read falls back to a default when the stored value is missing or broken.

GUI thread only. Tests pass their own QSettings (an INI file in a temporary folder), so no test
touches the user's real settings.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8


class AppSettings:
    def __init__(self, settings: QSettings | None = None):
        self.qsettings = settings or QSettings("RNN Gradient Lab", "RNN Gradient Lab")

    def _get(self, key, kind, default):
        try:
            value = self.qsettings.value(key, default)
        except Exception:  # a value Qt cannot even decode
            return default
        return value if isinstance(value, kind) else default

    # geometry and window state are opaque byte blobs from saveGeometry/saveState
    def geometry(self) -> QByteArray | None:
        return self._get("window/geometry", QByteArray, None)

    def window_state(self) -> QByteArray | None:
        return self._get("window/state", QByteArray, None)

    def save_window(self, geometry: QByteArray, state: QByteArray):
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.setValue("window/state", state)

    def theme(self, allowed=("dark", "light")) -> str:
        value = self._get("view/theme", str, allowed[0])
        return value if value in allowed else allowed[0]

    def set_theme(self, name: str):
        self.qsettings.setValue("view/theme", name)

    def last_experiment(self) -> str | None:
        value = self._get("experiment/last", str, "")
        return value or None

    def set_last_experiment(self, path):
        self.qsettings.setValue("experiment/last", str(path))

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("experiment/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        if not isinstance(value, list):
            return []
        # add_recent_file stores absolute paths: anything else is a broken entry, not a file
        return [v for v in value if isinstance(v, str) and v and Path(v).is_absolute()][:MAX_RECENT]

    def add_recent_file(self, path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files() if f != path]
        self.qsettings.setValue("experiment/recent", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def sync(self):
        self.qsettings.sync()
