"""Names and descriptions for screen readers: every control, view and button says what it is.

GUI thread only. `name_for_screen_readers(root)` walks the widgets under `root` and gives each one a
screen reader announces (buttons, boxes, number fields, views, plots, docks, toolbars) an accessible
name from what a sighted user reads beside it: the button's text, the form label on its row, the
label that is its buddy, the view's title; and the tooltip as its description. A name set by hand
is kept. Call it once a window or dialog is built; widgets made later (a new run chooser) are named
when it is called again.
"""
from __future__ import annotations

from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QDockWidget,
                               QFormLayout, QGraphicsView, QLabel, QLineEdit, QScrollBar, QTabBar, QToolBar, QToolButton,
                               QWidget)

from gui.views.base import View

# The widgets a screen reader stops at: what a user can operate, and what shows the data.
ANNOUNCED = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QAbstractSlider, QGraphicsView, QDockWidget,
             QToolBar, QTabBar)


NAMED_BY_QT = (QAbstractButton, QDockWidget, QToolBar)  # by their text, which may change (Play, then Pause)


def announced(widget: QWidget) -> bool:
    """A widget of its own, not a part Qt builds inside another (a spin box's text field, a list's
    scroll bars, the toolbar's overflow arrow: those are named by Qt with the widget they belong to)."""
    if widget.objectName().startswith("qt_") or isinstance(widget, QScrollBar):
        return False
    return isinstance(widget, ANNOUNCED + (View,))


def _plain(text: str) -> str:
    """A label's words as spoken: no mnemonic ampersands, no trailing colon, no markup."""
    text = text.replace("&&", "\0").replace("&", "").replace("\0", "&").strip()
    for tag in ("<b>", "</b>", "<i>", "</i>"):
        text = text.replace(tag, "")
    return text.rstrip(":").strip()


def _in_layout(layout, widget: QWidget) -> bool:
    for index in range(layout.count()):
        item = layout.itemAt(index)
        if item.widget() is widget or (item.layout() is not None and _in_layout(item.layout(), widget)):
            return True
    return False


def _form_label(widget: QWidget) -> str:
    """The label of the form row that holds `widget`, as its field or inside the field's container
    or row layout (a folder box beside its Browse button)."""
    current = widget
    while current is not None and current.parentWidget() is not None:
        layout = current.parentWidget().layout()
        if isinstance(layout, QFormLayout):
            for row in range(layout.rowCount()):
                field = layout.itemAt(row, QFormLayout.ItemRole.FieldRole)
                label = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
                if field is None or label is None or not isinstance(label.widget(), QLabel):
                    continue
                if field.widget() is current or (field.layout() is not None and _in_layout(field.layout(), current)):
                    return _plain(label.widget().text())
        current = current.parentWidget()
    return ""


def _buddy_label(widget: QWidget, labels: list[QLabel]) -> str:
    return next((_plain(label.text()) for label in labels if label.buddy() is widget and _plain(label.text())), "")


def _view_title(widget: QWidget) -> str:
    """The title of the view that holds `widget` (a plot inside a view is that view's plot)."""
    current = widget
    while current is not None:
        if isinstance(current, View):
            return current.title or current.view_id
        current = current.parentWidget()
    return ""


def accessible_name(widget: QWidget, labels: list[QLabel]) -> str:
    """What a screen reader should call `widget`, from what is written on or beside it."""
    if isinstance(widget, View):
        return f"{widget.title or widget.view_id} view"
    title = _view_title(widget)
    if isinstance(widget, QGraphicsView) and title:
        return f"{title} plot"
    name = _form_label(widget) or _buddy_label(widget, labels)
    if not name and widget.toolTip():
        name = _plain(widget.toolTip().split("\n")[0].split(". ")[0])
    if name and title:  # a view's own chooser: say whose ("Waterfall: run")
        name = f"{title}: {name}"
    if not name and isinstance(widget, QToolButton) and widget.defaultAction() is not None:
        name = _plain(widget.defaultAction().text())
    return name


def spoken_name(widget: QWidget) -> str:
    """The name a screen reader gets for `widget` from Qt's accessibility interface."""
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name) if interface is not None and interface.isValid() else ""


def name_for_screen_readers(root: QWidget) -> list[QWidget]:
    """Name and describe every announced widget under `root` (and `root`); returns those left unnamed.
    Buttons, docks and toolbars are left to Qt where it names them (a button by its text as that
    changes, Play then Pause; a dock by its title)."""
    widgets = [root] + root.findChildren(QWidget)
    labels = [w for w in widgets if isinstance(w, QLabel)]
    unnamed = []
    for widget in widgets:
        if not announced(widget):
            continue
        # Qt's own name is kept for what it names well; elsewhere ours, which is plain ("run", not
        # a buddy label's "run:") and says whose ("Waterfall: run")
        if not widget.accessibleName() and (not isinstance(widget, NAMED_BY_QT) or not spoken_name(widget).strip()):
            name = accessible_name(widget, labels)
            if name:
                widget.setAccessibleName(name)
        if not spoken_name(widget).strip():
            unnamed.append(widget)
        if not widget.accessibleDescription() and widget.toolTip():
            widget.setAccessibleDescription(_plain(widget.toolTip()))
    return unnamed
