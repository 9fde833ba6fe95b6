"""docs/your_model_as_it_is.ipynb is its script's cells, holds the outputs a reader on GitHub sees, and
runs: its code cells, taken from the .ipynb, run in order in a fresh Python whose cwd is a scratch
folder (as docs/run_notebook.py runs them, `display` provided, no Jupyter needed), train the model under
watch, write a run folder load_run reads, and probe every module; their outputs have the kinds the
committed notebook holds."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOK = DOCS / "your_model_as_it_is.ipynb"

sys.path.insert(0, str(DOCS))
import run_notebook  # noqa: E402  (docs/ is not a package)


def committed() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def kinds(outputs: list[dict]) -> list:
    """What a cell shows, without the numbers: each output's type and stream name or picture kinds."""
    return [(o["output_type"], o.get("name") or sorted(o["data"])) for o in outputs]


def test_the_notebook_is_its_script():
    cells = [(c["cell_type"], "".join(c["source"])) for c in committed()["cells"]]
    assert cells == run_notebook.read_cells(), "docs/your_model_as_it_is.py changed: run python docs/run_notebook.py"


def test_the_committed_notebook_holds_its_outputs():
    code = [c for c in committed()["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert all(c["outputs"] for c in code[2:]), "every cell from the training loop on shows something"
    shown = [o for c in code for o in c["outputs"]]
    pictures = [o for o in shown if o["output_type"] == "execute_result"]
    assert len(pictures) == 2 and all("image/svg+xml" in o["data"] for o in pictures)
    assert all("".join(o["data"]["image/svg+xml"]).startswith("<svg") for o in pictures)
    text = "".join("".join(o["text"]) for o in shown if o["output_type"] == "stream")
    assert "lstm: LSTM, 2 layers, 48 timesteps" in text and "measured steps: [1, 10, 20," in text
    assert "orders of magnitude lost" in text and "Vanishing gradient" in text  # the last character's reach
    assert not any(o.get("name") == "stderr" for o in shown), "a warning or error was saved in the notebook"
    assert "/tmp" not in json.dumps(shown), "an output names the scratch folder it ran in"


def test_the_notebook_runs_watches_and_probes(tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(DOCS)!r})
        import run_notebook, rnn_gradient_lab
        notebook = json.loads(open({str(NOTEBOOK)!r}, encoding="utf-8").read())
        sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
        namespace, outputs = run_notebook.execute(sources)
        run = rnn_gradient_lab.load_run("runs/lm")
        result = namespace["result"]
        print(json.dumps({{
            "outputs": [[[o["output_type"], o.get("name") or sorted(o["data"])] for o in cell] for cell in outputs],
            "steps": run.steps.tolist(), "ended": run.ended, "watched": list(run.modules),
            "run_grad_h": list(run.modules["lstm"].grad_h.shape), "loss_recorded": bool((run.loss > 0).all()),
            "probed": list(result.modules), "grad_h": list(result.modules["lstm"].grad_h.shape),
            "grad_c": result.modules["lstm"].grad_c is not None,
        }}))
        """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["steps"] == [1] + list(range(10, 151, 10)) and seen["ended"] and seen["watched"] == ["lstm"]
    assert seen["run_grad_h"] == [16, 2, 48] and seen["loss_recorded"]
    assert seen["probed"] == ["lstm"] and seen["grad_h"] == [2, 48] and seen["grad_c"]
    code_cells = [c for c in committed()["cells"] if c["cell_type"] == "code"]
    assert seen["outputs"] == [[list(k) for k in kinds(c["outputs"])] for c in code_cells]
    assert (tmp_path / "runs" / "lm" / "run.json").is_file()


def test_a_cell_shows_its_print_its_display_and_its_last_expression():
    drawn = "class Drawn:\n    def __repr__(self): return 'Drawn()'\n    def _repr_svg_(self): return '<svg/>'"
    namespace, outputs = run_notebook.execute([drawn + "\nprint('hi')", "display(Drawn())\n40 + 2", "answer = 42"])
    assert namespace["answer"] == 42
    assert outputs[0] == [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    assert outputs[1] == [
        {"output_type": "display_data", "data": {"text/plain": "Drawn()", "image/svg+xml": "<svg/>"}, "metadata": {}},
        {"output_type": "execute_result", "execution_count": 2, "data": {"text/plain": "42"}, "metadata": {}}]
    assert outputs[2] == []
