"""Trainer behaviour: determinism, live setting changes versus rebuilds, clipping, divergence.

Where a test needs the true gradient of the next step it recomputes it on a copy of the model with a
plain loss.backward() on the same batch (the trainer draws data from its own generator, seeded seed + 1).
"""
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.config import Config
from engine.trainer import Event, RunDiverged, Snapshot, Trainer

SMALL = Config(seq_len=12, hidden=10, batch=6)


def next_gradients(trainer):
    """The parameter gradients the trainer's next step() will see, from a copy and a plain backward()."""
    gen = torch.Generator()
    gen.set_state(trainer.data_gen.get_state())
    x, target = trainer.task.sample(gen)
    model = copy.deepcopy(trainer.model)
    out, _ = model(x, trainer.task.output_steps)
    trainer.task.loss(out, target).backward()
    return [p.grad.clone() for p in model.parameters()]


def params(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()]


def update(before, trainer):
    return [p.detach() - b for p, b in zip(trainer.model.parameters(), before)]


def total_norm(tensors):
    return torch.linalg.vector_norm(torch.stack([t.double().norm() for t in tensors])).item()


def assert_same_numbers(a: Snapshot, b: Snapshot, skip=("step_time",)):
    for f in dataclasses.fields(Snapshot):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y or (x != x and y != y), f.name


# ----------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("config", [
    SMALL,
    Config(task="copy", seq_len=5, hidden=8, batch=4, layers=2, cell="lstm", attention=True, skip=True),
    Config(task="digits", seq_len=8, hidden=8, batch=4, cell="gru", activation="prelu"),
])
def test_same_config_gives_identical_snapshots(config):
    a, b = Trainer(config), Trainer(config)
    for _ in range(3):  # interleaved, so neither may depend on global random state between steps
        sa, sb = a.step(), b.step()
        assert_same_numbers(sa, sb)
    other = Trainer(config.replace(seed=1)).step()
    with pytest.raises(AssertionError):
        assert_same_numbers(sa, other, skip=("step_time", "step"))


def test_snapshots_are_frozen_copies():
    trainer = Trainer(SMALL.replace(lr=0.1))
    first = trainer.step()
    kept = copy.deepcopy(first)
    for _ in range(3):
        trainer.step()
    assert_same_numbers(first, kept)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.loss = 0.0


def test_snapshot_shapes():
    config = Config(task="copy", seq_len=4, hidden=6, batch=3, layers=2, cell="lstm", attention=True)
    snap = Trainer(config).step()
    T = 5 + 4 + 5
    assert snap.step == 1 and snap.grad_h.shape == (2, T) and snap.grad_c.shape == (2, T)
    assert snap.grad_x.shape == (T,) and snap.sigma_max.shape == (2,) and snap.gate_means.shape == (2, 4)
    assert snap.attention.shape == (T,) and snap.attention.sum() == pytest.approx(1.0, rel=1e-5)
    assert snap.preact_hist.shape == (2, 48) and snap.saturation.shape == (2,)
    np.testing.assert_array_equal(snap.max_slope, [1.0, 1.0])
    for seq_len in (8, 64):
        snap = Trainer(Config(task="digits", seq_len=seq_len, hidden=6, batch=3)).step()
        assert snap.grad_h.shape == (1, seq_len) and math.isfinite(snap.loss) and snap.grad_c is None


# ----------------------------------------------------------------------------- live changes and rebuilds

def test_learning_rate_applies_at_the_next_step_without_rebuild():
    config = SMALL.replace(optimizer="sgd", lr=0.5)
    trainer = Trainer(config)
    trainer.step()
    trainer.step()
    model, before = trainer.model, params(trainer)
    events = trainer.update_config(config.replace(lr=0.05))
    assert [(e.kind, e.detail) for e in events] == [("changed", "lr 0.5 -> 0.05")]
    assert trainer.model is model and all(torch.equal(p, b) for p, b in zip(params(trainer), before))
    grads = next_gradients(trainer)
    snap = trainer.step()
    assert snap.events == tuple(events)
    # plain SGD: the update is exactly -lr * gradient, with the new lr
    for g, d in zip(grads, update(before, trainer)):
        torch.testing.assert_close(d, -0.05 * g, rtol=1e-4, atol=1e-7)
    assert trainer.step().events == ()  # events are reported once


def test_optimizer_change_keeps_weights_and_switches_the_rule():
    config = SMALL.replace(optimizer="sgd", lr=0.1)
    trainer = Trainer(config)
    trainer.step()
    before = params(trainer)
    (event,) = trainer.update_config(config.replace(optimizer="adam", lr=0.01))
    assert event.kind == "changed" and isinstance(trainer.optimizer, torch.optim.Adam)
    assert all(torch.equal(p, b) for p, b in zip(params(trainer), before))
    grads = next_gradients(trainer)
    trainer.step()
    # Adam's first step moves every weight by lr * g / (|g| + eps): almost exactly lr where |g| >> eps
    for g, d in zip(grads, update(before, trainer)):
        big = g.abs() > 1e-4
        torch.testing.assert_close(d[big], -0.01 * g[big].sign(), rtol=1e-3, atol=0)


