"""The headless runner: the files it writes, reproducibility from its own config.json, clean errors."""
import json
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import cli
from engine import config as cfg
from engine.lessons import LESSONS, lesson_runs
from engine.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = ["--set", "seq_len=10", "--set", "hidden=8", "--set", "batch=4", "--set", "layers=2"]


def run(tmp_path, name, *args, steps=5):
    out = tmp_path / name
    code = cli.main(["train", "--steps", str(steps), "--out", str(out), *args])
    return code, out


def test_train_writes_the_tanh_rnns_eigenvalues_when_asked_or_for_a_lesson_that_reads_them(tmp_path):
    def eigenvalues(out):
        with np.load(out / "metrics.npz") as npz:
            return npz["eigenvalues"] if "eigenvalues" in npz else None
    assert eigenvalues(run(tmp_path, "plain", *SMALL, steps=2)[1]) is None  # an eigenvalue problem a step: not by default
    asked = eigenvalues(run(tmp_path, "asked", *SMALL, "--eigenvalues", steps=2)[1])
    assert asked.shape == (2, 2, 8) and np.iscomplexobj(asked) and not np.any(np.isnan(asked))
    lesson = eigenvalues(run(tmp_path, "lesson", "--lesson", "factor-per-step", "--set", "seq_len=20", steps=1)[1])
    assert lesson.shape == (1, 1, 64)


def test_train_writes_config_metrics_and_summary(tmp_path, capsys):
    code, out = run(tmp_path, "run", *SMALL, "--set", "cell=lstm")
    assert code == 0
    assert capsys.readouterr().out.startswith(f"finished: 5 steps, final loss ")
    config = cfg.load(out / "config.json")
    assert config == cfg.Config(seq_len=10, hidden=8, batch=4, layers=2, cell="lstm")

    with np.load(out / "metrics.npz") as npz:
        m = dict(npz)
    S, L, T = 5, 2, 10
    expected_shapes = {"step": (S,), "loss": (S,), "grad_h": (S, L, T), "grad_c": (S, L, T), "grad_x": (S, T),
                       "grad_norm": (S,), "grad_norm_clipped": (S,), "sigma_max": (S, L),
                       "grad_norm_layer": (S, L), "gate_means": (S, L, 4), "step_time": (S,)}
    for key, shape in expected_shapes.items():
        assert m[key].shape == shape, key
    np.testing.assert_array_equal(m["step"], np.arange(1, 6))
    assert "attention" not in m  # only recorded with attention on

    # the numbers are those of a Trainer with that config
    trainer = Trainer(config)
    snaps = [trainer.step() for _ in range(S)]
    np.testing.assert_array_equal(m["loss"], [s.loss for s in snaps])
    np.testing.assert_array_equal(m["grad_h"], np.stack([s.grad_h for s in snaps]))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_loss"] == m["loss"][-1]
    assert summary["baseline_loss"] == pytest.approx(1 / 6)
    assert summary["steps"] == summary["steps_requested"] == 5 and summary["steps_per_second"] > 0
    assert summary["diverged"] is False and summary["diverged_at_step"] is None
    assert summary["events"] == [] and summary["seed"] == 0
    assert summary["versions"]["torch"] == torch.__version__ and summary["versions"]["numpy"] == np.__version__
    assert summary["config"] == config.to_dict()


@pytest.mark.parametrize("source", ["config.json", "summary.json"])
def test_rerun_from_the_written_config_reproduces_the_metrics_bit_for_bit(tmp_path, source):
    extra = ["--set", "seed=7", "--set", "init=orthogonal", "--set", "spectral_radius=1.2",
             "--set", "clip=norm", "--set", "clip_threshold=0.3", "--set", "lr=0.01"]
    code, first = run(tmp_path, "first", *SMALL, *extra)
    assert code == 0
    code, again = run(tmp_path, "again", "--config", str(first / source))
    assert code == 0
    assert cfg.load(again / "config.json") == cfg.load(first / "config.json")
    with np.load(first / "metrics.npz") as a, np.load(again / "metrics.npz") as b:
        assert set(a.files) == set(b.files)
        for key in a.files:
            if key != "step_time":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a["clipped"].any()  # the clipping setting did survive the round trip
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (first, again))
    assert s1["final_loss"] == s2["final_loss"] and s1["seed"] == s2["seed"] == 7


