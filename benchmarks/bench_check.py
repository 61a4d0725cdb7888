"""Data-set-scale checks: samples/s and peak memory, one process vs local workers vs Dask.

    .venv/bin/python benchmarks/bench_check.py                 # full run, writes check_results.json
    .venv/bin/python benchmarks/bench_check.py --quick         # small sizes (a smoke test)
    options: --cases digits mlp  --repeats N  --engines serial pool dask  --output FILE  --reader

Cases (data written once to a temporary folder as uncompressed .npz and .npy files):

* ``digits``: the shipped 64-128-10 digits model on its 360 test samples replicated to 36,000
  (T = 25), loihi2;
* ``mlp``: a 784-1000-1000-10 snnTorch ``Leaky`` network (zero reset), Bernoulli(0.1) input,
  8,192 samples, T = 100, loihi2 (4,096 samples for the 2-worker speed-up figure).

Each run is ``snn_compile.check.run_check`` in a fresh Python process (``engine``: ``serial``,
``pool`` = 2 local processes, ``dask`` = a local Dask cluster of 2 worker processes started by
the run); wall time and the peak resident memory of the largest process (the run's own, or its
largest worker: VmHWM of the run's process, ``ru_maxrss`` of its children, VmHWM of each Dask
worker; ``ru_maxrss`` of a process includes its parent's peak at the fork, so the run's own is
read from /proc) come from that process tree. Runs are interleaved (A B C A B C) and medians
quoted; every report of one case must be identical across engines (checked).
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
RESULTS = Path(__file__).with_name("check_results.json")

RUNNER = r'''
import json, sys, time, resource
import numpy as np
def peak_kb():
    # this process's own peak RSS (VmHWM): ru_maxrss after exec keeps the parent's peak at fork
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from snn_compile.check import run_check
from snn_compile.ir.fixed_io import load_network
from snn_compile.importers import load_model
graph = load_model({model!r})
net = load_network({network!r})
engine = {engine!r}
cluster = None
if engine == "dask":
    import dask, distributed
    dask.config.set({{"temporary-directory": {tmp!r}, "distributed.worker.profile.enabled": False,
                      "distributed.nanny.pre-spawn-environ": {{}}}})
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, local_directory={tmp!r},
                                       silence_logs=40)
    client = distributed.Client(cluster)
start = time.perf_counter()
result = run_check(graph, net, {data!r}, batch_size={batch!r}, threads=1, progress=False,
                   workers=2 if engine == "pool" else 1,
                   cluster=client if engine == "dask" else None)
seconds = time.perf_counter() - start
report = {{k: v for k, v in result.report.items() if k != "engine"}}
workers_rss = 0
if engine == "dask":
    info = client.run(peak_kb)
    workers_rss = max(info.values())
    client.close(); cluster.close()
own = peak_kb()
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({{"seconds": seconds, "samples": result.report["samples"],
                  "rss_mb": max(own, kids, workers_rss) / 1024,
                  "report": json.dumps(report, sort_keys=True, default=str)}}))
'''


def _digits(folder: Path, samples: int) -> tuple[Path, Path, Path]:
    from snn_compile.data import load_data
    from snn_compile.ir.fixed_io import save_network
    from snn_compile.importers import load_model
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    model = ROOT / "examples/digits/digits_snn.pt"
    spikes, labels = load_data(ROOT / "examples/digits/digits_test.npz")
    reps = -(-samples // spikes.shape[1])
    big = np.concatenate([spikes] * reps, axis=1)[:, :samples].astype(np.uint8)
    data = folder / "digits.npz"
    np.savez(data, spikes=big, labels=np.concatenate([labels] * reps)[:samples])
    net = quantize(load_model(model), load_target("loihi2"), spikes[:, :128]).network
    return model, save_network(net, folder / "digits_net"), data


def _mlp(folder: Path, samples: int, steps: int) -> tuple[Path, Path, Path]:
    import snntorch as snn
    import torch
    from torch import nn

    import snn_compile
    from snn_compile.importers import load_model
    from snn_compile.ir.fixed_io import save_network
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 1000), snn.Leaky(beta=0.9, reset_mechanism="zero",
                                                         init_hidden=True),
                        nn.Linear(1000, 1000), snn.Leaky(beta=0.9, reset_mechanism="zero",
                                                         init_hidden=True),
                        nn.Linear(1000, 10), snn.Leaky(beta=0.9, reset_mechanism="zero",
                                                       init_hidden=True))
    model = snn_compile.export(net, folder / "mlp.pt", input_shape=(784,))
    rng = np.random.default_rng(0)
    data = folder / "mlp.npz"
    spikes = np.lib.format.open_memmap(folder / "mlp_spikes.npy", mode="w+", dtype=np.uint8,
                                       shape=(steps, samples, 784))
    for start in range(0, samples, 512):
        stop = min(start + 512, samples)
        spikes[:, start:stop] = rng.random((steps, stop - start, 784)) < 0.1
    spikes.flush()
    data = folder / "mlp_spikes.npy"
    calib = np.asarray(spikes[:, :64], np.float32)
    qnet = quantize(load_model(model), load_target("loihi2"), calib).network
    return model, save_network(qnet, folder / "mlp_net"), data


def _run(model, network, data, engine, batch, tmp) -> dict:
    code = RUNNER.format(root=str(ROOT), model=str(model), network=str(network),
                         data=str(data), engine=engine, batch=batch, tmp=str(tmp))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=False)
    wall = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{engine} run failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall"] = wall
    return res


def reader_cost(folder: Path, samples: int = 4096, steps: int = 100, chunk: int = 64,
                rounds: int = 3) -> dict:
    """Reading the MLP data in chunks: the check's reader against a memory map, interleaved."""
    from snn_compile.check.data import open_data

    _, _, data = _mlp(folder, samples, steps)

    def reader():
        source = open_data(str(data))
        for start in range(0, samples, chunk):
            source.read(start, min(start + chunk, samples))
        source.close()

    def mapped():
        arr = np.load(data, mmap_mode="r")
        for start in range(0, samples, chunk):
            np.asarray(arr[:, start:start + chunk], np.float32)

    times = {"reader": [], "memmap": []}
    for _ in range(rounds):
        for name, fn in (("reader", reader), ("memmap", mapped)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {"samples": samples, "steps": steps, "chunk": chunk,
            "bytes": samples * steps * 784,
            **{f"{k}_median_s": round(statistics.median(v), 3) for k, v in times.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", nargs="+", default=["digits", "mlp", "mlp-speedup"])
    parser.add_argument("--engines", nargs="+", default=["serial", "pool", "dask"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--reader", action="store_true",
                        help="only time the data reader against a memory map (MLP data)")
    args = parser.parse_args(argv)
    if args.reader:
        with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
            print(json.dumps(reader_cost(Path(tmp)), indent=2))
        return 0
    quick = args.quick
    sizes = {"digits": (3600 if quick else 36000, 25), "mlp": (256 if quick else 8192, 100),
             "mlp-speedup": (256 if quick else 4096, 100)}
    results = {"machine": os.uname().machine, "cpus": os.cpu_count(), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        tmp = Path(tmp)
        built = {}
        for case in args.cases:
            samples, steps = sizes[case]
            folder = tmp / case
            folder.mkdir()
            built[case] = (_digits(folder, samples) if case == "digits"
                           else _mlp(folder, samples, steps))
        for case in args.cases:
            model, network, data = built[case]
            engines = ["serial", "pool"] if case == "mlp-speedup" else args.engines
            runs = {e: [] for e in engines}
            for _ in range(args.repeats):
                for engine in engines:  # interleaved
                    print(f"{case}: {engine} ...", file=sys.stderr, flush=True)
                    runs[engine].append(_run(model, network, data, engine, 64, tmp))
            reports = {r["report"] for rs in runs.values() for r in rs}
            entry = {"samples": sizes[case][0], "steps": sizes[case][1],
                     "reports_identical": len(reports) == 1, "engines": {}}
            for engine, rs in runs.items():
                secs = statistics.median(r["seconds"] for r in rs)
                entry["engines"][engine] = {
                    "median_s": round(secs, 2), "samples_per_s": round(sizes[case][0] / secs, 1),
                    "peak_rss_mb": round(max(r["rss_mb"] for r in rs), 1),
                    "runs_s": [round(r["seconds"], 2) for r in rs]}
            if "serial" in runs and "pool" in runs:
                entry["pool_speedup"] = round(entry["engines"]["serial"]["median_s"]
                                              / entry["engines"]["pool"]["median_s"], 2)
            results["cases"][case] = entry
            print(json.dumps({case: entry}, indent=1), file=sys.stderr)
    out = args.output or (None if quick else RESULTS)
    if out:
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if all(c["reports_identical"] for c in results["cases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
