"""Exact integer products of the projections as ONNX subgraphs (int64 ``MatMul``/``Gather``).

onnxruntime runs ``MatMul`` on int64 exactly (two's complement, like numpy), but has no integer
``Conv`` (``Conv`` is float-only, ``ConvInteger`` takes 8-bit operands while our weights have up
to 9 bits and graded inputs up to 24) and no int64 ``MaxPool``. A convolution is therefore an
im2col ``Gather`` of the flat input (padding reads an appended zero) followed by a batched int64
``MatMul`` per group, and a max pooling of its sums a ``Gather`` of each window followed by
``ReduceMax``: exact for every operand width, with index tables computed here once.
"""

from __future__ import annotations

import numpy as np

from snn_compile.ir.fixed import QProjection

from .builder import GraphBuilder


def dense_product(b: GraphBuilder, proj: QProjection, x: str) -> str:
    """``x @ W.T`` for ``x`` [B, n_in] int64 -> [B, n_out] int64."""
    return b.op("MatMul", x, b.const(proj.weight.T, hint="weight_t"))


def elementwise_product(b: GraphBuilder, proj: QProjection, x: str, shape) -> str:
    """``w * x`` for ``x`` [B, n] (``w`` broadcast to the population ``shape``, flattened)."""
    w = np.asarray(proj.weight)
    value = w if w.ndim == 0 else np.broadcast_to(w, shape).reshape(-1)
    return b.op("Mul", x, b.const(value, hint="weight"))


def im2col_index(proj: QProjection) -> np.ndarray:
    """Flat input index of every (group, output pixel, kernel tap): ``[G, OH*OW, Cg*kH*kW]``.

    Taps that fall into the zero padding point at index ``C*H*W`` (the appended zero).
    """
    geo = proj.conv
    c, h, w = geo.in_shape
    _, cg, kh, kw = proj.weight.shape
    _, oh, ow = geo.conv_shape(proj.weight.shape)
    g = geo.groups
    gi, yi, xi, ci, pi, qi = np.meshgrid(np.arange(g), np.arange(oh), np.arange(ow),
                                         np.arange(cg), np.arange(kh), np.arange(kw),
                                         indexing="ij")
    rows = yi * geo.stride[0] - geo.padding[0] + pi * geo.dilation[0]
    cols = xi * geo.stride[1] - geo.padding[1] + qi * geo.dilation[1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = ((gi * cg + ci) * h + rows) * w + cols
    index = np.where(inside, flat, c * h * w)
    return index.reshape(g, oh * ow, cg * kh * kw)


def pool_index(proj: QProjection) -> np.ndarray:
    """Flat conv-output index of every (channel, pooled pixel, window tap)."""
    geo = proj.conv
    co, oh, ow = geo.conv_shape(proj.weight.shape)
    (kh, kw), (sh, sw) = geo.max_pool
    poh, pow_ = (oh - kh) // sh + 1, (ow - kw) // sw + 1
    ci, yi, xi, pi, qi = np.meshgrid(np.arange(co), np.arange(poh), np.arange(pow_),
                                     np.arange(kh), np.arange(kw), indexing="ij")
    flat = (ci * oh + yi * sh + pi) * ow + xi * sw + qi
    return flat.reshape(co * poh * pow_, kh * kw)


def conv_product(b: GraphBuilder, proj: QProjection, x: str) -> str:
    """Cross-correlation (then max pooling) of ``x`` [B, C*H*W] int64 -> [B, n_out] int64."""
    c_out, cg, kh, kw = proj.weight.shape
    g = proj.conv.groups
    _, oh, ow = proj.conv.conv_shape(proj.weight.shape)
    padded = b.op("Pad", x, b.const([0, 0, 0, 1]), b.const(0))           # [B, CHW + 1]
    patches = b.op("Gather", padded, b.const(im2col_index(proj), hint="im2col"), axis=1)
    # weight [C_out, Cg, kH, kW] -> [G, Cg*kH*kW, C_out/G]
    kernel = proj.weight.reshape(g, c_out // g, cg * kh * kw).transpose(0, 2, 1)
    prod = b.op("MatMul", patches, b.const(kernel, hint="kernel"))          # [B, G, P, Co/G]
    chw = b.op("Transpose", prod, perm=[0, 1, 3, 2])                         # [B, G, Co/G, P]
    flat = b.op("Reshape", chw, b.const([0, c_out * oh * ow]))
    if proj.conv.max_pool is None:
        return flat
    windows = b.op("Gather", flat, b.const(pool_index(proj), hint="pool"), axis=1)
    return b.op("ReduceMax", windows, axes=[2], keepdims=0)


def product(b: GraphBuilder, proj: QProjection, x: str, target_shape) -> str:
    """The integer sums of any projection kind (``x`` [B, n_source] int64)."""
    if proj.kind == "dense":
        return dense_product(b, proj, x)
    if proj.kind == "conv":
        return conv_product(b, proj, x)
    return elementwise_product(b, proj, x, target_shape)
