"""Config: validation names key, value and what is allowed; files and --set round-trip losslessly."""
import json
import math

import pytest

from engine import config as cfg
from engine import registry
from engine.config import Config, ConfigError


def test_defaults_are_valid_and_match_the_documented_values():
    c = Config()
    assert (c.task, c.seq_len, c.cell, c.activation, c.init, c.clip, c.optimizer) == (
        "adding", 100, "rnn", "tanh", "default", "none", "adam")
    assert c.spectral_radius is None and c.lr == 1e-3
    assert set(cfg.KEYS) == set(c.to_dict())


def test_every_registry_choice_is_accepted():
    for key in ("cell", "activation", "init", "clip", "optimizer"):
        for name in registry.describe(key):
            assert getattr(Config().replace(**{key: name}), key) == name
    assert Config(task="copy", seq_len=1).task == "copy"
    assert Config(task="digits", seq_len=8).seq_len == 8


BAD = [
    # (changes, key named in the error, text of what is allowed)
    ({"task": "parity"}, "task", "adding | copy | digits"),
    ({"cell": "transformer"}, "cell", "rnn | lstm | gru"),
    ({"activation": "swish"}, "activation", "tanh"),
    ({"init": "zeros"}, "init", "orthogonal"),
    ({"clip": "both"}, "clip", "none | norm | value"),
    ({"optimizer": "lbfgs"}, "optimizer", "sgd | adam | rmsprop"),
    ({"device": "tpu"}, "device", "auto | cpu | cuda"),
    ({"task": 3}, "task", "adding | copy | digits"),
    ({"seq_len": 0}, "seq_len", "an integer from 1 to 5000"),
    ({"seq_len": 5001}, "seq_len", "an integer from 1 to 5000"),
    ({"seq_len": 10.0}, "seq_len", "an integer from 1 to 5000"),
    ({"seq_len": "100"}, "seq_len", "an integer from 1 to 5000"),
    ({"batch": 0}, "batch", "an integer from 1 to 4096"),
    ({"hidden": 2049}, "hidden", "an integer from 1 to 2048"),
    ({"layers": 9}, "layers", "an integer from 1 to 8"),
    ({"layers": True}, "layers", "an integer from 1 to 8"),      # bool is not an int here
    ({"seed": -1}, "seed", "an integer from 0 to 2147483647"),
    ({"skip": 1}, "skip", "true | false"),
    ({"attention": "yes"}, "attention", "true | false"),
    ({"lr": -0.1}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": 0.0}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": float("nan")}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": float("inf")}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": 11.0}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": True}, "lr", "a number greater than 0 and at most 10"),
    ({"lr": "0.1"}, "lr", "a number greater than 0 and at most 10"),
    ({"clip_threshold": 0.0}, "clip_threshold", "a number greater than 0"),
    ({"spectral_radius": 0.0}, "spectral_radius", "a number greater than 0 and at most 100"),
    ({"spectral_radius": 101.0}, "spectral_radius", "a number greater than 0 and at most 100"),
    ({"task": "digits"}, "seq_len", "64 (pixel by pixel) or 8 (row by row)"),   # default seq_len 100
    ({"task": "digits", "seq_len": 32}, "seq_len", "64 (pixel by pixel) or 8 (row by row)"),
    ({"task": "adding", "seq_len": 1}, "seq_len", "at least 2"),
]


def as_written(value) -> str:
    """A value as a config file or --set wrote it: JSON's true, false and null, not Python's True,
    False and None; other values as Python shows them."""
    if value is None or isinstance(value, bool):
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


@pytest.mark.parametrize("changes, key, allowed", BAD, ids=[f"{k}={v!r}" for c, k, _ in BAD for v in [c.get(k)]])
def test_bad_values_raise_config_error_naming_key_value_and_allowed(changes, key, allowed):
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    err = info.value
    assert err.key == key
    value = changes.get(key, Config.__dataclass_fields__[key].default)
    assert err.value is value or err.value == value or (isinstance(value, float) and math.isnan(value))
    message = str(err)
    assert message.startswith(f"{key}: ")
    assert as_written(value) in message
    assert allowed in message
    assert isinstance(err, ValueError)


def test_replace_validates_too():
    with pytest.raises(ConfigError, match="hidden"):
        Config().replace(hidden=0)


def test_live_and_structural_keys():
    c = Config()
    assert not c.needs_rebuild(c.replace(lr=0.01, clip="norm", clip_threshold=2.0, optimizer="sgd"))
    for change in ({"hidden": 8}, {"seq_len": 10}, {"cell": "gru"}, {"seed": 1}, {"init": "identity"},
                   {"spectral_radius": 0.5}, {"layers": 2}, {"attention": True}):
        assert c.needs_rebuild(c.replace(**change)), change
    assert c.changed_keys(c.replace(lr=0.5, seed=3)) == ["lr", "seed"]  # (in the schema's order)


