"""Throughput of the bit-accurate emulator against snnTorch (float) and Lava (fixed_pt).

    python benchmarks/bench_emulator.py            # full run (~10 min), writes results.json
    python benchmarks/bench_emulator.py --quick    # small CI-friendly run, no JSON
    options: --rounds N  --threads 1 2  --batches 1 16 128  --nets mlp conv  --no-lava
             --no-memory  --output FILE  --check-goals

Networks (snnTorch modules through the real pipeline: ``from_snntorch`` -> ``quantize`` for
loihi2 with calibration on the benchmark input):

* ``mlp``   784-1000-1000-10 ``snn.Leaky(beta=0.9, reset_mechanism="zero")``;
* ``conv``  N-MNIST-shaped 2x34x34 input: Conv2d(2, 12, 5), AvgPool2d(2), Leaky,
            Conv2d(12, 32, 5), AvgPool2d(2), Leaky, Flatten, Linear(800, 10), Leaky (each
            convolution and its pooling fold into one strided convolution);
* ``small`` 64-128-10 LIF with Lava's parameters, as Lava RingBuffer -> Dense -> LIF processes
            and as the exact loihi2 QNetwork of them;
* ``check`` the shipped digits model (64-128-10, T = 25) in ``run_check`` on 5,000 samples: the
            time spent in the float reference and in the emulator.

Weights are torch's default initialisation times 4; input Bernoulli(0.1) spikes (0.2 for
``small``), T = 100 (1000 for ``small``).

Engines, timed **in one worker process per (network, batch, threads), interleaved**: each round
runs every engine once, in an order rotated from round to round, and the report gives medians
over rounds (wall time; CPU time too, which a loaded machine disturbs less):

* ``snntorch``        the usual snnTorch loop (``torch.no_grad``, output spikes collected);
* ``numpy``           ``run_network(engine="numpy")``, all states recorded (today's engine);
* ``native_all``      ``run_network(engine="native")``, every state of every layer recorded
                      into new arrays;
* ``native_all_reuse`` the same, writing into the previous run's arrays (``out=``: streaming);
* ``native_spikes``   ``record="spikes"``: spikes of every layer, no u/v traces.

Before timing, ``native`` and ``numpy`` must agree on every recorded array, values and dtypes,
and the emulator and Lava on every spike and the final u, v of ``small`` (asserts).

Peak memory: a fresh worker per (network, engine) at the largest batch runs the engine once and
reports ``ru_maxrss`` after setup and after the run (the increase is the engine's own).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20261129
ENGINES = ("snntorch", "numpy", "native_all", "native_all_reuse", "native_spikes")


# ----------------------------------------------------------------------------- networks

def _leaky():
    import snntorch as snn

    return snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True)


def _scaled(model, gain: float = 4.0):
    import torch

    with torch.no_grad():
        for module in model.modules():
            for name in ("weight", "bias"):
                if isinstance(getattr(module, name, None), torch.nn.Parameter):
                    getattr(module, name).mul_(gain)
    return model.eval()


def snntorch_model(kind: str, seed: int = SEED):
    """The benchmark's snnTorch module and its input shape."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if kind == "mlp":
        sizes = (784, 1000, 1000, 10)
        layers = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), _leaky()]
        return _scaled(nn.Sequential(*layers)), (784,)
    model = nn.Sequential(nn.Conv2d(2, 12, 5), nn.AvgPool2d(2), _leaky(),
                          nn.Conv2d(12, 32, 5), nn.AvgPool2d(2), _leaky(),
                          nn.Flatten(), nn.Linear(800, 10), _leaky())
    return _scaled(model), (2, 34, 34)


def snntorch_forward(model, x):
    """The usual snnTorch time loop: reset the hidden states, step, collect output spikes."""
    import snntorch.utils
    import torch

    snntorch.utils.reset(model)
    with torch.no_grad():
        return torch.stack([model(x[t]) for t in range(x.shape[0])])


def bernoulli_input(steps, batch, shape, p, seed=SEED):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, *shape)) < p).astype(np.float32)


