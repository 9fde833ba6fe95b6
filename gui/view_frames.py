"""The frames around the window's content: a view with its title (`ViewFrame`), and the banner
that reports a problem without blocking (`Banner`).

GUI thread only. Colours come from gui/theme.py.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QMessageBox, QPushButton, QVBoxLayout

from gui.theme import BANNER_BACKGROUND, BANNER_TEXT, HIGHLIGHT


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
        self.setStyleSheet(f"#banner {{ background: {BANNER_BACKGROUND}; }} QLabel {{ color: {BANNER_TEXT}; }}")
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
