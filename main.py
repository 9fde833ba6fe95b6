"""RNN Gradient Lab entry point.

`python main.py` opens the window; `python main.py train|lessons|sweep ...` runs headless and never
imports Qt (sweep only to draw its phase.png, after the numbers are written). Run `python main.py --help` or `python main.py train --help` for the options.
"""
import difflib
import sys
from pathlib import Path

HEADLESS_COMMANDS = ("train", "lessons", "sweep")
COMMANDS = HEADLESS_COMMANDS + ("record",)


MIN_PYTHON = (3, 11)  # pyproject.toml's requires-python: tomllib


def main(argv=None) -> int:
    if sys.version_info < MIN_PYTHON:  # before any import that would fail with a traceback
        print(f"error: RNN Gradient Lab needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; this is "
              f"Python {sys.version.split()[0]}", file=sys.stderr)
        return 2
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command could catch it (e.g. while torch imports)
        print("interrupted before anything was recorded", file=sys.stderr)
        return 130


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HEADLESS_COMMANDS:
        from engine.cli import main as cli_main
        return cli_main(argv, picture=_phase_picture if argv[0] == "sweep" else None)
    if argv and argv[0] == "record":
        from gui.record_command import main as record_main
        return record_main(argv[1:])
    if argv and not argv[0].startswith("-") and not Path(argv[0]).suffix and not Path(argv[0]).exists():  # a mistyped command
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"error: {argv[0]!r} is not a command{hint}; allowed: {', '.join(COMMANDS)}, "
              "or options only for the window (see --help)", file=sys.stderr)
        return 2
    from gui.app import main as gui_main
    return gui_main(argv)


def _phase_picture(folder):
    """A sweep's phase.png, drawn by the window's Phase diagram view (Qt, offscreen), once its numbers are written."""
    from gui.views.phase import write_phase_png
    write_phase_png(folder)


if __name__ == "__main__":
    sys.exit(main())
