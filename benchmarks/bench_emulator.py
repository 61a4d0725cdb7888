"""Throughput of the bit-accurate emulator against snnTorch (float) and Lava (fixed_pt).

    python benchmarks/bench_emulator.py            # full run, writes benchmarks/results.json
    python benchmarks/bench_emulator.py --quick    # small CI-friendly run

Cases (see benchmarks/README.md for the numbers and what they mean):

* ``snntorch``      784-1000-1000-10 snn.Leaky (beta 0.9, reset "zero") float forward pass,
                    T=100, batch 128, Bernoulli(0.1) input, torch.no_grad.
* ``emulator_mlp``  the same network imported with ``from_snntorch``, quantized for loihi2 with
                    ``quantize`` and run by ``run_network`` (records u, v and spikes of every
                    layer at every step, which snnTorch's loop does not).
* ``lava_steady``   Lava 0.10 fixed_pt RingBuffer -> Dense -> LIF -> Dense -> LIF, 64-128-10, one
                    sample of T steps: ``run(1 step)`` first (compile, build, fork), then a timed
                    ``run(T)``.
* ``lava_total``    the same on a fresh network, timed from construction to ``stop()``.
* ``emulator_small_b1`` / ``emulator_small_b128``  the emulator on the same 64-128-10 network
                    (an exact loihi2 QNetwork of the Lava processes), batch 1 and batch 128.

Before timing, the emulator and Lava are run on the same input and must agree on every spike of
both layers and on the final u and v (assert): the comparison is between equal computations.

Every case runs in its own worker subprocess so that its peak RSS (``ru_maxrss``) is its own.
Throughput is in sample-steps per second (batch * T / wall time), median of ``--repeats`` runs;
the spread (min, max) is reported too, because the machine is shared.
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


# ----------------------------------------------------------------------------- networks

def snntorch_mlp(sizes, seed=SEED, gain=4.0):
    """784-1000-1000-10 Leaky network; weights are torch's default init times ``gain``."""
    import snntorch as snn
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        fc = nn.Linear(n_in, n_out)
        with torch.no_grad():
            fc.weight.mul_(gain)
            fc.bias.mul_(gain)
        layers += [fc, snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True)]
    return nn.Sequential(*layers).eval()


def snntorch_forward(model, x):
    """The usual snnTorch time loop: reset the hidden states, step, collect output spikes."""
    import snntorch.utils
    import torch

    snntorch.utils.reset(model)
    with torch.no_grad():
        return torch.stack([model(x[t]) for t in range(x.shape[0])])


def bernoulli_input(steps, batch, n, p, seed=SEED):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, n)) < p).astype(np.float32)


def quantized_mlp(model, sizes, calibration):
    """The real pipeline: snnTorch module -> float IR -> quantized loihi2 QNetwork."""
    from snn_compile.importers.snntorch import from_snntorch
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    graph = from_snntorch(model, (sizes[0],))
    return quantize(graph, load_target("loihi2"), calibration).network


def small_params(sizes, seed=SEED):
    """Integer parameters of the 64-128-10 Lava network (as in lava-fixed-point.md section 5)."""
    rng = np.random.default_rng(seed + 1)
    # int8 weights; even, because Lava drops the lowest bit of mixed-sign weights
    weights = [rng.integers(-128, 128, size=(n_out, n_in)) & ~1
               for n_in, n_out in zip(sizes, sizes[1:])]
    return {"weights": weights, "du": 400, "dv": 300, "vth": 150}


def small_qnetwork(params):
    """The loihi2 QNetwork that computes exactly what the Lava processes compute."""
    from snn_compile.ir.fixed import QDense, QLayer, QNetwork, QNeuron
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
    return QNetwork(input_shape=(params["weights"][0].shape[1],), layers=tuple(layers),
                    target=target)


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


# ----------------------------------------------------------------------------- cases

def _timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def case_snntorch(cfg):
    import torch

    sizes, steps, batch = cfg["mlp_sizes"], cfg["mlp_steps"], cfg["mlp_batch"]
    model = snntorch_mlp(sizes)
    x = torch.from_numpy(bernoulli_input(steps, batch, sizes[0], cfg["mlp_rate"]))
    snntorch_forward(model, x[:2])  # warm-up
    out = None

    def run():
        nonlocal out
        out = snntorch_forward(model, x)

    times = _timed(run, cfg["repeats"])
    return {"times": times, "sample_steps": steps * batch, "output_spikes": int(out.sum())}


