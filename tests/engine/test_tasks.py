"""Tasks make the batches they describe, and their baselines are the loss of 'learned nothing'."""
import gzip
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from engine import tasks
from engine.config import ConfigError


def test_adding_batches_have_two_markers_one_per_half_and_the_sum_as_target():
    for seq_len in (2, 3, 10, 51):
        task = tasks.AddingTask(seq_len, 2000)
        x, target = task.sample(torch.Generator().manual_seed(0))
        assert x.shape == (2000, seq_len, 2) and target.shape == (2000, 1)
        values, markers = x[..., 0], x[..., 1]
        assert ((values >= 0) & (values < 1)).all()
        assert set(markers.unique().tolist()) <= {0.0, 1.0} and (markers.sum(1) == 2).all()
        half = seq_len // 2
        assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
        torch.testing.assert_close(target[:, 0], (values * markers).sum(1))
        if seq_len == 51:  # every position in each half gets used
            assert (markers[:, :half].sum(0) > 0).all() and (markers[:, half:].sum(0) > 0).all()
    assert task.output_steps == [50] and task.n_steps == 51


def test_adding_baseline_is_the_mse_of_always_answering_one():
    task = tasks.AddingTask(10, 100_000)
    x, target = task.sample(torch.Generator().manual_seed(1))
    answer_one = torch.ones(100_000, 10, 1)
    mse = task.loss(answer_one, target).item()
    # the standard error of this estimate is about 0.0007
    assert mse == pytest.approx(1 / 6, abs=0.003)
    assert task.baseline_loss == pytest.approx(1 / 6, rel=1e-15)
    assert target.mean().item() == pytest.approx(1.0, abs=0.005)  # 1 is indeed the best constant


def test_copy_task_shows_symbols_waits_then_asks():
    task = tasks.CopyTask(seq_len=6, batch=50)
    x, target = task.sample(torch.Generator().manual_seed(2))
    k, a, T = 5, 8, 5 + 6 + 5
    assert task.n_steps == T and task.output_steps == list(range(11, 16))
    assert x.shape == (50, T, a + 2) and target.shape == (50, k)
    assert (x.sum(-1) == 1).all()  # one-hot at every step
    codes = x.argmax(-1)
    torch.testing.assert_close(codes[:, :k], target)  # the symbols to repeat are the ones shown
    assert (codes[:, k:k + 5] == a).all() and (codes[:, k + 6:] == a).all()  # blanks
    assert (codes[:, k + 5] == a + 1).all()  # the go marker on the last delay step
    assert target.min() >= 0 and target.max() < a
    uniform = torch.zeros(50, k, a)
    assert task.loss(uniform, target).item() == pytest.approx(task.baseline_loss, rel=1e-6)
    assert task.baseline_loss == pytest.approx(math.log(8))
    perfect = F.one_hot(target, a).float() * 100
    assert task.loss(perfect, target).item() < 1e-10 and task.metric(perfect, target) == 1.0


def _digits_table():
    with gzip.open(tasks.RESOURCES / "digits.csv.gz", "rt") as fh:
        return np.array([[float(v) for v in line.split(",")] for line in fh])


def test_digits_loads_1797_images_and_baseline_is_the_prior_entropy():
    table = _digits_table()
    labels = table[:, 64].astype(int)
    assert table.shape == (1797, 65)
    prior = np.bincount(labels, minlength=10) / len(labels)
    entropy = -(prior * np.log(prior)).sum()
    for seq_len in (64, 8):
        task = tasks.DigitsTask(seq_len, 16)
        assert task.input_size == 64 // seq_len and task.n_steps == seq_len
        assert task.baseline_loss == pytest.approx(entropy, rel=1e-12)
        x, y = task.sample(torch.Generator().manual_seed(3))
        assert x.shape == (16, seq_len, 64 // seq_len) and y.shape == (16,)
        assert x.min() >= 0 and x.max() <= 1
    # the loss of predicting the prior on every image is the entropy
    images, all_labels = tasks.DigitsTask.data()
    assert images.shape == (1797, 64) and torch.equal(all_labels, torch.from_numpy(labels))
    np.testing.assert_allclose(images.numpy() * 16, table[:, :64])
    logits = torch.log(torch.from_numpy(prior)).expand(1797, 1, 10)
    assert task.loss(logits, all_labels).item() == pytest.approx(entropy, rel=1e-6)


def test_digits_rows_are_image_rows():
    task = tasks.DigitsTask(8, 4)
    images, labels = tasks.DigitsTask.data()
    torch.testing.assert_close(task.images[5], images[5].view(8, 8))
    torch.testing.assert_close(tasks.DigitsTask(64, 4).images[5, :, 0], images[5])


@pytest.mark.parametrize("cls, seq_len", [(tasks.AddingTask, 1), (tasks.CopyTask, 0), (tasks.DigitsTask, 16)])
def test_tasks_refuse_lengths_they_cannot_use(cls, seq_len):
    with pytest.raises(ConfigError) as info:
        cls(seq_len, 4)
    assert info.value.key == "seq_len" and info.value.value == seq_len
