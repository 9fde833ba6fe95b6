"""Exports: any view or the whole window to PNG or SVG, run data to CSV/NPZ, the config to a file.

GUI thread only. Plot views export through pyqtgraph's own exporters (true vector SVG of the
plot scene); any other widget is painted into Qt's SVG generator or grabbed as pixels.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QWidget

from engine import config as cfg

IMAGE_FORMATS = (".png", ".svg")
DATA_FORMATS = (".csv", ".npz")


class ExportError(ValueError):
    pass


def _suffix(path, allowed) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ExportError(f"{Path(path).name}: the file type {suffix or '(none)'!r} is not allowed; "
                          f"allowed: {', '.join(allowed)}")
    return suffix


def export_widget(widget: QWidget, path) -> Path:
    """Save a view or the whole window as PNG (pixels) or SVG (vector)."""
    path = Path(path)
    if _suffix(path, IMAGE_FORMATS) == ".png":
        if not widget.grab().save(str(path), "PNG"):
            raise ExportError(f"{path}: could not be written")
        return path
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(widget.width(), widget.height()))
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    generator.setTitle(getattr(widget, "title", "") or widget.windowTitle() or "RNN Gradient Lab")
    generator.setDescription("Exported from RNN Gradient Lab")
    painter = QPainter()
    if not painter.begin(generator):
        raise ExportError(f"{path}: could not be written")
    try:
        widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    return path


def export_plot_svg(plot_item, path) -> Path:
    """A pyqtgraph PlotItem through pyqtgraph's SVG exporter."""
    import pyqtgraph.exporters as exporters
    exporters.SVGExporter(plot_item).export(str(path))
    return Path(path)


def export_run_data(histories, path) -> list[Path]:
    """Each run's recorded probes: one NPZ (engine array names) or CSV per run.

    With one run the file is written as named; with several, `name-run1.csv`, `name-run2.csv`...
    """
    path = Path(path)
    suffix = _suffix(path, DATA_FORMATS)
    written = []
    for i, history in enumerate(histories):
        if len(history.log) == 0:
            continue
        target = path if len(histories) == 1 else path.with_name(f"{path.stem}-run{i + 1}{suffix}")
        (history.log.save_npz if suffix == ".npz" else history.log.save_csv)(target)
        written.append(target)
    if not written:
        raise ExportError("there is no recorded data yet: train for a few steps first")
    return written


def export_config(config, path) -> Path:
    path = Path(path)
    _suffix(path, (".json", ".toml"))
    cfg.save(config, path)
    return path
