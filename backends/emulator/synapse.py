"""Exact integer synaptic products through floating-point BLAS.

A sum of integers is exact in floating point as long as every partial sum fits the mantissa
(2^24 for float32, 2^53 for float64), whatever the summation order. We bound the largest partial
sum by ``max|x| * max_row sum|w|`` and pick the cheapest exact type; int64 is the fallback.
"""

from __future__ import annotations

import numpy as np
import torch

from snn_compile.ir.fixed import QConv, QDense

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


def _exact_dtype(bound: int):
    if bound < FLOAT32_EXACT:
        return torch.float32
    if bound < FLOAT64_EXACT:
        return torch.float64
    return None


def dense_product(syn: QDense, x: np.ndarray) -> np.ndarray:
    """``x @ W.T`` for integer ``x`` of shape [N, n_in]; exact int64 result [N, n_out]."""
    w = syn.weight
    bound = int(np.abs(x).max(initial=0)) * int(np.abs(w).sum(axis=1).max(initial=0))
    dtype = _exact_dtype(bound)
    if dtype is None:
        return x @ w.T
    xt = torch.from_numpy(np.array(x)).to(dtype)
    wt = torch.from_numpy(np.array(w.T)).to(dtype)
    return (xt @ wt).numpy().astype(np.int64)


def conv_product(syn: QConv, x: np.ndarray) -> np.ndarray:
    """Cross-correlation of integer ``x`` [N, C*H*W] (flattened C, H, W); exact int64 [N, n_out]."""
    w = syn.weight
    per_output = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0)
    bound = int(np.abs(x).max(initial=0)) * int(per_output)
    dtype = _exact_dtype(bound)
    if dtype is None:
        raise OverflowError(f"convolution sums up to {bound} exceed exact float64 range")
    xt = torch.from_numpy(np.array(x)).to(dtype).reshape(-1, *syn.in_shape)
    y = torch.nn.functional.conv2d(xt, torch.from_numpy(np.array(w)).to(dtype), stride=syn.stride,
                                   padding=syn.padding, dilation=syn.dilation, groups=syn.groups)
    return y.reshape(x.shape[0], int(np.prod(syn.out_shape))).numpy().astype(np.int64)


PRODUCTS = {QDense: dense_product, QConv: conv_product}


def synaptic_product(syn, x: np.ndarray) -> np.ndarray:
    return PRODUCTS[type(syn)](syn, x)
