"""An installed copy carries every module and data file the app needs: a wheel is built from the
tracked files (in a scratch copy, so the checkout gets no build/ folder) and its contents checked
against the source tree."""
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
    wanted = {"main.py", "resources/digits.csv.gz"}
    for package in ("engine", "gui", "gui/views"):
        wanted |= {f"{package}/{p.name}" for p in (ROOT / package).glob("*.py")}
    assert wanted <= names, sorted(wanted - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "rnn-gradient-lab = main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
