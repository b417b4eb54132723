# Two commands for a fresh machine:
#   make book   run every notebook (committed profile) and build the site into _build/html
#   make test   lint, unit tests, a smoke build of the whole book (tiny settings), a browser check
# The first target that needs Python creates $(VENV) from requirements.lock.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

# Dataset root, passed through from the environment (CI points it at ../shared/data).
LTH_DATA ?= ./data
export LTH_DATA

.PHONY: book test verify-one smoke check-site check-book lint format bench campaign clean

book: $(STAMP)
	$(PY) scripts/build_book.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q
	$(MAKE) verify-one
	$(MAKE) smoke
	$(MAKE) check-site

# Re-make the cheapest committed record known to reproduce on this machine type (made on it,
# or logged in data/runs/verified.jsonl as re-made on it bit for bit) and compare it bit for bit:
# records reproduce only on the machine type that made them. `python -m lth verify --sample N`
# checks more; `python -m lth verify KEY` checks one record and logs it if it reproduces.
verify-one: $(STAMP)
	$(PY) -m lth verify --here --no-log

# Smoke profile, with run records and chain cache in a fresh temporary folder, so that
# CI never writes into data/runs or .cache; the smoke book is built in _build/smoke (its site:
# _build/smoke/_build/html), so the real book in book/ and _build/html is never touched.
smoke: $(STAMP)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	LTH_CACHE="$$tmp/cache" $(PY) scripts/build_book.py --profile smoke --runs "$$tmp/runs" \
		--out _build/smoke

# Every page of the smoke book in headless Chromium (scripts/check_site.py): images loaded, math
# rendered, links and anchors, no page wider than a 390 px phone, no traceback; a screenshot of
# each page at 390 and 1280 px in _build/smoke/screenshots. Without chromium it is skipped,
# except in CI (.ci/run installs Debian's chromium and sets LTH_REQUIRE_BROWSER=1).
check-site: $(STAMP)
	$(PY) scripts/check_site.py _build/smoke/_build/html --screenshots _build/smoke/screenshots

# The same check of the real book (after make book), screenshots in _build/screenshots.
check-book: $(STAMP)
	$(PY) scripts/check_site.py _build/html --screenshots _build/screenshots

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

# The paper-scale campaign (python -m lth campaign): HOURS of training, then a clean stop.
# Run it from a clean checkout of a commit, at low priority: make campaign HOURS=2.5
HOURS ?= 1
campaign: $(STAMP)
	nice -n 19 $(PY) -m lth campaign --hours $(HOURS)

clean:
	rm -rf _build book/figures
	rm -f book/*.ipynb

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $@
