"""examples/events/bin_events.py: event recordings -> count frames the check reads lazily."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from snn_compile.check.data import open_data

SCRIPT = Path(__file__).parent.parent / "examples" / "events" / "bin_events.py"


@pytest.fixture(scope="module")
def bin_events():
    spec = importlib.util.spec_from_file_location("bin_events", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frames_count_every_event_once(bin_events):
    rng = np.random.default_rng(0)
    events = bin_events.synthetic_recording(rng, 1, (6, 8), events=500)
    frames, saturated = bin_events.bin_events(events, (6, 8), steps=5)
    assert frames.shape == (5, 2, 6, 8) and saturated == 0
    assert frames.sum() == 500
    # by hand: the events of the first fifth of the span land in bin 0
    t = events["t"]
    first = events[t < t.min() + (t.max() - t.min()) / 5]
    hand = np.zeros((2, 6, 8), np.int64)
    np.add.at(hand, (first["p"].astype(int), first["y"].astype(int), first["x"].astype(int)), 1)
    np.testing.assert_array_equal(frames[0], hand)


def test_bad_events_are_refused(bin_events):
    events = np.zeros(3, dtype=[("t", "f8"), ("x", "i2"), ("y", "i2"), ("p", "i1")])
    events["x"] = 9
    with pytest.raises(ValueError, match="outside"):
        bin_events.bin_events(events, (6, 8), steps=2)
    with pytest.raises(ValueError, match="fields"):
        bin_events.bin_events(np.zeros(3, dtype=[("t", "f8")]), (6, 8), steps=2)


def test_written_file_is_a_lazy_data_source(bin_events, tmp_path):
    out = tmp_path / "ev.h5"
    assert bin_events.main(["--synthetic", "70", "--sensor", "8x6", "--steps", "4", "-o",
                            str(out)]) == 0
    source = open_data(out, (2, 6, 8))
    assert (source.samples, source.steps) == (70, 4)
    spikes, labels = source.read(65, 70)
    rng = np.random.default_rng(0)
    recordings = [bin_events.synthetic_recording(rng, i % 2, (6, 8)) for i in range(70)]
    want = np.stack([bin_events.bin_events(r, (6, 8), 4)[0] for r in recordings[65:]], axis=1)
    np.testing.assert_array_equal(spikes, want)
    np.testing.assert_array_equal(labels, [1, 0, 1, 0, 1])
    assert not list(tmp_path.glob("*.partial"))