def test_structural_change_rebuilds_from_the_seed_like_a_fresh_trainer():
    trainer = Trainer(SMALL)
    for _ in range(3):
        trainer.step()
    new = SMALL.replace(hidden=7, cell="gru", lr=0.01)
    (event,) = trainer.update_config(new)
    assert event.kind == "rebuilt" and trainer.events[-1] == event
    assert event.detail == "cell rnn -> gru, hidden 10 -> 7, lr 0.001 -> 0.01"  # (in the schema's order)
    rebuilt = [trainer.step() for _ in range(2)]
    fresh = Trainer(new)
    for r, f in zip(rebuilt, [fresh.step() for _ in range(2)]):
        assert_same_numbers(r, f, skip=("step_time", "step", "events"))
    assert rebuilt[0].step == 4 and rebuilt[0].events == (event,)


def test_seed_change_rebuilds_and_no_change_records_nothing():
    trainer = Trainer(SMALL)
    assert trainer.update_config(SMALL) == []
    (event,) = trainer.update_config(SMALL.replace(seed=5))
    assert event.kind == "rebuilt"
    assert_same_numbers(trainer.step(), Trainer(SMALL.replace(seed=5)).step(), skip=("step_time", "events"))


# ----------------------------------------------------------------------------- clipping

def test_clip_by_norm_caps_the_applied_update_exactly_when_the_norm_exceeds_the_threshold():
    lr = 0.1
    config = SMALL.replace(optimizer="sgd", lr=lr, clip="norm")
    trainer = Trainer(config)
    seen = set()
    for factor in (0.5, 2.0, 0.1, 1.5, 0.9, 1.05):
        grads = next_gradients(trainer)
        norm = total_norm(grads)
        threshold = factor * norm  # a live change: no rebuild
        trainer.update_config(trainer.config.replace(clip_threshold=threshold))
        before = params(trainer)
        snap = trainer.step()
        assert snap.grad_norm == pytest.approx(norm, rel=1e-5)
        assert snap.clipped == (snap.grad_norm > threshold) == (factor < 1)
        assert snap.grad_norm_clipped <= threshold * (1 + 1e-6)
        assert snap.grad_norm_clipped == pytest.approx(min(norm, threshold), rel=1e-5)
        assert np.all(snap.grad_norm_layer_clipped <= snap.grad_norm_layer * (1 + 1e-6))
        # the optimizer really used the clipped gradient
        assert total_norm(update(before, trainer)) / lr == pytest.approx(min(norm, threshold), rel=1e-4)
        seen.add(snap.clipped)
    assert seen == {True, False}


