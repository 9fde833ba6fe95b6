"""Headless command line: `train`, `lessons` and `sweep` (engine/sweep.py). Never imports Qt.

Runs in the main thread of a plain Python process. Bad input exits with status 2 and a message
that names the key, the value and what is allowed; never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from engine import config as cfg
from engine import experiment as experiments
from engine import admission, detail, devices, user_files, memory, registry
from engine.args import ArgumentParser, add_file_options, probe_writable, usage_message, whole_number
from engine.errors import UsageError
from engine.lessons import LESSONS, lesson_runs
from engine.metrics import MetricsLog
from engine.model import GATE_NAMES
from engine.trainer import Trainer



def resolve_config(lesson: str | None, config_file: str | None, assignments: list[str],
                   run: int | None = None, model: str | None = None, data: str | None = None) -> cfg.Config:
    """The config a run starts from: defaults, then a lesson (its run `run`, 1-based, default 1)
    or a file, then the user's model and data files (engine/user_files.py), then --set overrides."""
    if lesson is not None and config_file is not None:
        raise UsageError("use either --lesson or --config, not both")
    if config_file is not None and not config_file.strip():  # (an unset shell variable): not the defaults
        raise cfg.ConfigError("--config", config_file, "a JSON or TOML settings file", "is empty")
    if config_file is not None and experiments.is_experiment_file(Path(config_file)):
        return _experiment_run(config_file, run, assignments, model, data)
    if run is not None and lesson is None:
        raise cfg.ConfigError("--run", run, "--run only together with --lesson NAME or an experiment file "
                              "(a settings file holds one run)",
                              "is given with --config" if config_file is not None else "is given without --lesson")
    if lesson is not None:
        count = len(lesson_runs(lesson))  # (refuses an unknown lesson) a bad --run is named before a bad --set
        run = 1 if run is None else run
        if not 1 <= run <= count:
            raise cfg.ConfigError("--run", run, f"1 ({lesson} has a single run)" if count == 1
                                  else f"1 to {count} ({describe_runs(lesson)})")
        return user_files.lesson_with_files(lesson, assignments, model, data)[run - 1]
    for option, path in (("--model", model), ("--data", data)):
        if path is not None and not path.strip():
            raise cfg.ConfigError(option, path, "a file path", "is empty")
    base = cfg.load(config_file) if config_file is not None else cfg.Config()
    return user_files.with_files(base, model, data, assignments or [])


def _experiment_run(path: str, run: int | None, assignments: list[str], model: str | None,
                    data: str | None) -> cfg.Config:
    """Run `run` (1-based, default 1) of an experiment file (.rgl), read and checked whole, with the
    user's files and --set overrides on it."""
    try:
        experiment = experiments.load(path)
    except experiments.ExperimentError as exc:
        raise UsageError(str(exc)) from None
    count = len(experiment.configs)
    run = 1 if run is None else run
    if not 1 <= run <= count:
        raise cfg.ConfigError("--run", run, f"1 ({Path(path).name} holds a single run)" if count == 1
                              else f"1 to {count} (the runs {Path(path).name} holds)")
    return user_files.with_files(experiment.configs[run - 1], model, data, assignments or [])


def describe_runs(lesson: str) -> str:
    """`fix-lstm compares 2 runs: 1 "LSTM", 2 "tanh RNN (before)"`, from the lesson's own labels."""
    count, labels = len(LESSONS[lesson].runs()), LESSONS[lesson].run_labels
    runs = [f'{k} "{labels[k - 1]}"' if k <= len(labels) else str(k) for k in range(1, count + 1)]
    return f"{lesson} compares {count} runs: " + ", ".join(runs)


def lesson_run_notice(lesson: str) -> str | None:
    """For a comparison lesson trained without --run: say that only run 1 trains, and how to get
    the others; the headless runner trains one run, the window compares them."""
    count = len(LESSONS[lesson].runs())
    if count == 1:
        return None
    others = {2: "--run 2 for the other", 3: "--run 2 or 3 for the others"}.get(
        count, f"--run 2 to {count} for the others")
    return f"{describe_runs(lesson)}; training run 1 (use {others})"


