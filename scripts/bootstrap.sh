#!/usr/bin/env bash
# Create .venv with everything snn-compile needs (idempotent). Used by `make venv`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip "setuptools>=77" wheel
# constraints.txt pins the tested versions of everything below (pyproject.toml holds ranges;
# scripts/update_constraints.sh regenerates the pins).
# The CPU build of torch that lies on this machine; a plain "torch" pulls a multi-GB CUDA build.
pip install -q --no-compile -c constraints.txt torch==2.13.0  # no .pyc up front: compiled on import
# lava-nc 0.10.0 declares Python < 3.11 but runs on 3.11 with a small shim
# (backends/loihi/compat.py). Its dependencies come from the `loihi` extra.
pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0
# every backend's extra, the examples' and the tests' dependencies
pip install -q -c constraints.txt -e ".[all,test]"
.venv/bin/python -c "import snn_compile, torch, snntorch, nir, onnxruntime; print('venv ready: torch', torch.__version__)"
