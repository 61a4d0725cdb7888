"""JUnit output: valid against the strict Ant schema (Windy Road) and Jenkins' schema, with
time, properties and case names unique per model, target and layer.

The schemas are vendored in tests/data/junit (see its README for sources and licences).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import xmlschema
from junitparser import JUnitXml

from snn_compile import __version__
from snn_compile.junit import Case, Suite, check_suite, junit_xml, write_junit

SCHEMAS = Path(__file__).parent / "data" / "junit"


@pytest.fixture(scope="module", params=["JUnit.xsd", "junit-10.xsd"])
def schema(request):
    return xmlschema.XMLSchema(SCHEMAS / request.param)


def report(target="loihi2", agreement=(0.98, 0.9), failures=(), labels=True):
    rep = {"target": target, "samples": 360, "steps": 25, "latency_steps": 2, "exact": False,
           "level": "statistical", "class_agreement": 0.98, "verdict": "fail" if failures
           else "pass", "failures": list(failures),
           "layers": [{"name": str(i), "spike_agreement": a, "float_spikes": 100 + i,
                       "fixed_spikes": 99, "offset": i, "rate_error": 0.01}
                      for i, a in enumerate(agreement)]}
    if labels:
        rep.update(float_accuracy=96.9, fixed_accuracy=96.7, accuracy_drop=0.2)
    return rep


def test_the_old_hand_written_format_is_rejected(schema):
    """The validator is strict: what snn-compile wrote before (no errors, no time) fails."""
    old = ('<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="snn-compile check" '
           'tests="1" failures="0">\n  <testcase classname="snn_compile.check" name="1">'
           "</testcase>\n</testsuite>\n")
    assert not schema.is_valid(old)


def test_check_report_validates(schema, tmp_path):
    rep = report(failures=["layer 1: spike agreement 90.000% < 95.000%"])
    path = write_junit([check_suite(rep, model="digits_snn.pt", seconds=1.25)], tmp_path / "j.xml")
    schema.validate(str(path))
    suite = next(iter(JUnitXml.fromfile(str(path))))
    cases = {case.name: case for case in suite}
    assert set(cases) == {"digits_snn.pt [loihi2] layer 0", "digits_snn.pt [loihi2] layer 1",
                          "digits_snn.pt [loihi2] class agreement",
                          "digits_snn.pt [loihi2] accuracy"}
    assert not cases["digits_snn.pt [loihi2] layer 0"].result
    (failure,) = cases["digits_snn.pt [loihi2] layer 1"].result
    assert failure.message == rep["failures"][0] and "spike_agreement = 0.9" in failure.text
    assert (suite.tests, suite.failures, suite.errors) == (4, 1, 0)
    assert suite.time == 1.25
    props = {p.name: p.value for p in suite.properties()}
    assert props["snn-compile"] == __version__ and props["model"] == "digits_snn.pt"
    assert props["digits_snn.pt [loihi2] layer 1 / spike_agreement"] == "0.9"


def test_failed_rules_of_the_streaming_report_land_on_their_cases(schema):
    """Reports with failed_rules: a dead layer, a class-agreement rule, the accuracy drop."""
    rep = report(agreement=(0.98, 0.0))
    rep["failed_rules"] = [
        {"case": "1", "rule": "dead", "message": "layer 1: dead in fixed point"},
        {"case": "1", "rule": "recall", "message": "layer 1: recall 0.0000 < 0.5000"},
        {"case": "classes", "rule": "class_agreement", "message": "class agreement 10% < 90%"},
        {"case": "accuracy", "rule": "accuracy_drop", "message": "accuracy drop 3 > 1"}]
    rep["failures"] = [r["message"] for r in rep["failed_rules"]]
    text = junit_xml([check_suite(rep, model="m.pt")], hostname="ci")
    schema.validate(text)
    results = {c.name.split("] ")[1]: [r.message for r in c.result]
               for c in next(iter(JUnitXml.fromstring(text)))}
    assert results == {"layer 0": [],
                       "layer 1": ["layer 1: dead in fixed point; layer 1: recall 0.0000 < 0.5000"],
                       "class agreement": ["class agreement 10% < 90%"],
                       "accuracy": ["accuracy drop 3 > 1"]}


def test_many_models_and_targets_in_one_file_are_valid_and_unique(schema):
    suites = [check_suite(report(target=t), model=m, seconds=0.5)
              for m in ("a.pt", "b.nir") for t in ("loihi2", "xc7z020")]
    text = junit_xml(suites, hostname="ci")
    schema.validate(text)
    names = [(s.name, c.name) for s in JUnitXml.fromstring(text) for c in s]
    assert len(names) == 4 * 4 and len({c for _, c in names}) == len(names)


def test_generic_suites_with_properties_time_and_no_cases(schema):
    suites = [Suite("empty", cases=[]),
              Suite("layers", cases=[
                  Case("p", "x.y", time=0.25, properties={"precision": 0.5, "recall": 1}),
                  Case("q", "x.y", time=1e-5, failure="recall 0.1 < 0.9"),
                  Case("r <&> \"quoted\"", "x.y", time=3.0)],
                    properties={"seed": 7}, timestamp=datetime(2026, 1, 2, 3, 4, 5))]
    text = junit_xml(suites, hostname="ci")
    schema.validate(text)
    empty, layers = ElementTree.fromstring(text.split("\n", 1)[1])
    assert (empty.get("tests"), empty.get("time")) == ("0", "0.000")  # plain decimals
    assert layers.get("time") == "3.250" and layers.get("timestamp") == "2026-01-02T03:04:05"
    cases = layers.findall("testcase")
    assert [c.get("time") for c in cases] == ["0.250", "0.000", "3.000"]
    assert cases[2].get("name") == 'r <&> "quoted"'


def test_duplicate_case_names_are_refused():
    case = Case("layer 1", "snn_compile.check")
    with pytest.raises(ValueError, match="duplicate"):
        junit_xml([Suite("a", [case]), Suite("b", [case])])


def test_negative_time_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        junit_xml([Suite("a", [Case("c", "k", time=-1.0)])])


def test_source_date_epoch_makes_files_reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    suites = [check_suite(report(), model="m.pt", seconds=0.1)]
    first = junit_xml(suites, hostname="h")
    assert 'timestamp="2023-11-14T22:13:20"' in first
    assert junit_xml(suites, hostname="h") == first


def test_cli_check_writes_valid_junit(schema, tmp_path):
    """End to end: `snn-compile check --junit` on a small model; its time is measured."""
    import snntorch as snn
    import torch

    import snn_compile
    from snn_compile.cli import main

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(6, 3), snn.Leaky(beta=0.8, init_hidden=True))
    model = snn_compile.export(net, tmp_path / "tiny.pt", input_shape=(8,))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", spikes=(rng.random((10, 8, 8)) < 0.4).astype(np.float32),
             labels=rng.integers(0, 3, 8))
    junit = tmp_path / "j.xml"
    code = main(["check", str(model), "--target", "cpu", "--data", str(tmp_path / "d.npz"),
                 "--report", str(tmp_path / "r"), "--junit", str(junit), "--no-plots"])
    assert code == 0
    schema.validate(str(junit))
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    assert suite.time > 0
    assert [c.name for c in suite] == ["tiny.pt [cpu] layer 1", "tiny.pt [cpu] layer 3",
                                       "tiny.pt [cpu] class agreement", "tiny.pt [cpu] accuracy"]
