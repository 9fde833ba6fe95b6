"""Files named on the window's command line, and a scripted session that writes nothing that lasts."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from engine import experiment as ex
from engine.config import Config
from gui.app import _take_file_argument, build_parser
from tests.gui.test_app import ROOT, run_main


def test_a_file_without_an_option_is_what_its_kind_says(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 1)), y=np.zeros(2))
    for name, option in (("e.rgl", "config"), ("s.toml", "config"), ("m.pth", "model"), ("d.npz", "data"),
                         ("t.txt", "data")):
        args = build_parser().parse_args([str(tmp_path / name)])
        _take_file_argument(args)
        assert getattr(args, option) == str(tmp_path / name)
    args = build_parser().parse_args([str(tmp_path / "m.pt"), "--model", "other.pt"])
    try:
        _take_file_argument(args)
        raise AssertionError("two models were taken")
    except Exception as exc:  # UsageError: main prints it and exits 2
        assert "is a model file, and --model is given too" in str(exc)


def test_the_window_opens_every_run_of_an_experiment_named_on_its_command_line(tmp_path):
    runs = [Config(seq_len=12, hidden=8, seed=4), Config(seq_len=12, hidden=8, seed=4, cell="gru")]
    saved = ex.save(tmp_path / "two.rgl", ex.Experiment(runs))
    stats = tmp_path / "stats.json"
    result = run_main(str(saved), "--quit-after", "2", "--stats", str(stats), timeout=90)
    assert result.returncode == 0, result.stderr
    assert [c["cell"] for c in json.loads(stats.read_text())["configs"]] == ["rnn", "gru"]


def test_a_crafted_experiment_on_the_windows_command_line_is_one_line_and_exit_2(tmp_path):
    header = {"format": ex.FORMAT, "version": ex.VERSION, "configs": [{}], "files": {"x.csv": {"kind": "data",
              "sha256": "../" * 21 + "x"}}}
    with zipfile.ZipFile(tmp_path / "bad.rgl", "w") as archive:
        import io
        buffer = io.BytesIO()
        np.save(buffer, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        archive.writestr("experiment.json.npy", buffer.getvalue())
    result = run_main("--config", str(tmp_path / "bad.rgl"), "--quit-after", "1")
    assert result.returncode == 2 and "bad.rgl" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_scripted_session_keeps_what_qt_remembers_in_a_temporary_folder(tmp_path):
    """The file dialog saves its history when it is destroyed; a scripted session's goes nowhere lasting."""
    script = (
        "from PySide6.QtWidgets import QApplication, QFileDialog\n"
        "from PySide6.QtCore import QSettings\n"
        "from gui.app import keep_settings_private\n"
        "app = QApplication([])\n"
        "private = keep_settings_private()\n"
        "dialog = QFileDialog(None, 'x', '/tmp'); dialog.setOption(QFileDialog.Option.DontUseNativeDialog)\n"
        "dialog.setHistory(['/tmp/seen']); del dialog\n"
        "print(QSettings(QSettings.Scope.UserScope, 'QtProject').fileName())\n")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "rnn-gradient-lab-session-" in result.stdout
    assert not [p for p in home.rglob("*") if p.is_file()]
    assert not Path(result.stdout.strip()).exists()  # (the folder went with the session)
