# The course in two commands:  make lab  (start JupyterLab)  and  make test  (run every test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORKERS ?= 2
export OMP_NUM_THREADS := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup lab test test-unit test-notebooks sync exercises check bench clean

setup: $(STAMP)  ## create .venv and install the course (fast when already done)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)

lab: setup  ## start JupyterLab on the course map
	$(VENV)/bin/jupyter lab notebooks/00_course_map.ipynb

test: setup  ## unit tests, course consistency, nbval over notebooks/ and solutions/
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env -q tests notebooks solutions

test-unit: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadfile -q tests

test-notebooks: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env -q notebooks solutions

sync: setup  ## write the .ipynb of every .py notebook (no outputs)
	$(PY) -m lecturekit.authoring sync

exercises: setup  ## regenerate exercises/ from solutions/
	$(PY) -m lecturekit.authoring exercises

check: setup  ## report notebook pairs or exercises that are out of date
	$(PY) -m lecturekit.authoring check

bench: setup  ## every algorithm on its benchmark task, 5 seeds; writes bench/results.{json,md}
	$(PY) -m lecturekit bench --seeds 5 --out bench

clean:
	rm -rf $(VENV) site .pytest_cache
