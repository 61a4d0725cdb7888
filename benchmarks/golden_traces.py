"""Guard for emulator work: the 108 guard networks bit for bit, before and after a change.

    python benchmarks/golden_traces.py dump-legacy --rev REV [--path DIR]
    python benchmarks/golden_traces.py check-legacy [--path DIR] [--engine ENGINE]
    python benchmarks/golden_traces.py save  [--path FILE]
    python benchmarks/golden_traces.py check [--path FILE] [--engine ENGINE]

ENGINE: ``emulator`` (run_network's default choice), ``native`` or ``numpy`` (that emulator
engine), ``reference`` (the executable specification).

The guard draws random chain networks (``snn_compile.testing.networks.random_qnetwork``) for the
loihi2, cpu and xc7z020 targets and three datapath variants (dense/conv, recurrent, CUBA, large
weights that drive states into wrap and saturation, zero resets that discard the input, graded
8-bit input), runs them and compares every output spike and every u/v/spike state of every layer.

``dump-legacy`` runs the guard with the code of git revision ``REV`` (checked out into a temporary
worktree; e.g. the last commit before the graph IR, 0aac7ac) and writes each network as plain data
(JSON + npz, independent of either version's classes) with that revision's traces.
``check-legacy`` rebuilds those networks with the current code and compares values.
``save``/``check`` do the same within the current code (networks in the compiled-network format).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = ("loihi2", "cpu", "xc7z020")
# datapath variants that no shipped target has: int32 intermediates with wrap/saturate rules,
# and widths that are neither 32 nor 64 bits
VARIANTS = {
    "loihi2-wrap": ("loihi2", {"neuron.u_overflow": "wrap", "neuron.v_overflow": "wrap"}),
    "cpu-ib32": ("cpu", {"accumulator.intermediate": "int32", "neuron.decay_rounding": "nearest",
                         "neuron.u": "int24", "neuron.v": "int24"}),
    "fpga-ib40": ("xc7z020", {"accumulator.intermediate": "int40", "neuron.u": "int20",
                              "neuron.v": "int18", "accumulator.dense": "int28"}),
}
PER_TARGET = 24
DEFAULT_LEGACY = Path("/tmp/snn_guard_legacy")
DEFAULT_PATH = Path("/tmp/snn_guard.npz")


def _runner(engine: str):
    if engine == "reference":
        from snn_compile.datapath.reference import run_reference
        return run_reference
    from snn_compile.emulator import run_network
    if engine in ("native", "numpy"):
        return lambda net, spikes: run_network(net, spikes, engine=engine)
    return run_network


def _same(got: dict, want: dict) -> str | None:
    for key, value in want.items():
        if key not in got:
            return f"{key} missing"
        if not np.array_equal(np.asarray(got[key]).astype(np.int64), value.astype(np.int64)):
            return f"{key} differs"
    extra = set(got) - set(want)
    return f"unexpected records {sorted(extra)}" if extra else None


# ----------------------------------------------------------------------------- legacy dumps

# Runs inside a checkout of an older revision: its own guard cases, written as plain data.
LEGACY_DUMP = r'''
import json, sys
from pathlib import Path
import numpy as np
root, out = Path(sys.argv[1]), Path(sys.argv[2])
sys.path[:0] = [str(root), str(root / "benchmarks"), str(root / "tests")]
import golden_traces as g
from backends.emulator.engine import run_network
out.mkdir(parents=True, exist_ok=True)
def syn(s, arrays, key):
    arrays[key] = s.weight
    d = {"kind": type(s).__name__, "weight": key, "weight_exp": s.weight_exp}
    if hasattr(s, "in_shape"):
        d.update(in_shape=list(s.in_shape), stride=list(s.stride), padding=list(s.padding),
                 dilation=list(s.dilation), groups=s.groups)
    return d
for k, (name, net, spikes) in enumerate(g.cases()):
    arrays, layers = {"spikes": spikes}, []
    for i, L in enumerate(net.layers):
        n = L.neuron
        nd = {f: getattr(n, f) for f in ("reset", "reset_timing", "reset_discards_input",
                                          "spike_test", "spiking", "has_current")}
        nd["shape"] = list(n.shape)
        for f in ("decay_u", "decay_v", "threshold", "bias"):
            arrays[f"{i}/{f}"] = np.asarray(getattr(n, f)); nd[f] = f"{i}/{f}"
        layers.append({"name": L.name, "source": L.source, "delay": L.delay, "neuron": nd,
                       "synapse": syn(L.synapse, arrays, f"{i}/w"),
                       "recurrent": syn(L.recurrent, arrays, f"{i}/rec")
                       if L.recurrent is not None else None, "input_bias": None})
    base = name.split("/")[0]
    target, over = (base, {}) if base in g.TARGETS else g.VARIANTS[base]
    for key, v in run_network(net, spikes).to_npz_dict().items():
        arrays[f"trace:{key}"] = v
    desc = {"name": name, "target": target, "overrides": over,
            "input_shape": list(net.input_shape), "input_bits": net.input_bits,
            "input_scale": net.input_scale, "layers": layers}
    (out / f"case{k:03d}.json").write_text(json.dumps(desc, indent=1))
    np.savez(out / f"case{k:03d}.npz", **arrays)
print(f"dumped {k + 1} cases to {out}")
'''


def dump_legacy(rev: str, path: Path) -> int:
    """Run the guard of revision ``rev`` in a temporary worktree; plain data into ``path``."""
    with tempfile.TemporaryDirectory(prefix="guard-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT,
                       check=True, capture_output=True)
        try:  # that revision's package-dir mapping, so it reads its own targets and backends
            (tree / "snn_compile" / "_targets").symlink_to(tree / "targets")
            (tree / "snn_compile" / "backends").symlink_to(tree / "backends")
            script = Path(tmp) / "dump.py"
            script.write_text(LEGACY_DUMP)
            subprocess.run([sys.executable, str(script), str(tree), str(path)], check=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False, capture_output=True)
    return 0


def _legacy_network(desc: dict, arrays):
    """The QNetwork of one legacy plain-data case (a chain of layers)."""
    from snn_compile.ir.chain import QConv, QDense, QLayer, chain
    from snn_compile.ir.fixed import QNeuron
    from snn_compile.targets import load_target

    def syn(d):
        w = arrays[d["weight"]]
        if d["kind"] == "QConv":
            return QConv(weight=w, in_shape=tuple(d["in_shape"]), stride=tuple(d["stride"]),
                         padding=tuple(d["padding"]), dilation=tuple(d["dilation"]),
                         groups=d["groups"], weight_exp=d["weight_exp"])
        return QDense(weight=w, weight_exp=d["weight_exp"])

    overrides = desc["overrides"]
    import warnings
    with warnings.catch_warnings():  # the legacy dumps name the first target format's keys
        warnings.simplefilter("ignore", DeprecationWarning)
        target = load_target(desc["target"], overrides)
    layers = []
    for layer in desc["layers"]:
        fields = dict(layer["neuron"])
        for f in ("decay_u", "decay_v", "threshold", "bias"):
            fields[f] = arrays[fields[f]]
        fields["shape"] = tuple(fields["shape"])
        layers.append(QLayer(name=layer["name"], source=layer["source"], delay=layer["delay"],
                             neuron=QNeuron(**fields), synapse=syn(layer["synapse"]),
                             recurrent=syn(layer["recurrent"]) if layer["recurrent"] else None))
    return chain(tuple(desc["input_shape"]), layers, target, input_bits=desc["input_bits"],
                 input_scale=desc["input_scale"])


def check_legacy(path: Path, engine: str) -> int:
    run = _runner(engine)
    files = sorted(path.glob("case*.json"))
    if not files:
        print(f"no legacy cases in {path}; run dump-legacy first", file=sys.stderr)
        return 2
    bad = 0
    for file in files:
        desc = json.loads(file.read_text())
        with np.load(file.with_suffix(".npz")) as data:
            arrays = {k: data[k] for k in data.files}
        want = {k[len("trace:"):]: v for k, v in arrays.items() if k.startswith("trace:")}
        problem = _same(run(_legacy_network(desc, arrays), arrays["spikes"]).to_npz_dict(), want)
        if problem:
            bad += 1
            print(f"MISMATCH {desc['name']}: {problem}", file=sys.stderr)
    print(f"{len(files) - bad}/{len(files)} legacy networks bit-identical ({engine})")
    return 1 if bad else 0


# ----------------------------------------------------------------------------- current code

def cases(seed: int = 20261129):
    """The guard networks drawn with the current code (same draws as the legacy guard)."""
    from snn_compile.targets import load_target
    from snn_compile.testing.networks import random_qnetwork, random_spikes

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
                net = net.replace(populations=tuple(
                    replace(p, neuron=replace(p.neuron, reset_discards_input=True))
                    if p.neuron.reset == "zero" else p for p in net.populations))
            if i % 6 == 5:  # graded 8-bit input
                from snn_compile.ir.fixed import QInput
                net = net.replace(input=QInput(shape=net.input_shape, dtype="int8", scale=100.0))
                spikes = spikes * rng.uniform(-1.2, 1.2, size=spikes.shape).astype(np.float32)
            yield f"{target_name}/{i}", net, spikes


def save(path: Path) -> int:
    from snn_compile.emulator import run_network

    arrays = {}
    for k, (name, net, spikes) in enumerate(cases()):
        for key, value in run_network(net, spikes).to_npz_dict().items():
            arrays[f"{k:03d}|{key}"] = value
    np.savez_compressed(path, **arrays)
    print(f"saved {k + 1} traces to {path}")
    return 0


def check(path: Path, engine: str) -> int:
    run = _runner(engine)
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    bad = total = 0
    for k, (name, net, spikes) in enumerate(cases()):
        total += 1
        want = {key.split("|", 1)[1]: v for key, v in stored.items() if key.startswith(f"{k:03d}|")}
        problem = _same(run(net, spikes).to_npz_dict(), want)
        if problem:
            bad += 1
            print(f"MISMATCH {name}: {problem}", file=sys.stderr)
    print(f"{total - bad}/{total} networks bit-identical ({engine})")
    return 1 if bad else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("dump-legacy", "check-legacy", "save", "check"))
    parser.add_argument("--path", type=Path)
    parser.add_argument("--rev", default="0aac7ac", help="dump-legacy: the older revision")
    parser.add_argument("--engine", default="emulator",
                        choices=("emulator", "native", "numpy", "reference"))
    args = parser.parse_args(argv)
    if args.mode == "dump-legacy":
        return dump_legacy(args.rev, args.path or DEFAULT_LEGACY)
    if args.mode == "check-legacy":
        return check_legacy(args.path or DEFAULT_LEGACY, args.engine)
    if args.mode == "save":
        return save(args.path or DEFAULT_PATH)
    return check(args.path or DEFAULT_PATH, args.engine)


if __name__ == "__main__":
    sys.exit(main())
