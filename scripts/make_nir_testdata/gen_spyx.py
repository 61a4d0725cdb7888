"""Spyx graphs: linear LIF and linear CuBaLIF.

Run in the side venv /tmp/nirenv/spyx (spyx 1.0.0, jax CPU, nir 1.0.8; see README):
``/tmp/nirenv/spyx/bin/python gen_spyx.py``.

Spyx takes the spike on the *pre-update* membrane and works in time steps (``dt = 1``):
convention ``spyx``. Not generated: a conv graph (Spyx 1.0.0 writes the Affine after a Flatten in
NHWC column order, wrong for NIR's CHW Flatten) and RLIF (its NIR subgraph routes the layer input
through the recurrent weights, ``input -> w_rec -> lif``, unlike Spyx's own ``x + W s``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import spyx
import spyx.nn as snn
from flax import nnx
from spyx.nir import to_nir

from common import B, OUT_DIR, bernoulli_input, save


def linear(n_in, n_out, gain, rngs):
    layer = nnx.Linear(n_in, n_out, rngs=rngs)
    layer.kernel.set_value(layer.kernel.get_value() * gain)
    return layer


def run(layers, x: np.ndarray):
    """Spyx's own step functions, one time step at a time."""
    states = [layer.initial_state(B) if hasattr(layer, "initial_state") else None
              for layer in layers]
    outputs, hidden = [], {}
    for t in range(x.shape[0]):
        h = jnp.asarray(x[t])
        for idx, layer in enumerate(layers):
            if states[idx] is None:
                h = layer(h)
            else:
                h, states[idx] = layer(h, states[idx])
                hidden.setdefault(str(idx), []).append(np.asarray(h))
        outputs.append(np.asarray(h))
    return np.stack(outputs), {k: np.stack(v) for k, v in hidden.items()}


def export(name, layers, n_in, n_out, seed):
    x = bernoulli_input((n_in,), seed)
    out, hidden = run(layers, x)
    graph = to_nir(nnx.Sequential(*layers), {"input": np.array([n_in])},
                   {"output": np.array([n_out])}, dt=1)
    nir.write(OUT_DIR / f"{name}.nir", graph)
    hidden = {f"layer_{k}": v for k, v in hidden.items()}
    save(name, x, out, hidden, framework="spyx", version="1.0.0", convention="spyx", dt=1.0,
         notes="spike on the pre-update membrane; hidden/<node> are Spyx's own (delayed) spikes")


def main():
    jax.config.update("jax_platforms", "cpu")
    rngs = nnx.Rngs(0)
    export("spyx_linear_lif",
           [linear(12, 16, 2.0, rngs), snn.LIF((16,), beta=0.9, rngs=rngs),
            linear(16, 4, 3.0, rngs), snn.LIF((4,), beta=0.85, rngs=rngs)], 12, 4, seed=1234)
    export("spyx_linear_cubalif",
           [linear(12, 16, 1.0, rngs), snn.CuBaLIF((16,), alpha=0.8, beta=0.9, rngs=rngs),
            linear(16, 4, 1.5, rngs), snn.CuBaLIF((4,), alpha=0.7, beta=0.8, rngs=rngs)],
           12, 4, seed=1234)


if __name__ == "__main__":
    main()
