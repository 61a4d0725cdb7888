"""Plots next to the JSON report: spike rasters float vs fixed, agreement per layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .escape import mpl_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "snn-compile"  # reproducible output
    return plt


def raster(float_trace, fixed_trace, agreements, path: Path, sample: int = 0) -> Path:
    """One row per layer: float spikes (dots) over fixed-point spikes (crosses), sample ``sample``."""
    plt = _pyplot()
    rows = len(agreements)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.2 * rows), squeeze=False)
    for ax, agr in zip(axes[:, 0], agreements):
        f = np.asarray(float_trace.layers[agr.name]["spikes"])[:, sample].reshape(
            len(float_trace.layers[agr.name]["spikes"]), -1)
        q = np.asarray(fixed_trace.layers[agr.name]["spikes"])[:, sample]
        q = q.reshape(q.shape[0], -1)[agr.offset:agr.offset + f.shape[0]]
        tf, nf = np.nonzero(f)
        tq, nq = np.nonzero(q)
        ax.scatter(tf, nf, s=6, marker="o", label="float", color="tab:blue")
        ax.scatter(tq, nq, s=10, marker="x", label="fixed", color="tab:red", linewidths=0.7)
        label = mpl_text(agr.name)  # names are text, never mathtext: parse_math=False
        ax.set_ylabel(f"{label}\nneuron", parse_math=False)
        ax.set_title(f"{label}: {100 * agr.spike_agreement:.2f}% agreement", fontsize=9,
                     parse_math=False)
    axes[-1, 0].set_xlabel("time step (float timing)")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def agreement_bars(agreements, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(agreements)), 3))
    names = [mpl_text(a.name) for a in agreements]
    values = [100 * a.spike_agreement for a in agreements]
    ax.bar(range(len(values)), values, color="tab:green")
    ax.set_xticks(range(len(values)), names, parse_math=False)
    ax.set_ylim(min(values + [90]) - 1, 100.5)
    ax.set_ylabel("spike agreement (%)")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
