"""Plots next to the JSON report.

* ``raster_<sample>.png``: spikes of the named samples per layer, matched spikes once (grey),
  float-only (blue) and fixed-only (red) in distinct colours, titled with that sample's index;
* ``layers.png``: per-layer precision and recall (tolerant) with the verdict's thresholds drawn
  and failing layers marked;
* ``counts.png``: per-(sample, neuron) spike counts, float against fixed, over the whole data
  set (a 2-D histogram: marker area = how often).

Layer names are drawn as plain text (no mathtext), files are deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..escape import mpl_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "snn-compile"  # reproducible output
    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def raster(result, sample: int, path: Path) -> Path:
    """Raster of one kept sample: matched, float-only and fixed-only spikes."""
    plt = _pyplot()
    traces = result.kept[sample]
    layers = list(traces)
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 2.2 * len(layers)), squeeze=False)
    for ax, name in zip(axes[:, 0], layers):
        f = traces[name]["float"].reshape(len(traces[name]["float"]), -1) > 0
        q = traces[name]["fixed"].reshape(len(traces[name]["fixed"]), -1) > 0
        for mask, color, label in ((f & q, "0.45", "both"), (f & ~q, "tab:blue", "float only"),
                                   (q & ~f, "tab:red", "fixed only")):
            t, i = np.nonzero(mask)
            ax.scatter(t, i, s=7, marker="s" if label == "both" else "o", color=color,
                       label=f"{label} ({len(t)})", linewidths=0)
        ax.set_ylabel("neuron", parse_math=False)
        ax.set_title(f"layer {mpl_text(name)}, sample {sample}", fontsize=9, parse_math=False)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time step (float timing)")
    return _save(fig, path)


def layer_bars(report: dict, path: Path) -> Path:
    """Tolerant precision and recall per layer with thresholds; failing layers marked."""
    plt = _pyplot()
    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    failed = {f["case"] for f in report.get("failed_rules", [])}
    shown = [mpl_text(name) for name in names]
    x = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(layers)), 3.2))
    for offset, key, color in ((-0.2, "precision_tolerant", "tab:purple"),
                               (0.2, "recall_tolerant", "tab:orange")):
        values = [100 * (layer[key] or 0.0) for layer in layers]
        bars = ax.bar(x + offset, values, width=0.38, color=color,
                      label=key.replace("_tolerant", ""))
        for bar, name in zip(bars, names):
            if name in failed:
                bar.set_hatch("//")
                bar.set_edgecolor("tab:red")
    minimums = report.get("config", {}).get("thresholds", {}).get("layer", {})
    for key, style in (("precision_tolerant", ":"), ("recall_tolerant", "--")):
        if key in minimums:
            ax.axhline(100 * minimums[key], color="tab:red", linestyle=style, linewidth=1,
                       label=f"min {key.replace('_tolerant', '')}")
    ax.set_ylim(0, 105)
    ax.set_xticks(x, shown)
    for label, name in zip(ax.get_xticklabels(), names):
        label.set_parse_math(False)
        if name in failed:
            label.set_color("tab:red")
    tol = report.get("config", {}).get("tolerance", 0)
    ax.set_ylabel(f"% within +-{tol} steps")
    ax.set_title(f"verdict: {report['verdict']}", fontsize=9,
                 color="tab:red" if report["verdict"] != "pass" else "black")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def count_scatter(result, path: Path) -> Path:
    """Per-(sample, neuron) spike counts float vs fixed, every layer, as marker areas."""
    plt = _pyplot()
    layers = list(result.tally.layers.values())
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.2), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        joint = layer.joint()
        fx, qx = np.nonzero(joint)
        if len(fx):
            area = 4 + 60 * np.log1p(joint[fx, qx]) / np.log1p(joint.max())
            ax.scatter(fx, qx, s=area, color="tab:green", alpha=0.7, linewidths=0)
        top = max(int(fx.max(initial=0)), int(qx.max(initial=0)), 1)
        ax.plot([0, top], [0, top], color="0.6", linewidth=0.8)
        ax.set_xlabel("float count")
        ax.set_ylabel("fixed count")
        ax.set_title(f"layer {mpl_text(layer.name)}", fontsize=9, parse_math=False)
    return _save(fig, path)


def write_all(result, out_dir: Path) -> list[Path]:
    paths = [layer_bars(result.report, out_dir / "layers.png"),
             count_scatter(result, out_dir / "counts.png")]
    for sample in sorted(result.kept):
        paths.append(raster(result, sample, out_dir / f"raster_{sample}.png"))
    return paths
