"""The streaming check: honest per-layer figures, a verdict a broken network cannot pass, and
reports that do not depend on how the samples are chunked, sharded or distributed."""

from __future__ import annotations

import dataclasses
import json

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import snn_compile.ir as ir
from snn_compile.check import Thresholds, merge_partials, run_check
from snn_compile.check.data import open_data
from snn_compile.check import partial_dict
from snn_compile.errors import SnnCompileError
from snn_compile.quantize import quantize
from snn_compile.targets import load_target


def _mlp(seed=0, sizes=(12, 16, 5)):
    rng = np.random.default_rng(seed)
    nodes = [ir.Input(name="in", shape=(sizes[0],))]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes.append(ir.Affine(name=f"fc{i}", weight=rng.normal(0, 0.6, (b, a))))
        nodes.append(ir.LIF(name=f"lif{i}", shape=(b,), beta=0.9, reset="zero"))
    return ir.sequential(nodes)


def _data(seed=1, samples=40, steps=15, features=12, classes=5):
    rng = np.random.default_rng(seed)
    spikes = (rng.random((steps, samples, features)) < 0.3).astype(np.float32)
    return spikes, rng.integers(0, classes, samples)


@pytest.fixture(scope="module")
def case():
    graph = _mlp()
    spikes, labels = _data()
    net = quantize(graph, load_target("loihi2"), spikes[:, :16]).network
    return graph, net, spikes, labels


def _comparable(report: dict) -> str:
    """The report without what legitimately varies between runs (timing, engine)."""
    drop = {"engine"}
    return json.dumps({k: v for k, v in report.items() if k not in drop}, sort_keys=True,
                      default=str)


def test_report_has_precision_recall_iou_and_baselines(case):
    graph, net, spikes, labels = case
    report = run_check(graph, net, spikes, labels, progress=False).report
    for layer in report["layers"]:
        for key in ("precision", "recall", "iou", "precision_tolerant", "recall_tolerant",
                    "count_correlation", "silent_agreement", "first_divergence"):
            assert key in layer
        assert layer["iou"] <= min(layer["precision"], layer["recall"]) + 1e-12
        assert layer["recall_tolerant"] >= layer["recall"]
    assert report["samples"] == spikes.shape[1] and report["verdict"] == "pass"


def test_dead_output_layer_fails_the_default_verdict(case):
    graph, net, spikes, labels = case
    out = net.output_population
    dead = net.with_population(dataclasses.replace(out, neuron=dataclasses.replace(
        out.neuron, threshold=np.array((1 << 16) << 6))))
    result = run_check(graph, dead, spikes, labels, progress=False)
    layer = next(l for l in result.report["layers"] if l["name"] == out.name)
    assert layer["fixed_spikes"] == 0 and layer["float_spikes"] > 0
    # the entry agreement of a silent layer is high: it is no evidence of equivalence
    assert layer["spike_agreement"] >= layer["silent_agreement"] - 1e-12 > 0.5
    assert result.report["verdict"] == "fail"
    assert any("dead" in f for f in result.failures)


