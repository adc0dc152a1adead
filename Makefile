# The course in two commands:  make lab  (start JupyterLab)  and  make test  (run every test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORKERS ?= 2
export OMP_NUM_THREADS := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup lab test test-unit test-notebooks sync exercises check bench bench-hard compare clean
.PHONY: html browser-deps browser-check screenshots grade-deps
CHROMIUM := /usr/lib/chromium/chromium
# the Playwright version the browser tests are written for: pyproject.toml's optional dependency 'browser'
PLAYWRIGHT := $(shell sed -n 's/^browser = \["\(playwright==[^"]*\)"\].*/\1/p' pyproject.toml)

setup: $(STAMP)  ## create .venv and install the course (fast when already done)

$(STAMP): pyproject.toml lab/overrides.json
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@# JupyterLab defaults for the course: start the notebook's kernel without asking, no news pop-up
	@mkdir -p $(VENV)/share/jupyter/lab/settings && cp lab/overrides.json $(VENV)/share/jupyter/lab/settings/
	@touch $(STAMP)

# Jupyter refuses to run as root unless told to (containers, CI machines).
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

# make lab LAB_PORT=8890 LAB_TOKEN=secret: another port (default: 8888 or the next free one), a fixed token
LAB_PORT  ?=
LAB_TOKEN ?=
lab: setup  ## copy new exercises into work/ (your own copies, never overwritten), start JupyterLab on the course map
	@$(PY) -m lecturekit.course.authoring work
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=. \
	  --LabApp.default_url=/lab/tree/notebooks/00_course_map.ipynb \
	  $(if $(LAB_PORT),--port=$(LAB_PORT)) $(if $(LAB_TOKEN),--IdentityProvider.token=$(LAB_TOKEN))

test: setup browser-check  ## unit tests, course consistency, nbval over notebooks/ and solutions/, browser
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env -q tests notebooks solutions

test-unit: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadfile -q tests

test-notebooks: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env -q notebooks solutions

sync: setup  ## write the .ipynb of every .py notebook (no outputs); refuses if an .ipynb has cells its .py lacks
	$(PY) -m lecturekit.course.authoring sync

exercises: setup  ## regenerate exercises/ from solutions/; refuses to overwrite an exercise edited by hand
	$(PY) -m lecturekit.course.authoring exercises

check: setup  ## report notebook pairs or exercises that are out of date
	$(PY) -m lecturekit.course.authoring check

bench: setup  ## every algorithm on its benchmark task, 5 seeds; writes bench/results.{json,md}
	$(PY) -m lecturekit bench --seeds 5 --out bench

compare: setup  ## SB3 (rl-zoo hyperparameters) beside the course, 5 seeds; writes bench/compare/results.{json,md}
	@$(PY) -c "import stable_baselines3" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check -e '.[compare]'
	$(PY) bench/compare.py --seeds 5 --out bench/compare

bench-hard: setup  ## the lecture's phenomena on harder tasks, 3-10 seeds (about 12 CPU minutes); writes bench/hard/
	$(PY) bench/hard.py --out bench/hard --seeds 3 --workers $(WORKERS)

html: setup  ## execute every lecture notebook and write the course as a static site: site/index.html
	$(PY) -m lecturekit.course.site --out site --jobs $(WORKERS)

browser-deps: setup  ## what tests/browser needs: Debian's chromium (apt-get, as root) and Playwright
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "browser-deps: run as root, or: sudo apt-get install chromium"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check "$(PLAYWRIGHT)"

grade-deps: setup  ## what `python -m lecturekit grade` needs: bubblewrap (apt-get, as root), checked by starting a sandbox
	@if ! command -v bwrap >/dev/null; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "grade-deps: run as root, or: sudo apt-get install bubblewrap"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	fi
	@$(PY) -c "from lecturekit.course.sandbox import bwrap_problem as p; w = p(); print('grade-deps:', w or 'bubblewrap starts a sandbox here'); raise SystemExit(1 if w else 0)"

.PHONY: cluster-deps
cluster-deps: setup  ## what --cluster (grade, bench) and tests/test_cluster.py need: Dask, pyproject's extra 'cluster'
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[cluster]'

browser-check:
	@if [ -x $(CHROMIUM) ] && $(PY) -c "import playwright" 2>/dev/null; then \
	  echo "browser tests: will run (tests/browser: JupyterLab in headless $(CHROMIUM))"; \
	else \
	  echo "browser tests: SKIPPED (no Chromium at $(CHROMIUM) or no Playwright in $(VENV); make browser-deps)"; \
	fi

screenshots: setup  ## retake the README's screenshots (docs/img/) with the browser suite
	LECTUREKIT_SCREENSHOTS=1 $(PY) -m pytest -p no:xdist -q tests/browser

clean:
	rm -rf $(VENV) site .pytest_cache
