"""Guided lessons: a named config plus a plain-language narration card.

Runs on any thread. Filled in by the lessons work (issue 4); the runner and the GUI read LESSONS.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import Config


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    settings: dict                 # config keys that differ from the defaults
    narration: str = ""            # what is happening, in plain words
    look_at: str = ""              # id of the view that shows it (see gui/views)
    next_change: str = ""          # a change for the user to try next
    compare: tuple = ()            # for before/after lessons: settings of the other runs
    steps: int = 300               # training steps in which the lesson shows its claim

    def config(self) -> Config:
        return Config().replace(**self.settings)


LESSONS: dict[str, Lesson] = {l.name: l for l in [
    Lesson("vanishing-tanh", "Vanishing gradients with tanh",
           {"task": "adding", "seq_len": 100, "cell": "rnn", "activation": "tanh"},
           "The gradient must pass back through tanh at every step; each pass shrinks it.",
           "waterfall", "Switch the cell to LSTM and watch the early timesteps light up."),
]}
