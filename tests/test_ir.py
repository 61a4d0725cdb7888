"""The float IR's verifier rejects bad graphs with errors that name the node."""

import numpy as np
import pytest

import snn_compile.ir as ir
from snn_compile.errors import GraphError


def chain(*nodes):
    return ir.sequential([ir.Input(name="in", shape=(4,)), *nodes])


def test_shapes_are_inferred():
    g = chain(ir.Affine(name="fc", weight=np.ones((3, 4))), ir.LIF(name="lif", shape=(3,), beta=0.9))
    assert g.shapes == {"in": (4,), "fc": (3,), "lif": (3,), "output": (3,)}


def test_shape_mismatch_names_the_node():
    g = chain(ir.Affine(name="fc", weight=np.ones((3, 5))), ir.LIF(name="lif", shape=(3,), beta=0.9))
    with pytest.raises(GraphError, match="node 'fc'.*input shape \\(4,\\), expected \\(5,\\)"):
        g.shapes


def test_neuron_population_mismatch():
    g = chain(ir.Affine(name="fc", weight=np.ones((3, 4))), ir.LIF(name="lif", shape=(2,), beta=0.9))
    with pytest.raises(GraphError, match="node 'lif'"):
        g.shapes


def test_dangling_edge_and_unknown_node():
    g = ir.Graph((ir.Input(name="in", shape=(4,)), ir.Output(name="out")), (("in", "nowhere"),))
    with pytest.raises(GraphError, match="unknown node.*nowhere"):
        g.shapes
    g = ir.Graph((ir.Input(name="in", shape=(4,)), ir.Affine(name="fc", weight=np.ones((2, 4))),
                  ir.Output(name="out")), (("in", "out"),))
    with pytest.raises(GraphError, match="node 'fc'.*dangling"):
        g.shapes


def test_cycle_without_state_is_rejected():
    nodes = (ir.Input(name="in", shape=(4,)), ir.Affine(name="a", weight=np.eye(4)),
             ir.Affine(name="b", weight=np.eye(4)), ir.Output(name="out"))
    g = ir.Graph(nodes, (("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")))
    with pytest.raises(GraphError, match="node .a.: cycle without a delay"):
        g.shapes


def test_recurrent_loop_through_a_neuron_is_fine():
    nodes = (ir.Input(name="in", shape=(4,)), ir.Affine(name="fc", weight=np.ones((3, 4))),
             ir.Affine(name="rec", weight=np.eye(3)), ir.LIF(name="lif", shape=(3,), beta=0.5),
             ir.Output(name="out"))
    g = ir.Graph(nodes, (("in", "fc"), ("fc", "lif"), ("lif", "rec", 1), ("rec", "lif"),
                         ("lif", "out")))
    assert g.shapes["lif"] == (3,)
    assert g.order == ("in", "fc", "rec", "lif", "out")
    assert [e.src for e in g.incoming("lif")] == ["fc", "rec"]  # feed-forward, then recurrent


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_parameters_are_rejected(bad):
    w = np.ones((3, 4))
    w[1, 2] = bad
    with pytest.raises(GraphError, match="node 'fc'.*not finite.*index \\(1, 2\\)"):
        ir.Affine(name="fc", weight=w)
    with pytest.raises(GraphError, match="node 'lif'.*'beta'"):
        ir.LIF(name="lif", shape=(3,), beta=[0.5, bad, 0.5])


def test_unknown_reset_mode():
    with pytest.raises(GraphError, match="unknown reset"):
        ir.LIF(name="lif", shape=(3,), beta=0.5, reset="halve")
