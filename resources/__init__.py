"""Data that ships with the app (see DATA.md); a package only so that an installed copy carries it."""
