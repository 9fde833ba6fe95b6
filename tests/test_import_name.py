"""`import rnn_gradient_lab` finds the lab's own engine from a folder that holds an `engine/` and a
`main.py` of its own (a notebook's folder is first on sys.path), probes and watches a model there, and
says what it did to the name `engine`; with the user's `engine` already imported it refuses, leaving
theirs as it was. Each case runs in a fresh Python whose cwd is such a folder, with the checkout on
PYTHONPATH as an install would put the lab on sys.path."""
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_in(folder: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def users_folder(tmp_path: Path, engine_init: str) -> Path:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text(engine_init)
    (tmp_path / "engine" / "api.py").write_text("raise RuntimeError('the user engine.api was imported')\n")
    (tmp_path / "main.py").write_text("raise RuntimeError('the user main.py was imported')\n")
    return tmp_path


def test_a_folder_with_its_own_engine_and_main_gets_the_labs_and_is_told(tmp_path):
    folder = users_folder(tmp_path, "raise RuntimeError('the user engine was imported')\n")
    result = python_in(folder, """
        import json, warnings
        import torch
        from torch import nn
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import rnn_gradient_lab

        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.lstm, self.head = nn.Embedding(5, 3), nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 5)
            def forward(self, x):
                return self.head(self.lstm(self.embed(x))[0])

        torch.manual_seed(0)
        model, x = Tagger(), torch.randint(0, 5, (2, 6))
        result = rnn_gradient_lab.probe_model(model, x, x)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with rnn_gradient_lab.watch(model, out="runs/t", every=1) as watcher:  # measures inside backward()
            for _ in range(2):
                loss = nn.functional.cross_entropy(model(x).reshape(-1, 5), x.reshape(-1))
                opt.zero_grad(); loss.backward(); watcher.log(loss); opt.step()
        run = rnn_gradient_lab.load_run("runs/t")
        import engine
        print(json.dumps({"modules": list(result.modules), "grad_h": list(result.modules["lstm"].grad_h.shape),
                          "steps": run.steps.tolist(), "watched": list(run.modules),
                          "engine": engine.__file__, "same": engine.api.probe_model is rnn_gradient_lab.probe_model,
                          "warnings": [str(w.message) for w in caught]}))
        """)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["modules"] == ["lstm"] and seen["grad_h"] == [1, 6]
    assert seen["steps"] == [1, 2] and seen["watched"] == ["lstm"]
    # one name, one module: `import engine` afterwards gives the lab's, and a warning said so beforehand
    assert Path(seen["engine"]).parent == ROOT / "engine" and seen["same"]
    (warning,) = seen["warnings"]
    assert str(folder / "engine") in warning and "now gives it" in warning


def test_the_users_engine_imported_first_is_left_alone_and_the_refusal_says_what_to_do(tmp_path):
    folder = users_folder(tmp_path, "WHOSE = 'mine'\n")
    result = python_in(folder, """
        import sys
        import engine
        try:
            import rnn_gradient_lab
        except ImportError as exc:
            print("REFUSED", exc)
        print("ENGINE", sys.modules["engine"].WHOSE, "rnn_gradient_lab" in sys.modules)
        """)
    assert result.returncode == 0, result.stderr[-3000:]
    refused, engine = result.stdout.strip().splitlines()
    assert refused.startswith("REFUSED") and str(folder / "engine") in refused
    assert "a fresh kernel" in refused and "rename your package" in refused
    assert engine == "ENGINE mine False"


def test_without_a_folder_of_its_own_there_is_one_engine_and_no_warning(tmp_path):
    result = python_in(tmp_path, """
        import warnings
        warnings.simplefilter("error")
        import rnn_gradient_lab, engine.api
        assert engine.api.probe_model is rnn_gradient_lab.probe_model
        assert rnn_gradient_lab.ModelProbe is engine.api.ModelProbe and rnn_gradient_lab.Probe is engine.api.Probe
        assert (rnn_gradient_lab.RESOURCES / "lady_susan.txt").is_file()
        print(sorted(rnn_gradient_lab.__all__))
        """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["['ModelProbe',", "'Probe',", "'RESOURCES',", "'lightning_callback',",
                                     "'load_run',", "'probe',", "'probe_model',", "'watch']"]


def test_an_install_carries_the_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "rnn_gradient_lab" in packages