def case_emulator_mlp(cfg):
    from backends.emulator.engine import run_network

    sizes, steps, batch = cfg["mlp_sizes"], cfg["mlp_steps"], cfg["mlp_batch"]
    model = snntorch_mlp(sizes)
    x = bernoulli_input(steps, batch, sizes[0], cfg["mlp_rate"])
    net = quantized_mlp(model, sizes, x[:, :8])
    run_network(net, x[:2, :2])  # warm-up
    trace = None

    def run():
        nonlocal trace
        trace = None  # free the previous trace before the next run allocates its own
        trace = run_network(net, x)

    times = _timed(run, cfg["repeats"])
    # informative: agreement with snnTorch's float output spikes on this input
    float_out = snntorch_forward(model, __import__("torch").from_numpy(x)).numpy()
    agree = float(np.mean(trace.output == float_out))
    return {"times": times, "sample_steps": steps * batch, "output_spikes": int(trace.output.sum()),
            "output_spike_agreement_with_snntorch": agree}


def _small_input(cfg, batch):
    return bernoulli_input(cfg["small_steps"], batch, cfg["small_sizes"][0], cfg["small_rate"],
                           seed=SEED + 2)


def case_sanity(cfg):
    """Lava and the emulator on the same input: every spike and the final u, v must agree."""
    from backends.emulator.engine import run_network

    params = small_params(cfg["small_sizes"])
    x = _small_input(cfg, 1)
    steps = x.shape[0]
    trace = run_network(small_qnetwork(params), x)
    src, lifs, sinks = lava_network(params, x[:, 0, :].T.astype(np.int64), record=True)
    lava_run(src, steps)
    try:
        lava_spikes = [sink.data.get().T for sink in sinks]
        lava_uv = [(lif.u.get(), lif.v.get()) for lif in lifs]
    finally:
        src.stop()
    counts = []
    for i, (spk, (u, v)) in enumerate(zip(lava_spikes, lava_uv)):
        emu = trace.layers[f"lif{i + 1}"]
        assert np.array_equal(emu["spikes"][:, 0], spk.astype(np.uint8)), f"spikes differ, lif{i+1}"
        assert np.array_equal(emu["u"][-1, 0], u), f"final u differs, lif{i + 1}"
        assert np.array_equal(emu["v"][-1, 0], v), f"final v differs, lif{i + 1}"
        counts.append(int(spk.sum()))
    return {"identical": True, "steps": steps, "spikes_per_layer": counts}


def case_lava_steady(cfg):
    params = small_params(cfg["small_sizes"])
    x = _small_input(cfg, 1)
    steps = x.shape[0]
    times = []
    for _ in range(cfg["repeats"]):
        src, _, _ = lava_network(params, x[:, 0, :].T.astype(np.int64))
        lava_run(src, 1)  # compile, build, fork
        start = time.perf_counter()
        lava_run(src, steps)
        times.append(time.perf_counter() - start)
        src.stop()
    return {"times": times, "sample_steps": steps}


def case_lava_total(cfg):
    params = small_params(cfg["small_sizes"])
    x = _small_input(cfg, 1)
    steps = x.shape[0]
    warm, _, _ = lava_network(params, x[:2, 0, :].T.astype(np.int64))  # warm imports
    lava_run(warm, 2)
    warm.stop()
    times = []
    for _ in range(cfg["repeats"]):
        start = time.perf_counter()
        src, _, _ = lava_network(params, x[:, 0, :].T.astype(np.int64))
        lava_run(src, steps)
        src.stop()
        times.append(time.perf_counter() - start)
    return {"times": times, "sample_steps": steps}


def _case_emulator_small(cfg, batch):
    from backends.emulator.engine import run_network

    net = small_qnetwork(small_params(cfg["small_sizes"]))
    x = _small_input(cfg, batch)
    run_network(net, x[:2])  # warm-up
    times = _timed(lambda: run_network(net, x), cfg["repeats"])
    return {"times": times, "sample_steps": x.shape[0] * batch}


CASES = {
    "snntorch": case_snntorch,
    "emulator_mlp": case_emulator_mlp,
    "sanity": case_sanity,
    "lava_steady": case_lava_steady,
    "lava_total": case_lava_total,
    "emulator_small_b1": lambda cfg: _case_emulator_small(cfg, 1),
    "emulator_small_b128": lambda cfg: _case_emulator_small(cfg, 128),
}
LAVA_CASES = ("sanity", "lava_steady", "lava_total")


def worker(name, cfg):
    """Run one case in this (fresh) process and return its result with its peak memory."""
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(cfg["threads"])
    result = CASES[name](cfg)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    if children.ru_maxrss:
        result["peak_rss_children_mb"] = children.ru_maxrss / 1024  # largest forked child
    if "times" in result:
        t = result["times"]
        result["seconds_median"] = statistics.median(t)
        result["sample_steps_per_s"] = result["sample_steps"] / statistics.median(t)
        result["sample_steps_per_s_range"] = [result["sample_steps"] / max(t),
                                              result["sample_steps"] / min(t)]
    return result