@contextlib.contextmanager
def _memory_checked(config: cfg.Config):
    """Settings that are each within range can still need more memory than the machine has (torch
    raises RuntimeError or torch.OutOfMemoryError): bad input, reported as such."""
    try:
        yield
    except RuntimeError as exc:
        if not ("can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()):
            raise
        size = f"seq_len {config.seq_len} x batch {config.batch} x hidden {config.hidden} x layers {config.layers}"
        raise cfg.ConfigError("settings", size, "smaller sizes: fewer timesteps, a smaller batch or fewer units",
                              "need more memory than this machine can give") from None


class Terminated(Exception):
    """SIGTERM arrived (a `kill`, a job scheduler's time limit): stop as on Ctrl-C, keeping the data."""


def _raise_terminated(signum, frame):
    raise Terminated()


def use_one_thread():
    """Small recurrent models gain nothing from intra-op threads, and two threads collapse when
    another process holds a core."""
    torch.set_num_threads(1)


class Progress:
    """A one-line progress bar on stderr: steps, steps/s, loss."""

    def __init__(self, total: int, stream=None):
        stream = sys.stderr if stream is None else stream  # looked up now: tests and callers may swap it
        self.total, self.stream, self.start = total, stream, time.perf_counter()
        self.last_draw = 0.0
        self.last_done = None
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, done: int, loss: float, force=False):
        now = time.perf_counter()
        every = 0.1 if self.tty else 2.0
        if done == self.last_done or (not force and now - self.last_draw < every):
            return  # (a forced final update of a line already drawn would repeat it in a log)
        self.last_draw, self.last_done = now, done
        rate = done / max(now - self.start, 1e-9)
        width = 30
        filled = int(width * done / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} steps  {rate:6.1f} steps/s  loss {loss:.4g}"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")


OUTPUT_FILES = ("config.json", "metrics.npz", "summary.json")


