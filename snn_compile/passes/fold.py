"""Folding a run of linear nodes into one projection (float64, exact up to float rounding).

A path of linear nodes between two populations (Affine, Conv2d, pooling, Flatten, Scale, Sum)
becomes the cheapest projection that computes it:

* **elementwise** when it holds only Scale (and Flatten/Sum, which do not change a flat vector);
* **conv** for a Conv2d (or a lone pooling, a depthwise convolution) followed by at most one
  average/sum pooling and by Scales that are uniform per output channel; a Conv2d (or a lone
  1x1 identity) followed by a **max** pooling keeps the pooling as the projection's ``max_pool``
  (the maximum of the integer sums over each window; per-channel gains after it must be
  non-negative, so that they commute with the maximum);
* **dense** otherwise, composed node by node (Affine products, Scales on rows or columns); a
  convolution or pooling inside a dense path is expanded by applying it to a unit basis, after
  checking the matrix fits :data:`DENSE_LIMIT` entries.

Biases are not folded here: a node's bias reaches its population once however many paths pass
through it, so :mod:`.group` evaluates the whole linear subgraph on zero input instead
(:func:`apply_chain`). A max pooling passes a convolution's per-channel bias on unchanged
(``max(y + b) = max(y) + b``), so that evaluation holds for it too; :mod:`.group` makes sure a
max pooling has a single path through it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import nodes as n
from ..ir.fixed import ConvGeometry

DENSE_LIMIT = 1 << 28  # entries of a folded dense matrix (2 GB of float64)
LINEAR = (n.Affine, n.Conv2d, n.SumPool2d, n.AvgPool2d, n.Flatten, n.Scale, n.Sum)
FOLDABLE = LINEAR + (n.MaxPool2d,)  # max pooling folds into a convolution projection
POOLS = (n.SumPool2d, n.AvgPool2d)


def _torch():
    import torch

    return torch


# ----------------------------------------------------------------------------- execution

def _affine(node, t, bias: bool):
    torch = _torch()
    y = t.reshape(t.shape[0], -1) @ torch.from_numpy(np.array(node.weight, np.float64)).T
    if bias and node.bias is not None:
        y = y + torch.from_numpy(np.array(node.bias, np.float64))
    return y


def _conv(node, t, bias: bool):
    torch = _torch()
    b = None if node.bias is None or not bias else torch.from_numpy(np.array(node.bias,
                                                                             np.float64))
    return torch.nn.functional.conv2d(t, torch.from_numpy(np.array(node.weight, np.float64)),
                                      b, node.stride, node.padding, node.dilation, node.groups)


def _avgpool(node, t, bias: bool):
    return _torch().nn.functional.avg_pool2d(t, node.kernel_size, node.stride, node.padding,
                                             count_include_pad=True)


def _sumpool(node, t, bias: bool):
    return _avgpool(node, t, bias) * (node.kernel_size[0] * node.kernel_size[1])


def _maxpool(node, t, bias: bool):
    return _torch().nn.functional.max_pool2d(t, node.kernel_size, node.stride, node.padding)


def _scale(node, t, bias: bool):
    return t * _torch().from_numpy(np.array(node.scale, np.float64))


APPLY = {
    n.Affine: _affine, n.Conv2d: _conv, n.SumPool2d: _sumpool, n.AvgPool2d: _avgpool,
    n.Flatten: lambda node, t, bias: t.reshape(t.shape[0], -1), n.Scale: _scale,
    n.Sum: lambda node, t, bias: t, n.MaxPool2d: _maxpool,
}


def apply_chain(chain, x: np.ndarray, *, bias: bool = True) -> np.ndarray:
    """Run linear nodes in float64 on a batch ``x`` ``[N, *shape]``."""
    t = _torch().from_numpy(np.asarray(x, np.float64))
    for node in chain:
        t = APPLY[type(node)](node, t, bias)
    return t.numpy()


def output_shape(chain, in_shape) -> tuple:
    shape = tuple(in_shape)
    for node in chain:
        shape = tuple(node.output_shape(shape))
    return shape


# ----------------------------------------------------------------------------- folding

def fold_chain(chain, in_shape, owner: str) -> tuple[str, np.ndarray, ConvGeometry | None]:
    """``(kind, weight, conv)`` of the projection computing ``chain`` (biases excluded)."""
    chain = [node for node in chain if not isinstance(node, n.Sum)]
    out_shape = output_shape(chain, in_shape)
    if all(isinstance(node, (n.Scale, n.Flatten)) for node in chain):
        return "elementwise", _elementwise(chain, in_shape, out_shape), None
    if any(isinstance(node, n.MaxPool2d) for node in chain):
        return ("conv",) + _fold_max_pool(chain, tuple(in_shape), owner)
    conv = _fold_conv(chain, tuple(in_shape))
    if conv is not None:
        return ("conv",) + conv
    return "dense", _dense(chain, in_shape, out_shape, owner), None


def _elementwise(chain, in_shape, out_shape) -> np.ndarray:
    """The product of the Scales, in the target's shape (a scalar when uniform)."""
    w, shape = np.ones(tuple(in_shape)), tuple(in_shape)
    for node in chain:
        if isinstance(node, n.Scale):
            w = w * np.asarray(node.scale, np.float64)
            shape = w.shape
        else:
            w, shape = w.reshape(-1), (int(np.prod(shape)),)
    w = np.broadcast_to(w, shape).reshape(out_shape)
    flat = w.reshape(-1)
    return np.array(flat[0]) if flat.size and np.all(flat == flat[0]) else w


