"""The discrete-time float IR (nodes + graph) and the fixed-point IR."""

from .graph import Graph, sequential, verify
from .nodes import (
    AvgPool2d, Affine, Conv2d, CubaLIF, Delay, Flatten, IF, Input, LI, LIF, NeuronNode, Node,
    Output, Scale, SumPool2d,
)

__all__ = [
    "Graph", "sequential", "verify", "Node", "Input", "Output", "Affine", "Conv2d", "Flatten",
    "SumPool2d", "AvgPool2d", "Scale", "Delay", "NeuronNode", "LIF", "CubaLIF", "IF", "LI",
]
