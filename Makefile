# rnnviz — the two commands the README gives: `make run` and `make test`.
PY ?= python3
PIP = $(PY) -m pip

.PHONY: install install-test browser run test bench demos

# torch first: pinned to the CPU build so pip never pulls a multi-GB CUDA build.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .

# the test extras include the optional Ray extra, so CI runs the Ray-engine tests too
install-test:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test,ray]'

# Debian's chromium for the end-to-end browser tests (needs root; skipped with a note otherwise).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "chromium is not installed and this is not root: browser tests will be skipped (sudo apt-get install chromium)"; fi; }

run: install
	$(PY) -m streamlit run streamlit_app.py

test: install-test browser
	$(PY) -m pytest -q

bench:
	$(PY) bench/bench_trace.py
	$(PY) bench/bench_contributions.py
	$(PY) bench/bench_analyses.py
	$(PY) bench/bench_browser.py

demos:
	$(PY) -m rnnviz_core.demos.build
