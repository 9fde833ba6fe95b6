"""RNN Gradient Lab entry point.

`python main.py` opens the window; `python main.py train|lessons ...` runs headless and never
imports Qt. Run `python main.py --help` or `python main.py train --help` for the options.
"""
import sys

HEADLESS_COMMANDS = ("train", "lessons")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HEADLESS_COMMANDS:
        from engine.cli import main as cli_main
        return cli_main(argv)
    if argv and argv[0] == "record":
        from gui.record import main as record_main
        return record_main(argv[1:])
    from gui.app import main as gui_main
    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
