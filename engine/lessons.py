"""Guided lessons: a named config plus a plain-language narration card.

Runs on any thread. The runner (`main.py train --lesson NAME`) and the GUI read LESSONS. Each
lesson states one claim that the engine's own numbers show within `steps` training steps at the
lesson's settings, true at every step up to that pause for every run it names (a claim about the
loss speaks of an average over the last few steps: one step's batch is noisy);
tests/engine/test_lessons.py checks every claim at every step it is made for. Before/after lessons
list their other runs in `compare`: run 1 uses the lesson's settings, and each compare dict overrides
them for one more run, named by `run_labels`. `lesson_runs(name, overrides)` is the one place a
lesson becomes configs, the user's `--set` applied on top of every run, for the headless runner,
the window and `record` alike.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.claims import (ClaimResult, apart, applied_gradient, bottom_to_top, check, clipped_steps, decay_ratio,
                           diverged_at, first_to_last, gained, gate, inputs_ratio, layer_to_layer_below, loss,
                           loss_against_first, loss_average, metric_average, orders, orders_more, saturated,
                           smallest_gradient, stays_at_baseline, step_back)
from engine.cell_lessons import CELL_LESSONS
from engine.config import Config, apply_overrides
from engine.errors import ConfigError

VIEWS = ("waterfall", "profile", "layers", "loss", "param_grads", "attribution", "activation", "unrolled", "units",
         "answers", "phase", "eigen")


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    settings: dict                 # config keys that differ from the defaults
    narration: str = ""            # what is happening, in plain words
    look_at: str = ""              # id of the view that shows it (one of VIEWS)
    next_change: str = ""          # a change for the user to try next
    compare: tuple = ()            # for before/after lessons: settings of the other runs
    steps: int = 300               # training steps in which the lesson shows its claim
    claim: str = ""                # the one checkable statement the lesson makes
    run_labels: tuple = ()         # a short name per run: run 1, then one per compare dict
    checks: tuple = ()             # the claim as code: engine.claims parts, each bound on one figure at the
    #                                steps the claim names (tests/engine/test_lessons.py runs them all)

    def config(self) -> Config:
        return Config().replace(**self.settings)

    def runs(self, overrides: list[str] | None = None) -> list[Config]:
        """Run 1 (the lesson's own config), then one config per compare dict; the `KEY=VALUE`
        `overrides` (the user's --set) on top of every run, so that a comparison still differs only
        in what the lesson compares."""
        base = self.config()
        runs = [base] + [base.replace(**changes) for changes in self.compare]
        return [apply_overrides(run, overrides) for run in runs] if overrides else runs

    @property
    def reads_eigenvalues(self) -> bool:
        """Whether the view the lesson looks at or its claim reads the tanh RNN's eigenvalues, which a trainer
        takes only when asked (engine.trainer.Trainer.take_eigenvalues)."""
        return self.look_at == "eigen" or any("eigenvalues" in part.measure.reads for part in self.checks)

    def check(self, snapshots, infos) -> ClaimResult:
        """The claim, read from the runs' recorded snapshots (one list per run, from step 1: a
        MetricsLog's or a RunHistory's) and their infos (engine.worker.RunInfo), at every step to the pause."""
        return check(self.checks, snapshots, infos, self.steps, self.run_labels)


_LESSONS = [
    # ------------------------------------------------------------------ the basics
    Lesson(
        "loop", "The recurrent loop and backpropagation through time",
        {"seq_len": 30},
        "A recurrent network reads a sequence one step at a time and carries a memory from each "
        "step to the next. To learn, the error at the end is passed backwards through the same loop, "
        "one step at a time, all the way to the first input. The arrows in the picture show how much "
        "of that learning signal arrives at each step.",
        "unrolled",
        "Raise seq_len to 100 and see how thin the arrows at the start become.",
        steps=100,
        claim="Every timestep receives some gradient, handed back one step at a time: at each step "
              "back it is at most the next step's gradient times the loop weights' largest stretch "
              "times the activation's steepest slope.",
        checks=(smallest_gradient(0).over(0), step_back(0).at_most(1.0001))),
    Lesson(
        "learning-rate", "The gradient-descent step: too small, about right, too large",
        {"seq_len": 10, "optimizer": "sgd", "lr": 0.05},
        "Gradient descent nudges every weight a little against its gradient; the learning rate sets "
        "how big that nudge is. Too small and the loss hardly moves; about right and it drops "
        "quickly; too large and every step overshoots until the numbers blow up.",
        "loss",
        "Switch the optimizer to Adam, which adapts the step size per weight.",
        compare=({"lr": 1e-4}, {"lr": 1.0}),
        run_labels=("about right (0.05)", "too small (0.0001)", "too large (1.0)"),
        steps=30,
        claim="Averaged over the last 5 steps, the loss with learning rate 0.05 is below a third of its "
              "first value at every step from step 6 to 30, and with 0.0001 within a fifth of it at every step "
              "from step 5 to 30; with 1.0 the run diverges within 30 steps.",
        checks=(loss_against_first(0, 5).under(1 / 3).from_step(6),
                loss_against_first(1, 5).between(0.8, 1.2).from_step(5), diverged_at(2).at_most(30).at_pause())),
    Lesson(
        "multiply", "Multiplying many times: shrink, keep or grow",
        {"seq_len": 50, "activation": "linear", "init": "orthogonal",
         "spectral_radius": 0.9},
        "Going back one step multiplies the gradient by the loop's weights. Here there is no "
        "activation and the weights stretch every direction by the same factor, so the gradient is "
        "simply multiplied by that factor at every step. Slightly below one, it melts away; exactly "
        "one, it stays; slightly above one, it snowballs.",
        "profile",
        "Try spectral radius 0.5 or 1.5 with seq_len 100.",
        compare=({"spectral_radius": 1.0}, {"spectral_radius": 1.1}),
        run_labels=("factor 0.9", "factor 1.0", "factor 1.1"),
        steps=1,
        claim="With factor 0.9 the gradient at the first of 50 steps is 0.9 to the 49th power of the "
              "last (about 2.2 powers of ten smaller), with 1.0 the same, with 1.1 about 2 powers of "
              "ten larger.",
        checks=(orders(0).between(2.232, 2.252).at(1), apart(1).under(0.01).at(1),  # 49 x log10(factor)
                gained(2).between(2.018, 2.038).at(1))),
    Lesson(
        "vanishing-tanh", "Vanishing gradients with tanh",
        {},
        "The adding problem needs a number seen long ago, so the learning signal must travel back "
        "many steps. Each step back it passes through tanh, whose slope is at most one, and through "
        "smallish weights, so it shrinks every time. After a hundred steps almost nothing is left "
        "for the early inputs.",
        "waterfall",
        "Switch the cell to LSTM and watch the early timesteps light up.",
        steps=1,
        claim="The gradient at the first of 100 timesteps is at least 15 powers of ten smaller than at "
              "the last.",
        checks=(orders(0).over(15).at(1),)),
    Lesson(
        "vanishing-sigmoid", "Worse with sigmoid",
        {"seq_len": 25, "activation": "sigmoid"},
        "The sigmoid's slope is never more than a quarter, so every step back cuts the gradient to "
        "a quarter or less, before the weights even act on it. Compared with tanh on the same "
        "network, the gradient falls away several times faster.",
        "activation",
        "Switch the activation to tanh and compare the slope of the gradient profile.",
        compare=({"activation": "tanh"},),
        run_labels=("sigmoid", "tanh"),
        steps=1,
        claim="Per step back, the gradient falls at least twice as many powers of ten with sigmoid as "
              "with tanh, and never by less than a quarter times the weights' largest stretch.",
        checks=(decay_ratio(0, 1, 15).over(2).at(1), step_back(0).at_most(1.0001).at(1))),
    Lesson(
        "slow-convergence", "Longer sequences, slower learning",
        {"seq_len": 5},
        "The same network learns the adding problem on sequences of 5, 10 and 50 steps. On short "
        "sequences the learning signal still reaches the marked numbers, and the loss soon drops "
        "below the baseline. On long ones it arrives too faint, and the loss creeps or stalls.",
        "loss",
        "Raise the learning rate to 0.01 and see whether the long run speeds up.",
        compare=({"seq_len": 10}, {"seq_len": 50}),
        run_labels=("5 steps", "10 steps", "50 steps"),
        steps=300,
        claim="At every step from step 150 to 300, the 5-step run's loss averaged over the last 50 steps "
              "is well below the baseline (under 80% of it), while the 50-step run's is above 85% of it.",
        checks=(loss_average(0, 50).under(0.8).from_step(150), loss_average(2, 50).over(0.85).from_step(150))),
    Lesson(
        "long-delay", "Failing on long-term dependencies",
        {"task": "copy", "seq_len": 60, "lr": 0.01},
        "The network must repeat five symbols after a pause. With a pause of 60 steps, the signal "
        "that says which symbol was shown has faded by many powers of ten before it reaches the "
        "symbols, and the network guesses. With a pause of 5 it learns the task.",
        "waterfall",
        "Try a pause of 20: where does learning start to fail?",
        compare=({"seq_len": 5},),
        run_labels=("pause 60", "pause 5"),
        steps=300,
        claim="At the start the gradient reaching the symbols is at least 8 powers of ten weaker with "
              "a pause of 60 than with 5. At every step from step 100 to 300, averaged over the last 25 "
              "steps, the short pause copies over 45% of the symbols right, while the long pause stays "
              "near chance (1 in 8), under 25%.",
        checks=(orders_more(0, 1).over(8).at(1), metric_average(1, 25).over(0.45).from_step(100),
                metric_average(0, 25).under(0.25).from_step(100))),
    Lesson(
        "plateau", "Plateaus: learning stalls",
        {},
        "The loss drops quickly to the baseline, the score of always guessing the average, and "
        "then sits there. The network has learned the easy part, but the signal that would teach it "
        "to remember the early marked number has vanished, so nothing moves it off the plateau.",
        "loss",
        "Switch the cell to GRU with lr 0.01 and see whether it leaves the plateau.",
        steps=300,
        claim="At every step from step 50 to 300 the loss, averaged over the last 25 steps, is within "
              "15% of the baseline; at every step from the first the gradient at the first timestep is over "
              "15 powers of ten below the last.",
        checks=(loss_average(0, 25).between(0.85, 1.15).from_step(50), orders(0).over(15))),
    Lesson(
        "exploding", "Instability: small change, huge effect",
        {"init": "orthogonal", "spectral_radius": 3.0},
        "Here the loop's weights stretch the memory three times per step. Going backwards the "
        "gradient grows instead of shrinking, so the earliest inputs get enormous gradients. The "
        "network is chaotic: nudging the very first input by a hair swings the final answer.",
        "waterfall",
        "Turn on clipping by norm and watch the Weight gradients view.",
        steps=1,
        claim="The gradient at the first timestep is over 8 powers of ten larger than at the last, and "
              "nudging the first input by 0.0001 changes the output by more than 0.1, while the "
              "default network barely moves (below 0.0001).",
        checks=(gained(0).over(8).at(1),)),
    Lesson(
        "edge-of-chaos", "The edge of chaos",
        {"seq_len": 200, "activation": "linear", "init": "orthogonal", "spectral_radius": 1.0},
        "The Phase diagram maps the powers of ten the gradient loses at the start, over spectral radius (across) "
        "and sequence length (up); its line marks where nothing is lost, the edge between vanishing and "
        "exploding. For the linear RNN that line is radius 1: over 200 steps the gradient loses 9 powers of ten "
        "at 0.9 and gains 8 at 1.1. Tanh's slope is under one wherever a unit is busy, so at radius 1 it still "
        "loses 4, and its line sits right of 1, at about 1.1.",
        "phase",
        "Set spectral_radius to 0.9, then 1.1, and watch the dots cross the lines: at 1.1 the linear RNN's "
        "gradient grows 8 powers of ten over the 200 steps, the tanh RNN's stays within half of one.",
        compare=({"activation": "tanh"},),
        run_labels=("linear", "tanh"),
        steps=1,
        claim="At spectral radius 1 the linear RNN's gradient at the first of 200 timesteps is the same as at the "
              "last (within 0.01 powers of ten), while the tanh RNN's is over 3 powers of ten smaller.",
        checks=(apart(0).under(0.01).at(1), orders(1).over(3).at(1))),
    Lesson(
        "recent-bias", "Over-emphasis on recent inputs",
        {},
        "Both marked numbers matter equally for the answer, one in each half of the sequence. Yet "
        "the Answers view, which shows how strongly the answer depends on each input step, says the "
        "network listens almost only to the last few steps. Early inputs have been forgotten before "
        "learning even starts. Press ] to see it for one sequence at a time: every one alike.",
        "answers",
        "Turn on attention and look at the Answers view again.",
        steps=1,
        claim="The inputs of the last 10 steps get over a million times more gradient than those of "
              "the first 10, and the second half of the sequence gets over a thousand times more "
              "than the first.",
        checks=(inputs_ratio(0, slice(-10, None), slice(0, 10), "the last 10 steps' inputs get {}x the gradient of "
                             "the first 10's").over(1e6).at(1),
                inputs_ratio(0, slice(50, None), slice(0, 50), "the second half's inputs get {}x the gradient of the "
                             "first half's").over(1e3).at(1))),
    Lesson(
        "deep-stack", "Deep stacks are hit harder",
        {"seq_len": 50, "layers": 6},
        "Stacking layers makes the learning signal travel down through the layers as well as back "
        "through time. Each layer it passes shrinks it again, so the bottom layers, which see the "
        "raw input, get the smallest weight gradients: they learn the least.",
        "param_grads",
        "Turn on skip connections.",
        steps=1,
        claim="Going down the stack, every layer gets less gradient than the one above it, and the "
              "bottom layer's weights get less than a fifth of the top layer's.",
        checks=(layer_to_layer_below(0).over(1).at(1), bottom_to_top(0).under(0.2).at(1))),

    # ------------------------------------------------------------------ remedies
    Lesson(
        "fix-init", "Remedy: Xavier or orthogonal initialization",
        {"init": "xavier_uniform"},
        "PyTorch's default weights are small, so each step back shrinks the gradient. Xavier "
        "weights are scaled so a signal keeps about the same size from step to step; orthogonal "
        "weights are a pure rotation that keeps every length. Either way the gradient now reaches "
        "the early steps, at the start. Training pulls the weights away from where they began, so "
        "watch the waterfall: a good start is a head start, not a guarantee.",
        "waterfall",
        "Train a few hundred steps and watch how long each run's early timesteps stay bright.",
        compare=({"init": "orthogonal"}, {"init": "default"}),
        run_labels=("Xavier", "orthogonal", "default (before)"),
        steps=1,
        claim="With Xavier or orthogonal weights the gradient at the first of 100 steps is within 5 "
              "powers of ten of the last; with the default weights it falls by more than 15.",
        checks=(apart(0).under(5).at(1), apart(1).under(5).at(1), orders(2).over(15).at(1))),
    Lesson(
        "fix-clipping", "Remedy: gradient clipping",
        {"seq_len": 50, "activation": "linear", "init": "orthogonal",
         "spectral_radius": 1.1, "optimizer": "sgd", "lr": 0.01, "clip": "norm"},
        "This network's gradients explode, and one plain gradient step throws the weights so far that "
        "the numbers overflow. Clipping caps the size of each step while keeping its direction, "
        "so the run stays finite and the loss drifts down from its huge start. It is a safety net, "
        "not a cure: after 60 steps the loss is still many times the baseline, and left to run it "
        "comes down to the baseline but not below: clipping does not by itself make the net learn "
        "this task.",
        "param_grads",
        "Try clipping by value instead of by norm.",
        compare=({"clip": "none"},),
        run_labels=("clipped by norm", "no clipping (before)"),
        steps=60,
        claim="Without clipping the run diverges within 10 steps; clipped, it trains all 60 steps with "
              "every applied gradient at most the threshold and ends with a lower loss than it started, "
              "yet never gets below 10 times the baseline.",
        checks=(diverged_at(1).at_most(10).from_step(10), applied_gradient(0).at_most(1.0001),
                clipped_steps(0).over(0).at_pause(), loss_against_first(0, 5).under(1).at_pause(), loss(0).over(10))),
    Lesson(
        "fix-irnn", "Remedy: ReLU with identity weights (IRNN)",
        {"activation": "relu", "init": "identity"},
        "Start the loop weights as the identity, so each step copies its memory, and use ReLU, whose "
        "slope is exactly one wherever it is active. Then the gradient passes back through time "
        "almost unchanged instead of shrinking: about three quarters of it reaches the first of 100 steps. "
        "Leaky ReLU and PReLU keep a small slope for negative inputs and behave the same here.",
        "profile",
        "Compare the three ReLU variants over a few hundred steps.",
        compare=({"activation": "leaky_relu"}, {"activation": "prelu"},
                 {"activation": "tanh", "init": "default"}),
        run_labels=("ReLU", "Leaky ReLU", "PReLU", "tanh, default weights (before)"),
        steps=1,
        claim="With ReLU, Leaky ReLU or PReLU and identity weights the gradient at the first of 100 "
              "steps is within one power of ten of the last; with tanh and default weights it falls "
              "by more than 15.",
        checks=(apart(0).under(1).at(1), apart(1).under(1).at(1), apart(2).under(1).at(1), orders(3).over(15).at(1))),
    Lesson(
        "dead-units", "Remedy: Leaky ReLU and PReLU against dead units",
        {"seq_len": 50, "activation": "leaky_relu", "init": "identity", "lr": 0.01},
        "A ReLU unit whose input is negative outputs 0 and has slope 0, so no gradient passes through it; "
        "if its input stays negative for every example, nothing can change that any more, and the unit is "
        "dead. Here a learning rate of 0.01 jolts the IRNN's weights so hard in its first steps that almost "
        "every ReLU unit dies: the gradient stops reaching the early timesteps at all, and the loss stays "
        "stuck far above the baseline. Leaky ReLU keeps a slope of 0.01 for negative inputs and PReLU learns "
        "its own, so after the same jolt every unit still passes some gradient, and both come back to the "
        "baseline.",
        "waterfall",
        "Lower the learning rate to 0.001 and see whether the ReLU units survive.",
        compare=({"activation": "prelu"}, {"activation": "relu"}),
        run_labels=("Leaky ReLU", "PReLU", "ReLU (before)"),
        steps=100,
        claim="From step 10 on, at every step over 95% of the ReLU net's activations are 0 and pass no "
              "gradient, and from step 11 on no gradient at all reaches the first of the 50 timesteps; with "
              "Leaky ReLU and PReLU it reaches the first timestep at every step, within 3 powers of ten of "
              "the last. From step 50 on, averaged over the last 25 steps, the ReLU net's loss stays above 5 "
              "times the baseline, the other two's within 25% of it.",
        checks=(saturated(2).over(0.95).from_step(10), first_to_last(2).at_most(0).from_step(11),
                loss_average(2, 25).over(5).from_step(50),
                saturated(0).at_most(0), smallest_gradient(0).over(0), apart(0).under(3),
                loss_average(0, 25).between(0.75, 1.25).from_step(50),
                saturated(1).at_most(0), smallest_gradient(1).over(0), apart(1).under(3),
                loss_average(1, 25).between(0.75, 1.25).from_step(50))),
    Lesson(
        "fix-skip", "Remedy: skip connections in a deep stack",
        {"seq_len": 50, "layers": 6, "skip": True},
        "A skip connection adds each layer's input to its output, giving the learning signal a "
        "shortcut down the stack that does not shrink. With skips the bottom layer's weights get "
        "nearly as much gradient as the top one's.",
        "layers",
        "Turn skips off again and compare the layer rows.",
        compare=({"skip": False},),
        run_labels=("with skips", "no skips (before)"),
        steps=1,
        claim="With skips the bottom layer's weights get at least half the gradient of the top "
              "layer's; without them less than a fifth.",
        checks=(bottom_to_top(0).at_least(0.5).at(1), bottom_to_top(1).under(0.2).at(1))),
    Lesson(
        "fix-lstm", "Remedy: LSTM",
        {"seq_len": 50, "cell": "lstm", "forget_bias": 2.0, "lr": 0.01, "clip": "norm"},
        "The LSTM keeps a separate memory lane that is updated by adding, guarded by gates, and its forget "
        "gate starts mostly open (a positive forget bias, the standard recipe), so the learning signal can "
        "pass back without going through a squashing function at every step. At the start about 2% of it reaches "
        "the first of the 50 timesteps, while the tanh RNN's has faded by ten powers of ten: watch "
        "the waterfall. Then watch the loss: for a few hundred steps both nets sit at the baseline, the score "
        "of always guessing the average, until the LSTM finds the two marked numbers and its loss drops far "
        "below it, while the tanh RNN, trained the same way on the same data, never leaves it.",
        "waterfall",
        "Try seq_len 100: the LSTM needs over a thousand steps to find the marked numbers; the tanh RNN has "
        "not found them after 2,500.",
        compare=({"cell": "rnn", "forget_bias": None},),
        run_labels=("LSTM", "tanh RNN (before)"),
        steps=1000,
        claim="At the start the LSTM's gradient falls by under 2 powers of ten across the 50 timesteps, the "
              "tanh RNN's by more than 10; at no step does the LSTM's fall reach 7. Both sit at the baseline "
              "for a few hundred steps: the LSTM's 50-step average stays above 0.9 of it from step 50 to 300. "
              "By step 1000 the LSTM's loss, averaged over the last 50 steps, is under a quarter of the "
              "baseline, while the tanh RNN's 50-step average stays above 0.9 of the baseline at every step "
              "from step 50 on, and its last loss is above 0.6 of it.",
        checks=(orders(0).under(2).at(1), orders(1).over(10).at(1), orders(0).under(7),
                loss_average(0, 50).over(0.9).from_step(50).to_step(300),
                loss_average(0, 50).under(0.25).at_pause(), loss(0).under(0.25).at_pause(), *stays_at_baseline(1))),
    Lesson(
        "fix-gru", "Remedy: GRU",
        {"seq_len": 50, "cell": "gru", "lr": 0.01, "clip": "norm"},
        "The GRU's update gate decides how much old memory to keep. At the start the learning signal reaching "
        "the first of the 50 timesteps is some ten powers of ten weaker than at the last, as with the tanh "
        "RNN; as the gate learns to keep more, the memory, and with it the signal, passes back through the 50 "
        "steps losing under three powers of ten instead of ten: watch the early timesteps brighten. Once the "
        "signal arrives, the loss follows: within a few hundred steps the GRU's loss drops far below the "
        "baseline, while the tanh RNN, trained the same way on the same data, stays at it.",
        "waterfall",
        "Try seq_len 100; it takes longer but gets there.",
        compare=({"cell": "rnn"},),
        run_labels=("GRU", "tanh RNN (before)"),
        steps=400,
        claim="At the start the GRU's gradient at the first of 50 timesteps is over 9 powers of ten below the "
              "last. At every step from step 100 on its update gate stays open past 0.6 and the gradient at "
              "the first timestep within 3 powers of ten of the last; by step 400 its loss, averaged over the "
              "last 50 steps, is under a tenth of the baseline. The tanh RNN trained the same way stays above "
              "0.9 of the baseline (50-step average) at every step from step 50 on, and its last loss is above "
              "0.6 of it.",
        checks=(orders(0).over(9).at(1), gate(0, 1, "update").over(0.6).from_step(100),
                orders(0).under(3).from_step(100),
                loss_average(0, 50).under(0.1).at_pause(), loss(0).under(0.25).at_pause(), *stays_at_baseline(1))),
    Lesson(
        "fix-attention", "Remedy: attention",
        {"seq_len": 50, "attention": True, "lr": 0.003, "clip": "norm"},
        "With attention the answer looks directly at every earlier memory, not only the last one. That "
        "gives the learning signal a one-step shortcut to each timestep, so even the first steps get a "
        "usable gradient from the very start. Within a few hundred steps the loss follows: the net with "
        "attention finds the two marked numbers and its loss drops far below the baseline, while the same "
        "net without attention, trained the same way on the same data, stays at it.",
        "attribution",
        "Turn attention off and compare the Input influence view; the Answers view (View menu) shows the "
        "run with attention answer by answer.",
        compare=({"attention": False},),
        run_labels=("with attention", "without (before)"),
        steps=500,
        claim="With attention the gradient at the first of 50 steps is within 2 powers of ten of the last "
              "at every step; without, it falls by more than 10 at the start. By step 500 the loss with "
              "attention, averaged over the last 50 steps, is under a quarter of the baseline, while "
              "without attention the 50-step average stays above 0.9 of the baseline at every step from "
              "step 50 on, and its last loss is above 0.6 of it.",
        checks=(apart(0).under(2), orders(1).over(10).at(1), loss_average(0, 50).under(0.25).at_pause(),
                loss(0).under(0.25).at_pause(), *stays_at_baseline(1))),
]

_LESSONS += [Lesson(**fields) for fields in CELL_LESSONS]  # the newer cells (engine/cell_lessons.py)
LESSONS: dict[str, Lesson] = {l.name: l for l in _LESSONS}


def lesson_runs(name: str, overrides: list[str] | None = None) -> list[Config]:
    """The configs of lesson `name`'s runs with the user's `KEY=VALUE` overrides on top of each;
    ConfigError names the lesson if there is none of that name, or the setting that is refused."""
    if name not in LESSONS:
        raise ConfigError("--lesson", name, " | ".join(LESSONS))
    return LESSONS[name].runs(overrides)