def quantized(model, input_shape, calibration):
    """The real pipeline: snnTorch module -> float IR -> quantized loihi2 QNetwork."""
    from snn_compile.importers.snntorch import from_snntorch
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    return quantize(from_snntorch(model, input_shape), load_target("loihi2"),
                    calibration).network


def small_params(sizes=(64, 128, 10), seed=SEED):
    """Integer parameters of the 64-128-10 Lava network (lava-fixed-point.md section 5)."""
    rng = np.random.default_rng(seed + 1)
    # int8 weights; even, because Lava drops the lowest bit of mixed-sign weights
    weights = [rng.integers(-128, 128, size=(n_out, n_in)) & ~1
               for n_in, n_out in zip(sizes, sizes[1:])]
    return {"weights": weights, "du": 400, "dv": 300, "vth": 150}


def small_qnetwork(params):
    """The loihi2 QNetwork that computes exactly what the Lava processes compute."""
    from snn_compile.ir.chain import QDense, QLayer, chain
    from snn_compile.ir.fixed import QNeuron
    from snn_compile.targets import load_target

    target = load_target("loihi2")
    fmt = target.neuron
    layers = []
    for i, w in enumerate(params["weights"]):
        neuron = QNeuron(shape=(w.shape[0],),
                         decay_u=(1 << fmt.decay_bits) - 1 - params["du"],  # 4095 - du
                         decay_v=(1 << fmt.decay_bits) - params["dv"],      # 4096 - dv
                         threshold=params["vth"] << fmt.threshold_shift, bias=0,
                         reset="zero", reset_timing="same_step", spike_test=">",
                         has_current=True)
        layers.append(QLayer(name=f"lif{i + 1}", synapse=QDense(weight=w), neuron=neuron,
                             source=f"lif{i}" if i else None))
    return chain((params["weights"][0].shape[1],), layers, target)


def lava_network(params, data, record=False):
    """RingBuffer -> Dense -> LIF -> Dense -> LIF; ``data`` is [n_in, T] spikes."""
    from snn_compile.backends.loihi.compat import require_lava

    require_lava()
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    src = Source(data=data)
    port, lifs, sinks = src.s_out, [], []
    for w in params["weights"]:
        dense = Dense(weights=w)
        lif = LIF(shape=(w.shape[0],), du=params["du"], dv=params["dv"], vth=params["vth"],
                  bias_mant=0, bias_exp=0)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        port = lif.s_out
        lifs.append(lif)
        if record:
            sink = Sink(shape=(w.shape[0],), buffer=data.shape[1])
            lif.s_out.connect(sink.a_in)
            sinks.append(sink)
    return src, lifs, sinks


def lava_run(proc, steps):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    proc.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))


# ----------------------------------------------------------------------------- engines

def emulator_runners(net, x, threads):
    """The emulator variants as callables of no argument (``native_all_reuse`` keeps its
    previous trace to write into)."""
    from snn_compile.emulator import run_network

    state = {"trace": None}

    def reuse():
        state["trace"] = run_network(net, x, engine="native", threads=threads,
                                     out=state["trace"])

    return {
        "numpy": lambda: run_network(net, x, engine="numpy"),
        "native_all": lambda: run_network(net, x, engine="native", threads=threads),
        "native_all_reuse": reuse,
        "native_spikes": lambda: run_network(net, x, engine="native", threads=threads,
                                             record="spikes"),
    }


def assert_identical(net, x, threads):
    """native == numpy on every recorded array, values and dtypes."""
    from snn_compile.emulator import run_network

    a = run_network(net, x, engine="native", threads=threads).to_npz_dict()
    b = run_network(net, x, engine="numpy").to_npz_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def _clock():
    return time.perf_counter(), time.process_time()


