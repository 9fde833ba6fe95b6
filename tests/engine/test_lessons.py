"""Every lesson is a valid config, is listed by `main.py lessons`, and shows its claim in the
engine's own numbers.

Claims about gradients at initialization are checked on the first snapshot; claims about
training use short runs, except fix-lstm and fix-clipping, which are checked over their whole
`steps` budget (their cards say what a user sees once training runs, not only at step 1).
Margins were checked on seeds 0, 1 and 2; the tests run at each lesson's own seed (set
LESSON_SEED=1 to re-check the margins on another seed).
"""
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.config import Config, from_dict
from engine.lessons import LESSONS, VIEWS, Lesson
from engine.registry import activation_curve
from engine.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = os.environ.get("LESSON_SEED")


def runs(name: str) -> list[Config]:
    configs = LESSONS[name].runs()
    return [c.replace(seed=int(SEED)) for c in configs] if SEED is not None else configs


def first_snapshots(name: str):
    return [Trainer(c).step() for c in runs(name)]


def train(config: Config, steps: int):
    trainer = Trainer(config)
    snaps = []
    for _ in range(steps):
        snaps.append(trainer.step())
        if snaps[-1].diverged:
            break
    return trainer, snaps


def mean_loss(snaps, start, stop):
    return float(np.mean([s.loss for s in snaps[start:stop]]))


def decay_per_step(grad_h_top: np.ndarray, steps_back: int) -> float:
    """Average powers of ten lost per step back over the last `steps_back` steps."""
    g = grad_h_top[::-1][:steps_back + 1]
    assert np.all(g > 0), "the probe underflowed inside the measured window"
    return float(np.log10(g[0]) - np.log10(g[-1])) / steps_back


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

def test_loop_gradient_reaches_every_step_and_is_bounded_step_by_step():
    config, = runs("loop")
    # Independent truth: redo the trainer's first forward pass and differentiate it ourselves.
    trainer = Trainer(config)
    x, target = trainer.task.sample(torch.Generator().manual_seed(config.seed + 1))
    out, trace = trainer.model(x, trainer.task.output_steps)
    grads = torch.autograd.grad(trainer.task.loss(out, target), trace.hidden[0])
    expected = np.array([g.double().norm().item() for g in grads])
    snap = trainer.step()
    np.testing.assert_allclose(snap.grad_h[0], expected, rtol=1e-4)
    g = snap.grad_h[0]
    assert np.all(g > 0)
    # Only the last step is scored, so each step back multiplies by W^T diag(slope).
    bound = float(snap.sigma_max[0] * snap.max_slope[0])
    assert np.all(g[:-1] <= bound * g[1:] * (1 + 1e-4))


def test_learning_rate_small_right_large():
    right, small, large = runs("learning-rate")
    _, snaps = train(right, 30)
    assert not snaps[-1].diverged and mean_loss(snaps, -5, None) < snaps[0].loss / 3
    _, snaps = train(small, 30)
    assert abs(mean_loss(snaps, -5, None) - snaps[0].loss) < 0.2 * snaps[0].loss
    trainer, _ = train(large, 30)
    assert trainer.diverged


def test_multiply_shrinks_keeps_grows_by_the_factor():
    snaps = first_snapshots("multiply")
    for config, snap in zip(runs("multiply"), snaps):
        rho, steps = config.spectral_radius, config.seq_len - 1
        # linear activation and a scaled rotation: exactly rho per step back
        assert snap.orders_of_magnitude == pytest.approx(-steps * math.log10(rho), abs=0.01)
    shrink, keep, grow = (s.orders_of_magnitude for s in snaps)
    assert shrink > 2 and abs(keep) < 0.01 and grow < -1.9


def test_vanishing_tanh_loses_many_orders():
    snap, = first_snapshots("vanishing-tanh")
    assert snap.orders_of_magnitude > 15


def test_sigmoid_vanishes_faster_than_tanh():
    sig, tanh = first_snapshots("vanishing-sigmoid")
    _, slope = activation_curve("sigmoid", np.linspace(-6, 6, 1201))
    assert slope.max() == pytest.approx(0.25)
    g = sig.grad_h[0]
    bound = 0.25 * float(sig.sigma_max[0])
    assert np.all(g[:-1] <= bound * g[1:] * (1 + 1e-4))
    assert decay_per_step(g, 15) > 2 * decay_per_step(tanh.grad_h[0], 15)


def test_slow_convergence_short_learns_long_stalls():
    short, _, long = runs("slow-convergence")
    baseline = 1.0 / 6.0
    _, snaps = train(short, 150)
    assert mean_loss(snaps, 125, 150) < 0.8 * baseline
    _, snaps = train(long, 150)
    assert mean_loss(snaps, 125, 150) > 0.85 * baseline


def test_long_delay_fails_short_delay_learns():
    long, short = runs("long-delay")
    t_long, s_long = train(long, 100)
    t_short, s_short = train(short, 100)
    assert s_long[0].orders_of_magnitude > s_short[0].orders_of_magnitude + 8
    chance = 1.0 / t_long.task.alphabet
    assert np.mean([s.metric for s in s_short[75:]]) > 0.35
    assert np.mean([s.metric for s in s_long[75:]]) < chance + 0.12


def test_plateau_loss_sits_on_baseline():
    config, = runs("plateau")
    trainer, snaps = train(config, 150)
    baseline = trainer.task.baseline_loss
    window = snaps[50:150]
    first, second = mean_loss(window, 0, 50), mean_loss(window, 50, 100)
    assert 0.75 * baseline < first < 1.25 * baseline and 0.75 * baseline < second < 1.25 * baseline
    assert abs(first - second) < 0.1 * baseline
    assert min(s.orders_of_magnitude for s in window) > 10


