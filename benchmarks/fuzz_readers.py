"""Fuzz every file reader with mutations of valid files, for a bounded time: no mutation may crash a
reader (an exception other than its one-line refusal), hang it, or make it write outside the cache.

    python benchmarks/fuzz_readers.py [--seconds 60] [--seed 0]

Valid seeds: a user's model (.pt), data (.npz, .csv, .txt), settings (.json, .toml) and experiment
files (.rgl, one carrying a model's weights and a data file, whose originals are gone, so that their
copies are unpacked). Mutations: bit flips, byte runs overwritten, inserted or deleted, truncations,
zip members rewritten with flipped bytes, and the experiment header's JSON values replaced (paths,
hashes, sizes, types). Each input is read once, with a 10 s alarm; the outcomes are counted per
reader: accepted, refused (the reader's own one-line error), crashed (anything else), hung, and
wrote-outside (a file appeared outside the cache folder). tests/engine/test_fuzz.py runs a short pass.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from engine import user_model, user_data  # noqa: E402
from engine import config as cfg  # noqa: E402
from engine import experiment as ex  # noqa: E402
from engine.errors import ConfigError  # noqa: E402


class Hung(Exception):
    pass


def seeds(folder: Path) -> dict:
    """Valid files of every kind the lab reads, {name: bytes}, and the reader of each suffix."""
    torch.manual_seed(0)
    model = nn.Module()
    model.rnn, model.head = nn.LSTM(2, 5, batch_first=True), nn.Linear(5, 1)
    torch.save(model.state_dict(), folder / "m.pt")
    np.savez(folder / "d.npz", x=np.random.default_rng(0).standard_normal((8, 6, 2)).astype(np.float32),
             y=np.arange(8) % 3)
    (folder / "s.csv").write_text("date,a,b\n" + "".join(f"d{k},{k % 7}.5,{np.sin(k):.3f}\n" for k in range(80)))
    (folder / "t.txt").write_text("It is a truth universally acknowledged, that a single man " * 8)
    (folder / "c.json").write_text(json.dumps({"cell": "gru", "hidden": 8, "seq_len": 12}))
    (folder / "c.toml").write_text('cell = "lstm"\nhidden = 8\nlr = 0.01\n')
    run = cfg.Config(seq_len=6, hidden=5, batch=4, cell="lstm", task="data", model=str(folder / "m.pt"),
                     data=str(folder / "d.npz"))
    ex.save(folder / "e.rgl", ex.Experiment([run, cfg.Config(seq_len=8, hidden=4)]), include_data=True)
    files = {name: (folder / name).read_bytes() for name in ("m.pt", "d.npz", "s.csv", "t.txt", "c.json",
                                                            "c.toml", "e.rgl")}
    for name in ("m.pt", "d.npz"):  # the experiment's originals are gone: its copies are what it uses
        (folder / name).unlink()
    return files


READERS = {".pt": (user_model.read, ConfigError), ".npz": (user_data.read, ConfigError),
           ".csv": (user_data.read, ConfigError), ".txt": (user_data.read, ConfigError),
           ".json": (cfg.load, ConfigError), ".toml": (cfg.load, ConfigError),
           ".rgl": (ex.load, ex.ExperimentError)}


def _zip_members(data: bytes):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except Exception:
        return None


def _zipped(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, value in members.items():
            archive.writestr(name, value)
    return out.getvalue()


NASTY = ["../../../../tmp/x" + "/." * 24, "/tmp/" + "a" * 59, "", None, -1, 10**30, 1e308, [], {}, "a" * 64,
         "0" * 64, "\x00", "e" * 100_000, True]


def _mutate_header(members: dict, rng: random.Random) -> dict:
    raw = np.load(io.BytesIO(members["experiment.json.npy"]), allow_pickle=False).tobytes()
    header = json.loads(raw)
    paths = [header]
    target = header
    while isinstance(target, (dict, list)) and target and rng.random() < 0.7:
        keys = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
        key = rng.choice(keys)
        paths.append((target, key))
        if not isinstance(target[key], (dict, list)) or not target[key]:
            break
        target = target[key]
    if len(paths) > 1:
        parent, key = paths[-1]
        parent[key] = rng.choice(NASTY)
    elif isinstance(header.get("files"), dict) and header["files"]:  # rename an entry to a nasty path
        original = next(iter(header["files"]))
        header["files"][rng.choice(NASTY[:2])] = header["files"].pop(original)
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return {**members, "experiment.json.npy": buffer.getvalue()}


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    data = bytearray(data)
    if kind == 0 and data:  # bit flips
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1 and data:  # a run overwritten
        start = rng.randrange(len(data))
        data[start:start + rng.randint(1, 64)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 2:  # bytes inserted
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.choice([0, 0xFF, ord(","), ord("\n"), ord('"'), rng.randrange(256)])
                            for _ in range(rng.randint(1, 4096)))
    elif kind == 3 and data:  # bytes deleted
        start = rng.randrange(len(data))
        del data[start:start + rng.randint(1, 256)]
    elif kind == 4:  # truncated
        del data[rng.randrange(len(data) + 1):]
    else:  # inside a zip: a member's bytes flipped, or the experiment's header rewritten
        members = _zip_members(bytes(data))
        if not members:
            return mutate(bytes(data), rng)
        if kind == 6 and "experiment.json.npy" in members:
            return _zipped(_mutate_header(members, rng))
        name = rng.choice(list(members))
        value = bytearray(members[name])
        for _ in range(rng.randint(1, 4)):
            if value:
                value[rng.randrange(len(value))] ^= 1 << rng.randrange(8)
        members[name] = bytes(value)
        return _zipped(members)
    return bytes(data)


def _canaries() -> list:
    """Where NASTY's absolute and traversing names would land (the system's temporary folder)."""
    return list(Path("/tmp").glob("a" * 59 + "*")) + list(Path("/tmp").glob("x*"))


def _alarm(signum, frame):
    raise Hung()


def fuzz(seconds: float, seed: int = 0, limit: int | None = None, echo=print) -> dict:
    """Mutate and read until `seconds` (or `limit` inputs) pass; returns {reader: Counter of outcomes}
    and the first example of each crash."""
    rng = random.Random(seed)
    outcomes = collections.defaultdict(collections.Counter)
    crashes = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        home = scratch / "work"
        home.mkdir()
        os.environ["XDG_CACHE_HOME"] = str(scratch / "cache")
        files = seeds(home)
        before = {p for p in scratch.rglob("*")}
        canaries = set(_canaries())
        start, count = time.perf_counter(), 0
        previous = signal.signal(signal.SIGALRM, _alarm)
        try:
            while time.perf_counter() - start < seconds and (limit is None or count < limit):
                name = rng.choice(list(files))
                suffix = Path(name).suffix
                read, refusal = READERS[suffix]
                path = home / f"fuzzed{suffix}"
                path.write_bytes(mutate(files[name], rng))
                signal.alarm(10)
                try:
                    with warnings.catch_warnings(record=True) as warned:
                        warnings.simplefilter("always")
                        read(path)
                    outcome = "accepted"
                    if warned:  # (numpy's on an empty slice: a number computed from nothing)
                        outcome = "accepted-with-warning"
                        crashes.setdefault(f"{suffix} warning", str(warned[0].message)[:300])
                except refusal as exc:
                    outcome = "refused" if "\n" not in str(exc) else "crashed"
                except Hung:
                    outcome = "hung"
                except Exception as exc:  # noqa: BLE001 (what the fuzz pass looks for)
                    outcome = "crashed"
                    crashes.setdefault(f"{suffix} {type(exc).__name__}", f"{exc}"[:300])
                finally:
                    signal.alarm(0)
                new = {p for p in scratch.rglob("*") if p not in before and not p.name.startswith("fuzzed.")}
                new |= set(_canaries()) - canaries
                if any(not str(p).startswith(str(scratch / "cache")) for p in new):
                    outcome = "wrote-outside"
                    crashes.setdefault(f"{suffix} wrote-outside", ", ".join(map(str, new)))
                outcomes[suffix][outcome] += 1
                count += 1
        finally:
            signal.signal(signal.SIGALRM, previous)
            os.environ.pop("XDG_CACHE_HOME", None)
    return {"inputs": count, "seconds": round(time.perf_counter() - start, 1),
            "outcomes": {k: dict(v) for k, v in sorted(outcomes.items())}, "crashes": crashes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = fuzz(args.seconds, args.seed)
    print(json.dumps(report, indent=2))
    return 1 if report["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
