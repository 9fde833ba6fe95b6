"""An installed copy carries every module and data file the app needs: a wheel is built from the
tracked files (in a scratch copy, so the checkout gets no build/ folder) and its contents checked
against the source tree."""
import glob
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_every_module_and_the_data(tmp_path):
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    source = tmp_path / "src"
    for name in tracked.stdout.split():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {"main.py", "resources/digits.csv.gz", "resources/rnn-gradient-lab.svg", "resources/rnn-gradient-lab.desktop"}
    for package in ("engine", "gui", "gui/views"):
        wanted |= {f"{package}/{p.name}" for p in (ROOT / package).glob("*.py")}
    assert wanted <= names, sorted(wanted - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "rnn-gradient-lab = main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_python_range_is_the_one_the_code_needs_and_the_readme_says():
    import tomllib  # noqa: F401  (what engine/config.py reads files with: in the standard library from 3.11)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "Python 3.11 or newer" in (ROOT / "README.md").read_text()
    assert "import tomllib" in (ROOT / "engine" / "config.py").read_text()


def test_an_older_python_gets_one_line_not_a_traceback():
    older = sorted(Path(p) for p in glob.glob("/root/.pyenv/versions/3.10*/bin/python3")) \
        + [Path(p) for p in filter(None, [shutil.which("python3.10")])]
    if not older:
        pytest.skip("no Python 3.10 on this machine")
    result = subprocess.run([str(older[0]), "main.py", "lessons"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs Python 3.11 or newer" in result.stderr and "this is Python 3.10" in result.stderr


def test_the_desktop_entry_launches_the_installed_command_with_the_shipped_icon():
    import configparser
    import tomllib
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "resources" / "rnn-gradient-lab.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["gui-scripts"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "RNN Gradient Lab"
    assert desktop["Exec"].split()[0] in scripts and desktop["Terminal"] == "false"
    assert (ROOT / "resources" / f"{desktop['Icon']}.svg").is_file()
    assert desktop["Categories"].endswith(";")
