"""The discrete-time float IR (nodes + graph with edge delays) and the fixed-point IR."""

from .graph import Edge, Graph, from_ordered, sequential, verify
from .nodes import (
    IF, LI, LIF, Affine, Alpha, AvgPool2d, BatchNorm, Conv2d, CubaLIF, Delay, Flatten, Identity,
    Input, MaxPool2d, NeuronNode, Node, Output, ReLU, Scale, Sum, SumPool2d,
)

__all__ = [
    "Graph", "Edge", "sequential", "from_ordered", "verify", "Node", "Input", "Output", "Sum",
    "Affine", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale", "Delay", "NeuronNode",
    "LIF", "CubaLIF", "IF", "LI", "Alpha", "BatchNorm", "MaxPool2d", "Identity", "ReLU",
]
