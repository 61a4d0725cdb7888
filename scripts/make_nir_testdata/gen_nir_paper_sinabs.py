"""The NIR paper's N-MNIST CNN run by Sinabs itself: tests/data/nir-paper/cnn_sinabs.npz.

Run in the Sinabs side venv with scikit-learn added (see README), from this folder::

    /tmp/nirenv/sinabs/bin/python gen_nir_paper_sinabs.py

The graph is loaded the way the paper's ``paper/02_cnn/sinabs.py`` does it,
``sinabs.from_nir(nir.read("cnn_sinabs.nir"), batch_size=B)``, with Sinabs' defaults: every NIR
``IF`` becomes ``IAFSqueeze(spike_threshold=v_threshold, min_v_mem=-v_threshold)`` with the
default ``spike_fn=MultiSpike`` and ``reset_fn=MembraneSubtract()`` (``r`` and ``v_reset`` are not
read), ``SumPool2d`` becomes ``sl.SumPool2d`` (``LPPool2d`` with p = 1), ``Affine``/``Conv2d``
their torch layers with the (zero) biases. Input is ``(B*T, 2, 34, 34)``, batch-major.

Recorded (keys as in the README of tests/data/nir-paper):

``output``, ``hidden/<IF node>``
    spike counts of the default model (``MultiSpike``: ``(v > 0) * trunc(v / thr)`` spikes per
    step, no cap, subtract ``count * thr``, then ``v = max(v, min_v_mem)``);
``state/12/v``
    the output layer's ``v_mem`` after every step (the hidden layers' would exceed the size
    budget); floor hits and multi-spike counts of every layer are in ``meta_json``;
``alt/no-floor/{output,hidden/<IF node>}``
    the same model with ``min_v_mem = None`` (MultiSpike, no floor);
``alt/single-spike-no-floor/{output,hidden/<IF node>}``
    ``spike_fn=SingleSpike`` (``v >= thr``) and no floor: what the ``sinabs`` convention models.

Input: N-MNIST-like event-count frames (1 ms bins, 2 polarities, 34x34, counts above 1), made
deterministically from scikit-learn's 8x8 digits: each digit is upsampled to 20x20 (MNIST's digit box),
centred on the 34x34 sensor and moved along N-MNIST's three-saccade triangle (100 ms each); a DVS model with a
log-intensity contrast threshold (per-pixel mismatch) turns the motion into ON/OFF events counted
per 1 ms bin (4 sub-steps per bin), plus sparse background noise. Channel 0 is OFF, 1 is ON
(tonic's polarity order). One sample per class 0-9; ``labels`` holds the digit.
"""

from __future__ import annotations

import json

import nir
import numpy as np
import sinabs
import sinabs.layers as sl
import torch
from scipy import ndimage
from sinabs.activation import SingleSpike
from sklearn.datasets import load_digits

from common import PAPER_DIR, save_npz

NAME = "cnn_sinabs"
T_STEPS, SUBSTEPS, SACCADE_MS, MOVE_MS = 300, 4, 100, 20
NEURONS = ("1", "3", "6", "10", "12")   # the NIR IF nodes (sanitised module names)
SEED = 34


# --------------------------------------------------------------------------- synthetic input


def _saccade_path(rng):
    """Sensor offset (dy, dx) in pixels at every sub-step: N-MNIST's triangle of 3 saccades.

    Each 100 ms saccade slot holds a 20 ms movement (smooth start and stop) between two corners
    of a 2.5-3.5 pixel triangle; the fast movement is what gives bins with several events.
    """
    corners = np.array([[0.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.0, 0.0]]) * rng.uniform(2.5, 3.5)
    corners += rng.normal(0, 0.15, corners.shape)
    ms = np.arange(SACCADE_MS * SUBSTEPS) / SUBSTEPS
    s = np.clip((ms - (SACCADE_MS - MOVE_MS) / 2) / MOVE_MS, 0, 1)
    s = 0.5 - 0.5 * np.cos(np.pi * s)
    return np.concatenate([a[None] + (b - a)[None] * s[:, None]
                           for a, b in zip(corners[:-1], corners[1:])])


