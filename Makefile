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

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 $(PY) -m pytest -q $(PYTEST_ARGS)

# the engine and widget tests, no whole window and no app in a process of its own (under 2 minutes)
test-fast: $(STAMP)
	QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not window and not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_engine.py

lessons: $(STAMP)
	$(PY) main.py lessons

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