# ----------------------------------------------------------------------------- files

NON_DEFAULT = Config(task="copy", seq_len=7, batch=5, hidden=9, layers=3, seed=12345, cell="gru",
                     activation="relu", init="orthogonal", spectral_radius=1.1, skip=True, attention=True,
                     clip="value", clip_threshold=0.25, optimizer="rmsprop", lr=1e-5, device="cpu")


@pytest.mark.parametrize("suffix", [".json", ".toml", ".TOML"])
@pytest.mark.parametrize("config", [Config(), NON_DEFAULT, NON_DEFAULT.replace(spectral_radius=None),
                                    NON_DEFAULT.replace(spectral_radius=0.1 + 0.2, lr=1 / 3)])
def test_file_round_trip_is_lossless(tmp_path, suffix, config):
    path = tmp_path / f"run{suffix}"
    cfg.save(config, path)
    loaded = cfg.load(path)
    assert loaded == config
    assert loaded.to_dict() == config.to_dict()
    assert type(loaded.spectral_radius) is type(config.spectral_radius)


def test_saved_json_is_plain_json_with_every_key(tmp_path):
    cfg.save(NON_DEFAULT.replace(spectral_radius=None), tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["spectral_radius"] is None and set(data) == set(cfg.KEYS)


def test_load_fills_missing_keys_from_base_and_accepts_nested_config(tmp_path):
    (tmp_path / "partial.toml").write_text('hidden = 7\nlr = 1\nspectral_radius = "none"\n')
    c = cfg.load(tmp_path / "partial.toml", base=Config(seed=4))
    assert (c.hidden, c.lr, c.seed, c.spectral_radius) == (7, 1.0, 4, None)
    assert type(c.lr) is float
    (tmp_path / "summary.json").write_text(json.dumps({"steps": 3, "config": {"seq_len": 12, "batch": 16.0}}))
    c = cfg.load(tmp_path / "summary.json")
    assert (c.seq_len, c.batch) == (12, 16) and type(c.batch) is int


@pytest.mark.parametrize("data, key, allowed", [
    ({"hiden": 8}, "hiden", "one of task, seq_len"),
    ({"seq_len": 10.5}, "seq_len", "an integer"),
    ({"seq_len": True}, "seq_len", "an integer"),
    ({"skip": "true"}, "skip", "true | false"),
    ({"skip": 1}, "skip", "true | false"),
    ({"lr": "0.01"}, "lr", "a number"),
    ({"lr": None}, "lr", "a number"),
    ({"lr": False}, "lr", "a number"),
    ({"task": None}, "task", "a string"),
    ({"spectral_radius": "big"}, "spectral_radius", "a number"),
    ({"lr": -1}, "lr", "a number greater than 0"),
])
def test_from_dict_rejects_bad_types(data, key, allowed):
    with pytest.raises(ConfigError) as info:
        cfg.from_dict(data)
    assert info.value.key == key
    assert allowed in str(info.value) and as_written(data[key]) in str(info.value)


def test_a_setting_given_twice_in_a_json_file_is_refused_by_name(tmp_path):
    """JSON lets the last of two equal keys win, which would drop a setting without a word."""
    path = tmp_path / "twice.json"
    path.write_text('{"hidden": 64, "seq_len": 20, "hidden": 32}')
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert info.value.key == "hidden"
    assert str(info.value) == (f"hidden: 32 is given a second time in {str(path)!r} (first 64); "
                               "allowed: each setting once in a file")


def test_a_table_in_place_of_a_setting_is_shown_as_the_file_wrote_it(tmp_path):
    path = tmp_path / "section.toml"
    path.write_text("[section]\nhidden = 32\n")
    with pytest.raises(ConfigError, match=r'section: \{"hidden": 32\} is set, but section is not a setting'):
        cfg.load(path)


def test_from_dict_rejects_a_non_table():
    with pytest.raises(ConfigError, match="a table of key = value pairs"):
        cfg.from_dict([1, 2])


@pytest.mark.parametrize("name, text, kind", [
    ("bad.json", '{"seq_len": 10,', "valid JSON"),
    ("bad.toml", "seq_len = = 3", "valid TOML"),
    ("list.json", "[1, 2, 3]", "a table of key = value pairs"),
    ("nan.json", '{"lr": NaN}', "a number greater than 0"),
    ("settings.yaml", "seq_len: 10", "is not JSON"),  # neither .json nor .toml: read as JSON, said so
])
def test_malformed_files_raise_config_error(tmp_path, name, text, kind):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert kind in str(info.value)
    if "valid" in kind or "JSON" in kind:
        assert info.value.key == "config file" and str(path) in str(info.value)
    if name.endswith(".yaml"):
        assert "a TOML file (.toml)" in str(info.value)


def test_an_unknown_key_is_named_with_the_closest_real_one():
    with pytest.raises(ConfigError) as info:
        cfg.apply_overrides(Config(), ["seqlen=10"])
    message = str(info.value)
    assert message.startswith("seqlen: '10' is set, but seqlen is not a setting (did you mean seq_len?)")
    assert "allowed: one of task, seq_len, batch" in message
    with pytest.raises(ConfigError) as info:
        cfg.from_dict({"zzz": 1})
    assert "did you mean" not in str(info.value) and "zzz is not a setting" in str(info.value)


def test_unreadable_files_raise_config_error(tmp_path):
    for path in (tmp_path / "missing.json", tmp_path):  # missing, and a directory
        with pytest.raises(ConfigError, match="cannot be read") as info:
            cfg.load(path)
        assert info.value.key == "config file" and str(path) in str(info.value)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="UTF-8"):
        cfg.load(binary)


