"""Bin event-camera recordings into count frames that ``snn-compile --data`` reads lazily.

An event recording is a structured array with fields ``t`` (microseconds), ``x``, ``y`` and
``p`` (polarity 0/1): the layout Tonic and most event-camera tools use. Each recording becomes
``steps`` frames of shape ``[2, H, W]`` holding the number of events per pixel and polarity in
each time bin (``bin = floor((t - t0) * steps / duration)``, events of the last instant in the
last bin). Frames are written to an HDF5 file one chunk of samples at a time, so the data set
never has to fit in memory:

    spikes  [steps, samples, 2, H, W]  uint8 counts (saturating at 255, which is reported)
    labels  [samples]                  int64

Usage (nothing is downloaded; ``--synthetic`` makes moving-edge recordings to try it with):

    python examples/events/bin_events.py --synthetic 200 --sensor 34x34 -o events.h5
    python examples/events/bin_events.py recordings/ --sensor 34x34 --steps 20 -o events.h5
    snn-compile check model.pt --target loihi2 --data events.h5

``recordings/`` holds ``<label>_<name>.npy`` files, one structured array each. Count inputs are
graded: snn-compile encodes integer counts as themselves (multi-spike input, scale 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EVENT_FIELDS = ("t", "x", "y", "p")
CHUNK = 64  # samples written per HDF5 write


def bin_events(events: np.ndarray, sensor: tuple[int, int], steps: int,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """Count frames ``[steps, 2, H, W]`` (uint8) of one recording, and how many pixel-bins
    saturated at 255."""
    missing = [f for f in EVENT_FIELDS if f not in (events.dtype.names or ())]
    if missing:
        raise ValueError(f"events lack the fields {missing} (have {events.dtype.names})")
    height, width = sensor
    x, y, p = (np.asarray(events[f], np.int64) for f in ("x", "y", "p"))
    if len(x) and (x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height
                   or not np.isin(p, (0, 1)).all()):
        raise ValueError(f"events outside the {width}x{height} sensor or polarity not 0/1")
    t = np.asarray(events["t"], np.float64)
    counts = np.zeros((steps, 2, height, width), np.int64)
    if len(t):
        t0 = t.min()
        span = duration if duration is not None else max(t.max() - t0, 1.0)
        step = np.minimum(((t - t0) * steps / span).astype(np.int64), steps - 1)
        np.add.at(counts, (step, p, y, x), 1)
    saturated = int((counts > 255).sum())
    return np.minimum(counts, 255).astype(np.uint8), saturated


def synthetic_recording(rng: np.random.Generator, label: int, sensor: tuple[int, int],
                        events: int = 600) -> np.ndarray:
    """A moving edge: class 0 sweeps left to right, class 1 top to bottom (ON events ahead of
    OFF ones), with background noise; 100 ms long."""
    height, width = sensor
    t = np.sort(rng.uniform(0, 100_000, events))
    front = t / 100_000
    along = rng.integers(0, height if label == 0 else width, events)
    pos = np.clip((front * (width if label == 0 else height)
                   + rng.normal(0, 1, events)).astype(np.int64), 0,
                  (width if label == 0 else height) - 1)
    x, y = (pos, along) if label == 0 else (along, pos)
    p = (rng.random(events) < 0.7).astype(np.int64)
    noise = rng.random(events) < 0.1
    x = np.where(noise, rng.integers(0, width, events), x)
    y = np.where(noise, rng.integers(0, height, events), y)
    out = np.zeros(events, dtype=[("t", "<f8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    out["t"], out["x"], out["y"], out["p"] = t, x, y, p
    return out


def recordings_from_folder(folder: Path):
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise ValueError(f"{folder}: no .npy recordings")
    for path in files:
        label = path.stem.split("_", 1)[0]
        if not label.isdigit():
            raise ValueError(f"{path.name}: the name must start with the label: <label>_...npy")
        yield np.load(path, allow_pickle=False), int(label)


def synthetic_recordings(count: int, sensor, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        yield synthetic_recording(rng, i % 2, sensor), i % 2


def write_frames(recordings, out: Path, sensor, steps: int, duration=None) -> dict:
    """Bin every recording and append it to ``out`` (HDF5) in chunks; returns a summary."""
    import h5py

    tmp = out.with_name(out.name + ".partial")
    samples = saturated = 0
    with h5py.File(tmp, "w") as h5:
        spikes = h5.create_dataset("spikes", shape=(steps, 0, 2, *sensor),
                                   maxshape=(steps, None, 2, *sensor), dtype="uint8",
                                   chunks=(steps, 1, 2, *sensor))
        labels = h5.create_dataset("labels", shape=(0,), maxshape=(None,), dtype="int64")
        block, block_labels = [], []

        def flush():
            nonlocal samples
            if not block:
                return
            n = len(block)
            spikes.resize(samples + n, axis=1)
            labels.resize(samples + n, axis=0)
            spikes[:, samples:samples + n] = np.stack(block, axis=1)
            labels[samples:samples + n] = block_labels
            samples += n
            block.clear()
            block_labels.clear()

        for events, label in recordings:
            frames, sat = bin_events(events, sensor, steps, duration)
            saturated += sat
            block.append(frames)
            block_labels.append(label)
            if len(block) == CHUNK:
                flush()
                print(f"\r{samples} recordings binned", end="", file=sys.stderr, flush=True)
        flush()
    tmp.replace(out)  # a complete file or none
    print(f"\r{samples} recordings binned", file=sys.stderr)
    return {"samples": samples, "shape": [steps, samples, 2, *sensor],
            "saturated_bins": saturated}


def _sensor(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(height), int(width)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", nargs="?", type=Path,
                        help="folder of <label>_<name>.npy structured event arrays")
    parser.add_argument("--synthetic", type=int, metavar="N", help="make N moving-edge "
                                                                   "recordings instead")
    parser.add_argument("--sensor", default="34x34", help="WIDTHxHEIGHT (default 34x34)")
    parser.add_argument("--steps", type=int, default=20, help="time bins per recording")
    parser.add_argument("--duration", type=float, help="microseconds per recording (default: "
                                                       "each recording's own span)")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".h5 file to write")
    args = parser.parse_args(argv)
    if (args.recordings is None) == (args.synthetic is None):
        parser.error("pass a recordings folder or --synthetic N")
    sensor = _sensor(args.sensor)
    source = (synthetic_recordings(args.synthetic, sensor) if args.synthetic is not None
              else recordings_from_folder(args.recordings))
    summary = write_frames(source, args.output, sensor, args.steps, args.duration)
    print(f"wrote {args.output}: spikes {summary['shape']} (uint8 counts), labels "
          f"[{summary['samples']}]; {summary['saturated_bins']} bins saturated at 255")
    return 0


if __name__ == "__main__":
    sys.exit(main())
