"""examples/third_party_backend: the TinyCore example backend passes the conformance kit.

The example is a separately installable package; here it is imported from its folder (no pip
install), and driven as an instance, which is what ``check_backend("tinycore")`` does once the
package is installed (scripts/check_wheel.sh installs it and runs the main command with it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from snn_compile.compare import traces_identical
from snn_compile.emulator import run_network
from snn_compile.errors import BackendError, UnsupportedError
from snn_compile.ir.fixed import QInput, QNetwork, QNeuron, QPopulation, QProjection
from snn_compile.targets import load_target
from snn_compile.testing.conformance import check_backend
from snn_compile.testing.networks import random_network, random_qnetwork, random_spikes

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_backend"
sys.path.insert(0, str(EXAMPLE))

from snn_tinycore import Program, TinyCoreBackend  # noqa: E402
from snn_tinycore.program import MAX_FAN_IN, NEURONS_PER_CORE  # noqa: E402

DECLARED = {"conv projections", "multi_spike = True", "the overflow rule 'wrap_lava'",
            f"more than {MAX_FAN_IN} projections into one population"}


def test_conformance_kit_passes():
    """Bit-exact on everything it accepts; everything else refused through its capabilities."""
    report = check_backend(TinyCoreBackend(), networks=24, seed=0)
    assert report.ran >= 20, report.summary()
    assert set(report.refused) <= DECLARED, report.summary()
    assert "conv projections" in report.refused, report.summary()
    assert not report.uncovered()


def test_options_change_the_program_not_the_result():
    rng = np.random.default_rng(3)
    net = random_network(rng, load_target("cpu"), features=("skip", "delay", "recurrent",
                                                              "elementwise", "cuba"))
    spikes = random_spikes(rng, net, steps=12, batch=3)
    want = run_network(net, spikes)
    programs = {}
    for options in ({}, {"cores": 4}, {"prune_zeros": "false"}):
        backend = TinyCoreBackend(**options)
        programs[str(options)] = program = backend.lower(net)
        assert traces_identical(want, backend.run_lowered(program, spikes)) is None, options
    assert len(programs["{'cores': 4}"].header["cores"]) == 4
    assert set(programs["{}"].header["input"]["format"]) == {f.name for f in fields(QInput)}
    pruned = sum(p["synapses"] for p in programs["{}"].header["projections"])
    full = sum(p["synapses"] for p in programs["{'prune_zeros': 'false'}"].header["projections"])
    assert pruned < full
    for bad in ({"cores": 0}, {"cores": "many"}, {"prune_zeros": "maybe"}, {"threads": 2}):
        with pytest.raises(BackendError):
            TinyCoreBackend(**bad)


def _hostile(net: QNetwork) -> QNetwork:
    """The same network with names that would break code or file keys if spliced into them."""
    names = ['p1"); import os #', "p2\n\x1b[31m/../x", "p3\x00\u202e"]
    mapping = {pop.name: names[i % len(names)] + str(i)
               for i, pop in enumerate(net.populations)}
    return net.renamed(mapping)


def test_emit_is_byte_deterministic_data(tmp_path):
    rng = np.random.default_rng(5)
    net = _hostile(random_network(rng, load_target("cpu"),
                                  features=("delay", "recurrent", "input_bias", "cuba")))
    spikes = random_spikes(rng, net, steps=10, batch=2)
    golden = run_network(net, spikes)
    summaries = [TinyCoreBackend(cores=2).emit(TinyCoreBackend(cores=2).lower(net),
                                               tmp_path / run, inputs=spikes, golden=golden,
                                               source_name="m\n.pt")
                 for run in ("a", "b")]
    assert summaries[0] == summaries[1] and summaries[0]["verified"] is True
    for name in ("program.json", "program.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["program.json", "program.npz"]
    text = (tmp_path / "a" / "program.json").read_bytes()
    assert text.isascii() and not any(c < 0x20 and c != 0x0A for c in text)
    header = json.loads(text)  # the names come back exactly, as JSON strings
    assert {p["name"] for p in header["populations"]} == {p.name for p in net.populations}
    with np.load(tmp_path / "a" / "program.npz") as tables:  # keyed by position only
        assert all(key.startswith(("pop", "proj")) and key.isprintable() for key in tables)
    loaded = Program.load(tmp_path / "a")
    assert traces_identical(golden, TinyCoreBackend().run_lowered(loaded, spikes)) is None


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["populations"][0]["neuron"].update(u_overflow="wrap_lava"), "no u_overflow mode"),
    (lambda h: h["input"]["format"].update(colour="red"), "QInput"),
    (lambda h: h["projections"][0].update(synapses=h["projections"][0]["synapses"] + 1),
     "proj0/indices"),
])
def test_a_tampered_program_is_refused_on_loading(tmp_path, edit, message):
    net = random_network(np.random.default_rng(2), load_target("cpu"), features=("cuba",))
    TinyCoreBackend().lower(net).save(tmp_path)
    header = json.loads((tmp_path / "program.json").read_text())
    edit(header)
    (tmp_path / "program.json").write_text(json.dumps(header))
    with pytest.raises(BackendError, match=message):
        Program.load(tmp_path)


def test_conv_is_refused_naming_the_node():
    net = random_qnetwork(np.random.default_rng(0), load_target("cpu"), conv=True)
    conv = next(p.name for p in net.projections if p.kind == "conv")
    backend = TinyCoreBackend()
    for step in (backend.check, backend.lower):
        with pytest.raises(UnsupportedError, match="conv projections") as info:
            step(net)
        assert info.value.node == conv and f"node '{conv}'" in str(info.value)


def _net(n_neurons: int, fan_in: int) -> QNetwork:
    neuron = QNeuron(shape=(n_neurons,), decay_u=0, decay_v=1 << 15, threshold=100, bias=0)
    projs = [QProjection(name=f"in{k}", source="input", target="big", kind="dense",
                         weight=np.ones((n_neurons, 4), np.int64)) for k in range(fan_in)]
    return QNetwork(input=QInput(shape=(4,)), populations=(QPopulation(name="big",
                                                                       neuron=neuron),),
                    projections=tuple(projs), output="big", target=load_target("cpu"))


def test_fan_in_and_core_size_are_refused_naming_the_population():
    with pytest.raises(UnsupportedError, match="more than 3 projections") as info:
        TinyCoreBackend().check(_net(8, MAX_FAN_IN + 1))
    assert info.value.node == "big"
    with pytest.raises(UnsupportedError, match="does not fit") as info:
        TinyCoreBackend(cores=16).lower(_net(NEURONS_PER_CORE + 1, 1))
    assert info.value.node == "big" and "cannot split" in str(info.value)
