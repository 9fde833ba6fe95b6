"""The engine must run headless: no module under engine/ may import Qt or pyqtgraph."""
import ast
import pathlib
import subprocess
import sys

ENGINE = pathlib.Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "qtpy", "gui")


def test_no_engine_module_imports_qt():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders


def test_headless_commands_load_no_qt_at_run_time():
    code = ("import sys, main; main.main(['lessons']); "
            "import engine.cli, engine.trainer, engine.worker; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'gui')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ENGINE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_argument_parsing_loads_no_torch_and_no_other_engine_module():
    """The window parses its command line before it imports torch (seconds on a cold start): engine.args
    may lean only on engine.errors, the leaf every module raises its errors from."""
    code = ("import sys, engine.args; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('engine', 'torch', 'numpy')); "
            "assert loaded == ['engine', 'engine.args', 'engine.errors'], loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=ENGINE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
