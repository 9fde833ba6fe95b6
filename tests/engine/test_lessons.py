"""Every lesson is a valid config, is listed by `main.py lessons`, and shows its claim in the
engine's own numbers.

Each lesson carries its claim as code (`Lesson.checks`, engine/claims.py); one test trains every run
of every lesson to its pause and runs that check at every step up to there, for every run the claim
names: a claim about the loss is one about an average over the last few steps, checked at each step
it is claimed for, never on one median. What a check cannot say (an independent reference, a nudged
input) keeps a test of its own. Margins were checked on seed 0 (fix-lstm, fix-gru and fix-attention
on seeds 0, 1 and 2); the tests run at each lesson's own seed (set LESSON_SEED=1 to re-check the
margins on another seed).
"""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.config import Config, from_dict
from engine.lessons import LESSONS, VIEWS, Lesson
from engine.trainer import Trainer
from engine.worker import run_info

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = os.environ.get("LESSON_SEED")


def runs(name: str) -> list[Config]:
    configs = LESSONS[name].runs()
    return [c.replace(seed=int(SEED)) for c in configs] if SEED is not None else configs


def train(config: Config, steps: int, index: int = 0, eigenvalues: bool = False):
    """`steps` snapshots (fewer where the run diverges) and the run's info. `eigenvalues`: the tanh RNN's
    taken too, as the window and `train` take them for a lesson that reads them."""
    trainer = Trainer(config)
    trainer.take_eigenvalues = eigenvalues
    snaps = []
    for _ in range(steps):
        snaps.append(trainer.step())
        if snaps[-1].diverged:
            break
    return snaps, run_info(index, trainer)


# ----------------------------------------------------------------------------- the catalogue

def test_names_are_unique_short_kebab_case():
    names = [lesson.name for lesson in LESSONS.values()]
    assert len(names) == len(set(names)) and list(LESSONS) == names
    for name in names:
        assert name == name.lower() and " " not in name and "_" not in name and len(name) <= 20, name


def test_at_least_the_required_lessons():
    assert len(LESSONS) >= 18
    remedies = {l.config().cell for l in LESSONS.values()} | {l.config().init for l in LESSONS.values()}
    assert {"lstm", "gru", "xavier_uniform", "orthogonal", "identity"} <= remedies


@pytest.mark.parametrize("lesson", LESSONS.values(), ids=list(LESSONS))
def test_lesson_is_complete_and_valid(lesson: Lesson):
    assert lesson.title and lesson.claim and lesson.next_change
    assert lesson.look_at in VIEWS
    assert 2 <= lesson.narration.count(". ") + 1 <= 4, "narration: 2 to 4 sentences"
    assert 1 <= lesson.steps <= 1000
    default = Config()
    for key, value in lesson.settings.items():
        assert getattr(default, key) != value, f"{key} is listed but equals the default"
    # valid through the same path a config file takes, and each compare run is valid too
    assert from_dict(lesson.settings) == lesson.config()
    configs = lesson.runs()
    assert len(configs) == 1 + len(lesson.compare)
    for changes, config in zip(lesson.compare, configs[1:]):
        assert changes and config != configs[0]
    if lesson.compare:
        assert len(lesson.run_labels) == len(configs)


def test_lessons_command_prints_one_line_per_lesson_name_then_title():
    result = subprocess.run([sys.executable, "main.py", "lessons"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("\t") for line in lines] == [[l.name, l.title] for l in LESSONS.values()]


# ----------------------------------------------------------------------------- the claims

@pytest.mark.parametrize("lesson", LESSONS.values(), ids=list(LESSONS))
def test_the_claim_holds_at_every_step_to_the_pause_for_every_run(lesson: Lesson):
    """Every run trained to the pause (a run that diverges stops there), the lesson's own check read
    at every step; where it fails, the message says at which step, by how much and against which bound."""
    assert lesson.checks, "a lesson carries its claim as code"
    configs = runs(lesson.name)
    trained = [train(config, lesson.steps, k, lesson.reads_eigenvalues) for k, config in enumerate(configs)]
    snapshots, infos = [t[0] for t in trained], [t[1] for t in trained]
    for config, snaps in zip(configs, snapshots):  # each run records what its claim reads
        assert (snaps[0].grad_c is not None) == (config.cell == "lstm")
        assert (snaps[0].attention is not None) == config.attention
    result = lesson.check(snapshots, infos)
    assert result.holds.shape == (lesson.steps,)
    assert result.holds_throughout, result.failing_words() or result.text
    # the check has teeth: a record one step short of the pause does not hold there
    short = lesson.check([snaps[:lesson.steps - 1] for snaps in snapshots], infos)
    assert not short.holds_throughout


def test_loop_first_step_agrees_with_an_independent_backward_pass():
    """The check reads the trainer's own numbers; here they are checked against autograd, once."""
    config, = runs("loop")
    trainer = Trainer(config)
    x, target = trainer.task.sample(torch.Generator().manual_seed(config.seed + 1))
    out, trace = trainer.model(x, trainer.task.output_steps)
    grads = torch.autograd.grad(trainer.task.loss(out, target), trace.hidden[0])
    expected = np.array([g.double().norm().item() for g in grads])
    np.testing.assert_allclose(trainer.step().grad_h[0], expected, rtol=1e-4)


def test_exploding_tiny_nudge_swings_the_output():
    def nudge_effect(config):
        trainer = Trainer(config)
        x, _ = trainer.task.sample(torch.Generator().manual_seed(5))
        nudged = x.clone()
        nudged[:, 0, 0] += 1e-4
        with torch.no_grad():
            before, _ = trainer.model(x, trainer.task.output_steps)
            after, _ = trainer.model(nudged, trainer.task.output_steps)
        return float((after - before).abs().max())

    chaotic = nudge_effect(runs("exploding")[0])
    calm = nudge_effect(Config(seed=runs("exploding")[0].seed))
    assert chaotic > 0.1 and calm < 1e-4


def test_a_check_says_each_figure_and_where_a_claim_fails():
    lesson = LESSONS["vanishing-tanh"]
    snaps, info = train(runs("vanishing-tanh")[0], 1)
    result = lesson.check([snaps], [info])
    assert result.holds_throughout and result.figure > 15
    assert result.text == f"{result.figure:.3g} orders lost at step 1 (claim: over 15)"
    relu, relu_info = train(runs("fix-irnn")[0], 1)  # identity weights: the gradient keeps its size
    wrong = lesson.check([relu], [relu_info])
    assert not wrong.holds_throughout and wrong.first_failure == 1 and abs(wrong.figure) < 1
    assert wrong.failing_words().endswith("orders lost at step 1 (claim: over 15)")
