"""Sweeps (engine/sweep.py, `main.py sweep`): the stacked measurement against the trainer's own float64
pass, the closed form of a linear orthogonal RNN, one-line refusals before anything runs, a sweep stopped
halfway that resumes to the same table, and the same numbers on Ray."""
import csv
import json
import math
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from engine import cli, phase_maps, sweep, sweep_batched
from engine.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--set", "hidden=8", "--set", "batch=4"]
TIMING = ("steps_per_second", "seconds")


def sweep_main(*args):
    return cli.main(["sweep", *args])


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def without_timing(table):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in table]


@pytest.mark.parametrize("settings", [dict(layers=2, skip=True), dict(cell="lstm", layers=2), dict(cell="gru"),
                                      dict(activation="prelu"), dict(task="copy", seq_len=4)])
def test_a_stack_of_networks_reads_what_each_reads_alone_in_the_trainers_float64_pass(settings):
    base = Config(**{"seq_len": 12, "hidden": 8, "batch": 4, **settings})
    configs = [base.replace(seed=seed, spectral_radius=radius) for seed in (0, 1) for radius in (0.5, 1.3)]
    assert len({sweep_batched.shape_key(c) for c in configs}) == 1 and sweep_batched.can_stack(base)
    for config, stacked in zip(configs, sweep_batched.measure_stacked(configs)):
        alone = sweep_batched.measure_one(config)
        np.testing.assert_allclose(stacked["grad_h"], alone["grad_h"], rtol=1e-12)
        assert stacked["loss"] == pytest.approx(alone["loss"], rel=1e-12)


def test_a_linear_orthogonal_rnn_loses_t_minus_1_times_log10_of_1_over_r_at_every_point(tmp_path, capsys):
    radii, lengths = (0.5, 0.8, 1.0, 1.25), (5, 20, 60)
    code = sweep_main(*TINY, "--set", "activation=linear", "--set", "init=orthogonal",
                      "--grid", "spectral_radius=" + ",".join(map(str, radii)),
                      "--grid", "seq_len=" + ",".join(map(str, lengths)), "--out", str(tmp_path / "s"), "--workers", "1")
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("finished: 12 of 12 points in ")
    table = rows(tmp_path / "s" / "sweep.csv")
    assert [(float(r["spectral_radius"]), int(r["seq_len"])) for r in table] == [(r, n) for r in radii for n in lengths]
    for row in table:
        closed_form = (int(row["seq_len"]) - 1) * math.log10(1 / float(row["spectral_radius"]))
        assert float(row["orders_lost"]) == pytest.approx(closed_form, abs=2e-5), row  # (float32 weights)
        assert row["steps"] == "0" and row["diverged"] == "false"
    spec, phase = phase_maps.load(tmp_path / "s")
    assert spec["steps"] == 0 and (phase.x_key, phase.y_key) == ("spectral_radius", "seq_len")
    assert phase.values.shape == (3, 4) and phase.settings_at(3, 2) == {"spectral_radius": 1.25, "seq_len": 60}
    np.testing.assert_allclose(phase.values[:, 2], 0, atol=2e-5)  # the line where nothing is lost: radius 1
    with np.load(tmp_path / "s" / "sweep.npz", allow_pickle=False) as npz:
        assert npz["grad_h_first"].shape == (12, 1, 60) and npz["done"].all()
        assert np.isnan(npz["grad_h_first"][0, 0, 5:]).all()  # (a 5-step point, padded)