def interleaved(runners: dict, rounds: int, max_seconds: dict | None = None) -> dict:
    """Run every runner once per round, the order rotated each round; a runner whose first
    run took more than ``max_seconds[name]`` runs in 3 rounds only."""
    names = list(runners)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            record = times[name]["wall"]
            if record and len(record) >= 3 and record[0] > (max_seconds or {}).get(name, 1e9):
                continue
            wall, cpu = _clock()
            runners[name]()
            wall2, cpu2 = _clock()
            times[name]["wall"].append(wall2 - wall)
            times[name]["cpu"].append(cpu2 - cpu)
    return times


# ----------------------------------------------------------------------------- cases

def case_throughput(cfg):
    import torch

    torch.set_num_threads(cfg["threads"])
    model, shape = snntorch_model(cfg["net"])
    x = bernoulli_input(cfg["steps"], cfg["batch"], shape, cfg["rate"])
    calib = bernoulli_input(cfg["steps"], 8, shape, cfg["rate"], seed=SEED + 5)
    net = quantized(model, shape, calib)
    assert_identical(net, x[:, :4], cfg["threads"])
    runners = emulator_runners(net, x, cfg["threads"])
    xt = torch.from_numpy(x)
    runners = {"snntorch": lambda: snntorch_forward(model, xt), **runners}
    for run in runners.values():  # warm-up: kernels compiled and loaded, torch initialised
        run()
    times = interleaved(runners, cfg["rounds"], {"numpy": 2.0})
    steps = cfg["steps"] * cfg["batch"]
    return {name: _summary(t, steps) for name, t in times.items()}


def _summary(t: dict, sample_steps: int) -> dict:
    wall, cpu = statistics.median(t["wall"]), statistics.median(t["cpu"])
    return {"sample_steps": sample_steps, "runs": len(t["wall"]), "wall_median_s": wall,
            "cpu_median_s": cpu, "wall_min_s": min(t["wall"]), "wall_max_s": max(t["wall"]),
            "sample_steps_per_s": sample_steps / wall}


def case_memory(cfg):
    """Peak RSS of one run of one engine (this process does nothing else)."""
    import torch

    torch.set_num_threads(1)
    model, shape = snntorch_model(cfg["net"])
    x = bernoulli_input(cfg["steps"], cfg["batch"], shape, cfg["rate"])
    if cfg["engine"] == "snntorch":
        xt = torch.from_numpy(x)
        run = lambda: snntorch_forward(model, xt)  # noqa: E731
    else:
        calib = bernoulli_input(cfg["steps"], 8, shape, cfg["rate"], seed=SEED + 5)
        net = quantized(model, shape, calib)
        run = emulator_runners(net, x, 1)[cfg["engine"]]
        if cfg["engine"].startswith("native"):
            emulator_runners(net, x[:, :1], 1)["native_all"]()  # kernels built and loaded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run()
    if cfg["engine"] == "native_all_reuse":
        run()  # the second run writes into the first run's arrays
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_before_mb": before, "peak_rss_mb": after, "increase_mb": after - before}


def case_lava(cfg):
    """Sanity (emulator == Lava) and Lava steady state vs the emulator on ``small``,
    interleaved."""
    import torch

    from snn_compile.emulator import run_network

    torch.set_num_threads(1)
    params = small_params()
    net = small_qnetwork(params)
    steps = cfg["small_steps"]
    x1 = bernoulli_input(steps, 1, (64,), 0.2, seed=SEED + 2)
    xb = bernoulli_input(steps, cfg["small_batch"], (64,), 0.2, seed=SEED + 3)
    sanity = _lava_sanity(params, net, x1)
    lava = {"src": None}

    def lava_steady():  # a fresh Lava network: build, compile and fork untimed, then run
        src, _, _ = lava_network(params, x1[:, 0, :].T.astype(np.int64))
        lava_run(src, 1)
        start = time.perf_counter()
        lava_run(src, steps)
        lava["seconds"].append(time.perf_counter() - start)
        src.stop()

    runners = {
        "emu_b1_all": lambda: run_network(net, x1, engine="native", threads=1),
        "emu_bB_all": lambda: run_network(net, xb, engine="native", threads=1),
        "emu_bB_spikes": lambda: run_network(net, xb, engine="native", threads=1,
                                             record="spikes"),
        "numpy_b1": lambda: run_network(net, x1, engine="numpy"),
        "numpy_bB": lambda: run_network(net, xb, engine="numpy"),
    }
    for run in runners.values():
        run()
    lava["seconds"] = []
    runners["lava"] = lava_steady
    times = interleaved(runners, cfg["lava_rounds"])
    out = {name: _summary(t, steps * (cfg["small_batch"] if "bB" in name else 1))
           for name, t in times.items() if name != "lava"}
    out["lava"] = _summary({"wall": lava["seconds"], "cpu": lava["seconds"]}, steps)
    out["sanity"] = sanity
    return out


