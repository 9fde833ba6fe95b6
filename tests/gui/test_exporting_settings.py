"""Exports round-trip; remembered settings fall back to defaults when broken."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from engine import config as cfg
from engine.trainer import Trainer
from engine.worker import run_info
from gui.exporting import ExportError, export_config, export_run_data, export_widget
from gui.history import RunHistory
from gui.settings import MAX_RECENT, AppSettings


def _history(config, steps=4):
    trainer = Trainer(config)
    history = RunHistory(run_info(0, trainer))
    history.extend([trainer.step() for _ in range(steps)])
    return history


def test_widget_exports_png_and_svg(qtbot, tmp_path):
    label = QLabel("gradient")
    qtbot.addWidget(label)
    label.resize(120, 40)
    png = export_widget(label, tmp_path / "v.png")
    image = QImage(str(png))
    assert (image.width(), image.height()) == (120, 40)
    svg = export_widget(label, tmp_path / "v.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and "gradient" in svg.read_text()
    with pytest.raises(ExportError, match="allowed: .png, .svg"):
        export_widget(label, tmp_path / "v.bmp")


def test_run_data_round_trips_through_npz_and_csv(tmp_path):
    history = _history(cfg.Config(seq_len=10, hidden=6, layers=2))
    (npz,) = export_run_data([history], tmp_path / "run.npz")
    arrays = np.load(npz)
    expected = history.log.to_arrays()
    for key in expected:
        np.testing.assert_array_equal(arrays[key], expected[key])
    (csv,) = export_run_data([history], tmp_path / "run.csv")
    rows = np.genfromtxt(csv, delimiter=",", names=True)
    np.testing.assert_allclose(rows["loss"], expected["loss"])
    np.testing.assert_allclose(rows["grad_h_first_l1"], expected["grad_h"][:, 1, 0])


def test_compare_runs_export_one_file_each_and_empty_runs_are_refused(tmp_path):
    a, b = _history(cfg.Config(seq_len=8, hidden=4)), _history(cfg.Config(seq_len=8, hidden=4, cell="gru"))
    written = export_run_data([a, b], tmp_path / "cmp.npz")
    assert [p.name for p in written] == ["cmp-run1.npz", "cmp-run2.npz"]
    empty = RunHistory(run_info(0, Trainer(cfg.Config(seq_len=8, hidden=4))))
    with pytest.raises(ExportError, match="no recorded data"):
        export_run_data([empty], tmp_path / "e.npz")


def test_exported_config_reproduces_the_run(tmp_path):
    config = cfg.Config(seq_len=9, hidden=5, spectral_radius=1.2, clip="norm")
    for name in ("c.json", "c.toml"):
        assert cfg.load(export_config(config, tmp_path / name)) == config


@pytest.fixture
def settings(tmp_path):
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def test_settings_remember_and_fall_back(settings, tmp_path):
    assert settings.theme() == "dark" and settings.last_experiment() is None and settings.recent_files() == []
    settings.set_theme("light")
    settings.save_window(QByteArray(b"geo"), QByteArray(b"state"))
    settings.set_last_experiment(tmp_path / "x.rgl")
    settings.sync()
    again = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.theme() == "light" and bytes(again.geometry()) == b"geo"
    assert again.last_experiment() == str(tmp_path / "x.rgl")


def test_broken_settings_fall_back_to_defaults(tmp_path):
    path = tmp_path / "broken.ini"
    path.write_text("[view]\ntheme=purple\n[window]\ngeometry=12\n[experiment]\nrecent=@Invalid()\n")
    s = AppSettings(QSettings(str(path), QSettings.Format.IniFormat))
    assert s.theme() == "dark" and s.geometry() is None and s.recent_files() == []


def test_recent_files_are_unique_newest_first_and_bounded(settings, tmp_path):
    for i in range(MAX_RECENT + 3):
        settings.add_recent_file(tmp_path / f"{i}.rgl")
    settings.add_recent_file(tmp_path / "2.rgl")
    files = settings.recent_files()
    assert len(files) == MAX_RECENT and files[0].endswith("2.rgl") and len(set(files)) == MAX_RECENT
