# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench clean lessons

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py $(ARGS)

# two pytest workers (pytest-xdist), one per core; a short temporary folder of its own, because messages
# quote a long path by its end and the tests compare them with their files' whole paths
PYTEST := QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --basetemp=$$(mktemp -d /tmp/rgl-XXXXXX)

test: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

# the engine and widget tests, no whole window and no app in a process of its own (under 2 minutes)
test-fast: $(STAMP)
	$(PYTEST) -m "not window and not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_engine.py

lessons: $(STAMP)
	$(PY) main.py lessons

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
