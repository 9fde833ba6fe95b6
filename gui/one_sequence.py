"""One sequence of the batch instead of the whole batch: a history as the views see it through that lens.

GUI thread only, Qt-free. Every snapshot holds norms over the whole batch; a step seen closely
(engine.detail.StepDetail) also holds each sequence's own gradient profiles. `SequenceHistory` reads
like the RunHistory (or replay PastHistory) it wraps, except that `latest` is the step of its newest
detail with grad_h, grad_c and grad_x those of the chosen sequence alone (the gradient of its own
loss), and there is no trail of earlier steps. So every view of the latest step (profile, layers,
unrolled, input influence, units, answers) shows that sequence; the views of many steps (waterfall,
loss, weight gradients) read rings of batch norms and stay over the whole batch. Until a detail has
been measured, `latest` is None: the views show nothing rather than the batch under the sequence's name.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def sequence_snapshot(history, detail, sequence: int):
    """The snapshot of the detail's step with the sequence's own profiles in place of the batch's; None
    when that step is no longer kept or the sequence is not in its batch."""
    if detail is None or not 0 <= sequence < detail.batch:
        return None
    snapshot = next((s for s in reversed(history.log.snapshots) if s.step == detail.step), None)
    if snapshot is None:
        return None
    grad_c = None if detail.sequence_grad_c is None else detail.sequence_grad_c[sequence].astype(np.float32)
    return dataclasses.replace(snapshot, grad_h=detail.sequence_grad_h[sequence].astype(np.float32), grad_c=grad_c,
                               grad_x=detail.sequence_grad_x[sequence].astype(np.float32), events=())


class SequenceHistory:
    def __init__(self, history, sequence: int):
        self.history = history
        self.sequence = sequence
        self.detail = history.detail
        self.latest = sequence_snapshot(history, self.detail, sequence)
        self.trail = [self.latest] if self.latest is not None else []

    def __getattr__(self, name):  # only for names not set above
        return getattr(self.history, name)