def _channel_gain(node, channels: int) -> np.ndarray | None:
    """A Scale's gain per output channel when it is uniform within each channel, else None."""
    s = np.asarray(node.scale, np.float64)
    if s.ndim == 0:
        return np.full(channels, float(s))
    if s.ndim != 3 or s.shape[0] not in (1, channels):
        return None
    first = s[:, :1, :1]
    if not np.all(s == first):
        return None
    return np.broadcast_to(first.reshape(-1), (channels,)).copy()


def _fold_conv(chain, in_shape):
    """Conv (+ one pooling) (+ per-channel Scales), or a lone pooling, as one convolution."""
    if len(in_shape) != 3 or not chain:
        return None
    first, rest = chain[0], list(chain[1:])
    pool = rest.pop(0) if rest and isinstance(rest[0], POOLS) else None
    if isinstance(first, POOLS) and pool is None and not rest:
        c = in_shape[0]
        kh, kw = first.kernel_size
        gain = 1.0 / (kh * kw) if isinstance(first, n.AvgPool2d) else 1.0
        return np.full((c, 1, kh, kw), gain), ConvGeometry(
            in_shape=in_shape, stride=first.stride, padding=first.padding, groups=c)
    if not isinstance(first, n.Conv2d) or not all(isinstance(x, n.Scale) for x in rest):
        return None
    w = np.array(first.weight, np.float64)
    for scale in rest:
        gain = _channel_gain(scale, w.shape[0])
        if gain is None:
            return None
        w = w * gain.reshape(-1, 1, 1, 1)
    geo = ConvGeometry(in_shape=in_shape, stride=first.stride, padding=first.padding,
                       dilation=first.dilation, groups=first.groups)
    if pool is None:
        return w, geo
    if first.dilation != (1, 1) or first.groups != 1 or pool.padding != (0, 0):
        return None
    (s1h, s1w), (ph, pw) = first.stride, pool.kernel_size
    gain = 1.0 / (ph * pw) if isinstance(pool, n.AvgPool2d) else 1.0
    kh, kw = w.shape[2:]
    folded = np.zeros((*w.shape[:2], kh + (ph - 1) * s1h, kw + (pw - 1) * s1w))
    for a in range(ph):
        for b in range(pw):
            folded[:, :, a * s1h:a * s1h + kh, b * s1w:b * s1w + kw] += w * gain
    stride = (s1h * pool.stride[0], s1w * pool.stride[1])
    return folded, ConvGeometry(in_shape=in_shape, stride=stride, padding=first.padding)


