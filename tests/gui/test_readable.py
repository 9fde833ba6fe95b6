"""Readable at every screen size: the grid never squeezes a view below its readable size (it shows
fewer, and the rest in tabs one click away), and no text of a view overprints another: a legend's
entries, the run names in the strips, the threshold lines' labels, in every view and compare mode.

The views are fed lessons' runs trained for a few real steps (small batch); the sizes are the
smallest cell the grid allows (the readable size) and the cells the window gives at 1280x720,
1600x1000 and 1920x1080 (lecture mode: its fonts). docs/render_lessons.py shows the same for the eye.
"""
from __future__ import annotations

import itertools

import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QApplication, QGraphicsTextItem

from gui.grid import READABLE_SIZE, plan, readable_size
from gui.theme import DARK, LIGHT
from gui.view_frames import ViewFrame
from gui.views import ALL_VIEWS

from test_lesson_readability import lesson_histories

COMPARE_LESSONS = ("fix-attention", "fix-irnn", "multiply")   # two runs; four runs; three
# (size of a view, theme): the smallest cell the grid allows; a cell at 1280x720 and 1600x1000; lecture
# mode's cells at 1280x720 (x1.2) and 1920x1080 (x1.8)
CELLS = {"readable": (READABLE_SIZE, DARK), "1600x1000": ((390, 330), LIGHT),
         "lecture-720": ((620, 300), DARK.scaled(1.2)), "lecture-1080": ((900, 440), LIGHT.scaled(1.8))}
VIEW_CLASSES = [c for c in ALL_VIEWS if c.view_id not in ("phase",)]  # (the phase map draws no run's data)


@pytest.fixture(scope="module")
def trained():
    return {name: lesson_histories(name, steps=3) for name in COMPARE_LESSONS}


def text_boxes(view) -> list[tuple[str, object, object]]:
    """(text, scene rect, graphics view) of every visible text item the view's plots draw, shrunk by the
    text document's empty margin."""
    boxes = []
    for graphics in view.findChildren(pg.GraphicsView):
        if not graphics.isVisible():
            continue
        for item in graphics.scene().items():
            if not isinstance(item, QGraphicsTextItem) or not item.isVisible():
                continue
            if not item.toPlainText().strip() or item.opacity() == 0:
                continue
            hidden = False
            parent = item.parentItem()
            while parent is not None:
                hidden |= not parent.isVisible()
                parent = parent.parentItem()
            if hidden:
                continue
            margin = item.document().documentMargin()
            rect = item.mapRectToScene(item.boundingRect().adjusted(margin, margin, -margin, -margin))
            boxes.append((item.toPlainText(), rect, graphics))
    return boxes


def overprints(view, tolerance_px: float = 1.5) -> list[str]:
    """Pairs of texts drawn over one another (more than `tolerance_px` both ways)."""
    found = []
    for (a, ra, ga), (b, rb, gb) in itertools.combinations(text_boxes(view), 2):
        if ga is not gb:
            continue
        overlap = ra.intersected(rb)
        if overlap.width() > tolerance_px and overlap.height() > tolerance_px:
            found.append(f"{a!r} over {b!r}")
    return found


def settle(view, histories):
    for _ in range(3):  # the legend fits, moves and the range makes room, as the display timer would
        view.refresh(histories)
        QApplication.processEvents()


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("lesson", COMPARE_LESSONS)
def test_no_text_overprints_another_in_any_view(lesson, cell, qtbot, trained):
    histories = trained[lesson]
    size, theme = CELLS[cell]
    problems = []
    for view_class in VIEW_CLASSES:
        view = view_class()
        qtbot.addWidget(view)
        view.apply_theme(theme)
        view.set_runs([h.info for h in histories])
        w, h = readable_size(view, theme.font_pt / 10.0, len(histories)) if cell == "readable" else size
        view.resize(w, h)
        view.show()
        settle(view, histories)
        problems += [f"{view.view_id}: {p}" for p in overprints(view)]
        view.close()
    assert not problems, f"{lesson} at {cell}: " + "; ".join(problems)


SMALLEST_PLOT_PX = 28  # a plot's, or a run's strip's, height at the view's readable size


