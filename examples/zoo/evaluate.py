"""Evaluate the zoo: float reference vs source framework, and each target's emulator.

Usage (repository root, project venv)::

    python examples/zoo/evaluate.py [--samples N] [name ...]

For every model: the float reference (snn_compile.reference) against snnTorch's own forward
pass (the Sinabs model: against Sinabs' recording), then for loihi2, xc7z020 and cpu the
quantized network (calibrated on the same inputs) on the bit-accurate emulator, or the
refusal. Prints a Markdown table and writes ``results.json`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import zoo  # noqa: E402

TARGETS = ("loihi2", "xc7z020", "cpu")


def float_model(name: str, samples: int | None):
    """``(graph, inputs, labels, framework output)``."""
    if name == "sinabs_ms":
        from snn_compile.importers.nir import load_nir

        data = np.load(HERE / "sinabs_ms" / "sinabs_ms.npz")
        n = samples or data["labels"].size
        graph = load_nir(HERE / "sinabs_ms" / "sinabs_ms.nir", convention="sinabs-multispike")
        return (graph, data["input"][:, :n].astype(np.float32), data["labels"][:n],
                data["output"][:, :n].astype(np.float32))
    from snn_compile.importers.snntorch import from_snntorch

    net = zoo.load(name)
    x, labels = zoo.test_set(name, samples)
    return (from_snntorch(net, zoo.MODELS[name].input_shape), x, labels,
            zoo.run_snntorch(net, x))


def compile_and_run(graph, x: np.ndarray, target: str):
    """``(quantized, emulator output aligned with the float steps)`` or the refusal."""
    from snn_compile.emulator import run_network
    from snn_compile.errors import SnnCompileError
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    try:
        q = quantize(graph, load_target(target), x)
    except SnnCompileError as err:
        return None, str(err)
    lag = q.network.max_lag
    run = run_network(q.network, np.concatenate([x, np.zeros((lag, *x.shape[1:]), x.dtype)]),
                      record="output")
    return q, run.output[lag:]


def evaluate(name: str, samples: int | None) -> dict:
    from snn_compile.reference import simulate

    graph, x, labels, framework = float_model(name, samples)
    ours = simulate(graph, x).output
    row = {"samples": int(labels.size), "steps": int(x.shape[0]),
           "float_equals_framework": bool(np.array_equal(ours, framework)),
           "float_mismatches": int(np.sum(ours != framework)),
           "accuracy_framework": zoo.accuracy(framework, labels),
           "accuracy_float": zoo.accuracy(ours, labels), "targets": {}}
    for target in TARGETS:
        q, out = compile_and_run(graph, x, target)
        if q is None:
            row["targets"][target] = {"refused": out}
            continue
        row["targets"][target] = {
            "accuracy": zoo.accuracy(out, labels),
            "output_agreement": float(np.mean(out == ours)),
            "custom_neuron": [r.name for r in q.report if r.custom_neuron],
            "input": q.input.kind, "notes": q.notes}
    return row


def table(results: dict) -> str:
    lines = ["| model | float == framework | accuracy (framework / float) | loihi2 | xc7z020 "
             "| cpu |", "|---|---|---|---|---|---|"]
    for name, row in results.items():
        cells = []
        for target in TARGETS:
            t = row["targets"][target]
            if "refused" in t:
                reason = t["refused"].split(": ", 1)[-1].split(" (got")[0].split(". ")[0]
                cells.append(f"refused: {reason}")
            else:
                custom = " (custom neuron)" if t["custom_neuron"] else ""
                cells.append(f"{t['accuracy']:.1%}, {t['output_agreement']:.1%} output "
                             f"agreement{custom}")
        same = "yes" if row["float_equals_framework"] else f"NO ({row['float_mismatches']})"
        lines.append(f"| {name} | {same} ({row['samples']} x {row['steps']}) | "
                     f"{row['accuracy_framework']:.1%} / {row['accuracy_float']:.1%} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(zoo.MODELS))
    parser.add_argument("--samples", type=int, default=None, help="test digits (default all)")
    args = parser.parse_args(argv)
    results = {name: evaluate(name, args.samples) for name in args.names}
    print(table(results))
    (HERE / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
