"""Every lesson reads from the back row: its runs carry the lesson's names, the legends of the views it
shows cover none of the curves they name, a legend's size follows lecture mode both ways, and the
lesson card's text takes the theme.

The lessons' runs are trained for real (one step: the pause step of the lessons checked here) with
a small batch; docs/render_lessons.py renders every lesson at its own pause step for the eye.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from engine.lessons import LESSONS
from engine.trainer import Trainer
from engine.worker import run_info
from gui.history import RunHistory
from gui.theme import DARK, LIGHT
from gui.views._common import run_labels
from gui.views._legends import legend_cover
from gui.views.activation import ActivationView
from gui.views.attribution import AttributionView
from gui.views.loss import LossView
from gui.views.param_grads import ParamGradsView
from gui.views.profile import ProfileView

LEGEND_VIEWS = (ProfileView, AttributionView, LossView, ParamGradsView, ActivationView)
ONE_STEP_LESSONS = [name for name, lesson in LESSONS.items() if lesson.steps == 1]


def infos_of(configs):
    return [SimpleNamespace(index=k, config=c) for k, c in enumerate(configs)]


# ----------------------------------------------------------------------------- run names

@pytest.mark.parametrize("name", [n for n, lesson in LESSONS.items() if lesson.compare])
def test_a_compare_lesson_names_its_runs_in_its_own_words(name):
    lesson = LESSONS[name]
    assert run_labels(infos_of(lesson.runs())) == list(lesson.run_labels)
    # a setting the lesson leaves alone, on every run (--set seed=3, a live change of lr): still its runs
    assert run_labels(infos_of(lesson.runs(["seed=3"]))) == list(lesson.run_labels)


def test_runs_edited_away_from_the_lesson_lose_its_names():
    """Run 2 of `multiply` given another factor is no longer "factor 1.0": the settings name it again."""
    configs = LESSONS["multiply"].runs()
    configs[1] = configs[1].replace(spectral_radius=1.3)
    labels = run_labels(infos_of(configs))
    assert labels[1] == "run 2: spectral_radius 1.3" and "factor" not in " ".join(labels)
    configs = [c.replace(spectral_radius=0.5) for c in LESSONS["multiply"].runs()]  # run 1 is not the lesson's
    assert run_labels(infos_of(configs[:1] + LESSONS["multiply"].runs()[1:]))[0] == "run 1: spectral_radius 0.5"


# ----------------------------------------------------------------------------- legends

def lesson_histories(name: str, steps: int | None = None) -> list[RunHistory]:
    """The lesson's runs trained to its pause (or `steps` steps), as the window holds them."""
    histories = []
    for index, config in enumerate(LESSONS[name].runs(["batch=4", "device=cpu"])):
        trainer = Trainer(config)
        history = RunHistory(run_info(index, trainer))
        for _ in range(LESSONS[name].steps if steps is None else steps):
            history.extend([trainer.step()])
        histories.append(history)
    return histories


@pytest.fixture(scope="module")
def trained():
    return {name: lesson_histories(name) for name in ONE_STEP_LESSONS}


def shown_legends(view):
    for legend in (getattr(view, "legend", None), getattr(view, "attention_legend", None)):
        if legend is not None and legend.isVisible() and legend.items:
            yield legend


def named_curves(legend):
    """The plot items the legend names that draw data: every curve and bar, not the limit lines
    (theory lines that leave the data's range on purpose and never set it)."""
    items = []
    for sample, label in legend.items:
        item = sample.item
        text = label.text
        if "limit" in text or not hasattr(item, "getData"):
            continue
        items.append(item)
    return items


def settle(qtbot, view, histories):
    for _ in range(3):  # the legend fits, moves, and the range makes room: as the display timer would
        view.refresh(histories)
        QApplication.processEvents()  # the layout and paint the timer's next tick would see


@pytest.mark.parametrize("size, theme", [((420, 300), DARK), ((620, 330), DARK.scaled(1.2)),
                                         ((860, 600), LIGHT.scaled(1.8))], ids=["normal", "lecture-720", "lecture-1080"])
@pytest.mark.parametrize("name", ONE_STEP_LESSONS)
def test_legends_cover_no_curve_they_name_at_the_lessons_pause_step(name, size, theme, qtbot, trained):
    histories = trained[name]
    for view_class in LEGEND_VIEWS:
        view = view_class()
        qtbot.addWidget(view)
        view.apply_theme(theme)
        view.set_runs([h.info for h in histories])
        view.resize(*size)
        view.show()
        settle(qtbot, view, histories)
        for legend in shown_legends(view):
            box = legend.parentItem()
            covered = legend_cover(legend, box, tuple(legend.opts["offset"]), named_curves(legend))
            assert covered == 0, f"{name}: the {view.view_id} legend covers {covered} points of its curves"