def test_thresholds_per_metric_and_class_agreement(case):
    graph, net, spikes, labels = case
    strict = Thresholds(layer={"iou": 0.9999}, min_class_agreement=1.0)
    result = run_check(graph, net, spikes, labels, strict, progress=False)
    rules = {f["rule"] for f in result.report["failed_rules"]}
    assert "iou" in rules
    with pytest.raises(SnnCompileError, match="fraction"):
        Thresholds(min_agreement=float("nan"))
    with pytest.raises(SnnCompileError, match="unknown layer metric"):
        Thresholds(layer={"recal": 0.5})


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 7), st.integers(1, 5), st.randoms(use_true_random=False))
def test_merged_shards_equal_one_process(batch_size, shards, rnd):
    graph = _mlp()
    spikes, labels = _data(samples=23)
    net = quantize(graph, load_target("cpu"), spikes[:, :8]).network
    whole = run_check(graph, net, spikes, labels, batch_size=batch_size, progress=False)
    n_chunks = -(-spikes.shape[1] // batch_size)
    shards = min(shards, n_chunks)
    parts = [partial_dict(run_check(graph, net, spikes, labels, batch_size=batch_size,
                                    shard=(i, shards), progress=False), (i, shards))
             for i in range(shards)]
    rnd.shuffle(parts)
    parts = json.loads(json.dumps(parts))  # as written to and read from files
    merged = merge_partials(parts, graph, net, Thresholds())
    assert _comparable(merged.report) == _comparable(whole.report)


def test_merge_refuses_gaps_overlaps_and_foreign_partials(case):
    graph, net, spikes, labels = case
    parts = [partial_dict(run_check(graph, net, spikes, labels, batch_size=10,
                                    shard=(i, 4), progress=False), (i, 4)) for i in range(4)]
    with pytest.raises(SnnCompileError, match="missing"):
        merge_partials(parts[:3], graph, net, Thresholds())
    with pytest.raises(SnnCompileError, match="overlap"):
        merge_partials(parts + parts[:1], graph, net, Thresholds())
    other = quantize(graph, load_target("cpu"), spikes[:, :16]).network
    foreign = partial_dict(run_check(graph, other, spikes, labels, batch_size=10,
                                     shard=(0, 4), progress=False), (0, 4))
    with pytest.raises(SnnCompileError, match="different checks"):
        merge_partials(parts[1:] + [foreign], graph, net, Thresholds())


def test_local_pool_equals_one_process(case):
    graph, net, spikes, labels = case
    one = run_check(graph, net, spikes, labels, batch_size=7, progress=False)
    two = run_check(graph, net, spikes, labels, batch_size=7, workers=2, progress=False)
    assert two.report["engine"]["engine"] == "pool"
    assert _comparable(two.report) == _comparable(one.report)


def test_dask_cluster_equals_one_process(case, tmp_path, monkeypatch):
    pytest.importorskip("distributed")

    graph, net, spikes, labels = case
    one = run_check(graph, net, spikes, labels, batch_size=9, progress=False)
    # --cluster local:2 (a LocalCluster the run starts and stops, temporary files in TMPDIR)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    two = run_check(graph, net, spikes, labels, batch_size=9, cluster="local:2",
                    progress=False)
    assert two.report["engine"] == {"engine": "dask", "workers": 2}
    assert _comparable(two.report) == _comparable(one.report)


def test_files_folders_globs_and_hdf5_stream_the_same_samples(case, tmp_path):
    h5py = pytest.importorskip("h5py")
    graph, net, spikes, labels = case
    want = _comparable(run_check(graph, net, spikes, labels, batch_size=8,
                                 progress=False).report)
    folder = tmp_path / "shards"
    folder.mkdir()
    np.savez(folder / "a.npz", spikes=spikes[:, :15], labels=labels[:15])
    np.savez_compressed(folder / "b.npz", spikes=spikes[:, 15:], labels=labels[15:])
    with h5py.File(tmp_path / "all.h5", "w") as fh:
        fh["spikes"], fh["labels"] = spikes, labels
    for spec in (folder, str(folder / "*.npz"), [folder / "a.npz", folder / "b.npz"],
                 tmp_path / "all.h5"):
        source = open_data(spec, graph.inputs[0].shape)
        assert source.samples == spikes.shape[1]
        got = run_check(graph, net, source, batch_size=8, progress=False).report
        assert _comparable(got) == want, spec



@pytest.mark.parametrize("kind", ["soft", "external"])
def test_hdf5_data_linked_elsewhere_is_refused(tmp_path, kind):
    """A data file whose 'spikes' is a soft or external link (the latter opens another file)
    is refused before anything is read, like a model file's."""
    h5py = pytest.importorskip("h5py")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh["x"] = np.zeros((3, 2, 4), np.float32)
    with h5py.File(tmp_path / "data.h5", "w") as fh:
        fh["x"] = np.zeros((3, 2, 4), np.float32)
        fh["spikes"] = h5py.SoftLink("/x") if kind == "soft" else h5py.ExternalLink(str(other),
                                                                                     "/x")
    with pytest.raises(SnnCompileError, match="links its dataset elsewhere"):
        open_data(tmp_path / "data.h5", (4,))

def test_calibration_samples_can_be_skipped(case):
    graph, net, spikes, labels = case
    report = run_check(graph, net, spikes, labels, first_sample=16, progress=False).report
    assert report["samples"] == spikes.shape[1] - 16
    assert report["config"]["first_sample"] == 16
