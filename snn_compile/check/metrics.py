"""Mergeable running sums of the float-vs-fixed comparison.

Everything a report needs is a sum, a count or a minimum over samples, so partial results of
chunks, shards, processes or cluster workers merge exactly (:meth:`Tally.merge`): the merged
figures are identical to a single pass over the same samples, whatever the split.

Per spiking layer, over (sample, aligned step, neuron) entries with float spikes ``f`` and
fixed-point spikes ``q`` (0/1, or counts for multi-spike layers)::

    tp = sum min(f, q)      fp = sum (q - min(f, q))      fn = sum (f - min(f, q))
    precision = tp / (tp + fp)    recall = tp / (tp + fn)    IoU = tp / (tp + fp + fn)

with the tolerant figures counting a spike as matched when the other side has one within
``tolerance`` steps at the same neuron; the entry agreement ``mean(f == q)``; the correlation of
per-(sample, neuron) spike counts; the first divergence (smallest global sample, then step, then
neuron); histograms of spike counts. Per sample: the float and fixed classes and the label;
the samples with most differing entries are kept as a bounded list.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

WORST_SAMPLES = 10
HIST_BINS = 32


@dataclass
class LayerTally:
    """Sums of one layer (see the module docstring)."""

    name: str
    offset: int
    neurons: int = 0
    entries: int = 0
    equal: int = 0
    float_spikes: int = 0
    fixed_spikes: int = 0
    float_active: int = 0        # entries with a float spike (the silent baseline misses them)
    tp: int = 0
    tp_tolerant_float: int = 0   # float spikes with a fixed spike within the tolerance
    tp_tolerant_fixed: int = 0   # fixed spikes with a float spike within the tolerance
    abs_count_diff: int = 0
    # spike-count correlation over (sample, neuron): sums of x, y, x^2, y^2, xy, n
    cx: float = 0.0
    cy: float = 0.0
    cxx: float = 0.0
    cyy: float = 0.0
    cxy: float = 0.0
    cn: int = 0
    float_hist: list = field(default_factory=lambda: [0] * HIST_BINS)
    fixed_hist: list = field(default_factory=lambda: [0] * HIST_BINS)
    joint_hist: list = field(default_factory=lambda: [[0] * HIST_BINS for _ in range(HIST_BINS)])
    first: dict | None = None     # first divergence: {sample, step, neuron, ...}
    saturated_entries: int = 0    # fixed entries where every neuron of the layer spiked

    def add(self, f: np.ndarray, q: np.ndarray, first_sample: int, tolerance: int,
            f_v: np.ndarray | None, q_v: np.ndarray | None, scale) -> None:
        """Add one chunk: ``f``/``q`` [T, B, n] (aligned), global index of sample 0."""
        f = f.astype(np.int64, copy=False)
        q = q.astype(np.int64, copy=False)
        T, B, n = f.shape
        self.neurons = n
        both = np.minimum(f, q)
        self.entries += f.size
        self.equal += int(np.count_nonzero(f == q))
        self.float_spikes += int(f.sum())
        self.float_active += int(np.count_nonzero(f))
        self.fixed_spikes += int(q.sum())
        self.tp += int(both.sum())
        self.tp_tolerant_float += int(np.minimum(f, _dilate(q, tolerance)).sum())
        self.tp_tolerant_fixed += int(np.minimum(q, _dilate(f, tolerance)).sum())
        cf, cq = f.sum(axis=0).astype(np.float64), q.sum(axis=0).astype(np.float64)
        self.abs_count_diff += int(np.abs(cf - cq).sum())
        self.cx += float(cf.sum())
        self.cy += float(cq.sum())
        self.cxx += float((cf * cf).sum())
        self.cyy += float((cq * cq).sum())
        self.cxy += float((cf * cq).sum())
        self.cn += cf.size
        bf = np.minimum(cf.astype(np.int64), HIST_BINS - 1).ravel()
        bq = np.minimum(cq.astype(np.int64), HIST_BINS - 1).ravel()
        for hist, bins in ((self.float_hist, bf), (self.fixed_hist, bq)):
            for i, c in enumerate(np.bincount(bins, minlength=HIST_BINS).tolist()):
                hist[i] += c
        joint = np.bincount(bf * HIST_BINS + bq, minlength=HIST_BINS * HIST_BINS)
        for i, c in zip(*np.nonzero(joint.reshape(HIST_BINS, HIST_BINS))):
            self.joint_hist[int(i)][int(c)] += int(joint[i * HIST_BINS + c])
        if n:
            self.saturated_entries += int(np.count_nonzero(q.min(axis=2) > 0)) * n
        diff = f != q
        if diff.any():
            # smallest (sample, step, neuron): search samples in order
            per_sample = diff.any(axis=(0, 2))
            b = int(np.argmax(per_sample))
            t, i = (int(x) for x in np.argwhere(diff[:, b])[0])
            candidate = (first_sample + b, t, i)
            if self.first is None or candidate < tuple(self.first["key"]):
                s = np.asarray(scale, np.float64)
                s_i = float(s.reshape(-1)[i] if s.size > 1 else s.reshape(-1)[0])
                self.first = {
                    "key": list(candidate), "sample": candidate[0], "step": t, "neuron": i,
                    "float_spike": int(f[t, b, i]), "fixed_spike": int(q[t, b, i]),
                    "float_v": None if f_v is None else float(f_v[t, b, i]),
                    "fixed_v": None if q_v is None else float(q_v[t, b, i]) / s_i}

    def merge(self, other: "LayerTally") -> None:
        for key in ("entries", "equal", "float_spikes", "fixed_spikes", "float_active", "tp",
                    "tp_tolerant_float", "tp_tolerant_fixed", "abs_count_diff", "cx", "cy",
                    "cxx", "cyy", "cxy", "cn", "saturated_entries"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.neurons = max(self.neurons, other.neurons)
        self.float_hist = [a + b for a, b in zip(self.float_hist, other.float_hist)]
        self.fixed_hist = [a + b for a, b in zip(self.fixed_hist, other.fixed_hist)]
        self.joint_hist = [[a + b for a, b in zip(r1, r2)]
                           for r1, r2 in zip(self.joint_hist, other.joint_hist)]
        if other.first is not None and (self.first is None
                                        or tuple(other.first["key"]) < tuple(self.first["key"])):
            self.first = other.first

    def figures(self) -> dict:
        """The layer's report entry."""
        fp, fn = self.fixed_spikes - self.tp, self.float_spikes - self.tp
        entries = max(self.entries, 1)
        density = self.float_spikes / entries
        return {
            "name": self.name, "offset": self.offset, "float_spikes": self.float_spikes,
            "fixed_spikes": self.fixed_spikes,
            "spike_agreement": self.equal / entries,
            "silent_agreement": 1.0 - self.float_active / entries,
            "precision": _ratio(self.tp, self.tp + fp),
            "recall": _ratio(self.tp, self.tp + fn),
            "iou": _ratio(self.tp, self.tp + fp + fn),
            "precision_tolerant": _ratio(self.tp_tolerant_fixed, self.fixed_spikes),
            "recall_tolerant": _ratio(self.tp_tolerant_float, self.float_spikes),
            "count_correlation": _correlation(self),
            "rate_error": self.abs_count_diff / max(self.cn, 1),
            "float_density": density, "fixed_density": self.fixed_spikes / entries,
            "saturated_fraction": self.saturated_entries / entries,
            "first_divergence": None if self.first is None else
            {k: v for k, v in self.first.items() if k != "key"},
            "float_count_histogram": list(self.float_hist),
            "fixed_count_histogram": list(self.fixed_hist),
        }

    def joint(self) -> np.ndarray:
        """Per-(sample, neuron) spike counts, float x fixed, as a 2-D histogram (capped)."""
        return np.asarray(self.joint_hist, np.int64)


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _correlation(t: LayerTally) -> float | None:
    if t.cn < 2:
        return None
    n = t.cn
    vx, vy = t.cxx - t.cx * t.cx / n, t.cyy - t.cy * t.cy / n
    if vx <= 0 or vy <= 0:
        return None
    return (t.cxy - t.cx * t.cy / n) / np.sqrt(vx * vy)


