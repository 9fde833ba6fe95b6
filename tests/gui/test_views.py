"""The live views, fed with real RunHistory objects built from real Trainer snapshots.

Each view is built, given runs, refreshed, re-themed and cleared; the tests then check the numbers
the plot items hold against the snapshots they came from. pyqtgraph and numpy warnings are
turned into errors while refreshing, so a diverged run (NaN/Inf everywhere) must render cleanly.
No test measures time: see benchmarks/bench_views.py for that.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF
from PySide6.QtGui import QColor, QFontMetricsF, QFont, QImage, QPainter
from PySide6.QtWidgets import QApplication

from engine.config import Config
from engine.probes import HIST_EDGES
from engine.trainer import Trainer
from engine.worker import run_info
from gui.history import RunHistory
from gui.theme import DARK, LIGHT, LOG_GRAD_LEVELS
from gui.views import ALL_VIEWS
from gui.views._legends import READABLE_PT, smallest_scale
from gui.views._common import STEP_LABEL, WIDEST_LOG_GRAD_LEVELS, factor_text, run_labels, sample_columns
from gui.views.activation import ActivationView
from gui.views.attribution import ATTENTION_LABEL, AttributionView
from gui.views.base import View
from engine.diagnosis import Badge, diagnose
from gui.views.layers import LayersView, layer_ticks
from gui.views.loss import LossView, shorter_marker_texts
from gui.views.param_grads import RUG_PX, ParamGradsView
from gui.views.profile import ProfileView
from gui.views.unrolled import MAX_COLUMNS, TITLES, UnrolledView
from gui.views.waterfall import WaterfallView

SMALL = Config(hidden=16, batch=8, seq_len=30, device="cpu")


def train(config: Config, steps: int, index: int = 0, change=None) -> RunHistory:
    """A RunHistory of `steps` real training steps (fewer if the run diverges).
    `change`: (at_step, new Config) applied live, like the GUI's controls do; the history hears of it
    as the run session tells it (a rebuild's new RunInfo, or a live change's applied config)."""
    trainer = Trainer(config)
    history = RunHistory(run_info(index, trainer))
    for _ in range(steps):
        if trainer.diverged:
            break
        if change and trainer.step_count == change[0]:
            if any(e.kind == "rebuilt" for e in trainer.update_config(change[1])):
                history.reshape(run_info(index, trainer))
            else:
                history.apply_settings(trainer.config)
        history.extend([trainer.step()])
    return history


@pytest.fixture(scope="module")
def scenarios():
    diverging = Config(activation="linear", init="orthogonal", spectral_radius=3.0, optimizer="sgd", lr=1.0,
                       hidden=16, batch=8, seq_len=20, device="cpu")
    return {
        "rnn": [train(SMALL, 12)],
        "lstm3": [train(SMALL.replace(cell="lstm", layers=3), 8)],
        "gru_attention": [train(SMALL.replace(cell="gru", attention=True), 8)],
        "clipped": [train(SMALL.replace(activation="linear", spectral_radius=1.5, clip="norm",
                                        clip_threshold=0.5), 10,
                          change=(5, SMALL.replace(activation="linear", spectral_radius=1.5, clip="norm",
                                                   clip_threshold=0.25)))],
        "diverged": [train(diverging, 20)],
        "compare3": [train(SMALL, 8, 0), train(SMALL.replace(cell="lstm"), 8, 1),
                     train(SMALL.replace(activation="relu", init="identity"), 8, 2)],
        "long_deep": [train(Config(hidden=4, batch=2, seq_len=1000, layers=8, device="cpu"), 2)],
    }


def make(view_class, qtbot) -> View:
    view = view_class()
    qtbot.addWidget(view)
    view.resize(900, 600)
    return view


def show(view: View, histories) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view.set_runs([h.info for h in histories])
        view.refresh(histories)
        view.grab()  # paints every item: a NaN that slipped through would warn or raise here


def top_grad(history) -> np.ndarray:
    return history.latest.grad_h[-1].astype(np.float64)


# ----------------------------------------------------------------------------- every view, every case

def test_all_views_listed_in_order():
    ids = [v.view_id for v in ALL_VIEWS]
    assert ids == ["waterfall", "profile", "layers", "loss", "param_grads", "attribution", "activation", "unrolled",
                   "units", "answers", "eigen", "phase"]
    for view_class in ALL_VIEWS:
        assert issubclass(view_class, View) and view_class.title and len(view_class.explanation) > 40


@pytest.mark.parametrize("view_class", ALL_VIEWS, ids=[v.view_id for v in ALL_VIEWS])
def test_view_handles_every_case(view_class, qtbot, scenarios):
    view = make(view_class, qtbot)
    assert view.toolTip() == view_class.explanation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view.refresh([])                                   # no runs at all
        view.grab()
        fresh = RunHistory(scenarios["rnn"][0].info)        # a run without steps yet
        view.set_runs([fresh.info])
        view.refresh([fresh])
        view.grab()
    for name, histories in scenarios.items():
        show(view, histories)
        view.apply_theme(LIGHT.scaled(1.6))                # lecture mode
        show(view, histories)
        view.apply_theme(DARK)
        view.clear()
        view.refresh(histories)
    # a rebuilt run set of another shape, without set_runs first: refresh alone must cope
    show(view, scenarios["long_deep"])
    view.refresh(scenarios["compare3"])
    view.grab()


@pytest.mark.parametrize("theme", [DARK, DARK.scaled(1.8), LIGHT.scaled(1.8)], ids=["default", "lecture", "light"])
@pytest.mark.parametrize("view_class", ALL_VIEWS, ids=[v.view_id for v in ALL_VIEWS])
def test_views_fit_in_300_pixels(view_class, theme, qtbot, scenarios):
    """In the window's 4x2 grid a view gets about 300 px: nothing in it may need more (a plot
    layout wider than its widget is drawn clipped on the right)."""
    view = view_class()
    qtbot.addWidget(view)
    view.apply_theme(theme)
    view.resize(300, 380)
    view.show()
    for name in ("compare3", "long_deep", "lstm3", "clipped"):
        show(view, scenarios[name])
        view.grab()            # a first paint: pyqtgraph sizes axes to their tick labels when painting
        view.refresh(scenarios[name])
        view.grab()
        assert view.minimumSizeHint().width() <= 300, name
        area = getattr(view, "area", None)
        if area is not None:   # PlotArea reports the minimum of the plots inside it
            assert area.minimumSizeHint().width() <= 300, name
            assert area.ci.geometry().width() <= area.width() + 1, name


def test_diverged_run_really_diverged(scenarios):
    history = scenarios["diverged"][0]
    assert history.diverged_at_step is not None
    assert not np.isfinite(history.latest.grad_h).all()


# ----------------------------------------------------------------------------- heatmaps

def test_waterfall_rows_are_log10_of_grad_h(qtbot, scenarios):
    view = make(WaterfallView, qtbot)
    history = scenarios["lstm3"][0]
    show(view, [history])
    snapshots = list(history.trail)                       # 8 steps: the trail still holds every one
    assert len(snapshots) == len(history.waterfall)
    expected = np.log10(np.stack([s.grad_h[-1] for s in snapshots]))
    np.testing.assert_allclose(view.image.image, expected, rtol=1e-5)
    np.testing.assert_allclose(view.image.image[-1], np.log10(history.latest.grad_h[-1]), rtol=1e-5)
    assert covers_levels(view.image.levels, expected)
    assert view.selectors.layer_spin.value() == 3            # the top layer by default
    view.selectors.layer_spin.setValue(1)
    np.testing.assert_allclose(view.image.image[-1], np.log10(history.latest.grad_h[0]), rtol=1e-5)
    levels = tuple(view.image.levels)
    view.refresh([history])
    assert tuple(view.image.levels) == levels                # the same data: the same levels
    # one row per step, scrolling: the image spans the steps it shows
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.top() == pytest.approx(history.waterfall_steps.view()[0] - 0.5)
    assert rect.height() == pytest.approx(len(history.waterfall_steps))


@pytest.mark.parametrize("factor, text", [(0.55, "0.55"), (12.345, "12.35"), (999.4, "999.40"),
                                          (1000.0, "1.0·10³"), (1.2793e24, "1.3·10²⁴"), (9.97e5, "1.0·10⁶")])
def test_a_huge_limit_factor_reads_as_a_power_of_ten(factor, text):
    """A diverging run's limit factor (1.3e24 seen) printed with two decimals ran to 25 digits, out of
    the legend."""
    assert factor_text(factor) == text


def covers_levels(levels, log_values) -> bool:
    """The colour levels span at least LOG_GRAD_LEVELS and every finite value shown, in whole powers of ten."""
    lo, hi = (float(v) for v in levels)
    finite_values = np.clip(np.asarray(log_values)[np.isfinite(log_values)], *WIDEST_LOG_GRAD_LEVELS)  # (a cap)
    return (lo <= LOG_GRAD_LEVELS[0] and hi >= LOG_GRAD_LEVELS[1] and lo == np.floor(lo) and hi == np.ceil(hi)
            and lo <= finite_values.min() and finite_values.max() <= hi
            and (lo == LOG_GRAD_LEVELS[0] or lo == np.floor(finite_values.min()))    # no wider than needed
            and (hi == LOG_GRAD_LEVELS[1] or hi == np.ceil(finite_values.max())))


@pytest.mark.parametrize("view_class", [WaterfallView, LayersView])
def test_heatmaps_in_compare_mode_show_every_run_on_one_scale(view_class, qtbot, scenarios):
    """A compare lesson that points at the waterfall (fix-lstm, fix-gru) or the layers (fix-skip) shows
    each run it compares, without a run chooser (they showed run 1 only, and `record` filmed a useless
    drop-down)."""
    view = make(view_class, qtbot)
    runs = scenarios["compare3"]
    show(view, runs)
    assert not view.selectors.run_combo.isVisibleTo(view)
    images = view.images()
    assert len(images) == 3 and all(image.isVisible() for image in images)
    for image, run in zip(images, runs):
        np.testing.assert_allclose(image.image[-1], np.log10(top_grad(run)), rtol=1e-5)
        assert tuple(image.levels) == tuple(view.colorbar.levels())
    names = [name.textItem.toPlainText() for name in view.strips.names if name.isVisible()]
    assert names == run_labels([h.info for h in runs])                # each strip says which run it is
    shown = np.concatenate([image.image.ravel() for image in images])
    assert covers_levels(view.colorbar.levels(), shown)
    show(view, runs[:1])                                   # one run again: one image
    assert len(view.images()) == 1


def test_a_strip_too_narrow_for_its_runs_name_shows_the_names_first_part(qtbot, scenarios):
    """factor-per-step's third strip at 1280x720 said "run 3" where the legends say "LRU, ring at 0.99": a name
    with a comma shortens to its first part ("LRU") before it falls back to the run's number."""
    view = make(WaterfallView, qtbot)
    show(view, scenarios["compare3"])
    strips = view.strips
    strips._names[2] = "LRU, ring at 0.99"
    name = strips.names[2]
    shown = set()
    for width in range(700, 150, -10):
        view.resize(width, 400)
        view.grab()
        strips._fit_name(2)
        text = name.textItem.toPlainText()
        shown.add(text)
        assert text != "run 3" or QFontMetricsF(name.textItem.font()).horizontalAdvance("LRU") > \
            name.parentItem().width() * strips.NAME_SHARE, width
    assert {"LRU, ring at 0.99", "LRU"} <= shown
    strips._names[2] = "clipped by norm"  # no shorter form: whole up to WIDE_SHARE of the strip, then "run 3"
    advance = QFontMetricsF(name.textItem.font()).horizontalAdvance("clipped by norm")
    widened = False
    for width in range(700, 150, -10):
        view.resize(width, 400)
        view.grab()
        strips._fit_name(2)
        room, text = name.parentItem().width(), name.textItem.toPlainText()
        assert text != "run 3" or advance > room * strips.WIDE_SHARE - 12, (width, room)
        widened |= text == "clipped by norm" and advance > room * strips.NAME_SHARE
    assert widened  # (the old rule said "run 3" past NAME_SHARE)


