"""Layer names in traces and comparisons: every name survives the npz keys, and a comparison
never calls two traces identical when one lacks a layer or a state."""

import numpy as np
import pytest

from snn_compile.compare import traces_identical
from snn_compile.errors import SnnCompileError
from snn_compile.trace import Trace


def test_trace_keys_round_trip_names_with_slashes():
    layers = {"a": {"v": np.zeros(1)}, "a/b": {"v": np.ones(1)}, "a/b/v": {"spikes": np.ones(2)}}
    back = Trace.from_npz_dict(Trace(output=np.zeros(1), layers=layers).to_npz_dict())
    assert {k: set(v) for k, v in back.layers.items()} == {k: set(v) for k, v in layers.items()}
    assert back.layers["a/b"]["v"][0] == 1


def test_traces_identical_fails_on_a_missing_layer_or_state():
    a = Trace(output=np.zeros(1), layers={"x": {"v": np.zeros(2)}, "y": {"v": np.zeros(2)}})
    assert traces_identical(a, a) is None
    assert "missing" in traces_identical(a, Trace(output=a.output, layers={"x": a.layers["x"]}))
    assert "missing" in traces_identical(Trace(output=a.output, layers={"x": a.layers["x"]}), a)
    b = Trace(output=a.output, layers={"x": {"v": np.zeros(2), "u": np.zeros(2)},
                                       "y": a.layers["y"]})
    assert "only one" in traces_identical(a, b)


def test_names_with_nul_are_refused_not_merged():
    trace = Trace(output=np.zeros(1), layers={"a\0x": {"v": np.zeros(1)},
                                              "a\0y": {"v": np.ones(1)}})
    with pytest.raises(SnnCompileError, match="NUL"):
        trace.to_npz_dict()
