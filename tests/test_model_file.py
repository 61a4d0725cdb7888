"""Our model file (export / load_model) and loading of users' PyTorch files, with every error."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

import snn_compile
from snn_compile.errors import GraphError, ModelFileError, UnsupportedError
from snn_compile.importers.model_file import PICKLE_MESSAGE
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.reference import simulate


def build_dense():
    """The architecture callable used through ``arch="<this module>:build_dense"``."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), snn.Leaky(beta=0.9, init_hidden=True),
                         nn.Linear(6, 3), snn.RSynaptic(alpha=0.6, beta=0.8, linear_features=3,
                                                        reset_mechanism="zero", init_hidden=True))


def build_conv():
    return nn.Sequential(nn.Conv2d(1, 2, 3), snn.Leaky(beta=0.5, init_hidden=True))


@pytest.fixture(scope="module")
def arch_module():
    """Register this test module under a stable import name for ``arch=...``."""
    name = "snn_compile_test_archs"
    module = types.ModuleType(name)
    module.build_dense, module.build_conv = build_dense, build_conv
    module.not_a_module = lambda: 3
    sys.modules[name] = module
    yield name
    del sys.modules[name]


def _same_behaviour(a, b, input_shape):
    x = (np.random.default_rng(0).random((15, 4, *input_shape)) < 0.5).astype(np.float32) * 2
    ta, tb = simulate(a, x), simulate(b, x)
    np.testing.assert_array_equal(ta.output, tb.output)
    for name in ta.layers:
        for key in ta.layers[name]:
            np.testing.assert_array_equal(ta.layers[name][key], tb.layers[name][key])


# --------------------------------------------------------------------------- round trips


def test_export_round_trip_is_weights_only_and_exact(tmp_path):
    net = build_dense()
    path = snn_compile.export(net, tmp_path / "model.pt", input_shape=(5,))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "snn-compile-model" and raw["version"] == 2
    assert {d["kind"] for d in raw["nodes"]} == {"Input", "Affine", "LIF", "CubaLIF", "Output"}
    loaded = snn_compile.load_model(path)
    assert [n.name for n in loaded.nodes] == [n.name for n in from_snntorch(net, (5,)).nodes]
    assert loaded.edges == from_snntorch(net, (5,)).edges
    assert loaded.metadata["input_shape"] == [5]
    _same_behaviour(loaded, from_snntorch(net, (5,)), (5,))


def test_export_conv_graph_round_trip(tmp_path):
    graph = from_snntorch(build_conv(), (1, 5, 5))
    loaded = snn_compile.load_model(snn_compile.export(graph, tmp_path / "conv.pth"))
    assert loaded["0"].stride == (1, 1) and loaded["input"].shape == (1, 5, 5)
    _same_behaviour(loaded, graph, (1, 5, 5))


def test_state_dict_with_arch(tmp_path, arch_module):
    net = build_dense()
    with torch.no_grad():
        net[0].weight.mul_(3)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    graph = snn_compile.load_model(tmp_path / "sd.pt", arch=f"{arch_module}:build_dense")
    _same_behaviour(graph, from_snntorch(net, (5,)), (5,))


def test_state_dict_of_conv_net_needs_input_shape(tmp_path, arch_module):
    torch.save(build_conv().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelFileError, match=r"sd.pt: the input shape.*input_shape=\(C, H, W\)"):
        snn_compile.load_model(tmp_path / "sd.pt", arch=f"{arch_module}:build_conv")
    graph = snn_compile.load_model(tmp_path / "sd.pt", arch=f"{arch_module}:build_conv",
                                   input_shape=(1, 6, 6))
    assert graph.shapes["0"] == (2, 4, 4)


def test_trusted_pickle_loads_with_a_warning(tmp_path):
    net = nn.Sequential(nn.Linear(3, 2), snn.Leaky(beta=0.5, surrogate_disable=True,
                                                   init_hidden=True))
    torch.save(net, tmp_path / "whole.pt")
    with pytest.warns(UserWarning, match="runs code from the file"):
        graph = snn_compile.load_model(tmp_path / "whole.pt", trust_pickle=True)
    _same_behaviour(graph, from_snntorch(net, (3,)), (3,))


# --------------------------------------------------------------------------- errors


def test_pickle_without_flag_is_refused(tmp_path):
    torch.save(nn.Sequential(nn.Linear(3, 2)), tmp_path / "whole.pt")
    with pytest.raises(ModelFileError) as err:
        snn_compile.load_model(tmp_path / "whole.pt")
    assert str(err.value).startswith(f"{tmp_path / 'whole.pt'}: {PICKLE_MESSAGE}")
    assert "imports torch.nn.modules.container.Sequential" in str(err.value)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_file(tmp_path, cut):
    path = snn_compile.export(build_dense(), tmp_path / "model.pt", input_shape=(5,))
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(ModelFileError, match=r"model.pt: cannot read the model file: truncated"):
        snn_compile.load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a model", b"\x80\x04garbage"])