def test_a_compared_run_that_diverged_has_no_profile_and_the_view_says_why(qtbot, scenarios):
    """learning-rate at 1280x720: the 'too large' run's last profiles, 10^-100 to 10^50 before it diverged, stretched
    the axis until 'about right', the run the title speaks of, was a flat line, and its ratio plot was empty with no
    word why. A compared run that diverged now draws nothing there, and a note names it and its step."""
    view = make(ProfileView, qtbot)
    fine, diverged = scenarios["rnn"][0], scenarios["diverged"][0]
    step = diverged.diverged_at_step
    assert step is not None and len(diverged.trail) > 1
    show(view, [fine, diverged])
    drawn = lambda items: [item for item in items if item.getData()[0] is not None and len(item.getData()[0])]
    assert drawn([c for run, _, c in view.curves if run == 1] + [c for run, c in view.theories if run == 1]
                 + [i for run, trail in view.trails if run == 1 for i in trail]
                 + [c for run, c in view.ratios if run == 1]) == []
    assert drawn([c for run, _, c in view.curves if run == 0])  # the run that did not diverge is drawn
    note = view.notes[view.ratio_plot]
    assert view.ratio_plot.isVisible() and note.isVisible() and not view.notes[view.plot].isVisible()
    assert note.textItem.toPlainText().endswith(f"diverged at step {step}"), note.textItem.toPlainText()
    for width in (900, 420, 300):  # never over the ratio plot's "same as ..." label (fix-clipping in lecture mode)
        view.resize(width, 600)
        view.grab()
        label = view.same_line.label
        assert not note.mapRectToScene(note.boundingRect()).intersects(label.mapRectToScene(label.boundingRect()))
    view.resize(900, 600)
    low, high = view.plot.viewRange()[1]  # (log10) the range the run that is drawn needs, not the diverged run's
    g = top_grad(fine)
    assert low >= np.log10(g[g > 0].min()) - 2 and high <= np.log10(g.max()) + 2, (low, high)
    view.resize(400, 200)  # no room for the ratio plot: the note moves into the profile
    view.grab()
    view.refresh([fine, diverged])
    assert not view.ratio_plot.isVisible() and view.notes[view.plot].isVisible() and not note.isVisible()
    show(view, [fine, scenarios["rnn"][0]])  # no run diverged: no note
    assert not any(n.isVisible() for n in view.notes.values())


def test_heatmap_levels_widen_to_an_exploding_gradient(qtbot):
    """exploding's waterfall was one saturated block: the scale stopped at 10² while the gradient
    reached 10¹³; a tanh run's 10⁻²¹ was flattened at the 10⁻¹² floor."""
    from engine.lessons import LESSONS
    exploding = train(LESSONS["exploding"].config().replace(batch=8, device="cpu"), 2)
    vanishing = train(Config(batch=8, device="cpu"), 2)                 # tanh, 100 steps
    for view_class in (WaterfallView, LayersView):
        for history in (exploding, vanishing):
            view = make(view_class, qtbot)
            show(view, [history])
            assert covers_levels(view.image.levels, view.image.image)   # every step shown, every layer
            assert tuple(view.colorbar.levels()) == tuple(view.image.levels)
    assert np.log10(exploding.latest.grad_h[-1]).max() > LOG_GRAD_LEVELS[1] + 3    # the case is real
    assert np.log10(vanishing.latest.grad_h[-1]).min() < LOG_GRAD_LEVELS[0] - 3


def assert_shows_run(view, history):
    """The view shows the top layer's latest gradient of `history` (the unrolled view: at its sampled timesteps)."""
    expected = np.log10(top_grad(history))
    if isinstance(view, UnrolledView):
        columns, log_h, _ = view.sampled()
        shown, expected = log_h[-1], expected[columns]
    else:
        shown = view.image.image[-1]
    np.testing.assert_allclose(shown, expected, rtol=1e-5)


@pytest.mark.parametrize("view_class", [UnrolledView])
def test_one_run_views_show_the_chosen_run_and_follow_a_new_run_set(view_class, qtbot, scenarios):
    view = make(view_class, qtbot)
    runs = scenarios["compare3"]
    show(view, runs)
    assert_shows_run(view, runs[0])
    view.selectors.run_combo.setCurrentIndex(2)   # no refresh call: choosing a run redraws by itself
    assert_shows_run(view, runs[2])
    view.refresh(runs[1:2])                       # a new run set without set_runs: the chooser follows it
    assert view.selectors.run_combo.count() == 0
    assert_shows_run(view, runs[1])


@pytest.mark.parametrize("view_class", [WaterfallView, LayersView])
def test_strips_span_the_longest_run_when_run_1_is_shorter(view_class, qtbot, scenarios):
    # slow-convergence compares 5, 10 and 50 steps: the strips showed only timesteps 0-4 of each
    view = make(view_class, qtbot)
    shorter, longer = train(SMALL.replace(seq_len=5), 3), scenarios["rnn"][0]   # 5 and 30 timesteps
    show(view, [shorter, longer])
    view.show()
    qtbot.waitExposed(view)
    for strip in view.strips.plots():
        lo, hi = strip.getViewBox().viewRange()[0]
        assert lo <= -0.5 and 29.5 <= hi < 31, (lo, hi)


def test_layers_heatmap_is_log10_grad_h_on_levels_that_cover_it(qtbot, scenarios):
    view = make(LayersView, qtbot)
    history = scenarios["lstm3"][0]
    show(view, [history])
    np.testing.assert_allclose(view.image.image, np.log10(history.latest.grad_h), rtol=1e-5)
    assert covers_levels(view.image.levels, view.image.image)
    ends, between = view.plot.getAxis("left")._tickLevels
    assert ends == [(0.0, "1"), (2.0, "3")] and between == [(1.0, "2")]