def test_a_diverged_run_exits_0_and_says_so(tmp_path, capsys):
    code, out = run(tmp_path, "boom", "--set", "seq_len=20", "--set", "hidden=16", "--set", "batch=8",
                    "--set", "optimizer=sgd", "--set", "lr=1.0", "--set", "activation=linear", steps=40)
    assert code == 0
    assert capsys.readouterr().out.startswith("diverged at step ")
    text = (out / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda name: pytest.fail(f"summary.json holds {name}: not JSON"))
    assert summary["diverged"] is True and summary["final_loss"] is None  # NaN is written as null
    step = summary["diverged_at_step"]
    assert isinstance(step, int) and 1 <= step < 40
    assert summary["steps"] == step and summary["steps_requested"] == 40  # training stopped there
    assert [e["kind"] for e in summary["events"]] == ["diverged"] and summary["events"][0]["step"] == step
    with np.load(out / "metrics.npz") as m:
        assert m["diverged"].tolist() == [False] * (step - 1) + [True]


def test_lesson_settings_and_lessons_command(tmp_path, capsys):
    assert cli.main(["lessons"]) == 0
    assert "vanishing-tanh\tVanishing gradients with tanh" in capsys.readouterr().out
    code, out = run(tmp_path, "lesson", "--lesson", "vanishing-tanh", "--set", "seq_len=6", "--set", "hidden=4",
                    steps=2)
    assert code == 0
    assert cfg.load(out / "config.json") == cfg.Config(task="adding", seq_len=6, hidden=4)


TINY = ["--set", "seq_len=10", "--set", "hidden=8"]


def test_run_2_trains_the_lessons_second_run_and_reruns_from_its_folder(tmp_path, capsys):
    code, out = run(tmp_path, "second", "--lesson", "fix-lstm", "--run", "2", *TINY, steps=2)
    assert code == 0
    assert "compares" not in capsys.readouterr().err  # the run was chosen, nothing to point out
    expected = cfg.apply_overrides(LESSONS["fix-lstm"].runs()[1], ["seq_len=10", "hidden=8"])
    assert cfg.load(out / "config.json") == expected and expected.cell == "rnn"

    # config.json plus summary.json's step count is everything a rerun needs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == summary["steps_requested"] == 2
    code, again = run(tmp_path, "again", "--config", str(out / "config.json"), steps=summary["steps"])
    assert code == 0
    with np.load(out / "metrics.npz") as a, np.load(again / "metrics.npz") as b:
        np.testing.assert_array_equal(a["loss"], b["loss"])
        np.testing.assert_array_equal(a["grad_h"], b["grad_h"])