def _lava_sanity(params, net, x):
    from snn_compile.emulator import run_network

    steps = x.shape[0]
    trace = run_network(net, x, engine="native")
    src, lifs, sinks = lava_network(params, x[:, 0, :].T.astype(np.int64), record=True)
    lava_run(src, steps)
    try:
        spikes = [sink.data.get().T for sink in sinks]
        uv = [(lif.u.get(), lif.v.get()) for lif in lifs]
    finally:
        src.stop()
    counts = []
    for i, (spk, (u, v)) in enumerate(zip(spikes, uv)):
        emu = trace.layers[f"lif{i + 1}"]
        assert np.array_equal(emu["spikes"][:, 0], spk.astype(np.uint8)), f"lif{i + 1} spikes"
        assert np.array_equal(emu["u"][-1, 0], u), f"final u differs, lif{i + 1}"
        assert np.array_equal(emu["v"][-1, 0], v), f"final v differs, lif{i + 1}"
        counts.append(int(spk.sum()))
    return {"identical": True, "steps": steps, "spikes_per_layer": counts}


def case_check(cfg):
    """Where ``run_check`` on the digits model spends its time: the float reference
    (``reference.simulate``) vs the emulator (``run_network``), 1 thread, medians of rounds."""
    import torch

    import snn_compile.emulator as emulator
    import snn_compile.reference as reference
    from snn_compile.check import run_check
    from snn_compile.data import load_data
    from snn_compile.importers import load_model
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    torch.set_num_threads(1)
    spikes, labels = load_data(ROOT / "examples/digits/digits_test.npz")
    graph = load_model(ROOT / "examples/digits/digits_snn.pt")
    net = quantize(graph, load_target("loihi2"), spikes[:, :128]).network
    n = cfg["check_samples"]
    reps = -(-n // spikes.shape[1])
    data = np.concatenate([spikes] * reps, axis=1)[:, :n]
    labels = np.concatenate([labels] * reps)[:n]
    spent = {"float": 0.0, "emulator": 0.0}

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - start
        return wrapper

    reference.simulate = timed(reference.simulate, "float")
    emulator.run_network = timed(emulator.run_network, "emulator")
    rounds = {"float": [], "emulator": [], "total": []}
    for _ in range(cfg["check_rounds"] + 1):  # the first round builds kernels: not counted
        spent.update(float=0.0, emulator=0.0)
        start = time.perf_counter()
        run_check(graph, net, data, labels, progress=False)
        rounds["total"].append(time.perf_counter() - start)
        rounds["float"].append(spent["float"])
        rounds["emulator"].append(spent["emulator"])
    return {key: statistics.median(v[1:]) for key, v in rounds.items()} | {"samples": n}


CASES = {"throughput": case_throughput, "memory": case_memory, "lava": case_lava,
         "check": case_check}


def run_worker(case: str, cfg: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", case,
           "--config", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {case} {cfg} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report

def ratios(report) -> dict:
    out = {}
    for key, res in report["throughput"].items():
        ref = res["snntorch"]["wall_median_s"]
        numpy_s = res["numpy"]["wall_median_s"]
        for name in ("native_all", "native_all_reuse", "native_spikes"):
            mine = res[name]["wall_median_s"]
            out[f"{key} {name} / snntorch"] = ref / mine
            out[f"{key} {name} / numpy"] = numpy_s / mine
            out[f"{key} {name} / snntorch (cpu)"] = (res["snntorch"]["cpu_median_s"]
                                                     / res[name]["cpu_median_s"])
    lava = report.get("lava")
    if lava:
        rate = lava["lava"]["sample_steps_per_s"]
        for name in ("emu_b1_all", "emu_bB_all", "emu_bB_spikes", "numpy_b1", "numpy_bB"):
            out[f"small {name} / lava"] = lava[name]["sample_steps_per_s"] / rate
    return out


def goals(report) -> dict:
    r, cfg = report["ratios"], report["config"]
    big = max(cfg["batches"])
    checks = {}
    for threads in cfg["threads"][:1]:
        for net, want in (("mlp", 4.0), ("conv", 5.0)):
            key = f"{net} B={big} t={threads}"
            if f"{key} native_all / snntorch" in r:
                checks[f"{key}: all states >= {want}x snnTorch"] = \
                    r[f"{key} native_all / snntorch"] >= want
                checks[f"{key}: spikes only >= 6x snnTorch"] = \
                    r[f"{key} native_spikes / snntorch"] >= 6.0
            key1 = f"{net} B=1 t={threads}"
            if f"{key1} native_all / snntorch" in r:
                checks[f"{key1}: all states >= 20x snnTorch"] = \
                    r[f"{key1} native_all / snntorch"] >= 20.0
    numpy_ratios = [v for k, v in r.items() if k.endswith("/ numpy")]
    if numpy_ratios:
        checks[">= 4x the numpy engine everywhere"] = min(numpy_ratios) >= 4.0
    check = report.get("check")
    if check:
        checks["check: float reference time < emulator time"] = check["float"] < check["emulator"]
    if "small emu_bB_all / lava" in r:
        checks["small B=128 all states >= 1000x Lava"] = r["small emu_bB_all / lava"] >= 1000
        checks["small B=128 spikes only >= 1000x Lava"] = \
            r["small emu_bB_spikes / lava"] >= 1000
    return checks


def markdown(report) -> str:
    lines = ["| network | B | threads | snnTorch [s] | numpy [s] | native all [s] | "
             "native all, reused [s] | native spikes [s] | all / snnTorch | "
             "reused / snnTorch | spikes / snnTorch | all / numpy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, res in report["throughput"].items():
        net, b, t = key.split()
        s = {name: res[name]["wall_median_s"] for name in ENGINES}
        lines.append(
            f"| {net} | {b[2:]} | {t[2:]} | {s['snntorch']:.3f} | {s['numpy']:.3f} | "
            f"{s['native_all']:.4f} | {s['native_all_reuse']:.4f} | "
            f"{s['native_spikes']:.4f} | {s['snntorch'] / s['native_all']:.1f}x | "
            f"{s['snntorch'] / s['native_all_reuse']:.1f}x | "
            f"{s['snntorch'] / s['native_spikes']:.1f}x | {s['numpy'] / s['native_all']:.1f}x |")
    mem = report.get("memory")
    if mem:
        lines += ["", "| network, B | engine | peak RSS [MB] | increase over setup [MB] |",
                  "|---|---|---:|---:|"]
        for key, res in mem.items():
            lines.append(f"| {key.rsplit(' ', 1)[0]} | {key.rsplit(' ', 1)[1]} | "
                         f"{res['peak_rss_mb']:.0f} | {res['increase_mb']:.0f} |")
    lava = report.get("lava")
    if lava:
        b = report["config"]["small_batch"]
        lines += ["", "| 64-128-10, T=%d | sample-steps/s | vs Lava |" %
                  report["config"]["small_steps"], "|---|---:|---:|"]
        rate = lava["lava"]["sample_steps_per_s"]
        for name, text in (("lava", "Lava fixed_pt, B=1 (steady state)"),
                           ("numpy_b1", "numpy engine, B=1"), ("numpy_bB", f"numpy engine, B={b}"),
                           ("emu_b1_all", "native, all states, B=1"),
                           ("emu_bB_all", f"native, all states, B={b}"),
                           ("emu_bB_spikes", f"native, spikes only, B={b}")):
            value = lava[name]["sample_steps_per_s"]
            lines.append(f"| {text} | {value:,.0f} | {value / rate:,.0f}x |")
        s = lava["sanity"]
        lines += ["", f"Sanity: emulator == Lava on every spike and the final u/v of both "
                      f"layers ({s['steps']} steps, spikes per layer {s['spikes_per_layer']})."]
    check = report.get("check")
    if check:
        lines += ["", f"`run_check` on {check['samples']:,} digits samples (loihi2, 1 thread): "
                      f"{check['total']:.2f} s in all, float reference {check['float']:.3f} s, "
                      f"emulator {check['emulator']:.3f} s (medians)."]
    return "\n".join(lines)


def config(args) -> dict:
    quick = args.quick
    return {
        "rounds": args.rounds or (2 if quick else 5),
        "steps": 20 if quick else 100,
        "rate": 0.1,
        "batches": args.batches or ([1, 16] if quick else [1, 16, 128]),
        "threads": args.threads or [1, 2],
        "nets": args.nets or ["mlp", "conv"],
        "small_steps": 200 if quick else 1000,
        "small_batch": 16 if quick else 128,
        "lava_rounds": 2 if quick else 3,
        "check_samples": 1000 if quick else 5000,
        "check_rounds": 1 if quick else 3,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Emulator throughput vs snnTorch and Lava.")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    parser.add_argument("--threads", type=int, nargs="+", help="thread counts (default 1 2)")
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes (default 1 16 128)")
    parser.add_argument("--nets", nargs="+", choices=("mlp", "conv"))
    parser.add_argument("--no-lava", action="store_true", help="skip the Lava comparison")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory workers")
    parser.add_argument("--no-check", action="store_true", help="skip the check time split")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default benchmarks/results.json; quick: none)")
    parser.add_argument("--check-goals", action="store_true",
                        help="exit 1 if a goal of the issue is missed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(CASES[args.worker](json.loads(args.config))))
        return 0

    cfg = config(args)
    report = {"date": datetime.date.today().isoformat(), "config": cfg,
              "machine": _machine(), "throughput": {}, "memory": {}}
    for net in cfg["nets"]:
        for threads in cfg["threads"]:
            for batch in cfg["batches"]:
                key = f"{net} B={batch} t={threads}"
                print(f"throughput {key} ...", file=sys.stderr, flush=True)
                report["throughput"][key] = run_worker("throughput", dict(
                    cfg, net=net, batch=batch, threads=threads))
        if not args.no_memory:
            for engine in ENGINES:
                print(f"memory {net} {engine} ...", file=sys.stderr, flush=True)
                report["memory"][f"{net} B={max(cfg['batches'])} {engine}"] = run_worker(
                    "memory", dict(cfg, net=net, batch=max(cfg["batches"]), engine=engine))
    if not args.no_lava:
        print("lava ...", file=sys.stderr, flush=True)
        report["lava"] = run_worker("lava", cfg)
    if not args.no_check:
        print("check ...", file=sys.stderr, flush=True)
        report["check"] = run_worker("check", cfg)
    report["load_average_at_end"] = os.getloadavg()
    report["ratios"] = ratios(report)
    report["goals"] = goals(report)
    print(markdown(report))
    print()
    for goal, ok in report["goals"].items():
        print(f"{'PASS' if ok else 'MISS'}  {goal}")
    output = args.output or (None if args.quick else ROOT / "benchmarks" / "results.json")
    if output:
        output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {output}", file=sys.stderr)
    return 1 if args.check_goals and not all(report["goals"].values()) else 0


def _machine() -> dict:
    import torch

    from snn_compile.emulator import compiler

    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": _cpu_name(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__,
            "compiler": compiler.available()[1], "load_average_at_start": os.getloadavg()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