def test_clip_by_value_caps_every_entry():
    lr = 0.1
    config = SMALL.replace(optimizer="sgd", lr=lr, clip="value")
    trainer = Trainer(config)
    for factor in (0.3, 1.01):
        grads = next_gradients(trainer)
        largest = max(g.abs().max().item() for g in grads)
        threshold = factor * largest
        trainer.update_config(trainer.config.replace(clip_threshold=threshold))
        before = params(trainer)
        snap = trainer.step()
        assert snap.clipped == (factor < 1)
        expected = [g.clamp(-threshold, threshold) for g in grads]
        assert snap.grad_norm == pytest.approx(total_norm(grads), rel=1e-5)
        assert snap.grad_norm_clipped == pytest.approx(total_norm(expected), rel=1e-5)
        for e, d in zip(expected, update(before, trainer)):
            torch.testing.assert_close(d, -lr * e, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- divergence

EXPLODING = Config(seq_len=20, hidden=16, batch=8, optimizer="sgd", lr=1.0, activation="linear")


def test_divergence_is_detected_stops_the_run_and_a_change_rebuilds():
    trainer = Trainer(EXPLODING)
    snaps = []
    for _ in range(30):
        snaps.append(trainer.step())
        if snaps[-1].diverged:
            break
    last = snaps[-1]
    assert last.diverged and not any(s.diverged for s in snaps[:-1])
    assert all(math.isfinite(s.loss) and math.isfinite(s.grad_norm) for s in snaps[:-1])
    assert not (math.isfinite(last.loss) and math.isfinite(last.grad_norm))
    assert trainer.diverged and trainer.diverged_at_step == last.step
    assert [e.kind for e in last.events] == ["diverged"] and last.events[0].step == last.step
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # no update from a NaN gradient
    with pytest.raises(RunDiverged, match=f"step {last.step}"):
        trainer.step()
    # even a live key rebuilds a diverged run
    (event,) = trainer.update_config(EXPLODING.replace(lr=0.01))
    assert event.kind == "rebuilt" and not trainer.diverged and trainer.diverged_at_step is None
    assert_same_numbers(trainer.step(), Trainer(EXPLODING.replace(lr=0.01)).step(),
                        skip=("step_time", "step", "events"))


def test_overflow_in_the_forward_pass_diverges_at_the_first_step():
    trainer = Trainer(Config(seq_len=100, hidden=8, batch=4, activation="linear", init="orthogonal",
                             spectral_radius=3.0))  # 3**100 overflows float32
    snap = trainer.step()
    assert snap.diverged and trainer.diverged_at_step == 1 and not snap.clipped
    with pytest.raises(RunDiverged):
        trainer.step()


def test_clipping_by_norm_keeps_the_exploding_run_finite():
    trainer = Trainer(EXPLODING.replace(clip="norm", clip_threshold=1.0))
    for _ in range(30):
        snap = trainer.step()
        assert not snap.diverged and math.isfinite(snap.loss)
        assert snap.grad_norm_clipped <= 1.0 + 1e-6
    assert trainer.diverged_at_step is None


def test_event_to_dict():
    assert Event(3, "changed", "lr 1 -> 2").to_dict() == {"step": 3, "kind": "changed", "detail": "lr 1 -> 2"}


def test_a_huge_but_finite_gradient_is_not_divergence_and_clips_to_the_threshold():
    """A linear RNN with spectral radius 2.5 over 40 steps has gradient entries near 1e29: finite,
    but past the ~1e19 where squaring in float32 overflows. torch's float32 norm calls that inf; the
    run must not be reported as diverged, and clipping must scale it down to the threshold, not to 0."""
    config = Config(seq_len=40, hidden=8, batch=2, spectral_radius=2.5, activation="linear", optimizer="sgd",
                    lr=0.01)
    probe = Trainer(config)
    x, target = probe.task.sample(probe.data_gen)
    out, _ = probe.model(x, probe.task.output_steps)
    probe.task.loss(out, target).backward()
    grads = [p.grad for p in probe.model.parameters()]
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    assert not math.isfinite(torch.linalg.vector_norm(grads[1]).item())  # the float32 overflow this is about
    expected = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    assert expected > 1e25

    snap = Trainer(config).step()
    assert not snap.diverged and snap.grad_norm == pytest.approx(expected, rel=1e-6)

    clipped = Trainer(dataclasses.replace(config, clip="norm", clip_threshold=1.0))
    before = [p.detach().clone() for p in clipped.model.parameters()]
    snap = clipped.step()
    assert snap.clipped and not snap.diverged
    assert snap.grad_norm_clipped == pytest.approx(1.0, rel=1e-5)
    update = math.sqrt(sum(float(((p.detach() - b).double() ** 2).sum())
                           for p, b in zip(clipped.model.parameters(), before)))
    assert update == pytest.approx(0.01 * 1.0, rel=1e-4)  # SGD moved lr x the clipped gradient


@pytest.mark.parametrize("scale", [1e25, math.inf])
def test_sigma_max_of_huge_or_infinite_weights_is_reported_not_raised(scale):
    """One wild update can leave recurrent weights near 1e25 (W^T W overflows float32) or infinite:
    the step still returns a snapshot (here a diverged one), with sigma_max as large as it is."""
    trainer = Trainer(Config(seq_len=6, hidden=5, batch=2, activation="linear"))
    with torch.no_grad():
        weight = trainer.model.layers[0].weight_hh
        weight.mul_(scale) if math.isfinite(scale) else weight.fill_(math.inf)
        expected = torch.linalg.svdvals(weight.double())[0].item() if math.isfinite(scale) else math.inf
    snap = trainer.step()
    assert snap.diverged
    assert snap.sigma_max[0] == pytest.approx(expected, rel=1e-6)


def test_parameter_gradient_norms_are_exact_for_tiny_and_huge_gradients():
    """registry.grad_norms against float64: entries of 1e-30 (float32 squares underflow to 0), 1e30
    (they overflow), zeros, ordinary values, a denormal, and NaN."""
    from engine import registry
    base = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    for scale in (1.0, 1e-30, 1e30, 0.0, 1e-42):
        grads = [base * scale, torch.randn(4)]
        expected = [torch.linalg.vector_norm(g.double()).item() for g in grads]
        np.testing.assert_allclose(registry.grad_norms(grads), expected, rtol=1e-6, atol=0)
    assert math.isnan(registry.grad_norms([base, torch.full((2,), math.nan)])[1])
