# Two commands on a fresh machine (each creates .venv first if it is missing):
#   make example   compile the shipped example for Loihi 2 and check it
#   make test      run the test suite
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv example test test-all bench clean

$(VENV)/.ready: pyproject.toml constraints.txt scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

venv: $(VENV)/.ready

example: venv
	$(VENV)/bin/snn-compile examples/digits/digits_snn.pt --target loihi --data examples/digits/digits_test.npz -o out/digits_loihi

test: venv
	$(PY) -m pytest -q

test-all: venv
	$(PY) -m pytest -q -m "slow or not slow"

bench: venv
	$(PY) benchmarks/bench_emulator.py

clean:
	rm -rf $(VENV) out build *.egg-info
