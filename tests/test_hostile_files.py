"""Hostile model and NIR files: HDF5 external storage, virtual datasets and links are refused,
declared sizes are checked before reading, malformed fields are one ModelFileError each, and a
pickle payload is named as code, never run."""

import pickle
import tracemalloc

import h5py
import nir
import numpy as np
import pytest
import snntorch as snn
import torch

from snn_compile import budget
from snn_compile.errors import ModelFileError, SnnCompileError
from snn_compile.importers import load_model
from snn_compile.importers.model_file import graph_to_dict
from snn_compile.importers.snntorch import from_snntorch


def _lif(n):
    return nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


@pytest.fixture
def good_nir(tmp_path):
    path = tmp_path / "good.nir"
    nir.write(path, nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2)), "lif": _lif(2),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    return path


def _replace_weight(path, make):
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        make(f, "node/nodes/fc/weight")
    return path


def test_external_storage_is_refused_and_never_read(good_nir, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype="<f8").tobytes())
    _replace_weight(good_nir, lambda f, k: f.create_dataset(
        k, shape=(2, 2), dtype="<f8", external=[(str(secret), 0, 32)]))
    with pytest.raises(ModelFileError, match="refers outside itself.*secret.bin"):
        load_model(good_nir, nir_convention="snntorch")


@pytest.mark.parametrize("kind", ["soft", "external", "virtual"])
def test_links_and_virtual_datasets_are_refused(good_nir, tmp_path, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.eye(2)

    def make(f, key):
        if kind == "soft":
            f[key] = h5py.SoftLink("/node/nodes/lif/tau")
        elif kind == "external":
            f[key] = h5py.ExternalLink(str(other), "/w")
        else:
            layout = h5py.VirtualLayout(shape=(2, 2), dtype="f8")
            layout[:] = h5py.VirtualSource(str(other), "w", shape=(2, 2))
            f.create_virtual_dataset(key, layout)
    _replace_weight(good_nir, make)
    with pytest.raises(ModelFileError, match="refers outside itself"):
        load_model(good_nir, nir_convention="snntorch")


def test_a_declared_giant_weight_is_refused_before_reading(good_nir):
    _replace_weight(good_nir, lambda f, k: f.create_dataset(
        k, shape=(50000, 10000), dtype="<f4"))  # allocated lazily: the file stays small
    assert good_nir.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(budget.BudgetError, match="1.9 GiB"):
            load_model(good_nir, nir_convention="snntorch")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20  # refused from the declaration, not after reading 2 GB


@pytest.mark.parametrize("case", ["string_weight", "zero_lif", "flatten_0d", "tau0"])
def test_malformed_nir_parameters_are_one_error(tmp_path, good_nir, case, recwarn):
    path = tmp_path / f"{case}.nir"
    if case == "string_weight":
        path = _replace_weight(good_nir, lambda f, k: f.create_dataset(
            k, data=np.array([[b"a", b"b"], [b"c", b"d"]])))
    elif case == "zero_lif":
        nir.write(path, nir.NIRGraph(nodes={"input": nir.Input(np.array([0])), "lif": _lif(0),
                                            "output": nir.Output(np.array([0]))},
                                     edges=[("input", "lif"), ("lif", "output")]))
    elif case == "flatten_0d":
        nir.write(path, nir.NIRGraph(
            nodes={"input": nir.Input(np.array([], dtype=int)),
                   "flat": nir.Flatten(input_type={"input": np.array([], dtype=int)},
                                       start_dim=0, end_dim=-1),
                   "lif": _lif(1), "output": nir.Output(np.array([1]))},
            edges=[("input", "flat"), ("flat", "lif"), ("lif", "output")], type_check=False))
    else:
        nir.write(path, nir.NIRGraph(
            nodes={"input": nir.Input(np.array([2])),
                   "lif": nir.LIF(tau=np.zeros(2), r=np.ones(2), v_leak=np.zeros(2),
                                  v_threshold=np.ones(2)),
                   "output": nir.Output(np.array([2]))},
            edges=[("input", "lif"), ("lif", "output")]))
    with pytest.raises(SnnCompileError) as info:
        load_model(path, nir_convention="snntorch")
    assert path.name in str(info.value) and "node '" in str(info.value)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# ----------------------------------------------------------------------------- model files

@pytest.fixture(scope="module")
def base_dict():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))
    return graph_to_dict(from_snntorch(net, (4,)))


def _with(base, change):
    data = {**base, "nodes": [dict(n) for n in base["nodes"]], "edges": list(base["edges"])}
    change(data)
    return data


CASES = {
    "string_weight": lambda d: d["nodes"][1].update(weight="abc"),
    "complex_weight": lambda d: d["nodes"][1].update(weight=torch.ones(3, 4) + 1j),
    "edge_triple": lambda d: d.update(edges=[[1, 2, 3]]),
    "metadata_list": lambda d: d.update(metadata=[1, 2]),
    "bad_grid": lambda d: d["nodes"][2].update(grid={"target": 5}),
    "shape_x": lambda d: d["nodes"][0].update(shape=["x"]),
    "shape_negative": lambda d: d["nodes"][0].update(shape=[-4]),
    "name_not_str": lambda d: d["nodes"][1].update(name=7),
    "zero_stride": lambda d: d["nodes"][1].update(weight=torch.zeros(1).expand(100000, 100000)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_model_fields_are_one_error(tmp_path, base_dict, case):
    path = tmp_path / "m.pt"
    torch.save(_with(base_dict, CASES[case]), path)
    with pytest.raises(SnnCompileError) as info:
        load_model(path)
    assert "m.pt" in str(info.value) and "\n" not in str(info.value)


def test_parameter_tensors_load(tmp_path, base_dict):
    path = tmp_path / "m.pt"
    torch.save(_with(base_dict, lambda d: d["nodes"][1].update(
        weight=torch.nn.Parameter(torch.ones(3, 4)))), path)
    assert load_model(path)[base_dict["nodes"][1]["name"]].weight.sum() == 12


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.sentinel}",))


@pytest.mark.parametrize("kind", ["zip", "raw"])
def test_pickle_payloads_are_named_as_code_and_never_run(tmp_path, kind):
    sentinel = tmp_path / "PWNED"
    path = tmp_path / "p.pt"
    if kind == "zip":
        torch.save({"w": _Payload(sentinel)}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(sentinel), protocol=4))
    with pytest.raises(ModelFileError, match="carries code.*--trust-pickle.*posix.system"):
        load_model(path)
    assert not sentinel.exists()


def test_arch_callables_that_fail_are_one_error(tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "sd.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict(), path)
    (tmp_path / "broken_arch.py").write_text("def build(:\n")
    (tmp_path / "needs_args.py").write_text("import torch\ndef build(n):\n"
                                            "    return torch.nn.Linear(n, 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelFileError, match="SyntaxError"):
        load_model(path, arch="broken_arch:build")
    with pytest.raises(ModelFileError, match="takes no arguments"):
        load_model(path, arch="needs_args:build")
