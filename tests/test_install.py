"""An installed copy works on its own: the sdist and the wheel are built from the tracked files (in a
scratch copy, so the checkout gets no build/ folder), the wheel is installed into a fresh venv
outside the checkout, and its `rnn-gradient-lab` command lists the lessons, trains headless (the
digits task reads its shipped data), records a short lesson, and the engine trains and probes a user's own LSTM
from that install, all run from a folder that is not the checkout."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"
    for name in tracked.stdout.split():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp / "dist"
    # PEP 517's own hooks, as `python -m build --no-isolation` calls them (no extra package needed)
    hooks = ("from setuptools import build_meta as b; import sys; out = sys.argv[1]; "  # (the hooks rewrite sys.argv)
             "s = b.build_sdist(out); w = b.build_wheel(out); print('BUILT', s, w)")
    built = subprocess.run([sys.executable, "-c", hooks, str(dist)], cwd=source, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    line = next(line for line in built.stdout.splitlines() if line.startswith("BUILT "))
    sdist, wheel = (dist / name for name in line.split()[1:])
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = tmp / "elsewhere"  # not the checkout: nothing can be imported from it by accident
    work.mkdir()
    return {"sdist": sdist, "wheel": wheel, "python": python, "bin": env_dir / "bin", "work": work}


def run(installed, *command, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    return subprocess.run(command, cwd=installed["work"], capture_output=True, text=True, env=env, timeout=timeout)


def test_the_sdist_holds_the_sources_the_data_and_the_launcher_files(installed):
    with tarfile.open(installed["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for wanted in ("pyproject.toml", "README.md", "main.py", "engine/config.py", "gui/main_window.py",
                   "resources/digits.csv.gz", "resources/rnn-gradient-lab.svg", "resources/rnn-gradient-lab.desktop"):
        assert wanted in names, wanted


def test_the_installed_command_lists_trains_and_records(installed):
    command = str(installed["bin"] / "rnn-gradient-lab")
    lessons = run(installed, command, "lessons")
    assert lessons.returncode == 0, lessons.stderr
    assert lessons.stdout.splitlines()[0].startswith("loop\t")
    out = installed["work"] / "run"
    trained = run(installed, command, "train", "--set", "task=digits", "--set", "hidden=8", "--steps", "3",
                  "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["config"]["task"] == "digits"
    video = installed["work"] / "loop.gif"
    recorded = run(installed, command, "record", "--lesson", "loop", "--seconds", "0.2", "--fps", "5",
                   "--size", "320x240", "--out", str(video))
    assert recorded.returncode == 0, recorded.stderr
    assert video.read_bytes()[:6] == b"GIF89a"


def test_the_engine_runs_from_the_install_not_the_checkout(installed):
    code = ("import engine, gui, resources, torch; from engine.config import Config; from engine.trainer import Trainer; "
            "from engine.api import probe; "
            "snap = Trainer(Config(seq_len=6, hidden=4, batch=2)).step(); "
            "p = probe(torch.nn.LSTM(3, 5, num_layers=2), torch.randn(7, 4, 3), torch.randn(4, 5)); "
            "print(engine.__file__); print(resources.ICON.is_file()); print(snap.grad_h.shape, p.grad_h.shape)")
    result = run(installed, str(installed["python"]), "-c", code)
    assert result.returncode == 0, result.stderr
    where, icon, shapes = result.stdout.split("\n")[:3]
    assert str(ROOT) not in where and "site-packages" in where
    assert icon == "True" and shapes == "(1, 6) (2, 7)"  # the trainer, and probe() on a user's own LSTM
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        assert "resources/rnn-gradient-lab.desktop" in wheel.namelist()
