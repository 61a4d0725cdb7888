"""Pass ``fold_batch_norm``: fold each inference-time batch norm into the layer before it.

Requires: a verified float graph without Identity nodes (run after ``drop_identities``, so that
a dropout between a convolution and its batch norm does not hide the pair).

Guarantees: no :class:`~snn_compile.ir.nodes.BatchNorm` node is left. A batch norm whose only
input is an Affine or Conv2d that feeds nothing else (delay 0) is folded into it, per output
channel ``c`` (in float64, stored as the IR's float32)::

    k[c] = weight[c] / sqrt(var[c] + eps)
    W'[c] = k[c] * W[c]            b'[c] = k[c] * (b[c] - mean[c]) + bias[c]

keeping the Linear/Conv2d's name; consumers of the batch norm read the folded layer. This is
exact in real arithmetic; in float32 the folded layer's outputs differ from torch's
batch-normalised ones by rounding only (each fold is noted with its range of gains ``k``, and
the pass's test checks that the float reference's spikes are unchanged). Any other
batch norm (after a neuron, a pooling, the input, or a layer with other consumers) is refused,
naming it: it would need a per-channel affine map that no projection carries.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import nodes as n
from ..ir.graph import Graph
from .rewrite import bypass, replace_nodes


def fold_batch_norm(graph: Graph, notes: list | None = None) -> Graph:
    """``graph`` with every batch norm folded into its Linear/Conv2d (see the docstring)."""
    for bn in sorted((x for x in graph.nodes if isinstance(x, n.BatchNorm)),
                     key=lambda x: x.name):
        layer = _folding_partner(graph, bn)
        folded, change = fold(layer, bn)
        graph = bypass(replace_nodes(graph, {layer.name: folded}), bn.name)
        if notes is not None:
            notes.append(f"{bn.name}: batch norm folded into {type(layer).__name__} "
                         f"'{layer.name}' (per-channel gain {change[0]:.4g}..{change[1]:.4g})")
    return graph


def _folding_partner(graph: Graph, bn: n.BatchNorm) -> n.Affine | n.Conv2d:
    edges = graph.incoming(bn.name)
    source = graph[edges[0].src] if len(edges) == 1 else None
    if source is None or edges[0].delay or not isinstance(source, (n.Affine, n.Conv2d)):
        what = "several inputs" if len(edges) != 1 else (
            f"its input comes from {type(source).__name__} '{source.name}'"
            + (" through a delay" if edges[0].delay else ""))
        raise UnsupportedError("a batch norm folds only into the Linear or Conv2d right before "
                               "it", node=bn.name, value=what,
                               hint="put the BatchNorm directly after the Linear/Conv2d it "
                                    "normalises, or fold it into the weights before importing")
    others = [e.dst for e in graph.outgoing(source.name) if e.dst != bn.name]
    if others:
        raise UnsupportedError("a batch norm folds into the layer before it only when nothing "
                               "else reads that layer", node=bn.name,
                               value=f"'{source.name}' also feeds {others}",
                               hint="feed the other consumers from the batch norm's output, or "
                                    "fold it before importing")
    return source


def fold(layer: n.Affine | n.Conv2d, bn: n.BatchNorm):
    """The layer computing ``bn(layer(x))``, and the range of the per-channel gains ``k``."""
    c = bn.channels
    weight = np.ones(c) if bn.weight is None else np.asarray(bn.weight, np.float64)
    shift = np.zeros(c) if bn.bias is None else np.asarray(bn.bias, np.float64)
    k = weight / np.sqrt(np.asarray(bn.var, np.float64) + bn.eps)
    w = np.asarray(layer.weight, np.float64)
    if w.shape[0] != c:
        raise UnsupportedError("batch norm channels do not match the layer before it",
                               node=bn.name, value=f"{c} channels, '{layer.name}' has "
                                                   f"{w.shape[0]} outputs")
    b = np.zeros(c) if layer.bias is None else np.asarray(layer.bias, np.float64)
    w = w * k.reshape(-1, *[1] * (w.ndim - 1))
    b = k * (b - np.asarray(bn.mean, np.float64)) + shift
    folded = type(layer)(**{**_fields(layer), "weight": w, "bias": b})
    return folded, (float(k.min(initial=np.inf)), float(k.max(initial=-np.inf)))


def _fields(node) -> dict:
    from dataclasses import fields

    return {f.name: getattr(node, f.name) for f in fields(node)}
