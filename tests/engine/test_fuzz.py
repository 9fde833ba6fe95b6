"""A short, seeded fuzz pass over every file reader (benchmarks/fuzz_readers.py runs the long one):
mutated models, data, settings and experiments are accepted or refused in one line; none crashes a
reader, hangs it, or writes outside the cache folder."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_readers.py"


def test_a_seeded_fuzz_pass_finds_no_crash_hang_or_write_outside_the_cache():
    spec = importlib.util.spec_from_file_location("fuzz_readers", SCRIPT)
    fuzz_readers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz_readers)
    report = fuzz_readers.fuzz(seconds=12, seed=1, limit=2500)
    assert report["crashes"] == {}, report["crashes"]
    counted = {outcome for counts in report["outcomes"].values() for outcome in counts}
    assert counted <= {"accepted", "refused"}, report["outcomes"]
    assert report["inputs"] >= 500 and all(counts.get("refused") for counts in report["outcomes"].values())
