"""Exact integer synaptic products through floating-point BLAS.

A sum of integers is exact in floating point as long as every partial sum fits the mantissa
(2^24 for float32, 2^53 for float64), whatever the summation order. We bound the largest partial
sum by ``max|x| * max_row sum|w|`` and pick the cheapest exact type; int64 is the fallback.
"""

from __future__ import annotations

import numpy as np

from snn_compile.ir.fixed import QConv, QDense

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


def _exact_dtype(bound: int):
    if bound < FLOAT32_EXACT:
        return np.float32
    if bound < FLOAT64_EXACT:
        return np.float64
    return None


def _max_abs(x: np.ndarray) -> int:
    """max |x| without materialising |x| (x: any integer array; spikes are often uint8)."""
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


def product_bound(syn, x: np.ndarray) -> int:
    """An upper bound of |partial sum| of the product of ``syn`` with the integer input ``x``."""
    w = syn.weight
    return _max_abs(x) * int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0))


def _as_tensor(x: np.ndarray, dtype) -> torch.Tensor:
    """A fresh, writable tensor of ``x`` converted in one pass (read-only inputs are fine)."""
    import torch  # on first use: listing backends must not import torch

    return torch.from_numpy(np.array(x, dtype=dtype))


def _result(y: torch.Tensor, out: np.ndarray | None) -> np.ndarray:
    """The exact float result as int64, or written into ``out`` (int32 or int64, chosen by the
    caller from :func:`product_bound`) in one conversion pass."""
    if out is None:
        return y.numpy().astype(np.int64)
    out[...] = y.numpy()
    return out


def dense_product(syn: QDense, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x @ W.T`` for integer ``x`` of shape [N, n_in]; exact int64 result [N, n_out].

    ``out``, if given, is an integer array [N, n_out] wide enough for the result.
    """
    w = syn.weight
    dtype = _exact_dtype(product_bound(syn, x))
    if dtype is None:
        y = x.astype(np.int64) @ w.T
        if out is None:
            return y
        out[...] = y
        return out
    xt = _as_tensor(x, dtype)
    wt = _as_tensor(w.T, dtype)
    return _result(xt @ wt, out)


def conv_product(syn: QConv, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Cross-correlation of integer ``x`` [N, C*H*W] (flattened C, H, W); exact int64 [N, n_out]."""
    w = syn.weight
    bound = product_bound(syn, x)
    dtype = _exact_dtype(bound)
    if dtype is None:
        raise OverflowError(f"convolution sums up to {bound} exceed exact float64 range")
    import torch

    xt = _as_tensor(x, dtype).reshape(-1, *syn.in_shape)
    y = torch.nn.functional.conv2d(xt, _as_tensor(w, dtype), stride=syn.stride,
                                   padding=syn.padding, dilation=syn.dilation, groups=syn.groups)
    return _result(y.reshape(x.shape[0], int(np.prod(syn.out_shape))), out)


PRODUCTS = {QDense: dense_product, QConv: conv_product}


def synaptic_product(syn, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return PRODUCTS[type(syn)](syn, x, out)