def train(config: cfg.Config, steps: int, out_dir: Path, progress: bool = True, notice: str | None = None,
          detail_every: int = 0, eigenvalues: bool = False) -> dict:
    """Train for `steps` steps (or until divergence or Ctrl-C) and write the run's files. `notice`
    goes to stderr once the output folder is usable, before the progress bar. Sizes that together
    need more memory than the machine has are refused first, before anything is allocated or written.
    `detail_every` N > 0: every N steps, also the step's detail (engine.detail) into metrics.npz. `eigenvalues`:
    the tanh RNN's eigenvalues of weight_hh at every step too (Trainer.take_eigenvalues)."""
    admission.admit(config, kept=memory.headless(steps))
    check_detail_every(config, steps, detail_every)
    use_one_thread()
    if out_dir.exists() and not out_dir.is_dir():
        raise cfg.ConfigError("--out", str(out_dir), "a folder (new or existing), not a file", "is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cfg.ConfigError("--out", str(out_dir), "a folder that can be created",
                              f"cannot be created ({exc.strerror or exc.__class__.__name__})") from None
    for name in OUTPUT_FILES:  # refused now, not after the last step
        problem = probe_writable(out_dir / name)
        if problem:
            raise cfg.ConfigError("--out", str(out_dir), "a folder where " + ", ".join(OUTPUT_FILES) + " can be written",
                                  f"cannot take {name}: it {problem}")
    cfg.save(config, out_dir / "config.json")
    if notice:
        print(notice, file=sys.stderr, flush=True)
    with _memory_checked(config):
        trainer = Trainer(config, check_memory=False)  # (checked above, with the steps' snapshots)
    log = MetricsLog()
    trainer.keep_last_batch = detail_every > 0
    trainer.take_eigenvalues = eigenvalues
    details = []
    bar = Progress(steps) if progress else None
    interrupted = None  # or how the run was stopped: "Ctrl-C" or "SIGTERM"
    failure = None
    in_main = threading.current_thread() is threading.main_thread()  # only there can signals be caught
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    start = time.perf_counter()
    try:
        for _ in range(steps):
            with _memory_checked(config):
                snap = trainer.step()
            log.append(snap)
            if detail_every and snap.step % detail_every == 0 and not snap.diverged:
                details.append(trainer.detail())
            if bar:
                bar.update(len(log), snap.loss)
            if snap.diverged:
                break
    except KeyboardInterrupt:
        interrupted = "Ctrl-C"
    except Terminated:
        interrupted = "SIGTERM"
    except cfg.ConfigError as exc:  # ran out of memory part-way: keep the steps recorded, then report it
        failure = exc
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    elapsed = time.perf_counter() - start
    if bar and len(log):
        bar.update(len(log), log.snapshots[-1].loss, force=True)
        bar.close()
    log.save_npz(out_dir / "metrics.npz", detail.to_arrays(details))
    last = log.snapshots[-1] if len(log) else None
    summary = {
        "steps": len(log),  # steps trained: `train --config DIR/config.json --steps N` repeats them
        "steps_requested": steps,
        "final_loss": None if last is None else last.loss,
        "final_metric": None if last is None else last.metric,
        "metric_name": trainer.task.metric_name,
        "baseline_loss": trainer.task.baseline_loss,
        "steps_per_second": len(log) / elapsed if elapsed > 0 else None,
        "diverged": trainer.diverged,
        "diverged_at_step": trainer.diverged_at_step,
        "exploded": trainer.exploded_at_step is not None,  # loss or gradient past engine.trainer's bounds, still finite
        "exploded_at_step": trainer.exploded_at_step,
        "interrupted": interrupted is not None,
        "interrupted_by": interrupted,
        "events": [e.to_dict() for e in trainer.events],
        "seed": config.seed,
        "device": str(trainer.device),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "config": config.to_dict(),
    }
    if trainer.imported:
        summary["model"] = {**trainer.imported.shape(), "loaded": trainer.imported_note}
    if config.task == "data":
        held_out = [s.held_out_loss for s in log.snapshots if math.isfinite(s.held_out_loss)]
        summary["data"] = {**trainer.task.data.summary(), "final_held_out_loss": held_out[-1] if held_out else None}
    (out_dir / "summary.json").write_text(json.dumps(_strict_json(summary), indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
    if failure is not None:
        raise failure
    return summary


def check_detail_every(config: cfg.Config, steps: int, every: int) -> None:
    """Refuse a --detail-every whose detail arrays would pass detail.HEADLESS_DETAIL_BYTES."""
    if every < 0:
        raise cfg.ConfigError("--detail-every", every, "0 (no detail) or a step count of at least 1")
    if not every:
        return
    task = registry.TASKS[config.task] if config.task != "data" else None
    steps_per_sequence = task(config.seq_len, 1).n_steps if task else config.seq_len
    answers = len(task(config.seq_len, 1).output_steps) if task else config.seq_len
    gates = len(GATE_NAMES[config.cell])
    each = detail.detail_bytes(config.layers, gates, steps_per_sequence, config.hidden, answers)
    if (steps // every) * each > detail.HEADLESS_DETAIL_BYTES:
        least = -(-steps * each // detail.HEADLESS_DETAIL_BYTES)
        raise cfg.ConfigError("--detail-every", every, f"at least {least} for {steps} steps (the detail arrays would "
                                                       f"take {(steps // every) * each / 1e9:.1f} GB; at most "
                                                       f"{detail.HEADLESS_DETAIL_BYTES / 1e9:.1f} GB)")


def _new_run_folder() -> Path:
    """runs/<date-time>, with -2, -3, ... when runs start within the same second."""
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _strict_json(value):
    """NaN and infinity are not JSON (Python writes them, most other readers reject the file):
    a diverged run's non-finite numbers are written as null; `diverged` says why."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def _train_command(args) -> int:
    config = resolve_config(args.lesson, args.config, args.set, args.run, args.model, args.data)
    if args.steps < 1:
        raise cfg.ConfigError("--steps", args.steps, "an integer of at least 1")
    if args.steps_default and args.lesson:
        args.steps = LESSONS[args.lesson].steps
    if args.out is not None and not args.out.strip():  # (an unset shell variable): not the default folder
        raise cfg.ConfigError("--out", args.out, "a folder path (leave --out out for runs/<date-time>)", "is empty")
    out = Path(args.out) if args.out is not None else _new_run_folder()
    notice = lesson_run_notice(args.lesson) if args.lesson and args.run is None else None
    where = devices.explain(config) if config.device == "auto" and torch.cuda.is_available() else None
    notice = "\n".join(filter(None, [notice, *user_files.describe(config), where])) or None
    eigenvalues = args.eigenvalues or bool(args.lesson and LESSONS[args.lesson].reads_eigenvalues)
    summary = train(config, args.steps, out, notice=notice, detail_every=args.detail_every, eigenvalues=eigenvalues)
    state = "diverged at step %d" % summary["diverged_at_step"] if summary["diverged"] else (
        f"interrupted by {summary['interrupted_by']}" if summary["interrupted"] else "finished")
    if summary["exploded"]:
        state += f" (exploded at step {summary['exploded_at_step']})"

    def number(value, form):
        return "-" if value is None else format(value, form)
    print(f"{state}: {summary['steps']} step{'' if summary['steps'] == 1 else 's'}, final loss {number(summary['final_loss'], '.4g')} "
          f"(baseline {number(summary['baseline_loss'], '.4g')}), "
          + (f"held-out loss {number(summary['data']['final_held_out_loss'], '.4g')}, " if "data" in summary else "")
          + f"{number(summary['steps_per_second'], '.1f')} steps/s; wrote {out}/")
    return {None: 0, "Ctrl-C": 130, "SIGTERM": 143}[summary["interrupted_by"]]


def _sweep_command(args, picture=None) -> int:
    """`sweep`: a phase diagram's points (engine/sweep.py), then phase.png through `picture(folder)` (main.py
    passes the window's drawing, gui/views/phase.py: Qt is loaded only then, after the numbers are written)."""
    from engine import sweep
    config = resolve_config(args.lesson, args.config, args.set)
    if args.out is None or not args.out.strip():
        raise cfg.ConfigError("--out", args.out or "", "a folder for sweep.csv, sweep.npz and phase.png",
                              "is missing" if args.out is None else "is empty")
    out = Path(args.out)
    use_one_thread()
    outcome = sweep.run(config, args.grid, args.steps, args.seeds, out, args.executor, args.address, args.workers)
    wrote = [sweep.CSV_FILE, sweep.NPZ_FILE]
    if outcome.interrupted is None and picture is not None:
        try:
            picture(out)
            wrote.append(sweep.PICTURE_FILE)
        except Exception as exc:  # the numbers are written; a picture Qt cannot draw here is said, not fatal
            print(f"{sweep.PICTURE_FILE} not drawn: {exc.__class__.__name__}: {exc}", file=sys.stderr)
    state = f"interrupted by {outcome.interrupted}" if outcome.interrupted else "finished"
    before = f" ({outcome.resumed} from before)" if outcome.resumed else ""
    again = "; rerun the same command to finish it" if outcome.interrupted else ""
    print(f"{state}: {outcome.done} of {outcome.points} points{before} in {outcome.seconds:.1f} s; wrote "
          f"{', '.join(str(out / name) for name in wrote)}{again}")
    return {None: 0, "Ctrl-C": 130, "SIGTERM": 143}[outcome.interrupted]


def _lessons_command(args) -> int:
    for lesson in LESSONS.values():
        print(f"{lesson.name}\t{lesson.title}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="main.py", description="RNN Gradient Lab, headless commands.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    t = sub.add_parser("train", help="train without a window and write config.json, metrics.npz, summary.json",
                       description="Train without a window (Qt is never loaded) and write config.json, metrics.npz "
                                   "and summary.json to the output folder. Ctrl-C saves what was recorded.")
    source = t.add_mutually_exclusive_group()
    source.add_argument("--lesson", help="start from a lesson's settings (see `main.py lessons`)")
    source.add_argument("--config", help="start from a JSON or TOML config file, or an experiment file (.rgl: "
                                         "its run 1, or --run K)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting; repeatable (of two for the same KEY, the last wins)")
    add_file_options(t)
    t.add_argument("--run", type=whole_number, metavar="K",
                   help="with --lesson or an experiment file: which of its runs to train, from 1 (default 1)")
    t.add_argument("--steps", type=whole_number, default=None,
                   help="training steps (default 500, or the lesson's own); summary.json records them")
    t.add_argument("--out", help="output folder (default runs/<date-time>)")
    t.add_argument("--detail-every", type=whole_number, default=0, metavar="N",
                   help="every N steps also write the step's per-unit state gradients (grad_h_units, gate_units) "
                        "and the answer x input connectivity map to metrics.npz (default 0: none)")
    t.add_argument("--eigenvalues", action="store_true",
                   help="also the tanh RNN's eigenvalues of weight_hh at every step, into metrics.npz (an eigenvalue "
                        "problem a step: a fifth of the step at hidden 128; on by itself for a lesson whose claim "
                        "reads them). The other cells' fixed factors (LRU, IndRNN) are always there")
    t.set_defaults(func=_train_command)
    w = sub.add_parser("sweep", help="a phase diagram: every combination of a few settings, measured at "
                                     "initialisation or trained; writes sweep.csv, sweep.npz and phase.png",
                       description="Every combination of the --grid values (any setting), each point seeded, measured "
                                   "at initialisation (--steps 0) or trained --steps N steps. Writes OUT/sweep.csv, "
                                   "OUT/sweep.npz and OUT/phase.png (orders lost over the first two grid keys). "
                                   "Ctrl-C keeps the finished points; the same command again resumes.")
    source = w.add_mutually_exclusive_group()
    source.add_argument("--lesson", help="start from a lesson's settings (its run 1)")
    source.add_argument("--config", help="start from a JSON or TOML config file, or an experiment file's run 1")
    w.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting for every point; repeatable")
    w.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a setting and its values; repeatable: every combination is a point (the first two make "
                        "the picture's axes)")
    w.add_argument("--steps", type=whole_number, default=0,
                   help="0 (default): measure at initialisation, one forward and backward pass and no update; "
                        "N: train N steps")
    w.add_argument("--seeds", type=whole_number, default=1, metavar="K",
                   help="K seeds per point, from the settings' seed on (default 1)")
    w.add_argument("--out", help="output folder; the same folder again resumes the same sweep")
    w.add_argument("--executor", default="local", help="local (default): processes on this machine; ray: a Ray "
                                                       "cluster (pip install ray)")
    w.add_argument("--address", help="with --executor ray: the cluster's address (default: start a local Ray)")
    w.add_argument("--workers", type=whole_number, default=None, metavar="N",
                   help="processes (local) or CPUs of a local Ray (default: the CPU count; with --steps 0, "
                        "this process alone, which stacks the networks)")
    w.set_defaults(func=_sweep_command)
    ls = sub.add_parser("lessons", help="list the guided lessons: name, then title")
    ls.set_defaults(func=_lessons_command)
    return parser


def main(argv: list[str], picture=None) -> int:
    """`picture(folder)`: draws a sweep's phase.png (main.py passes Qt's; without it, none is drawn)."""
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:  # named after the command they were given to, whose --help lists what it takes
            raise UsageError(usage_message(f"main.py {args.command}", f"unrecognized arguments: {' '.join(extra)}"))
        if args.command == "sweep":
            return _sweep_command(args, picture)
        if getattr(args, "steps", 0) is None:
            args.steps, args.steps_default = 500, True
        else:
            args.steps_default = False
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
