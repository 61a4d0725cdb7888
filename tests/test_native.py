"""The native engine (generated C kernels) against the specification and the numpy engine.

Every property test compares *every* recorded array: values against the reference executor
(:func:`run_reference`), values and dtypes against the numpy engine.
"""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from snn_compile.datapath.c_ops import CFamily
from snn_compile.datapath.exact import ExactOps, as_exact
from snn_compile.datapath.reference import run_reference
from snn_compile.datapath.rules import RULES
from snn_compile.datapath.step import apply
from snn_compile.emulator import compiler, native
from snn_compile.emulator.engine import run_network
from snn_compile.emulator.kernel_source import KernelSource, translation_unit
from snn_compile.ir.fixed import ConvGeometry, QInput, QNetwork, QPopulation, QProjection
from snn_compile.targets import load_target

from strategies import random_network, random_neuron, random_qnetwork, random_spikes

TARGETS = ["loihi2", "cpu", "xc7z020"]
EXACT = ExactOps()
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not compiler.available()[0],
                                reason=f"no C compiler: {compiler.available()[1]}")


def assert_same(got, want, *, dtypes=True, what=""):
    """Every array of ``want`` (a Trace) equal in ``got``; dtypes too unless told otherwise."""
    assert got.layers.keys() == want.layers.keys(), what
    for name, states in want.layers.items():
        assert got.layers[name].keys() == states.keys(), f"{what} {name}"
        for key, arr in states.items():
            mine = got.layers[name][key]
            if dtypes:
                assert mine.dtype == arr.dtype, f"{what} {name}.{key}: {mine.dtype} {arr.dtype}"
            np.testing.assert_array_equal(np.asarray(mine, np.int64), np.asarray(arr, np.int64),
                                          err_msg=f"{what} {name}.{key}")
    np.testing.assert_array_equal(got.output, want.output)


def check_network(net, spikes, *, reference=True, threads=1):
    fast = run_network(net, spikes, engine="native", threads=threads)
    assert_same(fast, run_network(net, spikes, engine="numpy"), what=str(net.metadata))
    if reference:
        assert_same(fast, run_reference(net, spikes), dtypes=False, what=str(net.metadata))
    return fast


# ----------------------------------------------------------------------------- the C family

def _rule_cases(rng):
    for kind, table in RULES.items():
        for name in table:
            for _ in range(6):
                if kind == "overflow":
                    param = int(rng.integers(2, 64))
                elif kind == "rounding":
                    param = int(rng.integers(0, 40))
                else:
                    param = rng.integers(-2**40, 2**40, size=64)
                yield kind, name, param


def test_c_family_equals_the_specification_rule_by_rule():
    """Each rule written by the C family, compiled, on edge values and random 64-bit values."""
    rng = np.random.default_rng(7)
    cases = list(_rule_cases(rng))
    bodies = []
    for i, (kind, name, param) in enumerate(cases):
        o = CFamily(index="j", prefix="t", array_prefix="P")
        result = apply(o, kind, name, "x[j]", param if kind != "spike_test" else o.const(param))
        params = ", const int64_t *P0" if kind == "spike_test" else ""
        bodies.append(f"void rule{i}(const int64_t *x, int64_t *y, int64_t n{params}) {{\n"
                      "for (int64_t j = 0; j < n; j++) {\n" + "\n".join(o.lines)
                      + f"\ny[j] = {result};\n}}\n}}\n")
    lib = compiler.load(translation_unit([KernelSource("\n".join(bodies), "rule0")]))
    for i, (kind, name, param) in enumerate(cases):
        half = 1 << (min(param, 63) - 1) if kind == "overflow" else 1 << 30
        edges = np.array([0, 1, -1, half, -half, half - 1, 1 - half, half + 1, -half - 1,
                          2**63 - 1, -2**63], dtype=np.int64)
        x = np.concatenate([edges, rng.integers(-2**63, 2**63 - 1, size=53, dtype=np.int64)])
        y = np.zeros_like(x)
        args = [x.ctypes.data, y.ctypes.data, x.size]
        if kind == "spike_test":
            args.append(np.ascontiguousarray(param, dtype=np.int64).ctypes.data)
        fn = getattr(lib, f"rule{i}")
        fn.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int64] + (
            [ctypes.c_void_p] if kind == "spike_test" else [])
        fn(*args)
        want = apply(EXACT, kind, name, as_exact(x), as_exact(param))
        np.testing.assert_array_equal(y, np.asarray(want, dtype=object).astype(np.int64),
                                      err_msg=f"{kind} {name} {param if np.ndim(param) == 0 else ''}")


