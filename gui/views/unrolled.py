"""Unrolled view: the network drawn as a chain of cells through time (one row per stacked layer),
with the backward arrows drawn as thick and bright as the gradient they carry, so anyone can see
the signal fade on its way back to the early timesteps.

GUI thread only. Reads `RunHistory.latest.grad_h` (and `grad_x` for the arrows back to the inputs).
Painted with QPainter; `refresh` only stores the few sampled numbers and schedules a repaint.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QLinearGradient, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.theme import INK_ON_LIGHT, LOG_GRAD_LEVELS, ink_on
from gui.views._common import log_grad, power_of_ten, sample_columns, vbox
from gui.views.base import ChooserView

MAX_COLUMNS = 24
TITLES = ("The gradient flowing back through time", "The gradient flowing back", "Gradient flowing back")
MIN_ROW_PX = 4     # the thinnest row of cells a layer is drawn in
MIN_CELLS_PX = 16  # the cells get at least this height (or MIN_ROW_PX a layer) before the key or title give way


def level(log_value: float) -> float:
    """Position of a log10 gradient on the fixed colour scale, 0 (vanished) to 1 (large); NaN stays NaN."""
    lo, hi = LOG_GRAD_LEVELS
    if np.isnan(log_value):
        return float("nan")
    return float(min(max((log_value - lo) / (hi - lo), 0.0), 1.0))


def power_text(log_value: float) -> str:
    if np.isnan(log_value):
        return "NaN"
    if np.isposinf(log_value):
        return "∞"
    if np.isneginf(log_value):
        return "0"
    return power_of_ten(round(log_value))


class _Canvas(QWidget):
    def __init__(self, view: "UnrolledView"):
        super().__init__(view)
        self.view = view
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(120, 90)

    def paintEvent(self, event):
        painter = QPainter(self)
        try:
            self.view._paint(painter, QRectF(self.rect()))
        finally:
            painter.end()


class UnrolledView(ChooserView):
    view_id = "unrolled"
    title = "Unrolled network"
    explanation = ("The network unrolled through time: each box is one layer at one timestep, and time runs "
                   "left to right. Grey arrows carry the signal forward; coloured arrows carry the gradient "
                   "back. The thinner and darker a backward arrow, the less learning signal reaches that step.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot = None        # the shown run's latest Snapshot
        self._sampled_for = None    # cache key of `_sampled`
        self._sampled = None
        layout = vbox(self)
        layout.addWidget(self.selectors)
        self.canvas = _Canvas(self)
        layout.addWidget(self.canvas, 1)
        self.apply_theme(self.theme)

    # ------------------------------------------------------------------ interface
    def refresh(self, histories):
        snap = self.shown_snapshot(histories)
        if snap is self.snapshot:
            return  # nothing new to draw
        self.snapshot = snap
        self.canvas.update()

    def clear(self):
        super().clear()
        self.snapshot = None
        self.canvas.update()

    def apply_theme(self, theme):
        super().apply_theme(theme)
        table = pg.colormap.get(theme.colormap).getLookupTable(0.0, 1.0, 256, alpha=False)
        self._lut = [QColor(int(r), int(g), int(b)) for r, g, b in table]
        self._sampled_for = None
        self.canvas.update()

    def _selection_changed(self, *_):
        self.snapshot = None  # redraw even if the newly chosen run has no newer snapshot
        super()._selection_changed()

    def sampled(self, max_columns: int = MAX_COLUMNS):
        """(timesteps, log10 grad_h at them (layers, columns), log10 grad_x at them) for the shown snapshot."""
        snap = self.snapshot
        key = (id(snap), max_columns)
        if self._sampled_for != key:
            self._sampled_for = key
            if snap is None:
                self._sampled = (np.zeros(0, dtype=int), np.zeros((0, 0)), np.zeros(0))
            else:
                cols = sample_columns(snap.grad_h.shape[1], max_columns)
                self._sampled = (cols, log_grad(snap.grad_h[:, cols].astype(np.float64)),
                                 log_grad(snap.grad_x[cols].astype(np.float64)))
        return self._sampled

    # ------------------------------------------------------------------ painting
    def _color(self, lvl: float) -> QColor:
        if np.isnan(lvl):
            return QColor(self.theme.warning)
        return self._lut[int(round(lvl * 255))]

    def _paint(self, p: QPainter, rect: QRectF):
        t = self.theme
        p.setRenderHint(QPainter.Antialiasing, True)
        p.fillRect(rect, QColor(t.background))
        fg = QColor(t.foreground)
        base_font = QFont()
        base_font.setPointSize(t.font_pt)
        small_font = QFont()
        small_font.setPointSize(max(6, t.font_pt - 1))
        p.setFont(base_font)
        fm = p.fontMetrics()
        line_h = fm.height()
        scale = t.line_width / 2.0
        # a column is wide enough for its timestep below, and with one layer (tall enough cells) for a
        # cell that holds its power of ten (cells are 0.46 of a column): fewer, labelled cells rather
        # than many unlabelled pills
        min_col = fm.horizontalAdvance("t=0000") * 1.25
        if self.snapshot is not None and self.snapshot.grad_h.shape[0] == 1:
            min_col = max(min_col, QFontMetricsF(small_font).horizontalAdvance("10⁻¹⁰") / (0.46 * 0.95) + 4)
        columns, log_h, log_x = self.sampled(int(min(MAX_COLUMNS, max(2, (rect.width() - 16) // min_col))))

        def draw_title():  # the longest of TITLES that fits, else the shortest elided
            room = rect.width() - 16
            text = next((t for t in TITLES if fm.horizontalAdvance(t) <= room), TITLES[-1])
            p.setPen(fg)
            p.drawText(QRectF(rect.left() + 8, rect.top() + 4, room, line_h * 1.3),
                       Qt.AlignHCenter | Qt.AlignVCenter | Qt.TextSingleLine, fm.elidedText(text, Qt.ElideRight, int(room)))
        if len(columns) == 0 or log_h.size == 0:
            draw_title()
            p.drawText(rect, Qt.AlignCenter | Qt.TextWordWrap, "No training steps yet: press Play or Step.")
            return
        L, n = log_h.shape
        note = self._legend_note(bool(np.any(np.diff(columns) > 1)))
        p.setFont(small_font)
        small_h = p.fontMetrics().height()
        note_h = p.fontMetrics().boundingRect(QRectF(0, 0, rect.width() - 16, 1000).toRect(),
                                              Qt.TextWordWrap | Qt.AlignHCenter, note).height()
        p.setFont(base_font)
        # Top to bottom: the title (1.8 lines), the loss box (which sits 2.6 lines above the top cell),
        # the cells, input arrows and timestep labels (2.8 lines), the colour key and its note. Where
        # the cells would get less than MIN_CELLS_PX, the note goes, then the key, then the title.
        title_h, legend_h = line_h * 1.8, small_h * 1.2 + note_h + 4
        for drop in ("", "note", "key", "title"):
            if drop == "note":
                note, legend_h = "", small_h * 1.2
            elif drop == "key":
                legend_h = 0.0
            elif drop == "title":
                title_h = 4.0
            area_top = rect.top() + title_h + line_h * 2.6
            area_bottom = rect.bottom() - legend_h - line_h * 2.8
            # one layer's cells are 0.55 of the row: tall enough for their label before the note may stay
            if area_bottom - area_top >= max(MIN_CELLS_PX, MIN_ROW_PX * L, small_h * 2.0 if L == 1 else 0):
                break
        if title_h > 4.0:
            draw_title()
        # a stack less than a line tall is named as a whole ("layers 1-8"), else layer by layer
        stack_name = f"layers 1-{L}" if L > 1 and (area_bottom - area_top) * (L - 1) / L < line_h else None
        label_w = fm.horizontalAdvance(stack_name or f"layer {L}") + 10 if L > 1 else 8
        left, right = rect.left() + label_w, rect.right() - 8
        cw = (right - left) / n
        bw = cw * 0.46
        rh = min(max((area_bottom - area_top) / L, MIN_ROW_PX), bw * 2.6)  # thin rows rather than overlap the key
        bh = min(rh * 0.55, max(bw * 1.1, 12.0))
        top = area_top + max(0.0, (area_bottom - area_top - rh * L) / 2)  # centre the grid vertically
        max_arrow = max(1.5, min(cw - bw, rh - bh) * 0.42)
        head = 4 * scale + 3

        def centre(layer, col):
            return QPointF(left + cw * (col + 0.5), top + rh * (L - 1 - layer + 0.5))

        grey = QColor(t.foreground)
        grey.setAlphaF(0.5)
        forward_pen = QPen(grey, max(1.0, scale))
        skip_pen = QPen(grey, max(1.0, scale), Qt.DotLine)

        # along time: forward (thin, grey, above) and backward (gradient-coloured, below)
        for layer in range(L):
            for col in range(n - 1):
                a, b = centre(layer, col), centre(layer, col + 1)
                x0, x1 = a.x() + bw / 2 + 2, b.x() - bw / 2 - 2
                gap = columns[col + 1] - columns[col] > 1
                _arrow(p, QPointF(x0, a.y() - bh * 0.25), QPointF(x1, a.y() - bh * 0.25),
                       skip_pen if gap else forward_pen, head)
                self._backward(p, QPointF(x1, a.y() + bh * 0.2), QPointF(x0, a.y() + bh * 0.2),
                               level(log_h[layer, col]), max_arrow, scale)
        # between stacked layers: forward up (left), backward down (right)
        for layer in range(L - 1):
            for col in range(n):
                lo_c, hi_c = centre(layer, col), centre(layer + 1, col)
                y0, y1 = lo_c.y() - bh / 2 - 2, hi_c.y() + bh / 2 + 2
                _arrow(p, QPointF(lo_c.x() - bw * 0.25, y0), QPointF(hi_c.x() - bw * 0.25, y1), forward_pen, head)
                self._backward(p, QPointF(hi_c.x() + bw * 0.2, y1), QPointF(lo_c.x() + bw * 0.2, y0),
                               level(log_h[layer, col]), max_arrow, scale)
        # inputs below the bottom row, with the gradient that reaches each input
        p.setFont(small_font)
        sfm = p.fontMetrics()
        every = max(1, int(np.ceil(sfm.horizontalAdvance(f"t={columns[-1]}") * 1.3 / cw)))
        arrow_len = line_h * 1.4
        for col in range(n):
            c = centre(0, col)
            y_box = c.y() + bh / 2 + 2
            y_in = y_box + arrow_len
            _arrow(p, QPointF(c.x() - bw * 0.25, y_in), QPointF(c.x() - bw * 0.25, y_box), forward_pen, head)
            self._backward(p, QPointF(c.x() + bw * 0.2, y_box), QPointF(c.x() + bw * 0.2, y_in),
                           level(log_x[col]), max_arrow, scale)
            if col % every == 0 and (col == n - 1 or n - 1 - col >= every) or col == n - 1:
                p.setPen(fg)
                p.drawText(QRectF(c.x() - cw * every / 2, y_in + 2, cw * every, line_h), Qt.AlignHCenter | Qt.AlignTop,
                           f"t={columns[col]}")
        # the cells, coloured like the gradient they receive
        fits = sfm.horizontalAdvance("10⁻¹⁰") < bw * 0.95 and bh > sfm.height() * 1.05
        for layer in range(L):
            for col in range(n):
                c = centre(layer, col)
                lvl = level(log_h[layer, col])
                fill = self._color(lvl)
                box = QRectF(c.x() - bw / 2, c.y() - bh / 2, bw, bh)
                p.setPen(QPen(fg, max(1.0, scale)))
                p.setBrush(QBrush(fill))
                p.drawRoundedRect(box, 4, 4)
                if fits:
                    p.setPen(QColor(INK_ON_LIGHT) if np.isnan(lvl) else ink_on(fill))
                    p.drawText(box, Qt.AlignCenter, power_text(log_h[layer, col]))
        p.setBrush(Qt.NoBrush)
        p.setFont(base_font)
        if L > 1:
            p.setPen(fg)
            if centre(0, 0).y() - centre(L - 1, 0).y() < line_h:  # the whole stack is under a line tall
                middle = (centre(0, 0).y() + centre(L - 1, 0).y()) / 2
                p.drawText(QRectF(rect.left() + 4, middle - line_h / 2, label_w, line_h), Qt.AlignLeft | Qt.AlignVCenter,
                           fm.elidedText(f"layers 1-{L}", Qt.ElideRight, int(label_w - 6)))
            else:  # rows too thin for a name each: the bottom and top layers, then any a line clear of those named
                named = []
                for layer in [0, L - 1] + list(range(1, L - 1)):
                    c = centre(layer, 0)
                    if any(abs(c.y() - y) < line_h for y in named):
                        continue
                    named.append(c.y())
                    p.drawText(QRectF(rect.left() + 4, c.y() - line_h / 2, label_w, line_h),
                               Qt.AlignLeft | Qt.AlignVCenter, f"layer {layer + 1}")
        # the loss, computed from the top layer's last step
        c = centre(L - 1, n - 1)
        text_w = fm.horizontalAdvance("loss") + 16
        loss_box = QRectF(min(c.x() - text_w / 2, rect.right() - text_w - 2), c.y() - bh / 2 - line_h * 2.6,
                          text_w, line_h * 1.3)
        p.setPen(QPen(QColor(t.accent), max(1.0, scale)))
        p.drawRoundedRect(loss_box, 6, 6)
        p.drawText(loss_box, Qt.AlignCenter, "loss")
        _arrow(p, QPointF(c.x() - bw * 0.25, c.y() - bh / 2 - 2), QPointF(c.x() - bw * 0.25, loss_box.bottom() + 1),
               forward_pen, head)
        self._backward(p, QPointF(c.x() + bw * 0.2, loss_box.bottom() + 1), QPointF(c.x() + bw * 0.2, c.y() - bh / 2 - 2),
                       1.0 if np.isfinite(log_h[-1, -1]) else float("nan"), max_arrow, scale)
        if legend_h > 0:
            self._paint_legend(p, QRectF(rect.left() + 8, rect.bottom() - legend_h, rect.width() - 16, legend_h),
                               small_font, note)

    def _backward(self, p, start, end, lvl, max_width, scale):
        if np.isnan(lvl):
            pen = QPen(QColor(self.theme.warning), max(1.0, scale), Qt.DashLine)
            _arrow(p, start, end, pen, 5 * scale + 3)
            return
        width = 0.8 + (max_width - 0.8) * lvl
        pen = QPen(self._color(lvl), width)
        pen.setCapStyle(Qt.FlatCap)
        _arrow(p, start, end, pen, max(5 * scale + 3, width * 1.6))

    @staticmethod
    def _legend_note(skipped: bool) -> str:
        note = "grey: signal forward · coloured: gradient back"
        if skipped:
            note += " · dotted: steps in between not drawn"
        return note

    def _paint_legend(self, p, rect, small_font, note):
        t = self.theme
        p.setFont(small_font)
        fm = p.fontMetrics()
        left_text, right_text = "10⁻¹² (vanished)", "10² (large)"
        if fm.horizontalAdvance(left_text + right_text) + 60 > rect.width():
            left_text = "10⁻¹²"
        lw, rw = fm.horizontalAdvance(left_text) + 8, fm.horizontalAdvance(right_text) + 8
        bar_w = max(20.0, min(rect.width() - lw - rw, 360))
        x0 = rect.center().x() - (bar_w + lw + rw) / 2
        bar = QRectF(x0 + lw, rect.top(), bar_w, fm.height() * 0.8)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(0, 256, 32):
            grad.setColorAt(i / 255, self._lut[i])
        grad.setColorAt(1.0, self._lut[255])
        p.fillRect(bar, QBrush(grad))
        p.setPen(QColor(t.foreground))
        p.drawText(QRectF(x0, bar.top() - 4, lw, bar.height() + 8), Qt.AlignVCenter | Qt.AlignLeft, left_text)
        p.drawText(QRectF(bar.right() + 8, bar.top() - 4, rw, bar.height() + 8), Qt.AlignVCenter | Qt.AlignLeft,
                   right_text)
        p.drawText(QRectF(rect.left(), bar.bottom() + 2, rect.width(), rect.bottom() - bar.bottom() - 2),
                   Qt.AlignHCenter | Qt.AlignTop | Qt.TextWordWrap, note)


def _arrow(p: QPainter, start: QPointF, end: QPointF, pen: QPen, head: float):
    """A straight arrow from start to end; the head is filled in the pen's colour."""
    dx, dy = end.x() - start.x(), end.y() - start.y()
    length = (dx * dx + dy * dy) ** 0.5
    if length < 1:
        return
    ux, uy = dx / length, dy / length
    head = min(head, length * 0.6)
    shaft_end = QPointF(end.x() - ux * head * 0.8, end.y() - uy * head * 0.8)
    p.setPen(pen)
    p.drawLine(start, shaft_end)
    px, py = -uy, ux
    half = max(head * 0.55, pen.widthF() * 0.9)
    tip = QPolygonF([end, QPointF(end.x() - ux * head + px * half, end.y() - uy * head + py * half),
                     QPointF(end.x() - ux * head - px * half, end.y() - uy * head - py * half)])
    p.setPen(Qt.NoPen)
    p.setBrush(pen.color())
    p.drawPolygon(tip)
    p.setBrush(Qt.NoBrush)
