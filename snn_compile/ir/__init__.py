"""The discrete-time float IR (nodes + graph with edge delays) and the fixed-point IR."""

from .graph import Edge, Graph, from_ordered, sequential, verify
from .nodes import (
    IF, LI, LIF, Affine, AvgPool2d, Conv2d, CubaLIF, Delay, Flatten, Input, NeuronNode, Node,
    Output, Scale, Sum, SumPool2d,
)

__all__ = [
    "Graph", "Edge", "sequential", "from_ordered", "verify", "Node", "Input", "Output", "Sum",
    "Affine", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale", "Delay", "NeuronNode",
    "LIF", "CubaLIF", "IF", "LI",
]
