"""Target files load, validate, and carry a source for every value."""

import pytest

from snn_compile.datatypes import IntType
from snn_compile.errors import TargetError
from snn_compile.targets import SECTIONS, available_targets, load_target, target_files


@pytest.mark.parametrize("stem", sorted(target_files()))
def test_every_shipped_target_loads_with_sources(stem):
    target = load_target(stem)
    for section in SECTIONS:
        for key, value in vars(getattr(target, section)).items():
            if value is not None:
                assert f"{section}.{key}" in target.sources, f"{stem}: {section}.{key} unsourced"


def test_aliases_and_required_targets():
    names = available_targets()
    for required in ("loihi2", "cpu", "xc7z020"):
        assert required in names
    assert load_target("loihi").name == "loihi2"
    assert load_target("pynq-z2").name == "xc7z020"


def test_fpga_part_inherits_the_family_datapath_and_can_be_overridden():
    part = load_target("xc7z020")
    assert part.neuron == load_target("fpga").neuron
    assert part.resources.dsp == 220
    narrow = load_target("xc7z020", {"neuron.v": "int16"})
    assert narrow.neuron.v.bits == 16 and narrow.sources["neuron.v"] == "command-line override"


def test_first_format_keys_are_translated_with_a_warning():
    with pytest.warns(DeprecationWarning, match="neuron.v_bits .* old form of neuron.v"):
        narrow = load_target("xc7z020", {"neuron.v_bits": 16})
    assert narrow.neuron.v == IntType(16)
    with pytest.warns(DeprecationWarning, match="weights.type"):
        # weights.bits counted magnitude bits: 8 means int9
        assert load_target("cpu", {"weights.bits": 8}).weights.type == IntType(9)


def test_unknown_key_is_rejected(tmp_path):
    text = (target_files()["cpu"]).read_text().replace("[timing]\n", "[timing]\nwarp = 9\n")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TargetError, match="bad.toml: unknown key.*timing.warp"):
        load_target(path)


def test_unsourced_value_is_rejected(tmp_path):
    text = target_files()["cpu"].read_text()
    text = text.replace('"timing.synapse_delay" = "design choice: synapses deliver in the same '
                        'step, like snnTorch"\n', "")
    path = tmp_path / "nosource.toml"
    path.write_text(text)
    with pytest.raises(TargetError, match="no source.*timing.synapse_delay"):
        load_target(path)


def test_unknown_target_lists_choices():
    with pytest.raises(TargetError, match="unknown target.*choose one of"):
        load_target("loihi9")
    with pytest.raises(TargetError, match="unknown target setting"):
        load_target("cpu", {"warp": 1})