def run_case(name, cfg):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
           "--config", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"case {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report

def config(args):
    quick = args.quick
    return {
        "repeats": args.repeats or (1 if quick else 3),
        "mlp_sizes": [784, 1000, 1000, 10],
        "mlp_steps": 20 if quick else 100,
        "mlp_batch": 32 if quick else 128,
        "mlp_rate": 0.1,
        "small_sizes": [64, 128, 10],
        "small_steps": 200 if quick else 1000,
        "small_rate": 0.2,
        "threads": args.threads,
    }


def ratios(results):
    rate = {k: v.get("sample_steps_per_s") for k, v in results.items()}
    out = {}

    def ratio(key, a, b):
        if rate.get(a) and rate.get(b):
            out[key] = rate[a] / rate[b]

    ratio("emulator_mlp / snntorch", "emulator_mlp", "snntorch")
    for b in ("b1", "b128"):
        ratio(f"emulator_small_{b} / lava_steady", f"emulator_small_{b}", "lava_steady")
        ratio(f"emulator_small_{b} / lava_total", f"emulator_small_{b}", "lava_total")
    return out


DESCRIPTIONS = {
    "snntorch": "snnTorch float, {mlp}, T={mlp_steps}, B={mlp_batch}",
    "emulator_mlp": "emulator loihi2, {mlp}, T={mlp_steps}, B={mlp_batch}",
    "lava_steady": "Lava fixed_pt, {small}, T={small_steps}, B=1, excl. compile",
    "lava_total": "Lava fixed_pt, {small}, T={small_steps}, B=1, incl. compile+stop",
    "emulator_small_b1": "emulator loihi2, {small}, T={small_steps}, B=1",
    "emulator_small_b128": "emulator loihi2, {small}, T={small_steps}, B=128",
}


def markdown(report):
    cfg = report["config"]
    names = {"mlp": "-".join(map(str, cfg["mlp_sizes"])),
             "small": "-".join(map(str, cfg["small_sizes"]))}
    lines = [f"| case | sample-steps/s (median of {cfg['repeats']}) | range (min-max) | "
             "median time [s] | peak RSS [MB] |", "|---|---:|---:|---:|---:|"]
    for key, text in DESCRIPTIONS.items():
        r = report["results"].get(key)
        if not r:
            continue
        lo, hi = r["sample_steps_per_s_range"]
        rss = f"{r['peak_rss_mb']:.0f}"
        if "peak_rss_children_mb" in r:
            rss += f" (+{r['peak_rss_children_mb']:.0f} per child)"
        lines.append(f"| {text.format(**names, **cfg)} | {r['sample_steps_per_s']:,.0f} | "
                     f"{lo:,.0f}-{hi:,.0f} | {r['seconds_median']:.3f} | {rss} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:,.2f}x |" for k, v in report["ratios"].items()]
    sanity = report["results"].get("sanity")
    if sanity:
        lines += ["", f"Sanity: emulator == Lava on every spike and final u/v of both layers "
                      f"({sanity['steps']} steps, spikes per layer {sanity['spikes_per_layer']})."]
    mlp = report["results"].get("emulator_mlp")
    if mlp:
        lines += [f"Emulator output spikes agree with snnTorch float on "
                  f"{100 * mlp['output_spike_agreement_with_snntorch']:.2f}% of (t, b, neuron)."]
    return "\n".join(lines)


def goals(report):
    r = report["ratios"]
    checks = {"emulator >= snnTorch float (784-1000-1000-10)":
              r.get("emulator_mlp / snntorch", 0) >= 1.0,
              "emulator B=128 >= 100x Lava steady state (64-128-10)":
              r.get("emulator_small_b128 / lava_steady", 0) >= 100.0}
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description="Emulator throughput vs snnTorch and Lava.")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (CI)")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for snnTorch and the emulator's products (default 1: "
                             "stable on a shared machine; 0 = torch's default)")
    parser.add_argument("--no-lava", action="store_true", help="skip the Lava cases")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), help="run only these")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default benchmarks/results.json, quick: none)")
    parser.add_argument("--check-goals", action="store_true",
                        help="exit 1 if a goal of the issue is missed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.config))))
        return 0

    cfg = config(args)
    load_at_start = os.getloadavg()
    names = args.cases or [c for c in CASES if not (args.no_lava and c in LAVA_CASES)]
    results = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_case(name, cfg)
        print(f"  {json.dumps(results[name])}", file=sys.stderr, flush=True)
    import torch

    report = {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch.__version__,
                    "torch_threads": args.threads or torch.get_num_threads(),
                    "load_average_at_start": load_at_start},
        "config": cfg,
        "results": results,
    }
    report["ratios"] = ratios(results)
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


if __name__ == "__main__":
    sys.exit(main())
