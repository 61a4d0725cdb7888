"""Exact integer products of the projections, through floating-point BLAS where that is exact.

A sum of integers is exact in floating point as long as every partial sum fits the mantissa
(2**24 for float32, 2**53 for float64), whatever the summation order. We bound the largest partial
sum by ``max|x| * max_row sum|w|`` and pick the cheapest exact type; int64 is the fallback.
A convolution with ``max_pool`` takes the maximum of its integer sums over each window (exact:
float64 holds them exactly).
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import QProjection

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


def _torch():
    import torch  # imported on first use: a fixed-point run of a small net need not pay for it

    return torch


def max_abs(x: np.ndarray) -> int:
    """max |x| without materialising |x| (x: any integer array; spikes are often uint8)."""
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


def row_sum_bound(proj: QProjection) -> int:
    """max over outputs of sum |w| (the gain of one input unit on the worst output)."""
    w = np.abs(proj.weight)
    if proj.kind == "elementwise":
        return int(w.max(initial=0))
    return int(w.reshape(w.shape[0], -1).sum(axis=1).max(initial=0))


def product_bound(proj: QProjection, x: np.ndarray) -> int:
    """An upper bound of |partial sum| of ``proj``'s product with the integer input ``x``."""
    return max_abs(x) * row_sum_bound(proj)


def _float_type(bound: int):
    if bound < FLOAT32_EXACT:
        return np.float32
    if bound < FLOAT64_EXACT:
        return np.float64
    return None


def dense_product(proj: QProjection, x: np.ndarray, out_dtype=np.int64) -> np.ndarray:
    """``x @ W.T`` for integer ``x`` [N, n_in]; exact result [N, n_out] (int64, or
    ``out_dtype`` when the caller knows the sums fit it)."""
    w = proj.weight
    dtype = _float_type(product_bound(proj, x))
    if dtype is None:
        return (np.asarray(x, np.int64) @ w.T).astype(out_dtype, copy=False)
    torch = _torch()
    xt = torch.from_numpy(np.array(x, dtype=dtype))
    wt = torch.from_numpy(np.array(w.T, dtype=dtype))
    return (xt @ wt).numpy().astype(out_dtype)


def conv_product(proj: QProjection, x: np.ndarray, out_dtype=np.int64) -> np.ndarray:
    """Cross-correlation (then max pooling, if any) of integer ``x`` [N, C*H*W] (C, H, W order);
    exact [N, n_out] (int64 or ``out_dtype``)."""
    torch = _torch()
    geo = proj.conv
    bound = product_bound(proj, x)
    dtype = _float_type(bound)
    if dtype is None:
        raise OverflowError(f"convolution sums up to {bound} exceed exact float64 range")
    if geo.max_pool is not None:
        dtype = np.float64  # the pooled maximum is compared in float: keep every sum exact
    xt = torch.from_numpy(np.array(x, dtype=dtype)).reshape(-1, *geo.in_shape)
    y = torch.nn.functional.conv2d(xt, torch.from_numpy(np.array(proj.weight, dtype=dtype)),
                                   stride=geo.stride, padding=geo.padding,
                                   dilation=geo.dilation, groups=geo.groups)
    if geo.max_pool is not None:
        kernel, stride = geo.max_pool
        y = torch.nn.functional.max_pool2d(y, kernel, stride)
    return y.reshape(x.shape[0], -1).numpy().astype(out_dtype)


def elementwise_product(proj: QProjection, x: np.ndarray, shape) -> np.ndarray:
    """``w * x`` for ``x`` [N, n] (``w`` broadcast to the population ``shape``)."""
    w = np.broadcast_to(proj.weight, shape).reshape(-1)
    return np.multiply(x, w, dtype=np.int64)


def product(proj: QProjection, x: np.ndarray, source_shape, out_dtype=np.int64) -> np.ndarray:
    """The integer sums ``acc = W (*) x`` of any projection kind; ``x`` [N, n_source]."""
    if proj.kind == "dense":
        return dense_product(proj, x, out_dtype)
    if proj.kind == "conv":
        return conv_product(proj, x, out_dtype)
    return elementwise_product(proj, x, source_shape).astype(out_dtype, copy=False)