@pytest.mark.parametrize("lesson", ("recent-bias",) + COMPARE_LESSONS + ("factor-per-step",))
def test_at_its_readable_size_every_plot_of_a_view_keeps_its_height(lesson, qtbot, trained):
    """At 1600x1000 the factor-per-step lesson's nine views went 3x3 in 190 px frames: its three runs' Waterfall
    and Layers strips 22 px, the Eigenvalues plane 7 px, the Activation curves 20 px over the minGRU's gates. A
    view's readable size (taller with more runs for a strip per run) keeps every plot at least SMALLEST_PLOT_PX;
    one run, two, four, three (with gates)."""
    histories = trained[lesson] if lesson in trained else lesson_histories(lesson, steps=2)
    problems = []
    for view_class in VIEW_CLASSES:
        view = view_class()
        view.apply_theme(DARK)
        frame = ViewFrame(view, DARK)
        qtbot.addWidget(frame)
        view.set_runs([h.info for h in histories])
        frame.resize(*readable_size(view, 1.0, len(histories)))
        frame.show()
        settle(view, histories)
        heights = [round(box.height()) for graphics in view.findChildren(pg.GraphicsView) if graphics.isVisible()
                   for box in graphics.scene().items()
                   if isinstance(box, pg.ViewBox) and box.isVisible() and box.width() > 20]  # (not a colour bar)
        if heights and min(heights) < SMALLEST_PLOT_PX:
            problems.append(f"{view.view_id} at {frame.width()}x{frame.height()}: a plot {min(heights)} px high")
        frame.close()
    assert not problems, f"{lesson} ({len(histories)} runs): " + "; ".join(problems)


def test_the_known_overprint_is_found():
    """The detector itself: two texts at one place overprint, two apart do not."""
    widget = pg.GraphicsLayoutWidget()
    plot = widget.addPlot()
    for text, x in (("with attention", 0), ("clip at 1", 0), ("far away", 100)):
        item = pg.TextItem(text)
        plot.addItem(item)
        item.setPos(x, 0)
    plot.setRange(xRange=(0, 100), yRange=(-1, 1), padding=0.2)
    widget.resize(400, 300)
    widget.show()
    QApplication.processEvents()
    holder = pg.QtWidgets.QWidget()
    widget.setParent(holder)
    holder.show()
    QApplication.processEvents()
    assert overprints(holder) == ["'with attention' over 'clip at 1'"] or \
        overprints(holder) == ["'clip at 1' over 'with attention'"]
    holder.close()


# ----------------------------------------------------------------------------- the grid

def test_the_grid_plans_fewer_views_where_they_would_be_squeezed():
    cell = READABLE_SIZE
    assert plan(8, (1600, 700), cell, 4) == (4, 2, 8)           # room for all: 4 to a row, as always
    assert plan(8, (900, 380), cell, 4) == (3, 2, 5) or plan(8, (900, 380), cell, 4)[2] < 8
    columns, rows, fitting = plan(8, (900, 380), cell, 4)
    assert fitting < 8 and columns * cell[0] <= 900 and rows * cell[1] <= 380
    assert plan(4, (1900, 800), cell, 2) == (2, 2, 4)            # lecture's 2x2
    assert plan(8, (100, 100), cell, 4) == (1, 1, 0)             # one cell: every view in its tabs
    assert plan(8, (10, 10), cell, 4) == (4, 2, 8)               # not laid out yet


def test_the_grid_fills_its_rows_evenly():
    """Nine views at 1600x1000 went 4+4+1, the ninth (edge-of-chaos's Phase diagram) a full-width strip."""
    cell = READABLE_SIZE
    assert plan(9, (1219, 600), cell, 5) == (3, 3, 9)
    assert plan(5, (1600, 700), cell, 4) == (3, 2, 5)
    assert plan(8, (1600, 700), cell, 4) == (4, 2, 8)