def _fold_max_pool(chain, in_shape, owner: str):
    """``[Conv2d, Scale..., MaxPool2d, Scale...]`` (or a lone ``MaxPool2d``, as a 1x1 identity
    depthwise convolution) as one convolution with ``max_pool``; UnsupportedError otherwise."""
    at = next(i for i, node in enumerate(chain) if isinstance(node, n.MaxPool2d))
    pool, before, after = chain[at], list(chain[:at]), list(chain[at + 1:])
    where = f"max pooling '{pool.name}'"
    if pool.padding != (0, 0):
        raise UnsupportedError(f"{where} pads its input; a pooled projection cannot",
                               node=owner, value=f"padding {pool.padding}",
                               hint="use MaxPool2d(padding=0), or pad in the convolution")
    if len(in_shape) != 3:
        raise UnsupportedError(f"{where} needs a (C, H, W) source", node=owner,
                               value=f"source shape {in_shape}")
    if not before:
        c = in_shape[0]
        weight, geo = np.ones((c, 1, 1, 1)), ConvGeometry(in_shape=in_shape, groups=c)
    else:
        folded = _fold_conv(before, in_shape) if isinstance(before[0], n.Conv2d) else None
        if folded is None or any(isinstance(x, POOLS) for x in before):
            names = " -> ".join(type(x).__name__ for x in chain)
            raise UnsupportedError(f"{where} can only pool the sums of one convolution (or a "
                                   "layer's output directly)", node=owner,
                                   value=f"chain {names}",
                                   hint="put the MaxPool2d right after a Conv2d (its batch norm "
                                        "is folded first) or after a neuron layer")
        weight, geo = folded
    for scale in after:
        gain = _channel_gain(scale, weight.shape[0]) if isinstance(scale, n.Scale) else None
        if gain is None or np.any(gain < 0):
            raise UnsupportedError(f"only non-negative per-channel gains may follow {where}",
                                   node=owner, value=type(scale).__name__,
                                   hint="end the pooled path at the neuron layer")
        weight = weight * gain.reshape(-1, 1, 1, 1)
    from dataclasses import replace

    return weight, replace(geo, max_pool=(pool.kernel_size, pool.stride))


def _dense(chain, in_shape, out_shape, owner: str) -> np.ndarray:
    """The matrix ``(n_out, n_in)`` of the chain, composed without unit bases where possible."""
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    matrix = None              # None: the identity so far, times ``diag``
    diag = np.ones(n_in)
    shape = tuple(in_shape)
    for i, node in enumerate(chain):
        if isinstance(node, n.Flatten):
            shape = (int(np.prod(shape)),)
        elif isinstance(node, n.Scale):
            s = np.broadcast_to(np.asarray(node.scale, np.float64), shape).reshape(-1)
            if matrix is None:
                diag = diag * s
            else:
                matrix = matrix * s.reshape(-1, 1)
            shape = tuple(node.output_shape(shape))
        elif isinstance(node, n.Affine):
            a = np.array(node.weight, np.float64)
            matrix = a * diag.reshape(1, -1) if matrix is None else a @ matrix
            shape = (a.shape[0],)
        else:  # convolution or pooling inside a dense path: expand the rest on a unit basis
            rest = chain[i:]
            _check_size(n_in * n_out, owner, f"{n_out} x {n_in}")
            basis = np.eye(n_in).reshape(n_in, *in_shape) * diag.reshape(n_in,
                                                                           *[1] * len(in_shape))
            if matrix is not None:
                basis = (matrix.T).reshape(n_in, *shape)  # rows of the composed map so far
            return apply_chain(rest, basis, bias=False).reshape(n_in, -1).T
    if matrix is None:
        _check_size(n_in * n_out, owner, f"{n_out} x {n_in}")
        return np.diag(diag)
    return matrix


def _check_size(entries: int, owner: str, what: str) -> None:
    if entries > DENSE_LIMIT:
        raise UnsupportedError("the linear layers in front of this population fold into a "
                               f"dense matrix too large to build ({what})", node=owner,
                               value=f"{entries:,} entries > {DENSE_LIMIT:,}",
                               hint="put a neuron layer between the linear layers, or use "
                                    "convolutions that fold (conv + one pooling)")
