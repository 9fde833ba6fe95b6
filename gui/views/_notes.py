"""A word in a plot that shows nothing where it should, on why: a run that diverged has no gradient there.

GUI thread only. Used by the strips of the Waterfall and Layers views and by the Gradient profile.
"""
from __future__ import annotations

import pyqtgraph as pg

from gui.views._axes import font
from gui.views._common import brush


def diverged_words(step: int | None, name: str = "") -> tuple[str, ...]:
    """A BoxNote's texts, longest first, for a plot with no gradient to show: the run diverged at `step` (None: its
    numbers are not finite for another reason); `name`: the run's, where the plot shows several."""
    who = f"{name}: " if name else ""
    if step is None:
        return f"{who}no gradient (not a number)", f"{who}no gradient", "NaN"
    return tuple(dict.fromkeys((f"{who}no gradient: diverged at step {step}", f"{who}diverged at step {step}",
                                f"diverged at step {step}", "diverged")))


class BoxNote(pg.TextItem):
    """A word in the middle of a plot's box on why it shows nothing there ("no gradient: diverged at step 12"):
    the longest of its texts that fits the box's width, over a faint fill; hidden while there is nothing to say."""

    def __init__(self, box: pg.ViewBox, right_of: pg.TextItem | None = None):
        super().__init__("", anchor=(0.5, 0.5))
        self.setParentItem(box)  # in the box's pixels: it stays in the middle whatever the range
        self.setZValue(19)
        self.texts: tuple[str, ...] = ()
        self.right_of = right_of  # a label in the box that the note keeps to the right of (then right-aligned)
        self.hide()
        box.sigResized.connect(lambda _box: self.place())

    def say(self, texts) -> None:
        """Show the longest of `texts` (longest first) that fits; none: hide."""
        texts = tuple(texts)
        if texts == self.texts:  # (said at every refresh: placed again only when the words or the box change)
            return
        self.texts = texts
        self.setVisible(bool(self.texts))
        self.place()

    def place(self) -> None:
        if not self.texts:
            return
        box = self.parentItem()
        left = 0.0
        if self.right_of is not None and self.right_of.isVisible():
            left = self.right_of.mapRectToItem(box, self.right_of.boundingRect()).right() + 8
        room = box.width() * 0.95 if left == 0.0 else box.width() - 4 - left
        for text in self.texts:
            if self.textItem.toPlainText() != text:
                self.setText(text)
            if self.textItem.boundingRect().width() <= room:
                break
        self.setAnchor((0.5, 0.5) if left == 0.0 else (1.0, 0.5))
        self.setPos(box.width() / 2 if left == 0.0 else box.width() - 4, box.height() / 2)

    def apply_theme(self, theme) -> None:
        self.setColor(theme.foreground)
        self.fill = brush(theme.background, 0.75)
        self.setFont(font(theme, -1))