def test_a_comparison_lesson_without_run_says_it_trains_run_1_before_the_progress_bar(tmp_path):
    out = tmp_path / "first"
    result = subprocess.run([sys.executable, "main.py", "train", "--lesson", "fix-lstm", "--steps", "2",
                             "--out", str(out), *TINY], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    labels = LESSONS["fix-lstm"].run_labels
    assert result.stderr.splitlines()[0] == (f'fix-lstm compares 2 runs: 1 "{labels[0]}", 2 "{labels[1]}"; '
                                             "training run 1 (use --run 2 for the other)")
    assert cfg.load(out / "config.json") == cfg.apply_overrides(LESSONS["fix-lstm"].runs()[0],
                                                                ["seq_len=10", "hidden=8"])


def test_a_single_run_lesson_gets_no_note(tmp_path, capsys):
    code, _ = run(tmp_path, "single", "--lesson", "vanishing-tanh", *TINY, steps=2)
    assert code == 0
    err = capsys.readouterr().err
    assert "compares" not in err and "--run" not in err


BAD_ARGS = [
    (["--set", "hiden=3"], "hiden"),
    (["--set", "seq_len=abc"], "'abc'"),
    (["--set", "lr=-1"], "lr: -1 is not allowed"),  # as typed, not as Python reads it back (-1.0)
    (["--set", "lr=1e-400"], "lr: 1e-400 is not allowed"),  # (reads as 0.0)
    (["--set", "spectral_radius=-1"], "spectral_radius: -1 is not allowed"),
    (["--config", ""], "--config: '' is empty; allowed: a JSON or TOML settings file"),  # not the defaults
    (["--lesson", ""], "--lesson: '' is not allowed; allowed: loop | "),
    (["--lesson", "", "--run", "2"], "--lesson: '' is not allowed"),  # --lesson was given, if empty
    (["--set", "layers=2.5"], "layers: '2.5' is not allowed; allowed: an integer"),  # 2.0 is 2, as in a file
    (["--set", "layers=inf"], "layers: 'inf' is not allowed; allowed: an integer"),
    (["--set", "lr=nan"], "lr: nan"),
    (["--set", "task=digits", "--set", "seq_len=100"], "seq_len: 100"),
    (["--set", "skip=maybe"], "skip"),
    (["--set", "seq_len"], "KEY=VALUE"),
    (["--steps", "0"], "--steps"),
    (["--steps", "many"], "--steps"),
    (["--lesson", "nope"], "vanishing-tanh"),
    (["--lesson", "vanishing-tanh", "--config", "x.json"], "--config"),
    (["--config", "{missing}"], "cannot be read"),
    (["--config", "{malformed}"], "valid JSON"),
    (["--config", "{badtoml}"], "valid TOML"),
    (["--config", "{badvalue}"], "hidden: 0"),
    (["--lesson", "fix-lstm", "--run", "3"],
     '--run: 3 is not allowed; allowed: 1 to 2 (fix-lstm compares 2 runs: 1 "'),
    (["--lesson", "fix-lstm", "--run", "0"], "--run: 0 is not allowed; allowed: 1 to 2"),
    (["--lesson", "fix-lstm", "--run", "two"], "--run: 'two' is not allowed; allowed: a whole number"),
    (["--steps", "abc"], "error: --steps: 'abc' is not allowed; allowed: a whole number"),  # as --steps 0 reads
    (["--steps", "1_0"], "--steps: '1_0' is not allowed; allowed: a whole number"),  # (Python's int: 10)
    (["--set", "lr=1_0"], "lr: '1_0' is not allowed; allowed: a number"),
    (["--set", "seq_len=1_00"], "seq_len: '1_00' is not allowed; allowed: an integer"),
    (["--out", ""], "--out: '' is empty; allowed: a folder path"),  # not the default folder
    (["--bogus"], "main.py train: unrecognized arguments: --bogus; allowed: see `main.py train --help`"),
    (["--lesson", "vanishing-tanh", "--run", "2"],
     "--run: 2 is not allowed; allowed: 1 (vanishing-tanh has a single run)"),
    (["--run", "2"], "--run: 2 is given without --lesson"),
    (["--config", "{missing}", "--run", "1"], "--run: 1 is given with --config"),
]


@pytest.mark.parametrize("args, named", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path, capsys, args, named):
    files = {"missing": tmp_path / "missing.json", "malformed": tmp_path / "m.json",
             "badtoml": tmp_path / "b.toml", "badvalue": tmp_path / "v.json"}
    files["malformed"].write_text("{")
    files["badtoml"].write_text("hidden = [")
    files["badvalue"].write_text('{"hidden": 0}')
    args = [a.format(**files) for a in args]
    out = tmp_path / "out"
    code = cli.main(["train", "--out", str(out), *args])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()  # nothing written for a run that never started


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert capsys.readouterr().err.startswith("error: main.py: ")


def test_main_py_as_a_process(tmp_path):
    out = tmp_path / "proc"
    ok = subprocess.run([sys.executable, "main.py", "train", "--steps", "3", "--out", str(out),
                         "--set", "seq_len=5", "--set", "hidden=4"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.npz", "summary.json"}
    bad = subprocess.run([sys.executable, "main.py", "train", "--set", "lr=0"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: lr: 0 is not allowed; allowed: a number greater than 0 "
                                               "and at most 10"]


def test_out_path_that_is_a_file_exits_2_without_traceback(tmp_path):
    """--out naming a file (or a path under one) is bad input: one-line message, exit 2."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for out in (blocker, blocker / "run"):
        result = subprocess.run([sys.executable, "main.py", "train", "--steps", "1", "--out", str(out),
                                 "--set", "seq_len=4", "--set", "hidden=2"],
                                cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["config.json", "metrics.npz", "summary.json"])
def test_an_out_folder_that_cannot_take_a_file_is_refused_before_training(name, tmp_path, capsys, monkeypatch):
    """A folder in the way of one of the three files (or a file that cannot be written) is found
    before the first step, not after the last one (it was: IsADirectoryError, a traceback, exit 1)."""
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    monkeypatch.setattr(Trainer, "step", lambda self: pytest.fail("trained before checking --out"))
    code = cli.main(["train", "--steps", "50", "--out", str(out), *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"error: --out: {str(out)!r} cannot take {name}: it is a folder; allowed: a folder "
                           "where config.json, metrics.npz, summary.json can be written")
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written


def test_ctrl_c_before_a_command_starts_says_so_in_one_line(capsys, monkeypatch):
    """Ctrl-C while torch is still importing (before `train` can catch it): one line, exit 130."""
    import main as entry

    def interrupted(argv=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(entry, "_main", interrupted)
    assert entry.main(["train"]) == 130
    assert capsys.readouterr().err == "interrupted before anything was recorded\n"


@pytest.mark.parametrize("sig, code, by", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupting_a_run_saves_what_it_recorded(tmp_path, sig, code, by):
    """Ctrl-C (SIGINT) or a `kill` (SIGTERM) mid-run: the files are written with every step trained so
    far, and the exit status says how the run was stopped."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "main.py", "train", "--steps", "100000", "--out", str(out),
                             "--set", "seq_len=20", "--set", "hidden=8"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # the progress bar's first line: training has started
        assert "steps/s" in first, first
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {by}" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["interrupted_by"] == by
    data = np.load(out / "metrics.npz")
    assert summary["steps"] >= 1 and len(data["step"]) == summary["steps"]
    np.testing.assert_array_equal(data["step"], np.arange(1, summary["steps"] + 1))


def test_running_out_of_memory_part_way_keeps_the_steps_and_exits_2(tmp_path, capsys, monkeypatch):
    """Sizes that are each allowed can together need more memory than there is: a one-line message
    naming the sizes, exit 2, and the steps trained before it are saved."""
    real_step = Trainer.step

    def step(self):
        if self.step_count == 2:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real_step(self)
    monkeypatch.setattr(Trainer, "step", step)
    code, out = run(tmp_path, "oom", *SMALL)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: settings: 'seq_len 10 x batch 4 x hidden 8 x layers 2' need more memory" in err
    with np.load(out / "metrics.npz") as m:
        assert m["step"].tolist() == [1, 2]
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_other_runtime_errors_are_not_called_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "step", lambda self: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        run(tmp_path, "bug", *SMALL)


def test_default_output_folders_never_collide_and_the_bar_draws_its_last_line_once(tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.time, "strftime", lambda fmt: "20261125-120000")  # the same second twice
    for _ in range(2):
        assert cli.main(["train", "--steps", "1", *SMALL]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["20261125-120000", "20261125-120000-2"]
    bar_lines = [line for line in capsys.readouterr().err.splitlines() if "steps/s" in line]
    assert len(bar_lines) == 2  # one per run, not the final line repeated


def test_a_mistyped_command_is_named_with_the_closest_one():
    result = subprocess.run([sys.executable, "main.py", "trian", "--steps", "1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: 'trian' is not a command (did you mean train?)")


def test_a_lessons_runs_keep_the_users_settings(tmp_path):
    """`--lesson X --set seed=3` used to reach the headless run only: the lesson's runs were built again
    without it elsewhere. lesson_runs applies it on top of every run; run 2 of fix-lstm is one of them."""
    code, out = run(tmp_path, "seeded", "--lesson", "fix-lstm", "--run", "2", "--set", "seed=3", *TINY, steps=1)
    assert code == 0
    assert cfg.load(out / "config.json").seed == 3
    runs = lesson_runs("fix-lstm", ["seed=3", "seq_len=10"])
    assert [c.seed for c in runs] == [3, 3] and [c.seq_len for c in runs] == [10, 10]
    assert [c.cell for c in runs] == ["lstm", "rnn"]  # what the lesson compares is kept
    assert cfg.load(out / "config.json") == runs[1].replace(hidden=8)
    assert runs[0] == cfg.apply_overrides(LESSONS["fix-lstm"].runs()[0], ["seed=3", "seq_len=10"])
    assert lesson_runs("fix-lstm") == LESSONS["fix-lstm"].runs()
    with pytest.raises(cfg.ConfigError, match="seed: -1 is not allowed"):
        lesson_runs("fix-lstm", ["seed=-1"])
    with pytest.raises(cfg.ConfigError, match="--lesson: 'fix-lstn' is not allowed"):
        lesson_runs("fix-lstn")