@pytest.mark.parametrize("args, says", [
    (["--grid", "seqlen=10,20"], "did you mean seq_len?"),
    (["--grid", "seq_len=10,ten"], "seq_len: 'ten' is not allowed"),
    (["--grid", "seq_len=10,20", "--grid", "seq_len=30"], "each key in one --grid"),
    (["--grid", "seq_len"], "KEY=V1,V2,..."),
    (["--grid", "seq_len=10,10.0"], "gives seq_len 10 twice"),
    (["--grid", "hidden=8,0"], "hidden"),
    (["--set", "task=digits", "--grid", "seq_len=8,100"], "at the grid point seq_len=100"),
    (["--grid", "seed=1,2", "--seeds", "3"], "--seeds"),
    (["--grid", "seq_len=10", "--executor", "dask"], "local | ray"),
    (["--grid", "seq_len=10", "--address", "1.2.3.4:6379"], "only with --executor ray"),
    ([], "--grid"),
])
def test_bad_grids_get_one_line_before_anything_runs(tmp_path, capsys, args, says):
    out = tmp_path / "never"
    assert sweep_main(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    assert not out.exists()


def test_sizes_the_machine_cannot_hold_are_refused_before_any_point_runs(tmp_path, capsys):
    out = tmp_path / "never"
    assert sweep_main("--set", "batch=4096", "--set", "hidden=2048", "--grid", "seq_len=10,5000",
                      "--out", str(out)) == 2
    assert "memory" in capsys.readouterr().err and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA admits device cuda")
def test_a_device_the_machine_lacks_is_refused_by_the_one_admission_before_any_point_runs(tmp_path, capsys):
    out = tmp_path / "never"
    assert sweep_main(*TINY, "--grid", "device=cpu,cuda", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device" in err and "cuda" in err and not out.exists()


def test_each_point_and_the_largest_together_go_through_admission(tmp_path, monkeypatch):
    from engine import admission
    asked = []
    monkeypatch.setattr(admission, "admit", lambda configs, **kw: asked.append(configs))
    points = sweep.make_points(Config(hidden=8, batch=4), sweep.parse_grids(["seq_len=5,50,20"]), 1)
    sweep.admit_points(points, workers=2)
    assert [c.seq_len for c in asked[:3]] == [5, 50, 20]
    assert sorted(c.seq_len for c in asked[3]) == [20, 50]


def test_without_ray_the_ray_executor_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # (import ray raises ImportError)
    assert sweep_main("--grid", "seq_len=10", "--executor", "ray", "--out", str(tmp_path / "never")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install" in err and not (tmp_path / "never").exists()


def test_another_sweeps_folder_is_refused(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert sweep_main(*TINY, "--set", "seq_len=5", "--grid", "spectral_radius=0.9", "--out", out, "--workers", "1") == 0
    assert sweep_main(*TINY, "--set", "seq_len=5", "--grid", "spectral_radius=1.1", "--out", out) == 2
    assert "holds another sweep (grids differ)" in capsys.readouterr().err


def test_a_sweep_stopped_halfway_resumes_and_ends_with_the_uninterrupted_table(tmp_path, capsys):
    args = ["--set", "seq_len=60", "--set", "hidden=32", "--grid", "spectral_radius=0.8,1.2",
            "--grid", "activation=tanh,linear", "--seeds", "2", "--steps", "15", "--workers", "1"]
    out = tmp_path / "stopped"
    command = [sys.executable, "main.py", "sweep", *args, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(sweep.read_points(out)) < 3 and process.poll() is None:
        try:  # wait on the process itself (it may end early), looking at its points between waits
            process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    process.send_signal(signal.SIGINT)  # Ctrl-C
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted by Ctrl-C" in stdout and "rerun the same command to finish it" in stdout
    finished = len(rows(out / "sweep.csv"))
    assert 3 <= finished < 8
    with open(out / sweep.POINTS_FILE, "ab") as fh:  # a writer killed in the middle of a line
        fh.write(b'{"points": [7], "results": [{"orders_lo')

    assert sweep_main(*args, "--out", str(out)) == 0
    assert f"({finished} from before)" in capsys.readouterr().out
    assert sweep_main(*args, "--out", str(tmp_path / "whole")) == 0
    resumed, whole = rows(out / "sweep.csv"), rows(tmp_path / "whole" / "sweep.csv")
    assert len(whole) == 8 and without_timing(resumed) == without_timing(whole)
    assert {r["seed"] for r in whole} == {"0", "1"} and all(r["steps"] == "15" for r in whole)


@pytest.mark.slow  # starts a local Ray and a spawn pool, processes of their own (about 30 s on 2 cores)
def test_a_spawned_pool_and_ray_give_the_numbers_of_one_process_to_the_last_bit(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rnn-gradient-lab[ray]'")
    args = [*TINY, "--set", "seq_len=30", "--grid", "spectral_radius=0.7,1.1", "--grid", "cell=rnn,gru",
            "--seeds", "2"]
    arrays = {}
    for name, extra in (("alone", ["--workers", "1"]), ("pool", ["--workers", "2"]),
                        ("ray", ["--executor", "ray", "--workers", "2"])):
        assert sweep_main(*args, *extra, "--out", str(tmp_path / name)) == 0
        with np.load(tmp_path / name / "sweep.npz", allow_pickle=False) as npz:
            arrays[name] = {k: npz[k] for k in ("orders_lost", "loss_first", "grad_h_first")}
    for name in ("pool", "ray"):
        for key, value in arrays["alone"].items():
            assert np.array_equal(arrays[name][key], value, equal_nan=True), (name, key)


def test_the_windows_map_is_the_sweeps_map_at_initialisation():
    base = Config(hidden=8, batch=4)
    phase = phase_maps.measure_at_init(base, radii=(0.8, 1.0), lengths=(5, 12))
    assert phase.values.shape == (2, 2) and phase.x_texts == ("0.8", "1.0") and phase.y_texts == ("5", "12")
    alone = sweep_batched.measure_one(base.replace(spectral_radius=0.8, seq_len=12))
    assert phase.values[1, 0] == pytest.approx(sweep_batched.orders(alone["grad_h"]), rel=1e-12)
    assert phase_maps.initial_radius(base.replace(spectral_radius=0.9)) == 0.9
    assert 0.3 < phase_maps.initial_radius(base) < 1.0  # PyTorch's U(-1/sqrt(H), 1/sqrt(H))


def test_the_map_process_measures_in_another_process_at_a_lower_priority_what_this_one_measures():
    """The window's maps come from a process of their own (a thread of the window's held its frames up to 50 ms):
    the same numbers to the last bit, measured under another pid at a higher niceness, deaf to the terminal's
    Ctrl-C (the window's to handle); close() leaves no process behind."""
    import multiprocessing
    import queue
    linear, tanh = Config(hidden=8, batch=4, activation="linear"), Config(hidden=8, batch=4)
    results = queue.Queue()
    process = phase_maps.MapProcess()
    try:
        process.submit(1, [("a", linear), ("b", tanh), ("a", linear)], lambda request, result: results.put((request, result)))
        request, result = results.get(timeout=120)
        assert request == 1 and not isinstance(result, BaseException), result
        maps, radii = result
        assert list(maps) == ["a", "b"]  # one map for the two runs of one network
        for key, config in (("a", linear), ("b", tanh)):
            here = phase_maps.measure_at_init(config)
            assert np.array_equal(maps[key].values, here.values) and maps[key].x_texts == here.x_texts
            assert radii[key] == phase_maps.initial_radius(config)
        (child,) = multiprocessing.active_children()
        assert child.pid != os.getpid() and os.getpriority(os.PRIO_PROCESS, child.pid) == \
            min(19, os.getpriority(os.PRIO_PROCESS, 0) + phase_maps.MAP_PROCESS_NICE)
        os.kill(child.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole process group
        process.submit(2, [("c", linear.replace(hidden=6))], lambda request, result: results.put((request, result)))
        request, result = results.get(timeout=120)
        assert request == 2 and set(result[0]) == {"c"} and multiprocessing.active_children() == [child]
    finally:
        process.close()
    assert not process.started and multiprocessing.active_children() == []


def test_a_newer_map_request_stops_an_older_one_before_its_next_stack(monkeypatch):
    """What the map process runs for request N stops (None) once a newer request, or a cancel, is the latest."""
    latest = multiprocessing.get_context("spawn").Value("q", 3)
    monkeypatch.setattr(phase_maps, "_latest", latest)
    networks = [("a", Config(hidden=8, batch=4))]
    assert phase_maps._measure_request(2, networks) is None
    latest.value = 2
    maps, _ = phase_maps._measure_request(2, networks)
    assert set(maps) == {"a"}
    stacks = []
    def cancelled_after_first_stack():  # a cancel that arrives while the map is being measured
        stacks.append(1)
        return len(stacks) > 1
    assert phase_maps.measure_maps(networks, cancelled=cancelled_after_first_stack) is None and len(stacks) == 2


def test_the_map_process_ends_when_its_parent_is_killed(tmp_path):
    """A window killed outright (SIGKILL: no close()) leaves no map process waiting on its queue for ever."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, queue, sys\n"
        "from engine import phase_maps\n"
        "from engine.config import Config\n"
        "if __name__ == '__main__':\n"
        "    done = queue.Queue()\n"
        "    process = phase_maps.MapProcess()\n"
        "    process.submit(1, [('a', Config(hidden=4, batch=2))], lambda r, result: done.put(result))\n"
        "    done.get(timeout=120)\n"
        "    print(multiprocessing.active_children()[0].pid, flush=True)\n"
        "    sys.stdin.read()\n")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = int(parent.stdout.readline())
        watch = os.pidfd_open(child)
    finally:
        parent.kill()
        parent.wait()
    try:
        import select
        readable, _, _ = select.select([watch], [], [], 60)  # a pidfd turns readable when its process ends
        assert readable == [watch], "the map process outlived its killed parent"
    finally:
        os.close(watch)


def test_a_folder_that_is_not_a_sweep_is_named_in_one_line(tmp_path):
    with pytest.raises(sweep.SweepError, match="not a sweep folder"):
        phase_maps.load(tmp_path)
    np.savez(tmp_path / "sweep.npz", spec=np.array(json.dumps({"format": "other"})))
    with pytest.raises(sweep.SweepError, match="is not a sweep's sweep.npz"):
        phase_maps.load(tmp_path)


def test_the_edge_of_chaos_cards_figures_are_the_phase_diagrams():
    """The edge-of-chaos lesson's narration and next change, read from the map the Phase diagram view draws."""
    from engine.lessons import LESSONS
    linear, tanh = LESSONS["edge-of-chaos"].runs()
    radii = (0.9, 1.0, 1.1)

    def lost(config, lengths=(200,)):
        return phase_maps.measure_at_init(config, radii=radii, lengths=lengths).values  # (lengths, radii)

    (at_09, at_1, at_11), = lost(linear)
    assert round(at_09) == 9 and round(-at_11) == 8 and abs(at_1) < 0.01  # "loses 9 at 0.9 and gains 8 at 1.1"
    tanh_map = lost(tanh, phase_maps.MAP_LENGTHS)
    (_, t_1, t_11), = tanh_map[phase_maps.MAP_LENGTHS.index(200):][:1]
    assert round(t_1) == 4 and 0 <= -t_11 < 0.5  # "still loses 4"; at 1.1 "within half of one"
    crossing = 1.0 + 0.1 * tanh_map[:, 1] / (tanh_map[:, 1] - tanh_map[:, 2])  # the line, row by row
    assert np.all((crossing > 1.05) & (crossing < 1.1)), crossing  # "at about 1.1"
