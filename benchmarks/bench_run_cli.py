"""`snn-compile run` on a compiled network against the same emulator run in process.

    .venv/bin/python benchmarks/bench_run_cli.py               # MLP, B=128, T=100, 5 rounds
    .venv/bin/python benchmarks/bench_run_cli.py --quick       # B=16, 2 rounds
    options: --batch N  --rounds N  --output FILE

The network is bench_emulator.py's ``mlp`` (784-1000-1000-10 snnTorch Leaky through the real
pipeline, quantized for loihi2), saved once as a compiled network folder; the input is
Bernoulli(0.1), T = 100, as an uncompressed .npz. Interleaved rounds (A B C A B C ...), medians:

* ``in_process``: ``run_network(net, x)`` in a worker process that has already loaded the
  network and the input (every state recorded, the CLI's default);
* ``cli_all``: ``snn-compile run OUT --input in.npz --output trace.npz`` as a user runs it (the
  console script in a fresh process: start-up, loading, the run, writing the .npz atomically);
* ``cli_spikes``: the same with ``--record spikes``.

Everything runs with OMP_NUM_THREADS=1. The CLI runs also report whether they imported torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

IN_PROCESS = r'''
import json, sys, time
import numpy as np
from snn_compile.emulator import run_network
from snn_compile.ir.fixed_io import load_network
net = load_network({network!r})
x = np.load({data!r})["spikes"]
run_network(net, x)  # builds (or loads) the kernels
start = time.perf_counter()
run_network(net, x)
print(json.dumps(time.perf_counter() - start))
'''

TORCH_PROBE = r'''
import sys
from snn_compile.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps("torch" in sys.modules))
'''


def build(folder: Path, batch: int, steps: int = 100) -> tuple[Path, Path]:
    """The compiled MLP folder and its input file."""
    import bench_emulator as be
    from snn_compile.ir.fixed_io import save_network

    model, shape = be.snntorch_model("mlp")
    calib = be.bernoulli_input(steps, 8, shape, 0.1, seed=be.SEED + 5)
    net = be.quantized(model, shape, calib)  # as bench_emulator.py's throughput case
    network = save_network(net, folder / "mlp_net")
    data = folder / "in.npz"
    np.savez(data, spikes=be.bernoulli_input(steps, batch, (784,), 0.1).astype(np.uint8))
    return network, data


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    batch = args.batch or (16 if args.quick else 128)
    rounds = args.rounds or (2 if args.quick else 5)
    script = Path(sys.executable).parent / "snn-compile"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        tmp = Path(tmp)
        network, data = build(tmp, batch)
        py = [sys.executable, "-c"]
        runs = {
            "in_process": lambda: json.loads(subprocess.run(
                py + [IN_PROCESS.format(network=str(network), data=str(data))], check=True,
                env=env, capture_output=True, text=True).stdout),
            "cli_all": lambda: timed([str(script), "run", str(network), "--input", str(data),
                                      "--output", str(tmp / "all.npz")], env),
            "cli_spikes": lambda: timed([str(script), "run", str(network), "--input", str(data),
                                         "--output", str(tmp / "spikes.npz"),
                                         "--record", "spikes"], env),
        }
        times = {name: [] for name in runs}
        for r in range(rounds):
            order = list(runs)[r % len(runs):] + list(runs)[:r % len(runs)]
            for name in order:
                times[name].append(runs[name]())
                print(f"round {r + 1}/{rounds} {name}: {times[name][-1]:.3f} s",
                      file=sys.stderr, flush=True)
        probe = subprocess.run(py + ["import json\n" + TORCH_PROBE.format(argv=[
            "run", str(network), "--input", str(data), "--output", str(tmp / "p.npz")])],
            check=True, env=env, capture_output=True, text=True).stdout.splitlines()[-1]
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {"date": time.strftime("%Y-%m-%d"), "batch": batch, "steps": 100,
              "rounds": rounds, "runs_s": times, "median_s": medians,
              "cli_all / in_process": medians["cli_all"] / medians["in_process"],
              "cli_spikes / in_process": medians["cli_spikes"] / medians["in_process"],
              "cli imports torch": json.loads(probe), "load_average": os.getloadavg()}
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