def test_the_lessons_wider_cell_costs_no_row(make_window, qtbot):
    """At 1600x1000 the lesson's wider cell made a 3x3 grid of 200 px rows (the Loss view's and the
    compared profile's two plots squeezed into strips): the same eight views go 4x2."""
    window = make_window(view_classes=ALL_VIEWS)
    grid = window.grid
    grid.highlight("profile")
    window.resize(1600, 1000)
    keys = grid.wanted()[0]
    qtbot.waitUntil(lambda: grid._plan is not None and grid._plan[0] == tuple(keys) and grid.height() > 600, timeout=10_000)
    qtbot.waitUntil(lambda: grid._plan[1:] == grid.current_plan(keys, grid.wanted()[1]), timeout=10_000)
    assert len(keys) == 8 and grid._plan[1:] == (4, 2, 8)
    assert min(grid.frames[k].height() for k in keys) > 280


def test_more_compared_runs_give_the_strip_views_more_height(make_window, qtbot):
    """Four runs' strips need more height than one run's image: the grid plans again when the run set grows,
    from two rows to one, and back when it shrinks."""
    from conftest import SMALL
    from gui.views.layers import LayersView
    from gui.views.loss import LossView
    from gui.views.profile import ProfileView
    from gui.views.waterfall import WaterfallView
    window = make_window(view_classes=[WaterfallView, ProfileView, LossView, LayersView])
    window.lesson_dock.hide()
    window.resize(1000, 620)
    grid = window.grid
    one, four = readable_size(grid.views["waterfall"], 1.0, 1)[1], readable_size(grid.views["waterfall"], 1.0, 4)[1]
    assert 2 * one <= grid.height() < 2 * four, grid.height()  # room for two rows of one run's, not of four's
    qtbot.waitUntil(lambda: grid._plan is not None and grid._plan[2] == 2, timeout=10_000)
    window.session.apply_configs([SMALL.replace(lr=lr) for lr in (0.01, 0.02, 0.03, 0.04)])
    qtbot.waitUntil(lambda: grid.runs == 4 and grid._plan[2] == 1, timeout=10_000)
    qtbot.waitUntil(lambda: grid.frames["waterfall"].height() >= four - 12, timeout=10_000)
    window.session.apply_configs([SMALL])
    qtbot.waitUntil(lambda: grid.runs == 1 and grid._plan[2] == 2, timeout=10_000)


@pytest.mark.parametrize("size", [(1280, 720), (1600, 1000), (1920, 1080)])
def test_the_window_never_squeezes_a_view_below_its_readable_size(size, make_window, qtbot):
    window = make_window(view_classes=ALL_VIEWS)
    window.grid.highlight("attribution")  # a lesson's view: in the grid, whatever the room
    for key in ("units", "answers"):  # every view on, as the issue asks
        window.grid.show_view(key, True)
    window.resize(*size)
    grid = window.grid

    def laid_out():  # the grid has arranged itself for this size (its resize event's rearrangement ran)
        keys, columns = grid.wanted()
        return grid._plan == (tuple(keys),) + grid.current_plan(keys, columns) and grid.frames["attribution"].isVisible()
    qtbot.waitUntil(laid_out, timeout=10_000)
    shown_keys = grid.wanted()[0]
    in_grid = [k for k in shown_keys if k not in grid.in_tabs]
    # the lesson's, then the user's choices (latest first), then the usual order; at 1280x720 the Answers view's
    # readable height leaves one row: the lesson's view and the Answers view
    assert set(in_grid) == set(grid.priority(shown_keys)[:len(in_grid)])
    assert grid.priority(shown_keys)[:3] == ["attribution", "answers", "units"] and len(in_grid) >= 2
    assert set(in_grid) | set(grid.in_tabs) == set(shown_keys)
    for key in in_grid:
        frame = grid.frames[key]
        assert frame.isVisible()
        want = readable_size(grid.views[key], 1.0, grid.runs)
        assert frame.width() >= want[0] - 12 and frame.height() >= want[1] - 12, \
            f"{key} at {frame.width()}x{frame.height()} in a {size} window"
    if grid.in_tabs:  # one click away: each tab brings its view on screen
        for key in grid.in_tabs:
            assert grid.show_in_tabs(key)
            qtbot.waitUntil(grid.frames[key].isVisible, timeout=10_000)
