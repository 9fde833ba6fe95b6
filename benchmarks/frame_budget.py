"""Where the GUI thread's time goes in a live window: a cProfile file of `bench_gui.py --profile FILE`, split by
kind of work and by view.

    .venv/bin/python benchmarks/bench_gui.py --all-views --xvfb 1920x1080 --profile gui.prof
    .venv/bin/python benchmarks/frame_budget.py gui.prof            # the kinds, the views, the top functions

Kinds (cProfile's own time per function): data preparation (the views' code, numpy), item updates
(pyqtgraph's setData/setImage, ranges, bounds, signals), text layout (ticks, font metrics, labels, legends),
painting (QPainter, item paint methods, pictures), the worker's messages (receiving and unpickling
snapshots, the histories), and the event loop's own time (waiting, Qt's dispatch). Imports only the standard
library: `bench_views.py` uses the same split.
"""
from __future__ import annotations

import argparse
import pstats

TEXT = ("generateDrawSpecs", "tickStrings", "tickValues", "tickSpacing", "boundingRect", "horizontalAdvance",
        "drawText", "setText", "setHtml", "setPlainText", "_fit_name", "set_text", "setLabel", "_updateLabel",
        "updateText", "size", "sizeHint", "setMinimumWidth", "setMaximumWidth", "setWidth", "setHeight",
        "_updateWidth", "_updateHeight", "QFontMetrics", "textItem", "LabelItem", "TextItem", "LegendItem",
        "_legends", "_axes.py")
PAINT = ("paint", "draw", "fill", "play", "generatePicture", "drawPicture", "render", "grab", "end", "begin",
         "setPen", "setBrush", "setRenderHint", "save", "restore", "setClip", "setTransform", "paintEvent")
MESSAGES = ("worker_client.py", "session.py", "history.py", "pickle", "connection.py", "_recv", "loads",
            "history_at_step.py")
LOOP = ("exec", "processEvents", "select", "poll", "wait", "acquire")
KINDS = ("data preparation", "item updates", "text layout", "painting", "worker's messages", "event loop")


def kind_of(func) -> str:
    """The kind of work a profiled function is (see the module docstring)."""
    filename, _, name = func
    where = f"{filename}:{name}"
    if any(t in where for t in MESSAGES):
        return "worker's messages"
    if any(t in where for t in TEXT):
        return "text layout"
    if any(name == p or name.startswith(p) for p in PAINT) or "QPainter" in where or "QPicture" in where:
        return "painting"
    if filename == "~" and any(t in name for t in LOOP):
        return "event loop"
    if "pyqtgraph" in filename or "PySide6" in where or filename == "~" and "method" in name and "numpy" not in name:
        return "item updates"
    return "data preparation"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25, help="the functions with the most own time")
    args = p.parse_args()
    stats = pstats.Stats(args.profile)
    total = sum(row[2] for row in stats.stats.values()) or 1e-9
    kinds = dict.fromkeys(KINDS, 0.0)
    for func, (_, _, tottime, _, _) in stats.stats.items():
        kinds[kind_of(func)] += tottime
    print(f"GUI thread, {total:.1f} s profiled\n\n| kind | seconds | share |\n|---|---:|---:|")
    for kind, seconds in kinds.items():
        print(f"| {kind} | {seconds:.2f} | {seconds / total:.0%} |")
    views = {}
    for (filename, _, name), (_, _, _, cumtime, _) in stats.stats.items():
        if "/gui/views/" in filename and name == "refresh":
            views[filename.rsplit("/", 1)[-1]] = views.get(filename.rsplit("/", 1)[-1], 0.0) + cumtime
    if views:
        print("\n| view module | seconds in refresh() (with what it calls) |\n|---|---:|")
        for view, seconds in sorted(views.items(), key=lambda kv: -kv[1]):
            print(f"| {view} | {seconds:.2f} |")
    print(f"\nthe {args.top} functions with the most own time:")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
