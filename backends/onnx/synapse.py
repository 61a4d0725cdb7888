"""Exact integer synaptic products as ONNX subgraphs (int64 ``MatMul``).

onnxruntime runs ``MatMul`` on int64 exactly (two's complement, like numpy), but has no
integer ``Conv`` (``Conv`` is float-only, ``ConvInteger`` takes 8-bit operands while our weights
have up to 9 bits and graded inputs up to 24). A convolution is therefore lowered to an
im2col ``Gather`` of the flat input (padding reads an appended zero) followed by a batched
int64 ``MatMul`` per group: exact for every operand width, and the index table is a constant
computed here once.
"""

from __future__ import annotations

import numpy as np

from snn_compile.ir.fixed import QConv, QDense

from .builder import GraphBuilder


def dense_product(b: GraphBuilder, syn: QDense, x: str) -> str:
    """``x @ W.T`` for ``x`` [B, n_in] int64 -> [B, n_out] int64."""
    return b.op("MatMul", x, b.const(syn.weight.T, hint="weight_t"))


def im2col_index(syn: QConv) -> np.ndarray:
    """Flat input index of every (group, output pixel, kernel tap): ``[G, OH*OW, Cg*kH*kW]``.

    Taps that fall into the zero padding point at index ``C*H*W`` (the appended zero).
    """
    c, h, w = syn.in_shape
    _, cg, kh, kw = syn.weight.shape
    _, oh, ow = syn.out_shape
    g = syn.groups
    gi, yi, xi, ci, pi, qi = np.meshgrid(np.arange(g), np.arange(oh), np.arange(ow),
                                         np.arange(cg), np.arange(kh), np.arange(kw),
                                         indexing="ij")
    rows = yi * syn.stride[0] - syn.padding[0] + pi * syn.dilation[0]
    cols = xi * syn.stride[1] - syn.padding[1] + qi * syn.dilation[1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = ((gi * cg + ci) * h + rows) * w + cols
    index = np.where(inside, flat, c * h * w)
    return index.reshape(g, oh * ow, cg * kh * kw)


def conv_product(b: GraphBuilder, syn: QConv, x: str) -> str:
    """Cross-correlation of ``x`` [B, C*H*W] int64 -> [B, C_out*OH*OW] int64 (C, H, W order)."""
    c_out, cg, kh, kw = syn.weight.shape
    g = syn.groups
    _, oh, ow = syn.out_shape
    padded = b.op("Pad", x, b.const([0, 0, 0, 1]), b.const(0))           # [B, CHW + 1]
    patches = b.op("Gather", padded, b.const(im2col_index(syn), hint="im2col"), axis=1)
    # weight [C_out, Cg, kH, kW] -> [G, Cg*kH*kW, C_out/G]
    kernel = syn.weight.reshape(g, c_out // g, cg * kh * kw).transpose(0, 2, 1)
    prod = b.op("MatMul", patches, b.const(kernel, hint="kernel"))          # [B, G, P, Co/G]
    chw = b.op("Transpose", prod, perm=[0, 1, 3, 2])                         # [B, G, Co/G, P]
    return b.op("Reshape", chw, b.const([0, c_out * oh * ow]))


PRODUCTS = {QDense: dense_product, QConv: conv_product}


def synaptic_product(b: GraphBuilder, syn, x: str) -> str:
    """The integer product of either synapse type."""
    return PRODUCTS[type(syn)](b, syn, x)