# ----------------------------------------------------------------------------- networks

def _graph_case(seed, target):
    rng = np.random.default_rng(seed)
    net = random_network(rng, load_target(target))
    spikes = random_spikes(rng, net, steps=int(rng.integers(4, 14)), batch=int(rng.integers(1, 4)))
    check_network(net, spikes)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(TARGETS))
def test_native_equals_reference_and_numpy_on_graphs_with_every_feature(seed, target):
    _graph_case(seed, target)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_native_on_many_graphs(target):
    """The same property on 100 fixed seeds per target (each network compiles its kernels)."""
    for seed in range(100):
        _graph_case(seed, target)


@pytest.mark.slow
def test_native_on_the_guard_networks_values_and_dtypes():
    """The 108 networks of benchmarks/golden_traces.py: native == numpy, dtypes included
    (values against the legacy dumps: golden_traces.py check-legacy --engine native)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import golden_traces

    count = 0
    for name, net, spikes in golden_traces.cases():
        assert_same(run_network(net, spikes, engine="native"),
                    run_network(net, spikes, engine="numpy"), what=name)
        count += 1
    assert count == 108


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(TARGETS), st.booleans(), st.booleans(),
       st.booleans(), st.sampled_from([1.0, 8.0, 60.0, 200.0]))
def test_native_equals_reference_and_numpy_on_chains_with_overload(seed, target, conv,
                                                                    recurrent, cuba, scale):
    rng = np.random.default_rng(seed)
    net = random_qnetwork(rng, load_target(target), conv=conv, recurrent=recurrent, cuba=cuba,
                          depth=int(rng.integers(1, 4)), weight_scale=scale)
    spikes = random_spikes(rng, net, steps=int(rng.integers(5, 25)), batch=3,
                           rate=float(rng.uniform(0.1, 0.9)))
    check_network(net, spikes)


def _pooled_geometry(rng, groups):
    while True:
        c_in = groups * int(rng.integers(1, 3))
        in_shape = (c_in, int(rng.integers(6, 11)), int(rng.integers(6, 11)))
        c_out, k = groups * int(rng.integers(1, 4)), int(rng.integers(1, 4))
        pool = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        geo = ConvGeometry(in_shape=in_shape, stride=(int(rng.integers(1, 3)),) * 2,
                           padding=(int(rng.integers(0, 2)),) * 2,
                           dilation=(int(rng.integers(1, 3)),) * 2, groups=groups,
                           max_pool=(pool, (int(rng.integers(1, pool[0] + 1)), pool[1])))
        shape = geo.out_shape((c_out, c_in // groups, k, k))
        if min(shape) >= 1:
            return geo, (c_out, c_in // groups, k, k)


def pooled_network(rng, target, *, graded=False, groups=1) -> QNetwork:
    """input -> convolution with max pooling -> population -> dense -> population; weights
    up to 2**30 make sums that need 64 bits."""
    geo, w_shape = _pooled_geometry(rng, groups)
    in_shape = geo.in_shape
    top = target.weights.type.max
    w = rng.integers(-top - 1, top + 1, size=w_shape) * int(rng.choice([1, 40, 1 << 22]))
    shape = geo.out_shape(w.shape)
    n = int(np.prod(shape))
    pops = (QPopulation(name="conv", neuron=random_neuron(rng, target, shape, cuba=True)),
            QPopulation(name="out", neuron=random_neuron(rng, target, (5,), cuba=False)))
    d = target.timing.synapse_delay
    projs = (QProjection(name="input->conv", source="input", target="conv", kind="conv",
                         weight=w, delay=d, conv=geo),
             QProjection(name="conv->out", source="conv", target="out", kind="dense",
                         weight=rng.integers(-top - 1, top + 1, size=(5, n)), delay=d))
    inp = QInput(shape=in_shape, dtype="int8" if graded else "uint1",
                 scale=100.0 if graded else 1.0)
    return QNetwork(input=inp, populations=pops, projections=projs, output="out",
                    target=target, metadata={"pooled": True, "graded": graded})


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["cpu", "xc7z020"]), st.booleans(),
       st.sampled_from([1, 2]))
def test_native_max_pooled_convolution(seed, target, graded, groups):
    rng = np.random.default_rng(seed)
    net = pooled_network(rng, load_target(target), graded=graded, groups=groups)
    check_network(net, random_spikes(rng, net, steps=8, batch=2, rate=0.5))


@pytest.mark.parametrize("graded", [True, False])
def test_saturating_and_strided_input_like_the_numpy_engine(graded):
    """Graded input that saturates (values beyond the format clip) and input arrays that are
    views with [B, T] strides (as a data loader's transpose gives) run as the numpy engine runs
    them: the engine converts to its own layout and storage type."""
    import dataclasses

    rng = np.random.default_rng(7)
    net = pooled_network(rng, load_target("xc7z020"), graded=graded, groups=1)
    net = dataclasses.replace(net, input=dataclasses.replace(net.input, saturate=True))
    batch_first = rng.random((2, 8, *net.input.shape)) < 0.5
    x = batch_first.transpose(1, 0, *range(2, batch_first.ndim)).astype(np.float32)
    if graded:
        x = x * rng.uniform(-3, 3, size=x.shape).astype(np.float32)  # beyond [-1.28, 1.27]
    x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 0, 1)), 0, 1)
    assert not x.flags.c_contiguous
    check_network(net, x)


def test_accumulator_switches_between_int16_and_wider_sums_exactly():
    """A wide dense layer whose input density sweeps from silent to full: steps take the int16,
    int32 and (modular) int32 paths; every step equals the specification."""
    rng = np.random.default_rng(3)
    for target in ("loihi2", "cpu"):
        net = random_qnetwork(rng, load_target(target), depth=1, weight_scale=1.0)
        n_in = 300
        pop = net.populations[0]
        w = rng.integers(-256, 255, size=(pop.size, n_in)) & ~1
        proj = net.projections[0]
        net = QNetwork(input=QInput(shape=(n_in,)), populations=(pop,),
                       projections=(QProjection(name=proj.name, source="input", target=pop.name,
                                                kind="dense", weight=w, delay=proj.delay,
                                                weight_exp=proj.weight_exp),),
                       output=pop.name, target=net.target)
        steps = 40
        rate = np.linspace(0, 1, steps)[:, None, None]
        spikes = (rng.random((steps, 2, n_in)) < rate).astype(np.float32)
        check_network(net, spikes)


def test_precomputed_dense_sums_equal_event_driven(monkeypatch):
    """Force the dense ("pre") path for every feed-forward projection."""
    rng = np.random.default_rng(5)
    monkeypatch.setattr(native, "DENSE_ABOVE", {"dense": 0.0, "conv": 0.0})
    seen = set()
    for i, target in enumerate(TARGETS * 3):
        net = random_qnetwork(rng, load_target(target), conv=i % 2 == 0, recurrent=i % 3 == 1,
                              cuba=True, weight_scale=[1.0, 8.0, 200.0][i % 3])
        spikes = random_spikes(rng, net, 12, 3, rate=0.6)
        check_network(net, spikes)
        seen |= set(native.program(net).modes_used.values())
    net = pooled_network(rng, load_target("cpu"))
    check_network(net, random_spikes(rng, net, 8, 2, rate=0.6))
    assert "pre" in seen and "event" in seen  # recurrent projections stay event-driven


# ----------------------------------------------------------------------------- engine contract

def test_threads_and_batch_split_do_not_change_values(monkeypatch):
    monkeypatch.setattr(native, "PARALLEL_MIN_WORK", 0)  # small runs would take one thread
    rng = np.random.default_rng(9)
    net = random_network(rng, load_target("cpu"))
    spikes = random_spikes(rng, net, 20, 7)
    one = run_network(net, spikes, engine="native", threads=1)
    assert_same(run_network(net, spikes, engine="native", threads=2), one)
    alone = run_network(net, spikes[:, 3:4], engine="native", threads=2)
    for name, states in one.layers.items():
        for key, arr in states.items():
            np.testing.assert_array_equal(arr[:, 3:4], alone.layers[name][key])


@pytest.mark.parametrize("record", ["all", "spikes", "output", ("p1",)])
def test_records_only_what_is_asked_like_the_numpy_engine(record):
    rng = np.random.default_rng(21)
    for target in TARGETS:
        net = random_network(rng, load_target(target))
        spikes = random_spikes(rng, net, 10, 2)
        got = run_network(net, spikes, engine="native", record=record)
        assert_same(got, run_network(net, spikes, engine="numpy", record=record))
        if record == "spikes":
            assert all("u" not in s for s in got.layers.values())


def test_spikes_only_does_not_allocate_state_traces():
    rng = np.random.default_rng(2)
    net = random_qnetwork(rng, load_target("loihi2"), cuba=True)
    prog = native.program(net, "spikes")
    prog.run(random_spikes(rng, net, 10, 2))
    slots = {key for kernel in prog._kernels.values() for key, _ in kernel.slots}
    assert slots <= {"source", "spikes"}


def test_out_reuses_the_arrays_of_an_earlier_trace():
    rng = np.random.default_rng(4)
    net = random_network(rng, load_target("xc7z020"))
    a, b = random_spikes(rng, net, 9, 3), random_spikes(rng, net, 9, 3)
    first = run_network(net, a, engine="native")
    first_v = {name: s["v"] for name, s in first.layers.items()}
    second = run_network(net, b, engine="native", out=first)
    assert_same(second, run_network(net, b, engine="numpy"))
    assert all(np.shares_memory(second.layers[n]["v"], v) for n, v in first_v.items())
    third = run_network(net, a[:5], engine="native", out=second)  # other shape: new arrays
    assert_same(third, run_network(net, a[:5], engine="numpy"))


def test_empty_window_and_unknown_engine():
    rng = np.random.default_rng(0)
    net = random_qnetwork(rng, load_target("loihi2"), conv=True, recurrent=True)
    trace = run_network(net, np.zeros((0, 3, *net.input_shape), np.float32), engine="native")
    assert trace.output.shape[:2] == (0, 3)
    with pytest.raises(ValueError, match="engine"):
        run_network(net, np.zeros((2, 1, *net.input_shape)), engine="fast")


def test_auto_takes_numpy_for_small_runs_and_native_for_large_ones():
    rng = np.random.default_rng(0)
    net = random_qnetwork(rng, load_target("cpu"))
    assert native.auto_engine(net, (10, 2)) == "numpy"
    work = native.synapse_work(net, 1, 1)
    assert native.auto_engine(net, (int(native.AUTO_MIN_WORK // work) + 1, 1)) == "native"


def test_fallback_to_numpy_with_a_warning_when_no_compiler_works(monkeypatch):
    rng = np.random.default_rng(1)
    net = random_qnetwork(rng, load_target("cpu"))
    spikes = random_spikes(rng, net, 6, 2)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(native, "AUTO_MIN_WORK", 0)
    monkeypatch.setattr(native, "_warned", set())
    compiler.toolchain.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="numpy engine"):
            got = run_network(net, spikes)
        assert_same(got, run_network(net, spikes, engine="numpy"))
        with pytest.raises(compiler.CompilerError, match="no working C compiler"):
            native.NativeProgram(net).run(spikes)
    finally:
        compiler.toolchain.cache_clear()


# ----------------------------------------------------------------------------- the cache

_CONCURRENT = r"""
import sys
import numpy as np
from snn_compile.emulator.native import NativeProgram
from snn_compile.targets import load_target
from snn_compile.testing.networks import random_network, random_spikes
rng = np.random.default_rng(int(sys.argv[1]))
net = random_network(rng, load_target("cpu"))
trace = NativeProgram(net).run(random_spikes(rng, net, 8, 2))
print(int(sum(int(np.asarray(a, np.int64).sum()) for s in trace.layers.values() for a in s.values())))
"""


def test_cache_folder_from_env_and_concurrent_builds(tmp_path):
    """Two processes build the same (new) kernels at once into an empty cache: both succeed
    with the same result and the cache holds complete libraries only."""
    env = dict(os.environ, SNN_COMPILE_CACHE=str(tmp_path / "kernels"))
    cmd = [sys.executable, "-c", _CONCURRENT, "123"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert len({out for out, _ in outs}) == 1
    files = list((tmp_path / "kernels").iterdir())
    assert any(f.suffix == ".so" for f in files)
    assert not [f for f in files if f.name.startswith(".")]  # no temporary leftovers


def test_prune_keeps_the_most_recently_used(tmp_path):
    for i in range(5):
        (tmp_path / f"k{i}.so").write_text("x")
        (tmp_path / f"k{i}.c").write_text("x")
        os.utime(tmp_path / f"k{i}.so", (1000 + i, 1000 + i))
    compiler._prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k3.c", "k3.so", "k4.c", "k4.so"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_binary_input_converted_in_one_pass_like_encode(dtype):
    net = random_qnetwork(np.random.default_rng(3), load_target("cpu"))
    x = (np.random.default_rng(4).random((7, 3, *net.input_shape)) < 0.3).astype(dtype)
    np.testing.assert_array_equal(native.encode(net, x, np.uint8), net.input.encode(x, np.uint8))
    for bad, message in ((0.5, "not binary"), (np.nan, "NaN"), (2, "not binary")):
        if dtype == np.uint8 and bad != 2:
            continue
        y = x.copy()
        y[2, 1, 0] = bad
        with pytest.raises(Exception, match=message):
            native.encode(net, y, np.uint8)
