# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Runs land here; the demo makes a new timestamped folder under it every time.
RUNS := runs

.PHONY: demo test bench lint-docker

$(VENV)/.runtime-installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt requirements-beam.txt
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The main job on embedded data: synthetic corpus -> TFRecords -> training ->
# calibration -> test report -> detect, in a new runs/demo-<UTC time>/.
demo: $(VENV)/.runtime-installed
	$(BIN)/python -m unet_industrial.demo

# Two pytest-xdist workers, each given whole test files: module fixtures are
# built once, and the graph tracing that dominates the suite runs on one core
# per process (the suite's time: BENCHMARKS.md). pytest's exit 5, no
# tests collected, is a loud warning rather than a failure; it is handled here
# because make turns every failing status into its own 2.
PYTEST_WORKERS ?= 2
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests; \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "warning: pytest collected no tests" >&2; exit 0; fi; \
	exit $$status

# CPU numbers for BENCHMARKS.md (fp32 and bfloat16 AMP, 128x128x3, batch 8).
bench: $(VENV)/.runtime-installed
	$(BIN)/python -m unet_industrial.train --exec_mode=training_benchmark \
		--input_size=128 --batch_size=8 --num_iter=40 --warmup_step=10
	$(BIN)/python -m unet_industrial.train --exec_mode=training_benchmark \
		--input_size=128 --batch_size=8 --num_iter=40 --warmup_step=10 --amp --amp_dtype=bfloat16
	$(BIN)/python -m unet_industrial.train --exec_mode=inference_benchmark \
		--input_size=128 --batch_size=8 --num_iter=40 --warmup_step=10
	$(BIN)/python -m unet_industrial.train --exec_mode=inference_benchmark \
		--input_size=128 --batch_size=8 --num_iter=40 --warmup_step=10 --amp --amp_dtype=bfloat16