@pytest.mark.parametrize("view_class", LEGEND_VIEWS)
def test_a_legend_comes_back_to_its_size_after_lecture_mode(view_class, qtbot, trained):
    """Leaving lecture mode kept lecture-sized legends (huge boxes over the profile and the loss);
    a recording made afterwards kept them too."""
    histories = trained["fix-irnn"]  # four runs: the tallest legends
    view = view_class()
    qtbot.addWidget(view)
    view.apply_theme(DARK)
    view.set_runs([h.info for h in histories])
    view.resize(600, 420)
    view.show()
    settle(qtbot, view, histories)

    def sizes():
        return [(round(lg.boundingRect().width()), round(lg.boundingRect().height()), round(lg.scale(), 2),
                 lg.columnCount) for lg in shown_legends(view)]
    before = sizes()
    assert before, "no legend shown to compare"
    view.apply_theme(DARK.scaled(1.8))   # lecture mode: larger fonts in a larger view
    view.resize(900, 700)
    settle(qtbot, view, histories)
    lecture = sizes()
    assert [s[:2] for s in lecture] != [s[:2] for s in before]  # the lecture fonts did reach the legend
    view.apply_theme(DARK)
    view.resize(600, 420)
    settle(qtbot, view, histories)
    assert sizes() == before


# ----------------------------------------------------------------------------- the lesson card

def test_the_lesson_card_text_takes_the_theme(make_window, qtbot):
    """On the light theme the card's title and narration kept the dark theme's light grey (232 on 242)."""
    window = make_window()
    window.load_lesson("exploding")
    panel = window.lesson_panel
    for theme in ("light", "dark", "light"):
        window.set_theme(theme)
        QApplication.processEvents()
        image = panel.title.grab().toImage()
        background = image.pixelColor(0, 0).lightness()
        ink = min(image.pixelColor(x, y).lightness() for x in range(0, image.width(), 2)
                  for y in range(image.height())) if theme == "light" else \
            max(image.pixelColor(x, y).lightness() for x in range(0, image.width(), 2) for y in range(image.height()))
        assert abs(ink - background) > 150, (theme, ink, background)


def test_titles_and_the_ratio_plot_call_run_1_by_the_lessons_name(qtbot, trained):
    """With the legends in the lesson's words, "Run 1: shrinks ..." named a run no legend names."""
    histories = lesson_histories("fix-attention", steps=1)  # (its pause is 500 steps on: one names them the same)
    profile, influence = ProfileView(), AttributionView()
    for view in (profile, influence):
        qtbot.addWidget(view)
        view.set_runs([h.info for h in histories])
        view.refresh(histories)
        assert view.title_label.text().startswith("with attention: "), view.title_label.text()
    assert profile.same_line.label.format == "same as with attention"


@pytest.mark.parametrize("view_class", [LossView, ParamGradsView])
def test_a_one_step_lesson_shows_its_step_not_negative_ones(view_class, qtbot, trained):
    """At a one-step lesson's pause, after a 300-step lesson, the training-step axes ran from -150 to 150
    (pyqtgraph centres a single point in the width the range had)."""
    histories = trained["fix-init"]
    view = view_class()
    qtbot.addWidget(view)
    view.set_runs([h.info for h in histories])
    view.resize(600, 420)
    view.show()
    plots = [view.loss_plot, view.metric_plot] if view_class is LossView else [view.plot]
    for plot in plots:  # the range the lesson before left
        plot.getViewBox().setXRange(0, 300, padding=0)
        plot.getViewBox().enableAutoRange()
    settle(qtbot, view, histories)
    for plot in plots:
        lo, hi = plot.getViewBox().viewRange()[0]
        assert -0.5 <= lo < 1 < hi <= 2.5, (lo, hi)


def test_the_activation_view_names_a_lessons_runs_in_its_words(qtbot, trained):
    histories = trained["fix-irnn"]
    view = ActivationView()
    qtbot.addWidget(view)
    view.set_runs([h.info for h in histories])
    view.refresh(histories)
    entries = [label.text for _, label in view.legend.items][:4]
    assert entries == ["ReLU", "Leaky ReLU", "PReLU", "tanh, default weights (before)"], entries
    assert view.title_label.text().startswith("Saturated: ReLU "), view.title_label.text()