def test_exploding_tiny_nudge_swings_the_output():
    def nudge_effect(config):
        trainer = Trainer(config)
        x, _ = trainer.task.sample(torch.Generator().manual_seed(5))
        nudged = x.clone()
        nudged[:, 0, 0] += 1e-4
        with torch.no_grad():
            before, _ = trainer.model(x, trainer.task.output_steps)
            after, _ = trainer.model(nudged, trainer.task.output_steps)
        return float((after - before).abs().max()), trainer.step()

    chaotic, snap = nudge_effect(runs("exploding")[0])
    calm, _ = nudge_effect(Config(seed=runs("exploding")[0].seed))
    assert snap.orders_of_magnitude < -8
    assert chaotic > 0.1 and calm < 1e-4


def test_recent_inputs_dominate_attribution():
    snap, = first_snapshots("recent-bias")
    gx = snap.grad_x
    assert gx[-10:].sum() > 1e6 * gx[:10].sum()
    assert gx[50:].sum() > 1e3 * gx[:50].sum()


def test_deep_stack_lower_layers_get_less():
    snap, = first_snapshots("deep-stack")
    per_layer = snap.grad_norm_layer
    assert np.all(np.diff(per_layer) > 0)
    assert per_layer[0] < 0.2 * per_layer[-1]


def test_fix_init_keeps_the_gradient():
    xavier, orthogonal, default = first_snapshots("fix-init")
    assert abs(xavier.orders_of_magnitude) < 5 and abs(orthogonal.orders_of_magnitude) < 5
    assert default.orders_of_magnitude > 15


def test_fix_clipping_keeps_the_run_finite_but_does_not_learn():
    """The whole 60-step budget: finite and falling, yet never near the baseline."""
    lesson = LESSONS["fix-clipping"]
    clipped, unclipped = runs("fix-clipping")
    trainer, _ = train(unclipped, 10)
    assert trainer.diverged
    trainer, snaps = train(clipped, lesson.steps)
    assert not trainer.diverged and len(snaps) == lesson.steps
    assert any(s.clipped for s in snaps)
    assert all(s.grad_norm_clipped <= clipped.clip_threshold * (1 + 1e-4) for s in snaps)
    assert mean_loss(snaps, -5, None) < snaps[0].loss
    # measured on seeds 0-2: the lowest loss in 60 steps is 19 to 35 times the baseline
    assert min(s.loss for s in snaps) > 10 * trainer.task.baseline_loss


def test_fix_irnn_relu_family_keeps_the_gradient():
    *relus, tanh = first_snapshots("fix-irnn")
    for snap in relus:
        assert abs(snap.orders_of_magnitude) < 1
    assert tanh.orders_of_magnitude > 15


def test_fix_skip_bottom_layer_learns():
    skip, no_skip = first_snapshots("fix-skip")
    assert skip.grad_norm_layer[0] >= 0.5 * skip.grad_norm_layer[-1]
    assert no_skip.grad_norm_layer[0] < 0.2 * no_skip.grad_norm_layer[-1]


def test_fix_lstm_fades_far_less_than_tanh_at_the_start():
    lstm, tanh = first_snapshots("fix-lstm")
    assert lstm.grad_c is not None
    assert lstm.orders_of_magnitude < 3
    assert tanh.orders_of_magnitude > 15


def test_fix_lstm_keeps_its_lead_but_neither_learns_during_training():
    """The whole 300-step budget (about 6 s): the LSTM's lead shrinks but stays, neither loss
    leaves the baseline. Measured on seeds 0-2: the LSTM's fall goes from 1.8-2.4 to a median of
    4.5-5.2 over the last 50 steps (at most 5.2), the tanh RNN's never drops below 16, and both
    losses average 1.02-1.04 times the baseline over the last 50 steps."""
    lesson = LESSONS["fix-lstm"]
    lstm, tanh = runs("fix-lstm")
    trainer, lstm_snaps = train(lstm, lesson.steps)
    _, tanh_snaps = train(tanh, lesson.steps)
    assert len(lstm_snaps) == len(tanh_snaps) == lesson.steps
    lstm_orders = np.array([s.orders_of_magnitude for s in lstm_snaps])
    tanh_orders = np.array([s.orders_of_magnitude for s in tanh_snaps])
    assert np.median(lstm_orders[-50:]) > lstm_orders[0] + 1.5
    assert lstm_orders.max() < 6.5
    assert tanh_orders.min() > 12
    baseline = trainer.task.baseline_loss
    for snaps in (lstm_snaps, tanh_snaps):
        assert abs(mean_loss(snaps, -50, None) - baseline) < 0.1 * baseline


def test_fix_gru_opens_its_update_gate_during_training():
    gru, rnn = runs("fix-gru")
    _, snaps = train(gru, 100)
    assert snaps[0].orders_of_magnitude > 8
    assert snaps[-1].gate_means[0][1] > 0.6  # the update gate
    assert np.median([s.orders_of_magnitude for s in snaps[-10:]]) < 3.5
    _, snaps = train(rnn, 100)
    assert np.median([s.orders_of_magnitude for s in snaps[-10:]]) > 6


def test_fix_attention_reaches_the_first_steps():
    attention, plain = first_snapshots("fix-attention")
    assert attention.attention is not None
    assert attention.orders_of_magnitude < 3
    assert plain.orders_of_magnitude > 15