def _dilate(x: np.ndarray, k: int) -> np.ndarray:
    """max of ``x`` over steps ``t - k .. t + k`` (``x`` [T, B, n])."""
    if k <= 0:
        return x
    out = x.copy()
    for d in range(1, k + 1):
        np.maximum(out[d:], x[:-d], out=out[d:])
        np.maximum(out[:-d], x[d:], out=out[:-d])
    return out


@dataclass
class ClassTally:
    """Per-sample classes: confusion counts float class x fixed class, and per label."""

    classes: int
    agree: int = 0
    samples: int = 0
    float_correct: int = 0
    fixed_correct: int = 0
    labelled: int = 0
    confusion: list = field(default_factory=list)        # [float class][fixed class]
    per_label: list = field(default_factory=list)        # [label] -> [n, float ok, fixed ok]

    def __post_init__(self):
        if not self.confusion:
            self.confusion = [[0] * self.classes for _ in range(self.classes)]
        if not self.per_label:
            self.per_label = [[0, 0, 0] for _ in range(self.classes)]

    def add(self, pred_f: np.ndarray, pred_q: np.ndarray, labels: np.ndarray | None) -> None:
        self.samples += len(pred_f)
        self.agree += int(np.count_nonzero(pred_f == pred_q))
        for a, b in zip(pred_f.tolist(), pred_q.tolist()):
            self.confusion[a][b] += 1
        if labels is not None:
            self.labelled += len(labels)
            self.float_correct += int(np.count_nonzero(pred_f == labels))
            self.fixed_correct += int(np.count_nonzero(pred_q == labels))
            for lab, a, b in zip(labels.tolist(), pred_f.tolist(), pred_q.tolist()):
                row = self.per_label[lab]
                row[0] += 1
                row[1] += int(a == lab)
                row[2] += int(b == lab)

    def merge(self, other: "ClassTally") -> None:
        for key in ("agree", "samples", "float_correct", "fixed_correct", "labelled"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.confusion = [[a + b for a, b in zip(r1, r2)]
                          for r1, r2 in zip(self.confusion, other.confusion)]
        self.per_label = [[a + b for a, b in zip(r1, r2)]
                          for r1, r2 in zip(self.per_label, other.per_label)]


@dataclass
class Tally:
    """Everything a check accumulates; ``samples`` lists the (start, stop) chunks covered."""

    layers: dict[str, LayerTally]
    classes: ClassTally
    chunks: list = field(default_factory=list)
    worst: list = field(default_factory=list)   # heap of (differing entries, -sample)

    def add_worst(self, first_sample: int, per_sample: np.ndarray) -> None:
        for b, count in enumerate(per_sample.tolist()):
            item = (int(count), -(first_sample + b))
            if len(self.worst) < WORST_SAMPLES:
                heapq.heappush(self.worst, item)
            elif item > self.worst[0]:
                heapq.heapreplace(self.worst, item)

    def merge(self, other: "Tally") -> "Tally":
        for name, layer in other.layers.items():
            self.layers[name].merge(layer)
        self.classes.merge(other.classes)
        self.chunks = sorted(self.chunks + other.chunks)
        for item in other.worst:
            if len(self.worst) < WORST_SAMPLES:
                heapq.heappush(self.worst, tuple(item))
            elif tuple(item) > self.worst[0]:
                heapq.heapreplace(self.worst, tuple(item))
        return self

    def worst_samples(self) -> list[dict]:
        return [{"sample": -s, "differing_entries": c}
                for c, s in sorted(self.worst, key=lambda x: (-x[0], -x[1])) if c > 0]

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return {"layers": {k: vars(v) | {} for k, v in self.layers.items()},
                "classes": vars(self.classes) | {}, "chunks": [list(c) for c in self.chunks],
                "worst": [list(w) for w in self.worst]}

    @classmethod
    def from_dict(cls, data: dict) -> "Tally":
        layers = {k: LayerTally(**v) for k, v in data["layers"].items()}
        tally = cls(layers=layers, classes=ClassTally(**data["classes"]),
                    chunks=[tuple(c) for c in data["chunks"]])
        tally.worst = [tuple(w) for w in data["worst"]]
        heapq.heapify(tally.worst)
        return tally
