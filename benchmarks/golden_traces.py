"""Guard for emulator speed work: record traces of random networks, then check them bit for bit.

    python benchmarks/golden_traces.py save  [--path /tmp/emulator_golden.pkl] [--reference-rev REV]
    python benchmarks/golden_traces.py check [--path /tmp/emulator_golden.pkl]

``save`` draws random networks from ``tests/strategies.py`` for the loihi2, cpu and xc7z020
targets (dense/conv, recurrent, CUBA, large weights that drive states into wrap/saturation),
runs them through ``run_network`` and pickles networks, inputs and traces. ``check`` re-runs the
same networks with the current emulator and fails unless every output spike and every u/v/spike
state of every layer is identical (values and dtypes).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from backends.emulator.engine import run_network  # noqa: E402
from snn_compile.targets import load_target  # noqa: E402
from strategies import random_qnetwork, random_spikes  # noqa: E402

TARGETS = ("loihi2", "cpu", "xc7z020")
# datapath variants that no shipped target has: int32 intermediates with wrap/saturate rules,
# and widths that are neither 32 nor 64 bits
VARIANTS = {
    "loihi2-wrap": ("loihi2", {"neuron.u_overflow": "wrap", "neuron.v_overflow": "wrap"}),
    "cpu-ib32": ("cpu", {"accumulator.intermediate_bits": 32, "neuron.decay_rounding": "nearest",
                         "neuron.u_bits": 24, "neuron.v_bits": 24}),
    "fpga-ib40": ("xc7z020", {"accumulator.intermediate_bits": 40, "neuron.u_bits": 20,
                              "neuron.v_bits": 18, "accumulator.dense_bits": 28}),
}
PER_TARGET = 24
DEFAULT_PATH = Path("/tmp/emulator_golden.pkl")


def cases(seed: int = 20261129):
    rng = np.random.default_rng(seed)
    targets = [(name, load_target(name)) for name in TARGETS]
    targets += [(name, load_target(base, over)) for name, (base, over) in VARIANTS.items()]
    for target_name, target in targets:
        for i in range(PER_TARGET if target_name in TARGETS else PER_TARGET // 2):
            net = random_qnetwork(rng, target, conv=bool(i % 4 == 3), recurrent=bool(i % 3 == 1),
                                  cuba=bool(i % 2), depth=int(rng.integers(1, 4)),
                                  weight_scale=float(rng.choice([0.5, 1.0, 8.0, 200.0])))
            spikes = random_spikes(rng, net, steps=int(rng.integers(20, 60)),
                                   batch=int(rng.integers(1, 5)), rate=float(rng.uniform(0.1, 0.6)))
            if i % 5 == 2:  # "zero" resets that discard the input of the reset step
                net = replace(net, layers=tuple(
                    replace(layer, neuron=replace(layer.neuron, reset_discards_input=True))
                    if layer.neuron.reset == "zero" else layer for layer in net.layers))
            if i % 6 == 5:  # graded 8-bit input
                net = replace(net, input_bits=8, input_scale=100.0)
                spikes = spikes * rng.uniform(-1.2, 1.2, size=spikes.shape).astype(np.float32)
            yield f"{target_name}/{i}", net, spikes


def _flat(trace) -> dict[str, np.ndarray]:
    return trace.to_npz_dict()


def reference_engine(rev: str):
    """``run_network`` of the emulator as committed at git revision ``rev``."""
    import importlib
    import subprocess
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="emulator_ref_"))
    pkg = tmp / "emulator_ref"
    pkg.mkdir()
    for name in ("__init__.py", "arith.py", "engine.py", "synapse.py"):
        src = subprocess.run(["git", "show", f"{rev}:backends/emulator/{name}"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        (pkg / name).write_text(src)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("emulator_ref.engine").run_network


def save(path: Path, rev: str | None) -> None:
    run = reference_engine(rev) if rev else run_network
    records = [(name, net, spikes, _flat(run(net, spikes))) for name, net, spikes in cases()]
    path.write_bytes(pickle.dumps(records))
    print(f"saved {len(records)} traces to {path}")


def check(path: Path) -> int:
    records = pickle.loads(path.read_bytes())
    bad = 0
    for name, net, spikes, expected in records:
        got = _flat(run_network(net, spikes))
        for key, want in expected.items():
            have = got.get(key)
            if have is None or have.dtype != want.dtype or not np.array_equal(have, want):
                bad += 1
                print(f"MISMATCH {name} {key}", file=sys.stderr)
                break
        else:
            if set(got) != set(expected):
                bad += 1
                print(f"MISMATCH {name}: keys {sorted(set(got) ^ set(expected))}", file=sys.stderr)
    print(f"{len(records) - bad}/{len(records)} networks bit-identical")
    return 1 if bad else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "check"))
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--reference-rev", help="save: record with the emulator of this git "
                        "revision (e.g. a commit before the optimisation) instead of the working tree")
    args = parser.parse_args(argv)
    if args.mode == "save":
        save(args.path, args.reference_rev)
        return 0
    return check(args.path)


if __name__ == "__main__":
    sys.exit(main())