def test_corrupt_file(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(ModelFileError, match=r"bad.pt: cannot read the model file"):
        snn_compile.load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize("content, what", [
    (torch.ones(3), "a Tensor"),
    ([1, 2], "a list"),
    ({"epoch": 3, "model": {"w": torch.ones(1)}}, r"a dict with keys \['epoch', 'model'\]"),
])
def test_not_a_model(tmp_path, content, what):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(ModelFileError, match=rf"x.pt: the file holds no model \(got {what}\)"):
        snn_compile.load_model(tmp_path / "x.pt")


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        snn_compile.load_model(tmp_path / "nope.pt")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ModelFileError, match="model.onnx: unknown model file type"):
        snn_compile.load_model(tmp_path / "model.onnx")


def test_nan_weights_name_file_and_node(tmp_path, arch_module):
    net = build_dense()
    with torch.no_grad():
        net[2].weight[1, 0] = float("nan")
    torch.save(net.state_dict(), tmp_path / "nan.pt")
    with pytest.raises(GraphError, match=r"nan.pt: node '2': parameter 'weight' is not finite "
                                         r"\(got nan at index \(1, 0\)\)"):
        snn_compile.load_model(tmp_path / "nan.pt", arch=f"{arch_module}:build_dense")


def test_nan_in_our_format_names_the_file(tmp_path):
    path = snn_compile.export(build_dense(), tmp_path / "model.pt", input_shape=(5,))
    raw = torch.load(path, weights_only=True)
    raw["nodes"][1]["bias"][0] = float("inf")
    torch.save(raw, path)
    with pytest.raises(GraphError, match=r"model.pt: node '0': parameter 'bias' is not finite"):
        snn_compile.load_model(path)


def test_state_dict_without_arch(tmp_path):
    torch.save(build_dense().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelFileError, match=r"sd.pt: the file holds a bare state_dict.*arch="):
        snn_compile.load_model(tmp_path / "sd.pt")


def test_state_dict_shape_mismatch(tmp_path, arch_module):
    net = build_dense()
    net[0] = nn.Linear(4, 6)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelFileError, match=r"sd.pt: the state_dict does not fit the "
                                             r"architecture \(got size mismatch for 0.weight"):
        snn_compile.load_model(tmp_path / "sd.pt", arch=f"{arch_module}:build_dense")


@pytest.mark.parametrize("arch, message", [
    ("no_colon", "must look like"),
    ("no_such_package_xyz:build", "cannot import the architecture"),
    ("snn_compile_test_archs:missing", "cannot import the architecture"),
    ("snn_compile_test_archs:not_a_module", "did not return an nn.Module"),
])
def test_bad_arch(tmp_path, arch_module, arch, message):
    torch.save(build_dense().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelFileError, match=rf"sd.pt: .*{message}"):
        snn_compile.load_model(tmp_path / "sd.pt", arch=arch)


def test_unsupported_layer_in_state_dict_model_names_file(tmp_path, arch_module):
    torch.save(build_dense().state_dict(), tmp_path / "sd.pt")
    module = sys.modules[arch_module]
    module.build_inhibited = lambda: nn.Sequential(
        nn.Linear(5, 6), snn.Leaky(beta=0.9, inhibition=True), nn.Linear(6, 3),
        snn.RSynaptic(alpha=0.6, beta=0.8, linear_features=3, reset_mechanism="zero"))
    with pytest.warns(UserWarning), pytest.raises(UnsupportedError,
                                                  match=r"sd.pt: node '1': inhibition"):
        snn_compile.load_model(tmp_path / "sd.pt", arch=f"{arch_module}:build_inhibited")


def test_newer_version_and_unknown_kind(tmp_path):
    path = snn_compile.export(build_dense(), tmp_path / "model.pt", input_shape=(5,))
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "version": 99}, path)
    with pytest.raises(ModelFileError, match=r"model.pt: unsupported .* version \(got 99\)"):
        snn_compile.load_model(path)
    raw["nodes"][1]["kind"] = "Quantum"
    torch.save(raw, path)
    with pytest.raises(ModelFileError, match=r"model.pt: node '0': unknown layer kind"):
        snn_compile.load_model(path)


def test_options_that_do_not_apply_are_refused(tmp_path, arch_module):
    path = snn_compile.export(build_dense(), tmp_path / "model.pt", input_shape=(5,))
    with pytest.raises(ModelFileError, match="option 'nir_convention' does not apply"):
        snn_compile.load_model(path, nir_convention="snntorch")
    with pytest.raises(ModelFileError, match="arch is only used with a bare state_dict"):
        snn_compile.load_model(path, arch=f"{arch_module}:build_dense")


def test_export_of_module_needs_input_shape(tmp_path):
    with pytest.raises(ModelFileError, match="input shape"):
        snn_compile.export(build_dense(), tmp_path / "model.pt")


def test_shipped_digits_example():
    """The example model in examples/digits loads safely and keeps its measured accuracy."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "digits"
    graph = snn_compile.load_model(folder / "digits_snn.pt")
    data = np.load(folder / "digits_test.npz")
    assert data["spikes"].shape == (25, 360, 64) and data["labels"].dtype == np.int64
    assert {n.reset for n in graph.neurons} == {"zero"}
    output = simulate(graph, data["spikes"]).output
    accuracy = np.mean(output.sum(axis=0).argmax(axis=1) == data["labels"])
    assert accuracy == pytest.approx(0.9694, abs=1e-4)
