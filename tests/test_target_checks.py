"""Target files and --set values: structure and ranges are checked once, with one error naming
the file, key and value (they used to end in tracebacks or silently wrong datapaths)."""

import pytest

from snn_compile.errors import TargetError
from snn_compile.targets import available_targets, load_target


@pytest.mark.parametrize("key,value", [
    ("neuron.decay_bits", -3), ("neuron.decay_bits", 65), ("neuron.threshold", "uint0"),
    ("neuron.bias", "int1"), ("accumulator.dense", "int0"),
    ("accumulator.dense", "int65"), ("timing.synapse_delay", -1),
    ("timing.synapse_delay", 10 ** 7), ("neuron.v_decay_range", ["a", "b"]),
    ("neuron.u_decay_range", [5, 1]), ("weights.exp_min", 9),
    ("resources.part", "x} ; exec touch F ; set x {"), ("resources.clock_mhz", -1.0),
])
def test_out_of_range_overrides_are_refused(key, value):
    with pytest.raises(TargetError) as info:
        load_target("loihi2", {key: value})
    assert key in str(info.value) or "part" in str(info.value)


@pytest.mark.parametrize("key,value", [("neuron.threshold_mant_bits", -1),
                                       ("accumulator.dense_bits", 65),
                                       ("neuron.bias_mant_bits", 0)])
def test_out_of_range_first_format_overrides_are_refused(key, value):
    with pytest.warns(DeprecationWarning), pytest.raises(TargetError, match="format"):
        load_target("loihi2", {key: value})


@pytest.mark.parametrize("body,message", [
    ("inherits = 5", "'inherits' must be"),
    ('inherits = "fpga"\nneuron = 5', r"\[neuron\] must be a table"),
    ('inherits = "fpga"\ntarget = "x"', r"\[target\] must be a table"),
    ('inherits = "fpga"\nsources = 5', r"\[sources\] must be a table"),
    ('inherits = "fpga"\n[sources]\n"neuron.v" = 5', "a source must be"),
])
def test_malformed_target_files_are_refused(tmp_path, body, message):
    path = tmp_path / "t.toml"
    path.write_text(body + "\n")
    with pytest.raises(TargetError, match=message):
        load_target(str(path))


def test_every_shipped_target_passes():
    assert len(available_targets()) >= 3
