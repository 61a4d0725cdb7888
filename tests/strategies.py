"""Random fixed-point networks for property tests (the installed conformance kit's generators)."""

from snn_compile.testing.networks import (  # noqa: F401
    FEATURES, random_network, random_neuron, random_qnetwork, random_spikes,
)
