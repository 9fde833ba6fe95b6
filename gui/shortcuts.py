"""Keyboard rules for the whole application: the window's single-key shortcuts over number boxes,
and lesson navigation over every input. GUI thread only (an event filter on whichever widget has the focus:
the key events it looks at go there first; on the whole application it was called for every event, a
few thousand a second while training, 4% of the GUI thread's time)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit

# Single keys that mean nothing in a number box, so the window's shortcut wins there.
SHORTCUT_KEYS = {Qt.Key.Key_Space, Qt.Key.Key_S, Qt.Key.Key_R, Qt.Key.Key_C, Qt.Key.Key_N, Qt.Key.Key_P,
                 Qt.Key.Key_T, Qt.Key.Key_L, Qt.Key.Key_V, Qt.Key.Key_G, Qt.Key.Key_Q, Qt.Key.Key_BracketLeft,
                 Qt.Key.Key_BracketRight}
# Lesson navigation wins over every input widget (spin boxes and lists would otherwise page through values).
NAVIGATION_KEYS = {Qt.Key.Key_PageDown, Qt.Key.Key_PageUp}


class ShortcutsOverNumbers(QObject):
    """Let the window's single-key shortcuts win over number boxes, and Page Up/Down over every input.

    A spin box's line edit claims every printable key, but letters and spaces mean nothing in a
    number, so for those widgets the shortcut wins. Text fields (editable combos) keep their letters.
    Page Up/Down always go to the previous/next lesson: a lecturer presses them (or a presenter
    remote sends them) wherever the focus happens to be."""

    def watch(self):
        """Filter the key events of every widget that gets the focus, from now (and of the one that has it)."""
        app = QApplication.instance()
        app.focusChanged.connect(self._focus_changed)
        self._focus_changed(None, app.focusWidget())

    def unwatch(self):
        QApplication.instance().focusChanged.disconnect(self._focus_changed)

    def _focus_changed(self, old, new):
        if new is not None:
            new.installEventFilter(self)  # (again for a widget that had it: Qt keeps one)

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