# ----------------------------------------------------------------------------- --set KEY=VALUE

@pytest.mark.parametrize("key, text, expected", [
    ("seq_len", " 200 ", 200), ("lr", "1e-2", 0.01), ("clip_threshold", "3", 3.0),
    ("spectral_radius", "none", None), ("spectral_radius", "None", None), ("spectral_radius", "0.9", 0.9),
    ("skip", "true", True), ("skip", "On", True), ("attention", "0", False), ("attention", "no", False),
    ("cell", "lstm", "lstm"), ("seq_len", "1e3", 1000), ("layers", "2.0", 2),
])
def test_parse_value(key, text, expected):
    value = cfg.parse_value(key, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("key, text, allowed", [
    ("seq_len", "150.5", "an integer"), ("seq_len", "nan", "an integer"), ("seq_len", "ten", "an integer"), ("lr", "fast", "a number"),
    ("skip", "maybe", "true | false"), ("spectral_radius", "big", "a number or none"),
    ("colour", "red", "not a setting"),
])
def test_parse_value_errors(key, text, allowed):
    with pytest.raises(ConfigError) as info:
        cfg.parse_value(key, text)
    assert info.value.key == key and repr(text) in str(info.value) and allowed in str(info.value)


def test_apply_overrides_applies_in_order_and_validates():
    c = cfg.apply_overrides(Config(), ["seq_len=20", "lr=0.5", "seq_len=30", "spectral_radius=1.5", "skip=yes"])
    assert (c.seq_len, c.lr, c.spectral_radius, c.skip) == (30, 0.5, 1.5, True)
    assert cfg.apply_overrides(c, []) == c
    for bad in ("seq_len", "=5", " =5"):
        with pytest.raises(ConfigError) as info:
            cfg.apply_overrides(Config(), [bad])
        assert info.value.key == "--set" and "KEY=VALUE" in str(info.value) and repr(bad) in str(info.value)
    with pytest.raises(ConfigError, match=r"lr: nan .*greater than 0"):
        cfg.apply_overrides(Config(), ["lr=nan"])
    assert cfg.apply_overrides(Config(), ["task=digits", "seq_len=64"]).seq_len == 64
    with pytest.raises(ConfigError) as info:  # named as typed, not as read back (0.0)
        cfg.set_from_text(Config(), "lr", " 1e-400 ")
    assert str(info.value).startswith("lr: 1e-400 is not allowed") and info.value.value == 0.0
    assert str(info.value.for_key("run 2 lr")).startswith("run 2 lr: 1e-400 is not allowed")
    c = cfg.apply_overrides(Config(), ["layers=2.0", "seq_len=1e2"])  # whole numbers, read as a file's are
    assert (c.layers, c.seq_len) == (2, 100) and type(c.layers) is int and c == cfg.from_dict({"layers": 2.0, "seq_len": 1e2})


def test_choosing_a_task_alone_fits_the_length_to_it():
    """digits has only 64 or 8 steps: `--set task=digits` (or a file with just the task) takes 64
    from the default 100, keeps a length digits can use, and an explicit bad length still fails."""
    assert cfg.apply_overrides(Config(), ["task=digits"]).seq_len == 64
    assert cfg.apply_overrides(Config(seq_len=200), ["task=copy"]).seq_len == 200  # copy can use 200
    assert cfg.apply_overrides(Config(task="digits", seq_len=8), ["task=digits"]).seq_len == 8
    assert cfg.apply_overrides(Config(), ["seq_len=8", "task=digits"]).seq_len == 8
    assert cfg.from_dict({"task": "digits"}).seq_len == 64
    with pytest.raises(ConfigError, match="seq_len: 100 .*64"):
        cfg.apply_overrides(Config(), ["task=digits", "seq_len=100"])
    with pytest.raises(ConfigError) as info:
        cfg.from_dict({"task": "parity"})
    assert info.value.key == "task"