def test_layer_numbers_in_a_short_strip_do_not_overprint_each_other(qtbot):
    # a six-layer stack in one of two strips of lecture mode at 1280x720: about 70 px for six numbers
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(300, 110)
    axis = plot.getPlotItem().getAxis("left")
    axis.setStyle(tickFont=QFont("DejaVu Sans", 14))
    plot.setYRange(-0.5, 5.5, padding=0)
    axis.setTicks(layer_ticks(6))
    plot.show()
    qtbot.waitExposed(plot)
    image = QImage(300, 110, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    painter.setFont(axis.style["tickFont"])
    _, _, texts = axis.generateDrawSpecs(painter)
    painter.end()
    rects = [rect for rect, _, _ in texts]
    assert {text for _, _, text in texts} >= {"1", "6"}
    assert not any(a.intersects(b) for k, a in enumerate(rects) for b in rects[k + 1:])


# ----------------------------------------------------------------------------- profile

def test_profile_curves_are_grad_h_and_theory_slope(qtbot, scenarios):
    view = make(ProfileView, qtbot)
    history = scenarios["lstm3"][0]
    show(view, [history])
    snap = history.latest
    assert len(view.curves) == 3                               # one curve per layer
    for _, layer, curve in view.curves:
        np.testing.assert_allclose(curve.yData, snap.grad_h[layer], rtol=1e-6)
        np.testing.assert_array_equal(curve.xData, np.arange(snap.grad_h.shape[1]))
    (_, cell_curve), = view.cell_curves                        # LSTM: the cell state's gradient too
    np.testing.assert_allclose(cell_curve.yData, snap.grad_c[-1], rtol=1e-6)
    (_, theory), = view.theories
    factor = float(snap.sigma_max[-1] * snap.max_slope[-1])
    steps = np.diff(np.log10(theory.yData))
    np.testing.assert_allclose(-steps, np.log10(factor), rtol=1e-6)  # x factor per step back in time
    assert theory.yData[-1] == pytest.approx(snap.grad_h[-1, -1], rel=1e-6)
    assert view.legend.getLabel(theory).text == f"limit: ×{factor:.2f} per step"  # an ordinary factor, as is
    (_, trail), = view.trails                                  # earlier steps, newest first
    earlier = list(history.trail)[-2]
    np.testing.assert_allclose(trail[0].yData, earlier.grad_h[-1], rtol=1e-6)


def test_profile_compare_one_curve_per_run(qtbot, scenarios):
    view = make(ProfileView, qtbot)
    runs = scenarios["compare3"]
    show(view, runs)
    assert [run for run, _, _ in view.curves] == [0, 1, 2]
    for run, _, curve in view.curves:
        np.testing.assert_allclose(curve.yData, top_grad(runs[run]), rtol=1e-6)


def relative_luminance(color: str) -> float:
    """WCAG 2's relative luminance of '#rrggbb'."""
    def linear(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(color[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def rgb_distance(a: str, b: str) -> float:
    return float(np.linalg.norm([int(a[i:i + 2], 16) - int(b[i:i + 2], 16) for i in (1, 3, 5)]))


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
def test_layer_colours_get_lighter_towards_the_top_and_stand_out(theme):
    """Stacked layers' colours are ordered by lightness (input side darkest), so the order of the curves
    reads from their colours; each keeps WCAG's 3:1 contrast for graphics against the background and
    stays well apart from the foreground and accent colours of the 'all weights' and limit lines."""
    background = relative_luminance(theme.background)
    for layers in (2, 3, 8):
        colors = [theme.layer_color(k, layers) for k in range(layers)]
        light = [relative_luminance(c) for c in colors]
        assert all(a < b for a, b in zip(light, light[1:])), colors
        for color, value in zip(colors, light):
            assert (max(value, background) + 0.05) / (min(value, background) + 0.05) >= 3.0, color
            assert min(rgb_distance(color, theme.foreground), rgb_distance(color, theme.accent)) >= 150, color


@pytest.mark.parametrize("layers", [1, 3, 8])
def test_layer_curves_take_the_ramp_and_many_layers_share_a_legend_entry(layers, qtbot):
    """Each layer's curve has its place on the colour ramp; up to three layers are named one by one,
    more as the input side, 'layers 2-(L-1)' and the top, so the legend stays three entries high."""
    history = train(SMALL.replace(layers=layers, seq_len=12), 2)
    profile, weights = make(ProfileView, qtbot), make(ParamGradsView, qtbot)
    for view in (profile, weights):
        show(view, [history])
    colors = {layer: curve.opts["pen"].color().name() for _, layer, curve in profile.curves}
    colors_w = {layer: before.opts["pen"].color().name() for _, layer, before, _ in weights.series if layer is not None}
    expected = {k: DARK.layer_color(k, layers) for k in range(layers)}
    assert colors == expected and colors_w == expected
    names = [label.text for _, label in profile.legend.items]
    names_w = [label.text for _, label in weights.legend.items]
    if layers == 1:
        assert names[0] == "gradient now" and names_w == ["all weights", "layer 1 recurrent"]
    elif layers == 3:
        assert names[:3] == ["layer 1 (input side)", "layer 2", "layer 3 (top)"]
        assert names_w == ["all weights"] + [f"layer {k} recurrent" for k in (1, 2, 3)]
    else:
        assert names[:3] == ["layer 1 (input side)", "layers 2-7", "layer 8 (top)"]
        assert names_w == ["all weights", "layer 1 recurrent", "layers 2-7 recurrent", "layer 8 recurrent"]
        middle = DARK.layer_color(3.5, 8)
        assert profile._between_key.opts["pen"].color().name() == middle
        assert weights._between_key.opts["pen"].color().name() == middle


def test_profile_ratio_curves_are_log10_of_grad_h_ratio(qtbot, scenarios):
    view = make(ProfileView, qtbot)
    runs = scenarios["compare3"]
    show(view, runs)
    assert view.ratio_plot.isVisible() and view.same_line.label.format == "same as run 1"
    # the zero line's name stays readable where a ratio curve crosses it: above the curves, on a backing
    assert all(view.same_line.zValue() > curve.zValue() for _, curve in view.ratios)
    assert view.same_line.label.fill.color().name() == view.theme.background
    assert [run for run, _ in view.ratios] == [1, 2]              # run 1 against itself is the zero line
    with np.errstate(divide="ignore", invalid="ignore"):
        for run, curve in view.ratios:
            expected = np.log10(top_grad(runs[run]) / top_grad(runs[0]))
            keep = np.isfinite(expected)
            np.testing.assert_allclose(curve.yData, expected[keep], rtol=1e-9, atol=1e-9)
            np.testing.assert_array_equal(curve.xData, np.arange(len(expected))[keep])
    show(view, scenarios["rnn"])
    assert not view.ratio_plot.isVisible() and view.ratios == []


def test_profile_ratio_of_different_lengths_aligns_at_the_end(qtbot, scenarios):
    view = make(ProfileView, qtbot)
    first, shorter = scenarios["rnn"][0], train(SMALL.replace(seq_len=12, cell="gru"), 3, 1)
    show(view, [first, shorter])
    (_, curve), = view.ratios
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log10(top_grad(shorter) / top_grad(first)[-12:])
    keep = np.isfinite(expected)
    np.testing.assert_allclose(curve.yData, expected[keep], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(curve.xData, (np.arange(12) + 30 - 12)[keep])   # on run 1's timesteps
    assert "aligned at the end" in view.ratio_plot.getAxis("bottom")._label_options[0]


def left_out_when_short(qtbot, view, histories, upper, lower, size):
    """Both plots shown, the lower one naming the x axis; at `size` the lower one left out. Returns the
    upper plot's x axis, which then names it."""
    show(view, histories)
    view.show()
    qtbot.waitExposed(view)
    bottom = upper.getAxis("bottom")
    assert lower.isVisible() and not bottom._label_options
    view.resize(*size)
    qtbot.waitUntil(lambda: not lower.isVisible())
    return bottom


def test_profile_in_a_short_cell_leaves_out_the_ratio_plot_rather_than_squeeze_both(qtbot, scenarios, monkeypatch):
    # a row of the 3x3 grid at 1600x1000 gave each plot a 35 px strip
    view = make(ProfileView, qtbot)
    first, shorter = scenarios["rnn"][0], train(SMALL.replace(seq_len=12, cell="gru"), 3, 1)
    bottom = left_out_when_short(qtbot, view, [first, shorter], view.plot, view.ratio_plot, (400, 180))
    assert "aligned at the end" in bottom._label_options[0]        # the profile names its axis then
    qtbot.waitUntil(lambda: view.plot.getViewBox().height() > 60)  # (35 with the ratio plot under it)
    view.resize(900, 600)
    qtbot.waitUntil(view.ratio_plot.isVisible)
    assert not bottom._label_options
    # a new run set while it is left out names run 1 once it is back
    view.resize(400, 180)
    qtbot.waitUntil(lambda: not view.ratio_plot.isVisible())
    monkeypatch.setattr("gui.views.profile.first_run_name", lambda infos: "LSTM")  # (as a lesson's runs)
    view.set_runs([h.info for h in scenarios["compare3"]])
    view.resize(900, 600)
    qtbot.waitUntil(view.ratio_plot.isVisible)
    assert view.same_line.label.toPlainText() == "same as LSTM"


def test_loss_in_a_short_cell_leaves_out_the_task_score_rather_than_squeeze_both(qtbot, scenarios):
    # a row of the 3x3 grid at 1600x1000 (175-235 px) lost both plots' axis names and the legend
    view = make(LossView, qtbot)
    bottom = left_out_when_short(qtbot, view, scenarios["compare3"], view.loss_plot, view.metric_plot, (400, 200))
    assert bottom._label_options == STEP_LABEL  # the loss names it then, and keeps the height
    qtbot.waitUntil(lambda: view.loss_plot.getViewBox().height() > 80)
    view.refresh(scenarios["compare3"])
    view.grab()
    assert not view.legend.isVisible() or view.legend.scale() >= smallest_scale(view.legend) - 1e-6  # shown readable
    view.resize(900, 600)
    qtbot.waitUntil(view.metric_plot.isVisible)
    assert not bottom._label_options


def test_profile_skips_non_finite_and_zero(qtbot, scenarios):
    view = make(ProfileView, qtbot)
    show(view, scenarios["diverged"])
    for _, _, curve in view.curves:
        assert curve.yData is None or np.all(np.isfinite(curve.yData) & (curve.yData > 0))


@pytest.mark.parametrize("zero_share, size, expected", [
    (0.8, (900, 600), 0),      # wide stretch: the label runs across it
    (0.8, (330, 330), 0),      # small view: the legend reaches over the stretch; the label goes above it
    (0.15, (900, 600), 90),    # narrow: upright
    (0.04, (330, 330), None),  # too narrow for even that: hidden, not drawn over the curves
], ids=["wide", "small", "narrow", "too-narrow"])
def test_profile_names_the_zero_stretch_inside_it_clear_of_legend_and_curves(zero_share, size, expected,
                                                                             qtbot, scenarios):
    """Timesteps whose gradient is exactly 0 have no point on a log axis: they are shaded and named.
    The name lies inside the shaded stretch, where no curve of the latest step can be, and off the legend."""
    base = scenarios["rnn"][0]
    g = base.latest.grad_h.astype(np.float64).copy()
    T = g.shape[1]
    zero = int(T * zero_share) or 1
    g[:, :zero] = 0.0
    history = RunHistory(base.info)
    history.extend([dataclasses.replace(base.latest, grad_h=g.astype(np.float32))])
    view = make(ProfileView, qtbot)
    view.resize(*size)
    show(view, [history])
    view.grab()
    label = view.underflow_label
    assert view.underflow.isVisible()
    if expected is None:
        assert not label.isVisible()
        return
    assert label.isVisible() and label.angle == expected
    box = view.plot.getViewBox()
    text = box.mapRectFromScene(label.mapRectToScene(label.boundingRect()))  # in the data box's pixels
    lo, hi = view.underflow.getRegion()
    left = box.mapFromView(QPointF(lo, 0)).x()
    right = box.mapFromView(QPointF(hi, 0)).x()
    assert left <= text.left() and text.right() <= right, (text, left, right)
    assert 0 <= text.top() and text.bottom() <= box.height()
    legend = view.legend.mapRectToParent(view.legend.boundingRect())
    assert not (view.legend.isVisible() and text.intersects(legend)), (text, legend)


# ----------------------------------------------------------------------------- curves over training

def test_loss_curves_baseline_and_event_markers(qtbot, scenarios):
    view = make(LossView, qtbot)
    history = scenarios["clipped"][0]
    show(view, [history])
    np.testing.assert_allclose(view.loss_curves[0].yData, history.loss.view())
    np.testing.assert_allclose(view.metric_curves[0].yData, history.metric.view())
    assert view.baselines[0].value() == pytest.approx(np.log10(history.info.baseline_loss))
    assert "learned nothing" in [label.text for _, label in view.legend.items]
    (event,) = [e for e in history.events if e.kind == "changed"]
    visible = [(top, bottom) for top, bottom in view.markers if top.isVisible()]
    assert len(visible) == 1 and visible[0][0].value() == event.step
    assert event.detail in visible[0][0].toolTip()


def test_loss_legend_and_baseline_hide_no_curve(qtbot, scenarios):
    """The highest loss (a run that starts, or stays, high) stays below the top-right legend, and the
    'learned nothing' lines lie under the curves, so a run stuck at its baseline stays visible."""
    view = make(LossView, qtbot)
    runs = scenarios["compare3"]
    show(view, runs)
    box = view.loss_plot.getViewBox()
    legend = view.legend.mapRectToParent(view.legend.boundingRect())
    assert legend.isValid() and view.legend.isVisible()
    highest = np.log10(max(np.nanmax(h.loss.view()) for h in runs))
    assert box.mapFromView(QPointF(0, highest)).y() > legend.bottom()   # pixels down from the top
    assert [label.text for _, label in view.legend.items].count("learned nothing") == 1
    assert all(line.zValue() < curve.zValue() for line in view.baselines for curve in view.loss_curves)


def test_loss_marks_divergence_in_warning_colour(qtbot, scenarios):
    view = make(LossView, qtbot)
    history = scenarios["diverged"][0]
    show(view, [history])
    # (its first step's gradient, 1e14, already passed the explosion bound: an "exploded" marker comes first)
    top, _ = [m for m in view.markers if m[0].isVisible()][-1]
    assert top.value() == history.diverged_at_step
    assert top.pen.color().name() == DARK.warning
    assert np.all(np.isfinite(view.loss_curves[0].yData))


@pytest.fixture(scope="module")
def marker_cases(scenarios):
    """Runs whose event markers sit where labels collide: at the right edge under the legend, close
    together, long, in compare mode."""
    from engine.trainer import Event
    relu = SMALL.replace(activation="relu")
    late_change = train(SMALL, 20, change=(19, relu))                 # a change at the last step
    busy = train(SMALL, 150)
    busy.add_events([Event(step, "changed", f"lr 0.001 -> 0.0{step} and more words")
                     for step in (70, 71, 72, 148, 149, 150)])   # three close together, three at the end
    return {
        "diverged": scenarios["diverged"], "clipped": scenarios["clipped"],
        "diverged_vs_rnn": scenarios["diverged"] + scenarios["rnn"],
        "diverged_first_of_4": scenarios["diverged"] + scenarios["compare3"],
        "late_change": [late_change], "busy": [busy],
    }


def test_a_marker_too_long_for_its_plot_says_what_happened_before_it_ends_in_an_ellipsis():
    """fix-clipping's Loss marker read "diverged (no clipping (be…": the run's name loses its own "(...)" first, then
    the marker says what happened alone."""
    assert shorter_marker_texts("diverged (no clipping (before))") == ["diverged (no clipping)", "diverged"]
    assert shorter_marker_texts("exploded (too large (1.0))") == ["exploded (too large)", "exploded"]
    assert shorter_marker_texts("diverged (tanh)") == ["diverged"]
    assert shorter_marker_texts("lr 0.001 -> 0.002") == []


@pytest.mark.parametrize("case", ["diverged", "clipped", "diverged_vs_rnn", "diverged_first_of_4",
                                  "late_change", "busy"])
@pytest.mark.parametrize("size", [(900, 600), (500, 380), (320, 320)])
def test_loss_marker_labels_stay_whole_and_clear_of_the_legend(case, size, qtbot, marker_cases):
    """A marker's label lies inside the plot, clear of the legend and of the other labels, even for an
    event at the right edge under the top-right legend; one with no room for all of it ends in an
    ellipsis (the tooltip has the rest). The newest event's label is shown but where the legend fills
    almost the whole plot (four runs in 320 x 320 pixels)."""
    view = make(LossView, qtbot)
    view.resize(*size)
    runs = marker_cases[case]
    show(view, runs)
    view.grab()  # lays out the legend at its final size
    box = view.loss_plot.getViewBox()
    plot = box.mapRectToScene(box.boundingRect())
    legend = view.legend.mapRectToScene(view.legend.boundingRect())
    lines = [top for top, _ in view.markers if top.isVisible()]
    newest = max(lines, key=lambda line: line.value())
    # the labels (the lines' children, drawn at their depth) over the curves: dead-units' label lay under a spike
    assert min(line.zValue() for line in lines) > max(curve.zValue() for curve in view.loss_curves)
    assert lines and (newest.label.isVisible() or size == (320, 320))
    placed = []
    for line in lines:
        label = line.label
        if not label.isVisible():
            continue
        text = label.toPlainText()
        assert text == line.full_text or text in shorter_marker_texts(line.full_text) or \
            (text.endswith("…") and line.full_text.startswith(text[:-1])), text
        if text.endswith("…"):  # an ellipsis only where no shorter form fits
            assert all(QFontMetricsF(label.textItem.font()).horizontalAdvance(t) > QFontMetricsF(
                label.textItem.font()).horizontalAdvance(text) for t in shorter_marker_texts(line.full_text)), text
        rect = label.mapRectToScene(label.boundingRect())
        assert plot.contains(rect), (text, rect, plot)
        assert not (view.legend.isVisible() and rect.intersects(legend)), (text, rect, legend)
        assert not any(rect.intersects(other) for other in placed), text
        placed.append(rect)


def test_param_grads_clipping(qtbot, scenarios):
    view = make(ParamGradsView, qtbot)
    history = scenarios["clipped"][0]
    show(view, [history])
    total = [s for s in view.series if s[1] is None][0]
    np.testing.assert_allclose(total[2].yData, history.grad_norm.view())
    np.testing.assert_allclose(total[3].yData, history.grad_norm_clipped.view())
    (_, layer0, before, _) = [s for s in view.series if s[1] == 0][0]
    np.testing.assert_allclose(before.yData, history.grad_norm_layer.view()[:, 0])
    (_, marks), = view.marks
    fired = history.clipped.view()
    assert history.clip_count > 0
    x, y = marks.getData()
    np.testing.assert_array_equal(x, history.steps.view()[fired])
    # a rug of ticks along the bottom edge, where no curve is buried under them
    box = view.plot.getViewBox()
    pixels = [box.mapFromView(QPointF(step, value)).y() for step, value in zip(x, y)]
    assert all(box.height() - RUG_PX <= p <= box.height() for p in pixels), (pixels, box.height())
    lowest = np.log10(min(history.grad_norm_clipped.view().min(), history.grad_norm_layer.view().min()))
    assert box.mapFromView(QPointF(0, lowest)).y() < box.height() - RUG_PX
    (_, line), = view.thresholds
    assert line.isVisible()
    assert line.value() == pytest.approx(np.log10(0.25))      # the threshold now, after the live change
    # its label over the curves, on the background (fix-gru's 'clip at 1' lay under the curves)
    assert line.zValue() > max(c.zValue() for _, _, before, after in view.series for c in (before, after))
    assert line.label.fill.style() != pg.QtCore.Qt.BrushStyle.NoBrush
    assert "fired" in view.title_label.text()


@pytest.mark.parametrize("layers, size", [(1, (900, 600)), (3, (330, 330)), (3, (900, 600))])
def test_param_grads_legend_covers_no_data(layers, size, qtbot, scenarios):
    """Clipping fires where the gradient is largest, at the top of the plot: the automatic range
    leaves the band under the top-right legend empty, so the curves stay visible. With 3 layers the
    legend has 6 entries, taller than the room kept for it in a small view: it shrinks to fit that room."""
    view = make(ParamGradsView, qtbot)
    view.resize(*size)
    if layers == 1:
        history = scenarios["clipped"][0]
    else:
        history = train(SMALL.replace(layers=layers, clip="norm", clip_threshold=0.01), 6)
    show(view, [history])
    if layers > 1:
        assert len(view.legend.items) == 6 and history.clipped.view().any()
    box = view.plot.getViewBox()
    legend = view.legend.mapRectToParent(view.legend.boundingRect())
    assert legend.isValid() and view.legend.isVisible()
    highest = np.log10(max(history.grad_norm.view().max(), history.grad_norm_layer.view().max()))
    assert box.mapFromView(QPointF(0, highest)).y() > legend.bottom()   # pixels down from the top
    assert box.viewRange()[1][1] > highest + 0.1             # room above the data, not only padding


def test_param_grads_hides_threshold_without_clipping(qtbot, scenarios):
    view = make(ParamGradsView, qtbot)
    show(view, scenarios["rnn"])
    assert not view.thresholds[0][1].isVisible()


# ----------------------------------------------------------------------------- attribution, activation

def test_attribution_is_grad_x_and_attention(qtbot, scenarios):
    view = make(AttributionView, qtbot)
    history = scenarios["gru_attention"][0]
    show(view, [history])
    np.testing.assert_allclose(view.curves[0].yData, history.latest.grad_x, rtol=1e-6)
    np.testing.assert_allclose(view.attention_curves[0].yData, history.latest.attention, rtol=1e-6)
    assert view.attention_plot.isVisible()
    # the attention plot is too short for an axis label: a legend entry names it, above its highest point
    legend = view.attention_legend
    assert [label.text for _, label in legend.items] == [ATTENTION_LABEL] and legend.isVisible()
    box = view.attention_plot.getViewBox()
    top = box.mapFromView(QPointF(0, float(np.max(history.latest.attention)))).y()
    assert top > legend.mapRectToParent(legend.boundingRect()).bottom()  # pixels down from the top
    show(view, scenarios["rnn"])
    assert not view.attention_plot.isVisible() and legend.items == []
    g = scenarios["rnn"][0].latest.grad_x
    if g[0] > 0 and np.log10(g[-1] / g[0]) >= 2:
        assert "Recent inputs dominate" in view.title_label.text()


@pytest.mark.parametrize("first, last, title", [
    (1.0, 1.0, "Early and recent inputs count about equally"),
    (1.0, 5.0, "Early and recent inputs count about equally"),
    (1.0, 12.0, "Recent inputs count more: last counts 10¹× the first"),    # fix-attention: a tilt, not domination
    (1.0, 1e3, "Recent inputs dominate: last counts 10³× the first"),
    (1e3, 1.0, "Early inputs dominate: first counts 10³× the last"),
    (0.0, 1.0, "Recent inputs dominate: the first has no influence")])
def test_influence_title_words_the_factor(first, last, title):
    from gui.views.attribution import influence_title
    assert influence_title(np.geomspace(max(first, 1e-30), last, 10) if first else np.array([0.0, 0.5, last])) == title


def test_activation_histogram_and_gates(qtbot, scenarios):
    view = make(ActivationView, qtbot)
    history = scenarios["lstm3"][0]
    show(view, [history])
    snap = history.latest
    (_, _, _, hist), = view.series
    counts = snap.preact_hist[-1]
    np.testing.assert_allclose(hist.yData, counts / counts.max(), rtol=1e-6)
    np.testing.assert_allclose(hist.xData, HIST_EDGES)
    (_, bars, _), = view.gate_bars
    np.testing.assert_allclose(bars.opts["width"], snap.gate_means[-1], rtol=1e-6)   # horizontal bars
    assert view.gate_plot.isVisible()
    assert f"{snap.saturation[-1] * 100:.0f}% of gates saturated" in view.title_label.text()
    show(view, scenarios["rnn"])
    assert not view.gate_plot.isVisible()
    assert "of units saturated" in view.title_label.text()


def test_activation_shows_each_cells_own_function_or_says_it_has_none(qtbot):
    """IndRNN's ReLU was drawn and named as tanh ("IndRNN (ReLU): tanh (cell input)"), and the LRU, minGRU and the
    selective SSM, whose memory passes through no activation, were given a tanh too; the saturation names the
    activation's units for IndRNN (it has no gates), minGRU's update gate, and nothing for the LRU and the SSM."""
    from engine import registry
    view = make(ActivationView, qtbot)
    small = Config(seq_len=8, hidden=6, batch=3)
    indrnn = train(small.replace(cell="indrnn", activation="relu"), 2)
    show(view, [indrnn])
    (_, act, slope, _), = view.series
    y, dy = registry.activation_curve("relu", act.xData)
    np.testing.assert_array_equal(act.yData, np.clip(y, -50, 50))
    assert [label.text for _, label in view.legend.items][0] == "ReLU" and "of units saturated" in view.title_label.text()
    for cell, title in (("lru", "No activation on the memory"), ("ssm", "No activation on the memory: only the gates"),
                        ("mingru", "of gates saturated")):
        show(view, [train(small.replace(cell=cell), 2)])
        (_, act, _, _), = view.series
        assert act.xData is None and title in view.title_label.text(), (cell, view.title_label.text())
        assert [label.text for _, label in view.legend.items] == [f"{registry.CELLS[cell].label}: no activation on its memory"]
    show(view, [indrnn, train(small.replace(cell="lru"), 2, 1)])  # compared: each run's entry says its own
    entries = [label.text for _, label in view.legend.items]
    assert entries[0].endswith("ReLU") and entries[1].endswith("no activation on its memory"), entries


def test_activation_gates_go_beside_the_plot_in_a_short_cell_not_below_it(qtbot, scenarios):
    """A row of nine views at 1600x1000 (about 400 x 210 px) stacked the gates under the activation plot
    and left it a strip 50 px high; there they go beside it, and below it only in a narrow view."""
    view = make(ActivationView, qtbot)
    show(view, scenarios["lstm3"])
    view.show()
    qtbot.waitExposed(view)
    layout = view.area.ci.layout

    def beside():
        return view.gate_plot.isVisible() and layout.itemAt(0, 1) is view.gate_plot

    for size, expected in (((900, 600), True), ((400, 210), True), ((300, 600), False), ((400, 600), False)):
        view.resize(*size)
        qtbot.waitUntil(lambda: beside() == expected, timeout=5_000)
        if not expected:
            assert layout.itemAt(1, 0) is view.gate_plot


# ----------------------------------------------------------------------------- unrolled

def test_unrolled_samples_at_most_24_columns():
    for T in (1, 2, 24, 25, 100, 5000):
        cols = sample_columns(T, MAX_COLUMNS)
        assert len(cols) == min(T, MAX_COLUMNS)
        assert cols[0] == 0 and cols[-1] == T - 1 and np.all(np.diff(cols) > 0)


def test_unrolled_draws_sampled_gradients(qtbot, scenarios):
    view = make(UnrolledView, qtbot)
    history = scenarios["long_deep"][0]
    show(view, [history])
    cols, log_h, log_x = view.sampled()
    assert len(cols) == MAX_COLUMNS and cols[0] == 0 and cols[-1] == 999
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(log_h, np.log10(history.latest.grad_h[:, cols].astype(np.float64)))
        np.testing.assert_allclose(log_x, np.log10(history.latest.grad_x[cols].astype(np.float64)))


class RecordingPainter:
    """A QPainter on an image that also keeps what was drawn: (rect, text) and rounded rects."""

    def __init__(self, size):
        from PySide6.QtGui import QImage, QPainter
        self.image = QImage(size[0], size[1], QImage.Format_ARGB32)
        self.painter = QPainter(self.image)
        self.texts, self.boxes = [], []

    def drawText(self, rect, flags, text):
        self.texts.append((QRectF(rect), text))
        return self.painter.drawText(rect, flags, text)

    def drawRoundedRect(self, rect, *args):
        self.boxes.append(QRectF(rect))
        return self.painter.drawRoundedRect(rect, *args)

    def __getattr__(self, name):
        return getattr(self.painter, name)


@pytest.mark.parametrize("layers", [1, 3, 8])
@pytest.mark.parametrize("size, theme", [((900, 600), DARK), ((300, 260), DARK), ((560, 330), DARK.scaled(1.8)),
                                         ((120, 90), DARK), ((160, 120), DARK), ((220, 150), DARK.scaled(1.8))],
                         ids=["large", "small", "lecture", "smallest", "narrow", "narrow-lecture"])
def test_unrolled_title_loss_box_cells_and_key_keep_apart(layers, size, theme, qtbot):
    """The drawing's parts, top to bottom: title, loss box, cells (with the timestep labels under the
    bottom row), colour key; none touches the next, and all stay on the canvas. Where there is no
    room, the key's note, then the key, then the title give way; the cells and the loss never do."""
    view = make(UnrolledView, qtbot)
    view.apply_theme(theme)
    show(view, [train(SMALL.replace(layers=layers), 2)])
    p = RecordingPainter(size)
    try:
        view._paint(p, QRectF(0, 0, *size))
    finally:
        p.painter.end()
    title = [rect for rect, text in p.texts
             if text in TITLES or text.endswith("…") and TITLES[-1].startswith(text[:-1])]
    loss, = [rect for rect, text in p.texts if text == "loss"]
    cells = [box for box in p.boxes if box != loss]  # the loss box is drawn rounded too
    # one layer: columns wide enough for a labelled cell (at 1280x720 they shrank to unlabelled pills)
    assert len(cells) >= (2 if size[0] < 300 else 3 if layers == 1 else 4) * layers and len(cells) % layers == 0
    if layers == 1 and size[0] >= 300:
        powers = [text for _, text in p.texts if text.startswith("10") and "(" not in text and text != "10⁻¹²"]
        assert len(powers) == len(cells), (powers, len(cells))
    steps = [rect for rect, text in p.texts if text.startswith("t=")]
    key = [rect for rect, text in p.texts if "(vanished)" in text or text == "10⁻¹²"]
    if size[1] >= 150 and theme is DARK:
        assert title and key  # room for both
    if size[0] >= 300 and (theme is DARK or layers > 1):  # (lecture fonts: one layer's labelled cells come first)
        assert any("coloured: gradient back" in text for _, text in p.texts)  # and the key's note
    assert all(t.bottom() < loss.top() for t in title), (title, loss)
    assert loss.bottom() < min(c.top() for c in cells), loss
    assert steps and max(c.bottom() for c in cells) < min(s.top() for s in steps)
    # the timestep labels' text, not their rectangles (a line tall), must clear the key's colour bar
    assert all(max(s.top() for s in steps) + theme.font_pt * 1.3 <= k.top() + 4 for k in key[:1]), (steps[0], key)
    names = sorted((rect for rect, text in p.texts if text.startswith("layer ")), key=QRectF.top)
    assert all(a.bottom() <= b.top() + 0.5 for a, b in zip(names, names[1:]))   # thin rows: fewer names
    drawn = {text for _, text in p.texts}
    assert layers == 1 or {"layer 1", f"layer {layers}"} <= drawn or f"layers 1-{layers}" in drawn
    canvas = QRectF(0, 0, *size)
    for rect in title + [loss] + cells + key:
        assert canvas.contains(rect), rect


# ----------------------------------------------------------------------------- diagnosis

def test_diagnose_orders_of_magnitude(scenarios):
    history = scenarios["rnn"][0]
    g = top_grad(history)
    badges = diagnose(history)
    assert all(isinstance(b, Badge) and b.tooltip and b.severity in ("error", "warning", "info") for b in badges)
    text = " | ".join(b.text for b in badges)
    if g[0] == 0:
        assert "vanished: no gradient reaches the first step" in text
    else:
        orders = np.log10(g[-1]) - np.log10(g[0])
        assert orders >= 1  # tanh RNN over 30 steps: the gradient vanishes (fades, under 4 orders)
        assert f"{'vanishing' if orders >= 4 else 'fading'}: {orders:.0f} orders of magnitude lost" in text


def test_diagnose_says_order_for_one_power_of_ten(scenarios):
    history = RunHistory(scenarios["rnn"][0].info)
    g = np.ones((1, 30), dtype=np.float32)
    g[0, 0] = 0.09  # 11x weaker at the first step: one order of magnitude
    history.extend([dataclasses.replace(scenarios["rnn"][0].latest, grad_h=g)])
    assert "fading: 1 order of magnitude lost" in [b.text for b in diagnose(history)]
    g[0, 0] = 11.0
    history.extend([dataclasses.replace(scenarios["rnn"][0].latest, grad_h=g.copy())])
    assert "growing: 1 order of magnitude gained" in [b.text for b in diagnose(history)]  # not yet exploding
    g[0, 0] = 2000.0
    history.extend([dataclasses.replace(scenarios["rnn"][0].latest, grad_h=g.copy())])
    badge, = [b for b in diagnose(history) if b.text.startswith("exploding")]
    assert badge.text == "exploding: 3 orders of magnitude gained" and badge.severity == "warning"


def test_diagnose_diverged_clipping_saturation_baseline(scenarios):
    diverged = scenarios["diverged"][0]
    assert diagnose(diverged)[0] == Badge(
        f"run diverged at step {diverged.diverged_at_step}", diagnose(diverged)[0].tooltip, "error")
    clipped = scenarios["clipped"][0]
    assert not any("clipping" in b.text for b in diagnose(clipped))  # the status bar's own badge says it
    lstm = scenarios["lstm3"][0]
    sat = lstm.latest.saturation
    texts = [b.text for b in diagnose(lstm)]
    if sat.max() >= 0.1:
        assert f"{sat.max() * 100:.0f}% of gates saturated (layer {int(np.argmax(sat)) + 1})" in texts
    # a run that has not learned: loss stuck at the baseline
    stuck = RunHistory(scenarios["rnn"][0].info)
    for s in list(scenarios["rnn"][0].trail) * 10:
        stuck.extend([s])
    stuck.loss.data[:] = stuck.info.baseline_loss
    assert "loss still at baseline" in [b.text for b in diagnose(stuck)]
    # one made worse than guessing (an exploding run: loss around 1e30) is not "at baseline"
    stuck.loss.data[:] = 1e30
    texts = [b.text for b in diagnose(stuck)]
    assert "loss far above baseline" in texts and "loss still at baseline" not in texts
    stuck.loss.data[:] = stuck.info.baseline_loss * 1.5      # between: worse than the baseline, not "at" it
    texts = [b.text for b in diagnose(stuck)]
    assert "loss above baseline" in texts and "loss still at baseline" not in texts
    stuck.loss.data[:] = stuck.info.baseline_loss * 1.05     # within 10%: at it
    assert "loss still at baseline" in [b.text for b in diagnose(stuck)]
    assert diagnose(RunHistory(scenarios["rnn"][0].info)) == []     # no data: nothing to say
    compare = diagnose(scenarios["compare3"])
    assert compare and all(b.text.startswith("run ") for b in compare)


def test_retheming_a_plot_of_small_values_keeps_its_tick_labels_true(qtbot):
    """pyqtgraph computes an SI scale even while disabling it; a re-themed axis must still read 1:1."""
    import pyqtgraph as pg
    from engine.config import Config
    from engine.trainer import Trainer
    from engine.worker import run_info
    from gui.history import RunHistory
    from gui.theme import DARK
    from gui.views.loss import LossView
    trainer = Trainer(Config(seq_len=20, hidden=8))
    history = RunHistory(run_info(0, trainer))
    history.extend([trainer.step() for _ in range(30)])
    view = LossView()
    qtbot.addWidget(view)
    view.resize(300, 380)
    view.show()
    view.set_runs([history.info])
    view.refresh([history])
    QApplication.processEvents()
    view.apply_theme(DARK)  # e.g. leaving lecture mode, with the metric axis spanning about 0..0.03
    QApplication.processEvents()
    plots = [item for item in view.findChildren(pg.GraphicsLayoutWidget)[0].ci.items if isinstance(item, pg.PlotItem)]
    assert len(plots) == 2
    for plot in plots:
        for name in ("left", "bottom"):
            assert plot.getAxis(name).autoSIPrefixScale == 1.0, (name, plot.getAxis(name).range)


def test_param_grads_title_and_status_bar_quote_the_same_clipping_count(qtbot, monkeypatch):
    """The view's title and the status bar's badge both count clipped steps since the run started:
    past what the ring buffers keep and across a rebuild. The title adds how many the plot still shows."""
    import re
    from gui.status import StatusBar
    capacity = 25
    monkeypatch.setattr("gui.history.CURVE_CAPACITY", capacity)   # small rings: the window drops old steps
    clipping = SMALL.replace(activation="linear", spectral_radius=1.5, clip="norm", clip_threshold=0.5)
    trainer = Trainer(clipping)
    history = RunHistory(run_info(0, trainer))
    before = [trainer.step() for _ in range(3)]
    trainer.update_config(clipping.replace(layers=2))              # a rebuild to another shape
    rebuilt_info = run_info(0, trainer)
    after = [trainer.step() for _ in range(3)]
    assert after[0].events and after[0].events[0].kind == "rebuilt"

    def sequence(templates, first_step, n):                         # clipped on two steps of every five
        return [dataclasses.replace(templates[k % len(templates)], step=first_step + k, clipped=k % 5 in (1, 3),
                                    events=templates[0].events if k == 0 else ()) for k in range(n)]
    first = sequence(before, 1, 2 * capacity + 7)
    second = sequence(after, len(first) + 1, capacity + 4)
    view = make(ParamGradsView, qtbot)
    status = StatusBar()
    qtbot.addWidget(status)
    view.set_runs([history.info])
    fed: list = []

    def feed(snapshots):
        history.extend(snapshots)
        fed.extend(snapshots)
        view.refresh([history])
        status.set_ratios([history])
        status.set_clipping([history])  # as the window does for every batch
        status.update_diagnosis([history])

    for chunk in (first[:10], first[10:40], first[40:]):             # batches of uneven size, as they arrive
        feed(chunk)
    history.reshape(rebuilt_info)
    view.set_runs([rebuilt_info])
    feed(second[:1])
    feed(second[1:])

    clipped_since_start = sum(s.clipped for s in fed)
    clipped_in_window = sum(s.clipped for s in fed[-capacity:])
    assert len(fed) > capacity and clipped_since_start > clipped_in_window > 0
    title = view.title_label.text()
    quoted = re.search(r"fired in (\d+) of (\d+) steps since start", title)
    assert quoted and (int(quoted[1]), int(quoted[2])) == (clipped_since_start, len(fed)), title
    assert f"; {clipped_in_window} of the last {capacity} in the plot" in title
    clipping_badges = [t for t in status.badge_texts() if "clipping" in t or "clipped" in t]
    assert clipping_badges == [f"clipping fired in {clipped_since_start} of {len(fed)} steps since start"]
    assert clipping_badges[0].lower() in title.lower()
    assert not status.clipping.isHidden()
    (_, _, top_layer, _), = [s for s in view.series if s[1] == 1]   # layer curves restart at the rebuild
    np.testing.assert_array_equal(top_layer.xData, [s.step for s in second][-capacity:])


def test_profile_and_influence_legends_sit_in_the_corner_the_curve_leaves_empty(qtbot, scenarios):
    """A vanishing gradient rises to the right (top-right corner full): legend bottom right. An
    exploding one falls to the right: the legend keeps clear of it, by the margin, wherever it then sits
    (the range keeps room above and below the data). pyqtgraph: negative y offset = bottom."""
    from gui.views._legends import LEGEND_MARGIN_PX, legend_cover
    vanishing = scenarios["rnn"]
    assert vanishing[0].latest.grad_h[-1][-1] > vanishing[0].latest.grad_h[-1][0]
    for cls in (ProfileView, AttributionView):
        view = make(cls, qtbot)
        show(view, vanishing)
        assert view.legend.opts["offset"][1] < 0
        exploding = dataclasses.replace(vanishing[0].latest, grad_h=vanishing[0].latest.grad_h[:, ::-1].copy(),
                                        grad_x=vanishing[0].latest.grad_x[::-1].copy())
        history = RunHistory(vanishing[0].info)
        history.extend([exploding])
        show(view, [history])
        items = [c for _, _, c in view.curves] if cls is ProfileView else view.curves
        box = view.plot.getViewBox()
        assert legend_cover(view.legend, box, tuple(view.legend.opts["offset"]), items, margin=LEGEND_MARGIN_PX) == 0
        exploding_end = items[-1].getData()[1][-1]  # the curve's right end, low: the legend is not over it
        assert exploding_end < items[-1].getData()[1][0]


@pytest.mark.parametrize("case, size", [("deep6", (390, 300)), ("deep6", (900, 600)), ("lstm3", (390, 300)),
                                        ("compare3", (390, 300)), ("rnn", (390, 300))])
def test_profile_and_influence_legends_take_the_corner_that_covers_the_fewest_points(case, size, qtbot, scenarios):
    """Stacked layers' profiles start at different heights, so a vanishing gradient can fill both right
    corners; the legend then goes where it covers the fewest points of the latest curves (seen: six
    layers in a small lecture view, the legend over three of them in the bottom right; here the LSTM's
    three layers in a small view fail the old rule of following the top layer's slope)."""
    from gui.views._legends import legend_cover
    runs = [train(SMALL.replace(layers=6, seq_len=50, hidden=32), 10)] if case == "deep6" else scenarios[case]
    for cls in (ProfileView, AttributionView):
        view = make(cls, qtbot)
        view.resize(*size)
        for _ in range(2):  # a frame to lay out, then one as the window refreshes it
            show(view, runs)
        box = view.plot.getViewBox()
        items = [c for _, _, c in view.curves] + [(c, 0.25) for _, c in view.theories] if cls is ProfileView \
            else view.curves
        ox, oy = (abs(v) for v in view.legend.opts["offset"])
        counts = {c: legend_cover(view.legend, box, c, items) for c in ((-ox, -oy), (-ox, oy), (ox, oy), (ox, -oy))}
        assert view.legend.isVisible()
        assert counts[tuple(view.legend.opts["offset"])] == min(counts.values()), counts


def test_a_legend_keeps_its_corner_when_it_is_rescaled(qtbot, scenarios):
    """Rescaling a legend (a smaller view, larger fonts) re-applies its offset: that must be the corner
    it was moved to, not the one it was made in (pyqtgraph's `legend.offset` is that first one)."""
    view = make(ProfileView, qtbot)
    show(view, scenarios["rnn"])      # vanishing: moved to the bottom right
    assert view.legend.opts["offset"][1] < 0
    scale = view.legend.scale()
    view.apply_theme(DARK.scaled(1.8))             # lecture fonts in a small view
    view.resize(300, 260)
    view.show()
    QApplication.processEvents()
    assert view.legend.scale() < scale             # it was rescaled ...
    assert view.legend.opts["offset"][1] < 0       # ... and stayed where it was
    assert view.legend.pos().y() > view.plot.getViewBox().height() / 2


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
def test_run_and_layer_boxes_take_the_theme_and_keep_their_arrows(theme, qtbot):
    """The boxes are coloured through their palette, with no style sheet of their own: styling a spin
    box's border makes Qt draw its buttons without arrows."""
    from PySide6.QtGui import QPalette
    from gui.views._selectors import Selectors
    selectors = Selectors()
    qtbot.addWidget(selectors)
    selectors.apply_theme(LIGHT if theme is DARK else DARK)  # built in one theme, switched to the other
    selectors.apply_theme(theme)
    # the spin box's text field too: it kept the first theme's background (a dark box in the light theme)
    for box in (selectors.run_combo, selectors.layer_spin, selectors.layer_spin.lineEdit()):
        assert box.palette().color(QPalette.ColorRole.Base).name() == theme.background
        assert box.palette().color(QPalette.ColorRole.Text).name() == theme.foreground
        assert "QSpinBox" not in selectors.styleSheet() and not box.styleSheet()


@pytest.mark.parametrize("theme", [DARK, LIGHT.scaled(1.6)], ids=["normal", "lecture"])
def test_a_legend_shrinks_no_further_than_its_text_reads_and_hides_below(theme, qtbot, scenarios):
    """A legend in a small view shrank to 55% of its size whatever its font: a normal-mode legend's 8 pt to 4.4 pt
    (6 px), unreadable over the curves it named. Its text now stays at READABLE_PT or more (in lecture mode, that
    times its scale: readable_pt); where it would not fit so, it hides (the status bar names each run in its colour)."""
    view = make(ActivationView, qtbot)
    view.apply_theme(theme)
    show(view, scenarios["lstm3"])
    points = float(view.legend.opts["labelTextSize"][:-2])
    shown = []
    for width in (900, 540, 500, 360, 320, 300, 280, 240):  # (lecture mode's went down to 9 pt at 500-540 px)
        view.resize(width, 330)
        view.grab()
        if view.legend.isVisible():
            assert points * view.legend.scale() >= READABLE_PT * theme.font_pt / DARK.font_pt - 1e-6, \
                (width, view.legend.scale())
        shown.append(view.legend.isVisible())
    assert shown[0] and (theme.font_pt > DARK.font_pt or not all(shown)), shown  # normal mode: hidden at 280 px


@pytest.mark.parametrize("case, size", [("rnn", (400, 420)), ("compare3", (400, 420)), ("gru_attention", (400, 420)),
                                        ("compare3", (280, 330)), ("lstm3", (300, 330))])
def test_activation_legend_covers_no_curve_and_no_bar(case, size, qtbot, scenarios):
    """The legend sits in the corner no activation, slope or histogram enters (inputs above 0, outputs
    below 0), and in compare mode names each run once, with one key to the line styles. In a small
    view with the gate plot below (LSTM), it shrinks to stay inside that corner."""
    view = make(ActivationView, qtbot)
    view.resize(*size)
    runs = scenarios[case]
    show(view, runs)
    view.grab()
    box = view.plot.getViewBox()
    pixels = view.legend.mapRectToParent(view.legend.boundingRect())  # in the box's pixels, y down
    corner_a, corner_b = box.mapToView(pixels.topLeft()), box.mapToView(pixels.bottomRight())
    legend = QRectF(corner_a.x(), corner_b.y(), corner_b.x() - corner_a.x(), corner_a.y() - corner_b.y())
    assert legend.width() > 0 and legend.height() > 0  # in data units now: top() the lowest value
    lowest = min(float(np.nanmin(item.getData()[1])) for _, act, slope, _ in view.series for item in (act, slope)
                 if item.getData()[0] is not None)
    assert view.legend.isVisible() and legend.bottom() <= 0, legend            # below the bars (which rise from 0)
    assert legend.left() >= 0 or legend.bottom() < min(lowest, 0.0), legend   # and right of x = 0 or under all curves
    for _, act, slope, hist in view.series:
        for item in (act, slope, hist):
            x, y = item.getData()
            if x is None or not len(x):
                continue
            if len(x) == len(y) + 1:  # step-mode histogram: bin edges; its bars rise from 0 to y
                x, y = (x[:-1] + x[1:]) / 2, y
            inside = (x > legend.left()) & (x < legend.right()) & (y > legend.top()) & (y < legend.bottom())
            assert not inside.any(), (item, x[inside][:3], y[inside][:3], legend)
            if item is hist:  # and no bar reaches into it from below
                under = (x > legend.left()) & (x < legend.right()) & (y > 0)
                assert not under.any() or legend.bottom() <= 0
    names = [label.text for _, label in view.legend.items]
    if len(runs) > 1:  # the keys to the line styles only where there is room for them
        keys = ["dashed: slope", "bars: inputs now"] if size[1] > 400 else []
        assert names == [f"run {k + 1}: " + n.split(": ", 1)[1] for k, n in enumerate(names[:len(runs)])] + keys


def test_a_legend_keeps_its_size_when_the_y_axis_labels_widen(qtbot, scenarios):
    """The legend's size follows the plot's, not the data box's: the box narrows as the y axis's tick
    labels widen, and the legend room the y range keeps then fed back into the labels, a repaint loop
    that froze small lecture windows. Here the axis is widened by hand: the legend must not rescale."""
    view = make(LossView, qtbot)
    view.resize(250, 600)  # narrow: the legend is shrunk to fit its width
    show(view, scenarios["compare3"])
    view.grab()
    scale = view.legend.scale()
    assert scale < 1.0
    view.loss_plot.getAxis("left").setWidth(view.loss_plot.getAxis("left").width() + 40)
    for _ in range(3):
        QApplication.processEvents()
    view.grab()
    assert view.legend.scale() == scale


def long_run(scenarios, steps: int) -> RunHistory:
    """`steps` steps of real snapshots (the rnn scenario's last one, its loss and weight gradient
    falling like a run that learns), without training that long."""
    source = scenarios["rnn"][0]
    history = RunHistory(source.info)
    s = source.latest
    history.extend([dataclasses.replace(s, step=k, loss=s.loss * (1 + 9 * np.exp(-k / 300)),
                                        grad_norm=s.grad_norm * (1 + np.exp(-k / 200)),
                                        grad_norm_layer=s.grad_norm_layer * (1 + np.exp(-k / 200)))
                    for k in range(steps)])
    return history


@pytest.mark.parametrize("view_class", [LossView, ParamGradsView])
def test_a_narrow_plot_of_a_long_run_settles_on_one_range(view_class, qtbot, scenarios):
    """pyqtgraph draws a long curve downsampled, every ds-th point with ds set by the steps per pixel
    of the current range, and bounded the range by the points drawn: at some widths the range then
    flipped between two values at every paint, and the window repainted for ever (a timed session on
    an 800x800 screen never closed). Widths are swept pixel by pixel across a change of ds."""
    history = long_run(scenarios, 1500)
    steps = history.steps.view()
    view = make(view_class, qtbot)
    show(view, [history])
    box = (view.loss_plot if view_class is LossView else view.plot).getViewBox()
    curve = view.loss_curves[0] if view_class is LossView else view.series[0][2]
    shown = history.loss.view() if view_class is LossView else history.grad_norm.view()
    flipped, steps_per_drawn_point = [], []
    for width in range(150, 231):
        view.resize(width, 250)
        QApplication.processEvents()
        view.grab()
        first = box.viewRange()
        view.grab()
        if box.viewRange() != first:
            flipped.append(width)
        # the range is that of all the data, drawn every ds-th point or not
        assert curve.dataBounds(0) == (steps[0], steps[-1])
        assert np.allclose(curve.dataBounds(1), np.log10([shown.min(), shown.max()]))
        (x0, x1), _ = box.viewRange()
        assert x0 <= steps[0] and x1 >= steps[-1]
        steps_per_drawn_point.append((x1 - x0) / (box.width() * curve.opts["autoDownsampleFactor"]))
    assert flipped == []
    assert int(min(steps_per_drawn_point)) < int(max(steps_per_drawn_point))  # ds changed within the sweep


@pytest.mark.parametrize("view_class", ALL_VIEWS)
def test_a_settled_refresh_is_painted_once(view_class, qtbot, scenarios, monkeypatch):
    """A growing run moves the plots' ranges at every refresh; after `settle()` (the display scheduler calls it)
    each plot of the view is painted at most once until the window is idle again. Without it pyqtgraph fitted
    the range at the start of the paint and painted the whole plot a second time (the loss, the weight gradients
    and the waterfall: twice their paint cost at every refresh)."""
    paints = []
    paint_event = pg.GraphicsView.paintEvent
    def counted(area, event):
        paints.append(area)
        return paint_event(area, event)
    monkeypatch.setattr(pg.GraphicsView, "paintEvent", counted)
    source = scenarios["rnn"][0]
    s = source.latest
    history = RunHistory(source.info)
    view = make(view_class, qtbot)
    view.resize(390, 330)
    view.set_runs([history.info])
    view.show()
    qtbot.waitExposed(view)
    step, counts = 0, []
    for round_ in range(8):
        history.extend([dataclasses.replace(s, step=k, loss=s.loss * (1 + 9 * np.exp(-k / 30)),
                                            grad_norm=s.grad_norm * (1 + np.exp(-k / 20)))
                        for k in range(step, step + 7 + 5 * round_)])
        step += 7 + 5 * round_
        for _ in range(10):  # what the last round left to paint
            QApplication.processEvents()
        paints.clear()
        view.refresh([history])
        view.settle()
        for _ in range(10):
            QApplication.processEvents()
        areas = view.findChildren(pg.GraphicsView)
        if round_:  # (the first data builds items and lays them out: a few paints)
            counts.append([paints.count(a) for a in areas])
    # once, in most rounds: a tick label grown wider (steps past 100) re-lays the plot out, a paint more
    assert all(sorted(per_area)[len(per_area) // 2] <= 1 for per_area in zip(*counts)), counts


@pytest.mark.parametrize("view_class", [LossView, ParamGradsView])
def test_a_long_run_draws_about_two_points_a_pixel_and_keeps_every_peak(view_class, qtbot, scenarios):
    """A curve's paint cost follows the plot's width, not the run's length (pyqtgraph's default of five
    bins a pixel drew 4,000 points a curve at 12,000 steps in a 390 px view: the weight gradients' paint
    grew from 1.3 to 8.9 ms), and the drawn curve still reaches every pixel column's highest and lowest
    value: the noisy loss of a long run keeps its spikes."""
    source = scenarios["rnn"][0]
    history = RunHistory(source.info)
    s = source.latest
    noise = np.exp(np.random.default_rng(0).normal(0.0, 1.0, 12000))
    history.extend([dataclasses.replace(s, step=k, loss=s.loss * noise[k], grad_norm=s.grad_norm * noise[k],
                                        grad_norm_layer=s.grad_norm_layer * noise[k]) for k in range(12000)])
    view = make(view_class, qtbot)
    view.resize(390, 330)
    show(view, [history])
    view.grab()
    box = (view.loss_plot if view_class is LossView else view.plot).getViewBox()
    curve = view.loss_curves[0] if view_class is LossView else view.series[0][2]
    shown = history.loss.view() if view_class is LossView else history.grad_norm.view()
    x, y = curve.getData()
    assert len(x) <= 4 * box.width()  # peak mode: a bin's min and max, one to two bins a pixel
    assert len(x) >= box.width()
    assert np.isclose(10 ** y.max(), shown.max()) and np.isclose(10 ** y.min(), shown.min())


def test_an_axis_keeps_its_label_room_when_no_label_fits(qtbot, scenarios):
    """When no alternative fits, the label goes blank but keeps its room: an axis whose label came and
    went changed the other axes' lengths, and their labels its own, round and round (a LossView of
    90x70 never left processEvents). The bottom axis keeps its height whatever its length, which is
    what breaks that circle (a left axis's width may follow its tick labels, so its own length)."""
    view = make(LossView, qtbot)
    view.show()
    show(view, scenarios["rnn"])
    left, bottom = view.metric_plot.getAxis("left"), view.metric_plot.getAxis("bottom")

    def laid_out(size):
        view.resize(*size)
        for _ in range(3):
            QApplication.processEvents()
        view.grab()
        return (left.labelText.strip(), bottom.labelText.strip(), left.label.isVisible(), bottom.label.isVisible(),
                bottom.height())

    *shown, height = laid_out((900, 600))
    assert shown == ["accuracy", "training step", True, True]
    assert laid_out((70, 600))[1:] == ("", True, True, height)     # too narrow for "step": blank, with its room
    # too short for both plots: the task score is left out, and the loss plot's axes are the ones to read
    left, bottom = view.loss_plot.getAxis("left"), view.loss_plot.getAxis("bottom")
    assert laid_out((900, 95))[0:3] == ("", "training step", True) and not view.metric_plot.isVisible()


class EventCounter:
    """Counts the layout and paint events a widget tree gets. A layout that never settles keeps one
    processEvents call going for ever: past `limit` events the counter resizes the view to a size
    where it settles, so such a test fails instead of hanging."""

    def __init__(self, view, limit=20000):
        counter = self
        self.count, self.runaway, self.view, self.limit = 0, False, view, limit
        kinds = {QEvent.Paint, QEvent.LayoutRequest, QEvent.UpdateRequest, QEvent.GraphicsSceneResize}

        class Filter(QObject):
            def eventFilter(self, obj, event):
                if event.type() in kinds:
                    counter.count += 1
                    if counter.count > counter.limit and not counter.runaway:
                        counter.runaway = True
                        counter.view.resize(900, 600)
                return False
        self.filter = Filter()

    def __enter__(self):
        QApplication.instance().installEventFilter(self.filter)
        return self

    def __exit__(self, *exc):
        QApplication.instance().removeEventFilter(self.filter)


@pytest.mark.parametrize("view_class", ALL_VIEWS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("scale", [1.0, 1.6], ids=["normal", "lecture"])
def test_a_small_view_settles(view_class, scale, qtbot, scenarios):
    """However small the view (docks squeeze them), a few rounds of layout and painting end in a
    state that needs neither: a loop here starves every timer in the window (seen: the quit timer of
    a session on an 800x800 screen never fired)."""
    view = make(view_class, qtbot)
    view.apply_theme(DARK.scaled(scale))
    view.show()
    unsettled = []
    for runs in ("rnn", "compare3"):
        for size in [(60, 50), (90, 70), (140, 110), (200, 140), (60, 260), (330, 200)]:
            view.resize(*size)
            show(view, scenarios[runs])
            with EventCounter(view) as counter:
                for _ in range(10):  # a chain of layouts, each posting the next, may take a few rounds
                    QApplication.processEvents()
                assert not counter.runaway, (runs, size)
                busy = 0
                for _ in range(10):
                    counter.count = 0
                    QApplication.processEvents()
                    busy += counter.count > 0
            if busy:
                unsettled.append((runs, size, busy))
    assert unsettled == []


@pytest.mark.parametrize("view_class", [LossView, ParamGradsView])
def test_a_run_of_one_step_is_drawn_as_a_dot(view_class, qtbot, scenarios):
    """A line needs two points: a one-step lesson, or a run that diverged at its first step, drew
    nothing in the loss and weight-gradient plots. One point is a dot in the line's colour, which
    follows the theme; from two points on it is a line again."""
    source = scenarios["rnn"][0]
    one = RunHistory(source.info)
    one.extend([source.trail[0]])
    view = make(view_class, qtbot)
    show(view, [one])
    curve = view.loss_curves[0] if view_class is LossView else view.series[0][2]
    x, y = curve.scatter.getData()
    assert curve.scatter.isVisible() and len(x) == 1 and x[0] == source.trail[0].step
    dark = curve.opts["symbolBrush"].color()
    assert dark == curve.opts["pen"].color()
    view.apply_theme(LIGHT)
    assert curve.opts["symbolBrush"].color() == curve.opts["pen"].color() != dark
    one.extend([source.trail[1]])
    view.refresh([one])
    assert curve.opts["symbol"] is None and len(curve.getData()[0]) == 2


@pytest.mark.parametrize("size", [(160, 420), (200, 260), (260, 200), (420, 150)])
@pytest.mark.parametrize("theme", [DARK, DARK.scaled(1.6)], ids=["normal", "lecture"])
def test_tick_labels_along_a_short_axis_keep_apart(size, theme, qtbot, scenarios):
    """pyqtgraph spaces ticks by the axis length alone and labels every major tick, so a narrow plot
    over 600 steps read "0 200400600", and a short one stacked 0, 0.2, ... 1 into a column of touching
    lines: along every axis of every view, each tick label now clears the next one."""
    import pyqtgraph as pg
    from PySide6.QtGui import QImage, QPainter
    histories = [long_run(scenarios, 600)]
    labelled, several = 0, 0  # horizontal axes with a label, with two or more
    for view_class in ALL_VIEWS:
        view = make(view_class, qtbot)
        view.apply_theme(theme)
        view.show()
        show(view, histories)
        view.resize(*size)
        for _ in range(3):
            QApplication.processEvents()
        image = QImage(8, 8, QImage.Format_ARGB32)
        axes = [item for area in view.findChildren(pg.GraphicsView) for item in area.scene().items()
                if isinstance(item, pg.AxisItem) and item.isVisible()]
        for axis in axes:
            painter = QPainter(image)
            try:
                specs = axis.generateDrawSpecs(painter)
            finally:
                painter.end()
            if not specs:
                continue
            horizontal = axis.orientation in ("top", "bottom")
            if axis.label.isVisible() and axis.labelText.strip():  # the axis label, as drawn, fits the axis
                length = axis.size().width() if horizontal else axis.size().height()
                assert axis.label.boundingRect().width() <= length, (view_class.__name__, axis.labelText, length)
            texts = sorted((rect for rect, _, text in specs[2] if text), key=QRectF.left if horizontal else QRectF.top)
            labelled += horizontal and len(texts) >= 1
            several += horizontal and len(texts) >= 2
            for a, b in zip(texts, texts[1:]):
                assert (a.right() <= b.left()) if horizontal else (a.bottom() <= b.top()), \
                    (view_class.__name__, axis.orientation, [t for _, _, t in specs[2]])
        view.close()
    assert labelled >= 6  # even in lecture fonts at 160 pixels: a label on most axes
    assert theme is not DARK or size[0] < 200 or several >= 7  # and in normal fonts, a scale on each


def test_log_tick_labels_use_one_notation_and_read_back_to_their_value():
    """0.01 to 900 as plain numbers, beyond as powers of ten: pyqtgraph mixed "0.0001" with "10⁻⁵"."""
    from gui.views._axes import log_tick_text
    plain = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
    for exponent in range(-30, 31):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            text = log_tick_text(np.log10(value))
            if 0.01 <= value < 1000:
                assert float(text) == pytest.approx(value), text  # a plain number
            else:
                head, _, power = text.partition("10")
                assert power and head in ("", f"{mantissa}·"), text
                assert float(head.rstrip("·") or 1) * 10.0 ** int(power.translate(plain)) == pytest.approx(value)


@pytest.mark.parametrize("span", [(0.95, 1.0), (0.312, 0.318), (0.0, 600.0), (-6.0, 6.0), (0.001, 0.002), (3.0, 3000.0)])
@pytest.mark.parametrize("length", [40, 60, 120, 400])
def test_every_tick_label_reads_back_to_its_tick(span, length, qtbot):
    """Widening the spacing, or keeping a single tick, must not round a label away from its tick: a
    lone tick at 0.98 on a 0.95-1.0 axis read "1.0" (written to the precision of the axis-long spacing)."""
    from gui.views._common import LabAxis
    from gui.theme import DARK
    from gui.views._common import font
    for orientation in ("bottom", "left"):
        axis = LabAxis(orientation=orientation)
        axis.setTickFont(font(DARK, -1))
        labelled = 0
        for spacing, values in axis.tickValues(*span, length):
            for value, text in zip(values, axis.tickStrings(values, 1.0, spacing)):
                assert float(text) == pytest.approx(value, rel=1e-9, abs=1e-12), (orientation, span, length, text, value)
                labelled += 1
        assert labelled >= 1 or length < 120  # (in 40 pixels "0.315" may not fit at all)


def test_a_blown_up_loss_runs_off_the_top_instead_of_flattening_the_others(qtbot, scenarios):
    """In the learning-rate lesson run 3's loss reached 10^60, and the automatic range squashed runs 1
    and 2 onto one flat line at the bottom: the range now stops at 100x the baseline loss."""
    view = make(LossView, qtbot)
    normal = scenarios["rnn"][0]
    baseline = normal.info.baseline_loss
    blowing_up = RunHistory(dataclasses.replace(normal.info, index=1))  # from the baseline to 10^60
    blowing_up.extend([dataclasses.replace(s, loss=baseline * 10.0 ** (5 * k)) for k, s in enumerate(normal.trail)])
    histories = [normal, blowing_up]
    show(view, histories)
    view.grab()
    low, high = view.loss_plot.getViewBox().viewRange()[1]
    assert high <= np.log10(baseline * 100) + 1.5  # (and room for the legend above the ceiling)
    top = np.log10(np.nanmax(normal.loss.view()))
    assert (top - low) / (high - low) > 0.25  # the normal run keeps a good part of the height
    diverged_curve = view.loss_curves[1]
    assert np.nanmax(diverged_curve.yData) > 10 ** high  # still drawn, past the top


def test_profiles_of_different_lengths_are_aligned_at_the_end_in_both_plots(qtbot):
    """The slow-convergence lesson compares 5, 10 and 50 timesteps: the upper plot drew each from 0 on
    the first run's 5-step axis (the 50-step run showed its earliest, faintest values) while the ratio
    plot below aligned them at the end. Both now put every run's last timestep at the longest's."""
    view = make(ProfileView, qtbot)
    short, long = train(SMALL.replace(seq_len=5), 2, 0), train(SMALL.replace(seq_len=20), 2, 1)
    show(view, [short, long])
    view.grab()
    curves = {run: curve for run, _, curve in view.curves}
    np.testing.assert_array_equal(curves[0].xData, np.arange(15, 20))   # the 5 steps at the end
    np.testing.assert_array_equal(curves[1].xData, np.arange(20))
    np.testing.assert_array_equal(curves[1].yData, long.latest.grad_h[-1])
    (_, ratio), = view.ratios
    np.testing.assert_array_equal(ratio.xData, np.arange(15, 20))
    np.testing.assert_allclose(ratio.yData, np.log10(long.latest.grad_h[-1][-5:].astype(np.float64))
                               - np.log10(short.latest.grad_h[-1].astype(np.float64)))
    low, high = view.plot.getViewBox().viewRange()[0]
    assert low < 0 and high > 19  # the whole longest sequence


def test_step_axes_tick_only_whole_steps(qtbot, scenarios):
    """After one training step the step axes ran 0.5 to 1.5 and read "0.6 0.8 1.0 1.2 1.4"."""
    import pyqtgraph as pg
    one = RunHistory(scenarios["rnn"][0].info)
    one.extend([scenarios["rnn"][0].trail[0]])
    checked = 0
    for view_class in (LossView, ParamGradsView, WaterfallView):
        view = make(view_class, qtbot)
        show(view, [one])
        view.grab()
        axes = [item for area in view.findChildren(pg.GraphicsView) for item in area.scene().items()
                if isinstance(item, pg.AxisItem) and item.isVisible() and "step" in item.labelText]
        if view_class is LossView:  # the loss plot's step axis has no label: the score plot's below says it
            axes.append(view.loss_plot.getAxis("bottom"))
        for axis in axes:
            values = [v for _, level in axis.tickValues(*axis.range, 300) for v in level]
            assert values and all(float(v).is_integer() for v in values), (view_class.__name__, values)
            checked += 1
    assert checked >= 4


def test_the_loss_views_small_score_plot_names_its_axis_at_the_windows_size(make_window, qtbot):
    from gui.views import ALL_VIEWS
    from gui.views.loss import metric_labels
    window = make_window(view_classes=ALL_VIEWS)
    window.resize(1600, 1000)
    window.session.step_once()
    qtbot.waitUntil(lambda: len(window.session.histories[0].steps) == 1, timeout=30_000)
    view = window.views["loss"]
    axis = view.metric_plot.getAxis("left")  # (named "score" until the view is given the run set, at a draw)
    qtbot.waitUntil(lambda: axis.label.isVisible() and axis.labelText in metric_labels("accuracy"), timeout=30_000)
    assert metric_labels("accuracy (|error| < 0.04)".split(" (")[0]) == ("accuracy", "acc.")
    assert metric_labels("symbol accuracy") == ("symbol accuracy", "accuracy", "acc.")


@pytest.mark.parametrize("view_class", [LayersView, WaterfallView])
def test_a_strip_with_no_number_to_show_says_why(view_class, qtbot, scenarios):
    """A run that diverged has a NaN gradient, which the images leave transparent: fix-clipping's 'no clipping'
    strip in the Layers view was blank, with nothing to say so. The strip says it; a strip with a picture does not."""
    view = make(view_class, qtbot)
    diverged, fine = scenarios["diverged"][0], scenarios["rnn"][0]
    assert diverged.diverged_at_step is not None
    blank = view_class is LayersView or not np.isfinite(diverged.waterfall.view()).any()
    show(view, [fine, diverged])
    notes = [note.isVisible() and note.textItem.toPlainText() for note in view.strips.notes[:2]]
    assert notes == [False, blank and f"no gradient: diverged at step {diverged.diverged_at_step}"], notes
    view.resize(260, 300)  # a narrow strip: shorter words, never wider than it
    view.grab()
    note = view.strips.notes[1]
    if blank:
        assert note.textItem.toPlainText() in note.texts[1:]
        assert note.textItem.boundingRect().width() <= note.parentItem().width()
    show(view, [fine])
    assert not any(note.isVisible() for note in view.strips.notes)


def test_a_run_box_shows_its_runs_whole_name_where_the_row_has_room(qtbot):
    """The run box kept its ten characters whatever room its row had: 'about right (0.05)' read 'about right (0.05'
    (learning-rate, every size). It takes the row's spare room up to its longest name."""
    from engine.lessons import LESSONS
    from engine.worker import RunInfo
    infos = [RunInfo(k, c, "task", "score", 1.0, 1, (), "cpu") for k, c in enumerate(LESSONS["learning-rate"].runs())]
    view = make(UnrolledView, qtbot)
    view.apply_theme(DARK.scaled(1.6))  # lecture mode's type
    view.set_runs(infos)
    view.resize(450, 400)
    view.show()
    combo = view.selectors.run_combo
    arrow = combo.style().pixelMetric(pg.QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)  # the box's arrow
    for k in range(combo.count()):
        combo.setCurrentIndex(k)
        qtbot.waitUntil(lambda: combo.width() >= combo.fontMetrics().horizontalAdvance(combo.currentText()) + arrow + 8)
    view.resize(900, 400)
    qtbot.waitUntil(lambda: view.selectors.width() > 800)
    assert combo.width() < 400  # no wider than the names need


def test_the_unrolled_networks_numbers_are_written_in_the_ink_that_reads_best_on_their_cell(qtbot):
    """fix-clipping's t=0 cell said "10¹" in white on bright yellow: the ink followed HSL lightness, 0.5 for viridis's
    yellow. It now has the higher WCAG contrast of black and white on every colour of the scale, at least 4.5:1."""
    from gui.theme import INK_ON_DARK, INK_ON_LIGHT, ink_on
    view = make(UnrolledView, qtbot)

    def luminance(color):  # WCAG 2, written out here
        channels = []
        for c in (color.red() / 255, color.green() / 255, color.blue() / 255):
            channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    def contrast(a, b):
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)
    black, white = QColor(INK_ON_LIGHT), QColor(INK_ON_DARK)
    for level in np.linspace(0, 1, 256):
        fill = view._color(level)
        ink = ink_on(fill)
        other = white if ink == black else black
        assert contrast(ink, fill) >= contrast(other, fill) and contrast(ink, fill) >= 4.5, (fill.name(), ink.name())
    assert ink_on(view._color(1.0)) == black  # the top of the scale, yellow
