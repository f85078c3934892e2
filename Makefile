# Quick start: `make sim` runs the simulated satellite with a ground station; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS := sim,ground,payload,dev,gds

.PHONY: sim gds gds-browser-test test lint bench bench-quick reliability venv clean ksc install-test system-python

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The simulated satellite runs in the background (log in var/sim.log); the ground station's live
# view runs in the foreground on the simulated transceiver's KISS port. Quitting the view stops both.
sim: $(STAMP)
	mkdir -p var
	$(VENV)/bin/flightsw sim > var/sim.log 2>&1 & pid=$$!; trap "kill $$pid 2>/dev/null" EXIT INT TERM; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1; test -e var/sim/uplink.keys && break; done; \
	  $(VENV)/bin/flightsw ground --kiss 127.0.0.1:8001

# NASA's F Prime GDS web UI against the simulated satellite (docs/gds.md): the simulator and the ground
# station bridged to the GDS (`flightsw ground --gds`) run in the background (logs in var/), the GDS in the
# foreground on 127.0.0.1. Ctrl-C stops all three.
GDS_PORT ?= 50000
GUI_PORT ?= 5000
gds: $(STAMP)
	mkdir -p var/gds
	$(VENV)/bin/flightsw dict --format fprime -o var/gds/flightsw.json
	$(VENV)/bin/flightsw sim > var/sim.log 2>&1 & sim=$$!; trap "kill $$sim $$bridge 2>/dev/null" EXIT INT TERM; \
	  for i in $$(seq 30); do sleep 1; test -e var/sim/uplink.keys && break; done; \
	  $(VENV)/bin/flightsw ground --kiss 127.0.0.1:8001 --db var/gds/ground.sqlite3 --gds 127.0.0.1:$(GDS_PORT) \
	    > var/gds/bridge.log 2>&1 & bridge=$$!; \
	  echo "F Prime GDS web UI: http://127.0.0.1:$(GUI_PORT)/"; \
	  $(VENV)/bin/fprime-gds --no-app --dictionary var/gds/flightsw.json --communication-selection ip \
	    --ip-address 127.0.0.1 --ip-port $(GDS_PORT) --framing-selection fprime --gui-addr 127.0.0.1 \
	    --gui-port $(GUI_PORT) -l var/gds/logs --file-storage-directory var/gds/files

# The GDS web UI in headless Chromium (the OS's chromium and chromium-driver, apt-installed by
# .ci/install-chromium if missing, as root; Selenium from PyPI): it must show a live battery voltage; the
# screenshot is left in the test's directory. About 15 s; not part of `make test`, .ci/run runs it after.
gds-browser-test: $(STAMP)
	@./.ci/install-chromium
	@$(PY) -c "import selenium" 2>/dev/null || $(PY) -m pip install --quiet "selenium>=4.20"
	FLIGHTSW_BROWSER_TEST=1 $(PY) -m pytest -q -s tests/gds/test_gds_acceptance.py -k chromium

# Kaitai Struct compiler (npm build, 0.10 to match the kaitaistruct runtime) for the beacon .ksy test.
KSC := $(VENV)/ksc/.installed
ksc: $(KSC)
$(KSC):
	@if command -v npm >/dev/null; then npm install --silent --prefix $(VENV)/ksc kaitai-struct-compiler@0.10.0 js-yaml && touch $@; \
	  else echo "node/npm not found: the .ksy compile test will be skipped"; fi

# tests/filetransfer runs in a pytest process of its own: after the ~470 tests before it, in the same
# process and on a loaded machine, its virtual-time CFDP tests have hung (a CFDP worker's completion
# never seen by the loop; not reproduced with the directory alone or with any one directory before it).
# Under investigation; docs/testing.md, "Known issues".
test: $(STAMP) $(KSC)
	$(PY) -m pytest -q --ignore=tests/filetransfer
	$(PY) -m pytest -q tests/filetransfer

# The board's real install path (tests/deploy/test_install_real_path.py, about a minute, needs root
# and the package registry): deploy/install.sh with the OS's own /usr/bin/python3 and python3-pip,
# as Raspberry Pi OS / Debian ship them. Not part of `make test`; .ci/run runs it after.
SYSTEM_PYTHON := /usr/bin/python3
system-python:
	@if ! $(SYSTEM_PYTHON) -m pip --version >/dev/null 2>&1 || ! $(SYSTEM_PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	  echo "installing python3 python3-pip python3-venv (Debian packages) for the install test"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip python3-venv; \
	fi
	@$(SYSTEM_PYTHON) -m pip --version

install-test: $(STAMP) system-python
	FLIGHTSW_INSTALL_TEST=1 $(PY) -m pytest -q -p no:cacheprovider tests/deploy/test_install_real_path.py

lint: $(STAMP)
	$(VENV)/bin/ruff check flightsw hal sim tests reliability
	$(VENV)/bin/mypy flightsw hal sim reliability
	$(VENV)/bin/mypy --strict flightsw/core

# The performance budget (bench/suite.py), each benchmark repeated in fresh processes, figures against
# baselines measured in the same run; rewrites docs/performance.md and docs/performance.json (~12 min).
bench: $(STAMP)
	PYTHONASYNCIODEBUG= $(PY) -m bench

# The same suite with short windows (~2 min): a smoke run, figures not comparable with the targets.
bench-quick: $(STAMP)
	PYTHONASYNCIODEBUG= $(PY) -m bench --quick --out var/bench

# Reliability and security campaigns, written to docs/reliability.md (+ .json): fuzzing of every parser
# of outside bytes (hypothesis; atheris too when it installs), uplink attacks on a running `flightsw sim`
# over its KISS TCP port, least privilege, 1000 SIGKILLs of the flight process (power cuts), storage faults
# (full tmpfs, failing fsync, corrupt store slots), two ground processes on one archive (the live view and
# a CLI loop: commands and file transfers both ways for 10 minutes, no replay rejection), a 7-day soak under
# random faults (beside the fuzzing). About 40 minutes; not part of `make test` (its smoke versions are).
reliability: $(STAMP)
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet "atheris>=2.3" \
	  || echo "atheris did not install on this Python: fuzzing with hypothesis only"
	PYTHONASYNCIODEBUG= $(PY) -m reliability

clean:
	rm -rf $(VENV) build dist *.egg-info
