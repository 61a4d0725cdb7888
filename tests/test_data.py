"""Sample data and the memory budget: npz headers are checked before any data is read, the
same validation serves the command line and the Python API, and declared sizes over the budget
are refused with the numbers before anything is allocated."""

import io
import zipfile

import numpy as np
import pytest
import snntorch as snn
import torch

import snn_compile
from snn_compile import budget
from snn_compile.cli import main
from snn_compile.data import check_data, check_thresholds, load_data
from snn_compile.errors import SnnCompileError
from snn_compile.testing import check_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 8), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(8, 5), snn.Leaky(beta=0.8, init_hidden=True))
    snn_compile.export(net, root / "m.pt", input_shape=(20,))
    rng = np.random.default_rng(0)
    spikes = (rng.random((12, 6, 20)) < 0.3).astype(np.float32)
    np.savez(root / "d.npz", spikes=spikes, labels=rng.integers(0, 5, 6))
    return root / "m.pt", root / "d.npz", spikes


def _declared_npz(path, shape, dtype="<f4"):
    """An npz whose 'spikes' header declares ``shape`` but holds (almost) no data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False,
                                                  "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("spikes.npy", header.getvalue() + b"\0" * 1024)
    return path


@pytest.fixture
def no_reading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("array data was read before the header was checked")
    monkeypatch.setattr(np.lib.format, "read_array", refuse)


def test_wrong_sample_shape_is_refused_from_the_header(tmp_path, no_reading):
    path = _declared_npz(tmp_path / "d.npz", (1000, 3250, 21))  # 260 MB declared
    with pytest.raises(SnnCompileError, match="do not fit the model's input.*21"):
        load_data(path, (20,))


def test_declared_size_over_the_budget_is_refused_with_the_numbers(tmp_path, no_reading):
    path = _declared_npz(tmp_path / "d.npz", (1000, 3250, 20))
    with budget.limit_to(100 << 20), pytest.raises(budget.BudgetError) as info:
        load_data(path, (20,))
    text = str(info.value)
    assert "d.npz" in text and "(1000, 3250, 20)" in text and "100.0 MiB" in text
    assert budget.ENV in text


def test_budget_setting(monkeypatch):
    assert budget.parse("512M") == 512 << 20 and budget.parse("2g") == 2 << 30
    monkeypatch.setenv(budget.ENV, "1K")
    assert budget.limit() == 1024
    with pytest.raises(budget.BudgetError):
        budget.check_array((33, 32), np.uint8, "x")
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(SnnCompileError, match=budget.ENV):
        budget.limit()


@pytest.mark.parametrize("spikes,message", [
    (np.ones((4, 2, 20)) + 1j, "real numbers"),
    (np.full((4, 2, 20), 1e30), "too large"),
    (np.full((4, 2, 20), np.nan), "NaN"),
    (np.ones((4, 2, 19)), "do not fit"),
    (np.array([["a"]]), "real numbers"),
])
def test_bad_spikes_are_refused_naming_the_source(spikes, message):
    with pytest.raises(SnnCompileError, match=message):
        check_data(spikes, input_shape=(20,), source="x.npz")


def test_the_python_api_validates_like_the_cli(model):
    path, data, spikes = model
    with pytest.raises(SnnCompileError, match="not output neuron indices"):
        check_model(path, (spikes, np.arange(6) + 10), target="cpu")
    with pytest.raises(SnnCompileError, match="real numbers"):
        check_model(path, spikes + 0j, target="cpu")
    with pytest.raises(SnnCompileError, match="fraction"):
        check_model(path, data, target="cpu", min_agreement=float("nan"))
    with pytest.raises(SnnCompileError, match="accuracy drop"):
        check_thresholds(None, float("nan"))


@pytest.mark.parametrize("extra", [["--max-accuracy-drop", "nan"], ["--min-agreement", "nan"],
                                   ["--max-accuracy-drop", "inf"]])
def test_nan_thresholds_are_refused_on_the_cli(model, tmp_path, capsys, extra):
    path, data, _ = model
    assert main(["check", str(path), "--target", "cpu", "--data", str(data), "--report",
                 str(tmp_path / "r"), "--no-plots", *extra]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_huge_synapse_delay_is_refused_before_allocating(model, tmp_path, capsys,
                                                          monkeypatch):
    path, data, _ = model
    monkeypatch.setenv(budget.ENV, "50M")
    code = main([str(path), "--target", "cpu", "--set", "timing.synapse_delay=60000",
                 "--data", str(data), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    # the target's delay range refuses it before anything is allocated
    assert code == 2 and "timing.synapse_delay = 60000" in err and "0..64" in err
    assert not (tmp_path / "o").exists()
