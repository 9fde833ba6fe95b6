"""The settings schema is the one place each fact about a setting lives: the Config, its validation,
`--set` parsing and the settings table are all made from its rows (the panel: tests/gui/test_schema_panel.py)."""
import dataclasses
import re
from pathlib import Path

import pytest

from engine import config as cfg
from engine import schema
from engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_settings_table_in_docs_is_the_one_the_schema_makes():
    written = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert written == schema.markdown_table(), "run: python -m engine.schema > docs/settings.md"


def test_every_config_field_is_a_schema_row_with_its_default_and_type():
    fields = {f.name: f for f in dataclasses.fields(cfg.Config)}
    assert tuple(fields) == schema.KEYS
    for setting in schema.SETTINGS:
        assert fields[setting.name].default == setting.default
        assert cfg.Config().to_dict()[setting.name] == setting.default


@pytest.mark.parametrize("setting", schema.SETTINGS, ids=lambda s: s.name)
def test_each_rows_bounds_are_what_validation_and_set_enforce(setting):
    """Just past each bound is refused with the row's own words; the bound itself is taken."""
    if setting.kind == "int":
        for bad in (setting.low - 1, setting.high + 1):
            with pytest.raises(ConfigError, match=re.escape(f"allowed: {setting.allowed()}")):
                cfg.apply_overrides(cfg.Config(), [f"{setting.name}={bad}"])
        high = cfg.apply_overrides(cfg.Config(task="copy"), [f"{setting.name}={setting.high}"]) \
            if setting.name != "seq_len" else None
        assert high is None or getattr(high, setting.name) == setting.high
    elif setting.kind == "float":
        for bad in (setting.high * 1.01, setting.low if setting.low_open else setting.low - 1):
            with pytest.raises(ConfigError, match=re.escape(f"allowed: {setting.allowed()}")):
                cfg.apply_overrides(cfg.Config(), [f"{setting.name}={bad}"])
        assert getattr(cfg.apply_overrides(cfg.Config(), [f"{setting.name}={setting.high}"]), setting.name) \
            == setting.high
        if setting.optional:
            assert getattr(cfg.apply_overrides(cfg.Config(), [f"{setting.name}=none"]), setting.name) is None
    elif setting.kind == "choice":
        with pytest.raises(ConfigError, match="allowed: " + " | ".join(setting.choices()).replace("|", r"\|")):
            cfg.Config(**{setting.name: "nonsense"})
    elif setting.kind == "bool":
        assert getattr(cfg.apply_overrides(cfg.Config(), [f"{setting.name}=on"]), setting.name) is True


def test_live_settings_are_the_rows_marked_live():
    base = cfg.Config()
    for setting in schema.SETTINGS:
        if setting.kind in ("path", "text") or setting.name == "task":
            continue
        value = {"int": lambda s: min(s.high, getattr(base, s.name) + 1),
                 "float": lambda s: s.high, "bool": lambda s: not getattr(base, s.name),
                 "choice": lambda s: next(c for c in s.choices() if c != getattr(base, s.name) and c != "cuda")}[
            setting.kind](setting)
        changed = base.replace(**{setting.name: value})
        assert changed.needs_rebuild(base) == (not setting.live), setting.name


def test_where_a_setting_applies_is_read_from_its_row():
    activation, forget = schema.BY_NAME["activation"], schema.BY_NAME["forget_bias"]
    assert schema.applies(activation, cfg.Config()) and not schema.applies(activation, cfg.Config(cell="lstm"))
    assert schema.applies(forget, {"cell": "lstm"}) and not schema.applies(forget, {"cell": "gru"})
