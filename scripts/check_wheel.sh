#!/usr/bin/env bash
# CI step: what a user gets from `pip install`. Builds the sdist and, from it, the wheel of a
# clean copy of the tree; installs the wheel (not editable) into a fresh venv in a temporary
# folder; and from another temporary folder runs
#   - with the core dependencies only: --version, targets, backends (no torch imported), and the
#     main command for cpu (emulator);
#   - with every extra installed: the main command for loihi (Lava), xc7z020 (HLS, g++ with the
#     project's own ap_types) and cpu --backend onnx, each checked against the emulator.
# Prints the time of every stage. Usage: bash scripts/check_wheel.sh (from anywhere).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
BUILD_PY=${BUILD_PY:-$REPO/.venv/bin/python}  # any Python with `build` and setuptools>=77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/snn-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
stage() { echo "[check_wheel] $(( SECONDS - t0 ))s: $*"; }

stage "copy the tree (tracked and untracked, not ignored files) and build sdist + wheel"
mkdir "$tmp/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' | tar -cf - -T -) | tar -xf - -C "$tmp/src"
"$BUILD_PY" -m build --no-isolation --outdir "$tmp/dist" "$tmp/src" > "$tmp/build.log" 2>&1 \
    || { tail -30 "$tmp/build.log"; exit 1; }
wheel=$(ls "$tmp"/dist/*.whl)
stage "built $(basename "$wheel")"

"$PY" -m venv "$tmp/venv"
pip() { "$tmp/venv/bin/python" -m pip "$@"; }
export SNN_COMPILE_HLS_CACHE="$tmp/hls-cache"  # nothing compiled before counts
pip install -q --no-compile -c "$REPO/constraints.txt" torch==2.13.0  # CPU build on this machine
pip install -q --no-compile -c "$REPO/constraints.txt" "$wheel"
stage "installed the wheel with its core dependencies"

mkdir "$tmp/run" && cd "$tmp/run"  # no source tree in sight
snn="$tmp/venv/bin/snn-compile"
data="$tmp/digits_test.npz" model="$tmp/digits_snn.pt"
cp "$REPO/examples/digits/digits_test.npz" "$data"
cp "$REPO/examples/digits/digits_snn.pt" "$model"
"$snn" --version
"$snn" targets > /dev/null
"$snn" backends
"$tmp/venv/bin/python" - <<'PY'
import sys
from snn_compile.cli import main
main(["targets"]); main(["backends"])
assert "torch" not in sys.modules, "listing targets/backends imported torch"
import snn_compile
assert snn_compile.__file__.startswith(sys.prefix), f"not the installed package: {snn_compile.__file__}"
print("installed package:", snn_compile.__file__)
PY
"$snn" "$model" --target cpu -o out_cpu --data "$data" --no-plots > out_cpu.log
stage "core only: --version, targets, backends, main command for cpu"

pip install -q --no-compile --no-deps --ignore-requires-python lava-nc==0.10.0  # see bootstrap.sh
pip install -q --no-compile -c "$REPO/constraints.txt" "$wheel[all]"
stage "installed every extra"

check() {  # name, then the main command's arguments
    local name=$1; shift
    local s=$SECONDS
    "$snn" "$model" "$@" -o "out_$name" --data "$data" > "out_$name.log" \
        || { cat "out_$name.log"; echo "main command for $name failed"; exit 1; }
    grep " vs emulator" "out_$name.log"
    "$tmp/venv/bin/python" - "out_$name" <<'PY'
import json, sys
report = json.load(open(f"{sys.argv[1]}/report.json"))
run = report["backend"]["run"]
assert run == "identical", f"{sys.argv[1]}: backend vs emulator: {run}"
assert report["check"]["verdict"] == "pass", report["check"]["failures"]
PY
    stage "main command $* ($(( SECONDS - s ))s): backend identical to the emulator"
}
check loihi --target loihi
test -f out_loihi/lava/run_lava.py && test -f out_loihi/lava/manifest.json
check xc7z020 --target xc7z020
test -f out_xc7z020/hls/ap_types/ap_int.h && test -f out_xc7z020/hls/ap_types/LICENSE
check onnx --target cpu --backend onnx
test -f out_onnx/onnx/model_window.onnx
stage "done: the installed wheel runs the main command for loihi, xc7z020 and cpu/onnx"
