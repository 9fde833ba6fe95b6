"""The lessons about the newer cells (LRU, minGRU, the selective state space, IndRNN) and the factor per step
that ties them together, each looking at the Eigenvalues view; engine/lessons.py makes them Lessons after its
own (the fields are Lesson's, as keywords).

Runs on any thread. Every figure on a card was measured at the lesson's settings (seed 0; the claims' margins
also on seeds 1 and 2) and each claim is checked at every step to its pause by tests/engine/test_lessons.py.
"""
from __future__ import annotations

from engine.claims import (apart, factor_spread, imaginary_part, largest_factor, loss_average, orders,
                           slope_against_factor, smallest_eigenvalue)

CELL_LESSONS = (
    dict(
        name="lru-ring", title="LRU: eigenvalues on a ring near one",
        settings={"cell": "lru", "seq_len": 1000},
        narration="The linear recurrent unit (LRU) has no squashing function in its loop: each state is multiplied "
                  "by its own complex eigenvalue λ at every step, so one step back multiplies its gradient by "
                  "exactly |λ|. They start on a ring just inside the unit circle, |λ| from 0.9 to 0.999, "
                  "and the slowest keeps a gradient for about 1/(1 - |λ|), some 780 steps. Over 1000 steps "
                  "the LRU's gradient loses under 2 powers of ten, while the tanh RNN's, whose largest eigenvalue "
                  "is about 0.63, loses over 200.",
        look_at="eigen",
        next_change="Set lru_r_min to 0.5 and lru_r_max to 0.9: the ring moves in, and over the 1000 steps the "
                    "gradient loses some 47 powers of ten.",
        compare=({"cell": "rnn"},),
        run_labels=("LRU", "tanh RNN (before)"),
        steps=1,
        claim="Every |λ| of the LRU is between 0.9 and 0.999, and its gradient at the first of 1000 timesteps "
              "is within 2.5 powers of ten of the last; the tanh RNN's is over 100 powers of ten smaller.",
        checks=(smallest_eigenvalue(0).at_least(0.9).at(1), largest_factor(0).under(0.999).at(1),
                orders(0).under(2.5).at(1), orders(1).over(100).at(1))),
    dict(
        name="mingru", title="minGRU: forgetting decided by the input",
        settings={"cell": "mingru", "seq_len": 50, "lr": 0.01},
        narration="The minGRU mixes its memory with a candidate through an update gate z_t that looks at the input "
                  "alone, never at the memory, so one step back multiplies a unit's gradient by exactly 1 - z_t, a "
                  "factor the input decides anew at every step. It starts forgetting fast: its slowest unit keeps "
                  "about 0.71 a step, and the gradient falls some 8 powers of ten across the 50 steps. Training "
                  "teaches the gate to keep: by step 300 the slowest unit keeps over 0.95 a step, the gradient "
                  "loses about one power of ten, and the loss starts to fall below the baseline.",
        look_at="eigen",
        next_change="Raise seq_len to 100: it starts over 15 powers of ten down, and after 300 steps still loses 8.",
        steps=300,
        claim="At the start the gradient at the first of 50 timesteps is over 7 powers of ten below the last, the "
              "slowest unit's factor per step under 0.75; at every step each unit's factor moves with the input "
              "(its 10%-90% range, median over the units, over 0.04). By step 300 the slowest unit's factor is "
              "over 0.95, the gradient falls by under 2.5 powers of ten, and the loss averaged over the last 25 "
              "steps is under 0.95 of the baseline.",
        checks=(orders(0).over(7).at(1), largest_factor(0).under(0.75).at(1), factor_spread(0).over(0.04),
                largest_factor(0).over(0.95).at_pause(), orders(0).under(2.5).at_pause(),
                loss_average(0, 25).under(0.95).at_pause())),
    dict(
        name="ssm", title="Selective state spaces: when to remember",
        settings={"cell": "ssm", "lr": 0.01},
        narration="A selective state space (Mamba's scan) keeps states that shrink by exp(delta_t A) at each step, "
                  "A negative, and the input chooses the step size delta_t: a large step forgets the state and "
                  "takes the input in, a small one keeps it. Its step sizes start small, so most factors are close "
                  "to one and the gradient reaches the first of 100 timesteps losing under one power of ten. Where "
                  "to remember is learned: within 200 steps it finds the two marked numbers, and its loss falls "
                  "far below the baseline.",
        look_at="eigen",
        next_change="Set ssm_state to 1, one state per channel, and see whether it still finds them.",
        steps=200,
        claim="At every step to 200 the gradient at the first of 100 timesteps is within one power of ten of the "
              "last, and each channel's factor moves with the input (its 10%-90% range, median over the channels, "
              "over 0.03); by step 200 the loss averaged over the last 25 steps is under a fifth of the baseline.",
        checks=(apart(0).under(1), factor_spread(0).over(0.03), loss_average(0, 25).under(0.2).at_pause())),
    dict(
        name="indrnn", title="IndRNN: one weight per unit",
        settings={"cell": "indrnn", "activation": "relu"},
        narration="In an IndRNN each unit feeds back only to itself, through one weight u_j, so its eigenvalues "
                  "are those weights, on the real axis of the Eigenvalues view. With ReLU, one step back "
                  "multiplies a unit's gradient by exactly u_j while the unit is active and by 0 where it is not, "
                  "and the paper keeps every |u_j| at most 2^(1/100), so no unit's gradient can grow more than "
                  "twofold over the 100 steps. It reaches the first timestep losing about two powers of ten, where "
                  "the tanh RNN's loses over 15.",
        look_at="eigen",
        next_change="Raise lr to 0.01: the largest weights shrink, and the gradient loses nearly 5 powers of ten.",
        compare=({"cell": "rnn", "activation": "tanh"},),
        run_labels=("IndRNN (ReLU)", "tanh RNN (before)"),
        steps=100,
        claim="At every step to 100 every eigenvalue of the IndRNN is real and at most 2^(1/100) (1.007), and its "
              "gradient at the first of 100 timesteps within 3 powers of ten of the last; at the start the tanh "
              "RNN's is over 15 powers of ten smaller.",
        checks=(imaginary_part(0).at_most(0), largest_factor(0).at_most(2 ** (1 / 100)), apart(0).under(3),
                orders(1).over(15).at(1))),
    dict(
        name="factor-per-step", title="The factor per step, again",
        settings={"seq_len": 200},
        narration="The multiply lesson's factor per step is in every cell, and the Eigenvalues view reads it off: "
                  "far back in time only the slowest unit's gradient is left, so the gradient profile falls, per "
                  "step, by the largest factor there. The tanh RNN's largest eigenvalue is about 0.63 (its tanh is "
                  "nearly straight at the start), so it loses 0.2 powers of ten a step, 41 over the 200 steps; the "
                  "minGRU's slowest unit keeps about 0.71 a step and loses 30; the LRU's eigenvalues, all at 0.99, "
                  "lose 0.87, exactly 199 times log10(1/0.99).",
        look_at="eigen",
        next_change="Set lru_r_min and lru_r_max to 0.9: the LRU's gradient then falls exactly log10(1/0.9) a "
                    "step, 9.1 powers of ten over the 200 steps.",
        compare=({"cell": "mingru"}, {"cell": "lru", "lru_r_min": 0.99, "lru_r_max": 0.99}),
        run_labels=("tanh RNN", "minGRU", "LRU, ring at 0.99"),
        steps=1,
        claim="Over its first 100 of 200 timesteps each run's gradient profile falls, per step, by the powers of "
              "ten its largest factor predicts, -log10 of it, within 20% for the tanh RNN (its largest eigenvalue) "
              "and the minGRU (its slowest unit's median factor), within 0.1% for the LRU (|λ|).",
        checks=(slope_against_factor(0, 100).between(0.9, 1.2).at(1),
                slope_against_factor(1, 100).between(0.9, 1.2).at(1),
                slope_against_factor(2, 100).between(0.999, 1.001).at(1))),
)