def nmnist_like(image, rng, contrast=0.2, noise_rate=2e-4):
    """``[T, 2, 34, 34]`` event counts for one 8x8 digit image (values 0..16)."""
    digit = ndimage.zoom(image / 16.0, 2.5, order=1).clip(0, 1)           # 20 x 20, as MNIST
    canvas = np.zeros((34, 34))
    canvas[7:27, 7:27] = digit
    canvas = ndimage.gaussian_filter(canvas, 0.6)
    thr = contrast * rng.uniform(0.8, 1.25, (34, 34))                      # pixel mismatch
    path = _saccade_path(rng)
    log_i = lambda offset: np.log(ndimage.shift(canvas, offset, order=1) + 0.05)
    ref = log_i(path[0])
    frames = np.zeros((T_STEPS, 2, 34, 34), np.float32)
    for k in range(T_STEPS * SUBSTEPS):
        diff = log_i(path[k]) - ref
        n = np.floor(np.abs(diff) / thr)
        ref = ref + np.sign(diff) * n * thr
        frames[k // SUBSTEPS, 1] += n * (diff > 0)
        frames[k // SUBSTEPS, 0] += n * (diff < 0)
    frames += rng.random(frames.shape) < noise_rate
    return frames


def nmnist_inputs():
    digits = load_digits()
    picks = [int(np.flatnonzero(digits.target == c)[-1]) for c in range(10)]  # last of each
    rng = np.random.default_rng(SEED)
    x = np.stack([nmnist_like(digits.images[i], rng) for i in picks], axis=1)
    return x, digits.target[picks], picks


# --------------------------------------------------------------------------- Sinabs run


def load_model(batch, variant):
    model = sinabs.from_nir(nir.read(str(PAPER_DIR / f"{NAME}.nir")), batch_size=batch)
    mods = dict(model.named_modules())
    for name in NEURONS:
        layer = mods[name]
        assert isinstance(layer, sl.IAFSqueeze), (name, type(layer))
        if variant in ("no-floor", "single-spike-no-floor"):
            layer.min_v_mem = None
        if variant == "single-spike-no-floor":
            layer.spike_fn = SingleSpike
    return model, mods


def describe(mods):
    out = {}
    for name in NEURONS:
        m = mods[name]
        out[name] = dict(cls=type(m).__name__, spike_fn=getattr(m.spike_fn, "__name__",
                                                                  repr(m.spike_fn)),
                         reset_fn=repr(m.reset_fn),
                         spike_threshold=np.unique(m.spike_threshold.detach()).tolist(),
                         min_v_mem=None if m.min_v_mem is None
                         else np.unique(m.min_v_mem.detach()).tolist(),
                         alpha_mem=float(m.alpha_mem_calculated))
    return out


def run(x, variant):
    """Sinabs' forward pass; per IF layer its spikes, input, v_mem and floor hits."""
    steps, batch = x.shape[:2]
    model, mods = load_model(batch, variant)
    inputs, outputs = {}, {}

    def hook(name):
        def fn(module, args, out):
            inputs[name] = args[0].detach().clone()
            outputs[name] = out.detach().clone()
        return fn

    for name in NEURONS:
        mods[name].record_states = True
        mods[name].register_forward_hook(hook(name))
    squeezed = torch.from_numpy(np.swapaxes(x, 0, 1).reshape(batch * steps, *x.shape[2:]).copy())
    with torch.no_grad():
        out, _ = model(squeezed)
    tm = lambda a: np.swapaxes(a.numpy().reshape(batch, steps, *a.shape[1:]), 0, 1).copy()
    layers = {}
    for name in NEURONS:
        m = mods[name]
        v = np.swapaxes(m.recordings["v_mem"].numpy(), 0, 1)              # [T, B, ...]
        s, xin = tm(outputs[name]), tm(inputs[name])
        # the pre-floor membrane, recomputed in float32 in Sinabs' order of operations
        v_prev = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
        v_pre = (v_prev + xin) - s * np.float32(1.0)
        floor = m.min_v_mem is not None
        hits = (v_pre < -1.0) if floor else np.zeros(v.shape, bool)
        # Sinabs floors with relu(v - min_v_mem) + min_v_mem: v + 1 - 1, rounded in float32
        one = np.float32(1.0)
        check = np.maximum(v_pre + one, 0) - one if floor else v_pre
        assert np.array_equal(check, v), f"{name}: membrane bookkeeping differs from Sinabs"
        layers[name] = dict(spikes=s, v=v, floor_hits=hits)
    assert np.array_equal(layers["12"]["spikes"], tm(out))
    return layers, describe(mods)


def _stats(layers):
    stats = {}
    for name, rec in layers.items():
        s = rec["spikes"]
        stats[name] = dict(entries=int(s.size), spiking=int((s > 0).sum()),
                           multi_spike_entries=int((s > 1).sum()),
                           multi_spike_share_of_spiking=float((s > 1).sum() / max((s > 0).sum(), 1)),
                           max_count=int(s.max()), total_spikes=int(s.sum()),
                           floor_hits=int(rec["floor_hits"].sum()),
                           floor_hit_share=float(rec["floor_hits"].mean()))
    return stats


def main():
    x, labels, picks = nmnist_inputs()
    ref, modules = run(x, "default")
    alts = {variant: run(x, variant)[0] for variant in ("no-floor", "single-spike-no-floor")}
    hidden = {name: ref[name]["spikes"] for name in NEURONS[:-1]}
    hidden["12"] = ref["12"]["spikes"]
    alt = {}
    differ = {}
    for variant, layers in alts.items():
        alt[f"{variant}/output"] = layers["12"]["spikes"]
        for name in NEURONS[:-1]:
            alt[f"{variant}/hidden/{name}"] = layers[name]["spikes"]
        differ[variant] = {name: float(np.mean(layers[name]["spikes"] != ref[name]["spikes"]))
                           for name in NEURONS}
    counts = ref["12"]["spikes"].sum(0)
    meta = dict(
        framework="sinabs", version=sinabs.__version__, nir_version=nir.__version__,
        torch=torch.__version__, loader=f"sinabs.from_nir(graph, batch_size={x.shape[1]})",
        modules=modules,
        equations=("per step, IAF (alpha_mem = 1): v = v + x; s = (v > 0) * trunc(v / thr) "
                   "(MultiSpike, uncapped); v = v - s * thr (MembraneSubtract); "
                   "v = relu(v - min_v_mem) + min_v_mem with min_v_mem = -thr = -1"),
        input=dict(kind="N-MNIST-like event counts from sklearn digits", digits_index=picks,
                   bins_ms=1, steps=T_STEPS, max_count=int(x.max()),
                   share_above_1=float((x > 1).mean()), mean=float(x.mean()),
                   events_per_sample=x.sum(axis=(0, 2, 3, 4)).astype(int).tolist()),
        stats=_stats(ref), alt_stats={v: _stats(layers) for v, layers in alts.items()},
        alt_differs_from_reference=differ,
        predictions=counts.argmax(1).tolist(), digits=labels.tolist(),
        accuracy=float(np.mean(counts.argmax(1) == labels)),
        notes=("state/12/v is v_mem after each step (after reset and floor). The paper's "
               "sinabs.py measured its 'Sinabs' accuracy on DynapcnnNetwork(discretize=True) "
               "of this model, not on from_nir's float model recorded here."))
    state = {"12/v": ref["12"]["v"]}
    save_npz(PAPER_DIR / f"{NAME}.npz", x, ref["12"]["spikes"], hidden, labels=labels,
             state=state, alt=alt, dtype=np.uint8, **meta)
    print(json.dumps(meta["stats"], indent=1))
    print(json.dumps(differ), "accuracy", meta["accuracy"], meta["predictions"])


if __name__ == "__main__":
    main()
