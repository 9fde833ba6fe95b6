"""Build docs/your_model_as_it_is.ipynb from its script, run it, and save its outputs in it.

    python docs/run_notebook.py              # rebuilds the notebook, run in a scratch folder (about 10 s)

The script (docs/your_model_as_it_is.py) is the one source: each `# %%` line starts a code cell, each
`# %% [markdown]` a text cell whose lines drop their leading `# `; what comes before the first `# %%`
(the script's docstring) is left out. The cells are run in order in one namespace, as a kernel would:
each cell's printed text is kept, and so is its last expression's value, as its text and the pictures
it offers (`_repr_svg_`, `_repr_html_`), as IPython shows them; `display(obj)` works too. No Jupyter
is needed (tests/test_notebook.py runs the cells the same way). Runs on the main thread of its own
process; no Qt.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SCRIPT = DOCS / "your_model_as_it_is.py"
NOTEBOOK = DOCS / "your_model_as_it_is.ipynb"
MARKER = "# %%"
PLAIN_TEXT_LIMIT = 1000  # a value's text/plain beyond this is cut: a notebook shows the picture instead


def read_cells(script: Path = SCRIPT) -> list[tuple[str, str]]:
    """(kind, source) for each cell of a `# %%` script, kind "code" or "markdown"."""
    cells, kind, lines = [], None, []

    def close():
        if kind is not None:
            cells.append((kind, "\n".join(lines).strip("\n")))
    for line in script.read_text(encoding="utf-8").splitlines():
        if line.startswith(MARKER):
            close()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.removeprefix("#"))
        elif kind == "code":
            lines.append(line)
    close()
    return cells


def mime_bundle(value) -> dict[str, str]:
    """What a notebook stores for a value shown: its text, and the pictures it draws of itself."""
    text = repr(value)
    bundle = {"text/plain": text if len(text) <= PLAIN_TEXT_LIMIT else text[:PLAIN_TEXT_LIMIT] + "…"}
    for mime, method in (("image/svg+xml", "_repr_svg_"), ("text/html", "_repr_html_")):
        drawn = getattr(value, method, None)
        if callable(drawn) and (shown := drawn()) is not None:
            bundle[mime] = shown
    return bundle


def execute(sources: list[str]) -> tuple[dict, list[list[dict]]]:
    """Run code cells in order in one namespace, in the current folder: the namespace, and each cell's
    outputs in nbformat 4's form. A cell that raises stops the run (the exception goes up)."""
    namespace: dict = {"__name__": "__main__"}
    all_outputs = []
    for count, source in enumerate(sources, start=1):
        outputs: list[dict] = []
        namespace["display"] = lambda value: outputs.append(
            {"output_type": "display_data", "data": mime_bundle(value), "metadata": {}})
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, f"<cell {count}>", "exec"), namespace)
            value = None if last is None else eval(compile(ast.Expression(last.value), f"<cell {count}>", "eval"),
                                                    namespace)
        streams = [{"output_type": "stream", "name": name, "text": text}
                   for name, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())) if text]
        result = [] if value is None else [{"output_type": "execute_result", "execution_count": count,
                                            "data": mime_bundle(value), "metadata": {}}]
        all_outputs.append(streams + outputs + result)
    return namespace, all_outputs


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def notebook(cells: list[tuple[str, str]], outputs: list[list[dict]] | None = None) -> dict:
    """The .ipynb (nbformat 4) of these cells, with the code cells' outputs where given."""
    made, code = [], 0
    for kind, source in cells:
        if kind == "markdown":
            made.append({"cell_type": "markdown", "metadata": {}, "source": _lines(source)})
            continue
        kept = outputs[code] if outputs is not None else []
        code += 1
        made.append({"cell_type": "code", "execution_count": code if outputs is not None else None,
                     "metadata": {}, "outputs": [_stored(o) for o in kept], "source": _lines(source)})
    return {"cells": made, "nbformat": 4, "nbformat_minor": 4, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"}}}


def _stored(output: dict) -> dict:
    """An output as .ipynb files store it: text as lists of lines."""
    if output["output_type"] == "stream":
        return {**output, "text": _lines(output["text"])}
    return {**output, "data": {mime: _lines(text) for mime, text in output["data"].items()}}


def main() -> int:
    sys.path.insert(0, str(DOCS.parent))  # the checkout's rnn_gradient_lab, installed or not
    cells = read_cells()
    with tempfile.TemporaryDirectory() as scratch:
        here = os.getcwd()
        os.chdir(scratch)  # the run folder the notebook writes goes to the scratch folder
        try:
            _, outputs = execute([source for kind, source in cells if kind == "code"])
        finally:
            os.chdir(here)
    NOTEBOOK.write_text(json.dumps(notebook(cells, outputs), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {NOTEBOOK}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
