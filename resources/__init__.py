"""Data that ships with the app (see DATA.md), its icon and its desktop launcher entry; a package only
so that an installed copy carries them."""
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
ICON = FOLDER / "rnn-gradient-lab.svg"             # the application's icon (any size: a vector drawing)
DESKTOP_ENTRY = FOLDER / "rnn-gradient-lab.desktop"  # a launcher entry for Linux desktops (README: Install)
