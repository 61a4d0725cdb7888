"""The NIR paper's Braille RNNs run by snnTorch itself: tests/data/nir-paper/braille_*.npz.

Run in the snnTorch side venv (see README), from this folder::

    /tmp/nirenv/snntorch/bin/python gen_nir_paper_snntorch.py \
        --nir-repo /path/to/neuromorphs/NIR --snntorch-paper /path/to/snntorch@40ad136

``--nir-repo`` is a checkout of neuromorphs/NIR (7232ada): the trained state_dicts and
hyper-parameters in ``paper/03_rnn/data/``. ``--snntorch-paper`` is the snnTorch source at commit
40ad1360c644 (version string 0.7.0), the version the paper's ``snntorch_apply_{zero,subtract}
.ipynb`` notebooks name ("This notebook uses an older version of snnTorch"); only its
``snntorch/`` package folder is needed (``git archive 40ad1360c644 snntorch | tar -x``).

Per graph the script records, on the same synthetic input:

``output``, ``hidden/lif1.lif``, ``state/<node>/{syn,mem}`` (the reference recording)
    snnTorch 0.7.0 (40ad136) running the trained network exactly as the paper's notebooks build
    it from its state_dict: ``fc1 -> RSynaptic(alpha_r, beta_r, linear_features=H,
    reset_mechanism=<file name>, reset_delay=False) -> fc2 -> Synaptic(alpha_out, beta_out,
    reset_mechanism, reset_delay=False)``, ``init_hidden=False``, biases as in the notebook
    (zero: fc1, recurrent and fc2 biases; subtract: none). This is the network as trained and
    as the paper reports it (95.0 % / 92.1 %).
``alt/nir-import-0.7.0/...``
    snnTorch 0.7.0's own NIR import (``import_from_nir``, nirtorch's GraphExecutor with explicit
    state, as ``paper/03_rnn/extras/snntorch_test_import.py`` runs it). The import always builds
    ``reset_mechanism="zero"``; for the subtract graph the reset named by the file is set
    afterwards (``module.reset_mechanism = "subtract"``).
``alt/state-dict-1.0.0/...``
    snnTorch 1.0.0 with the same notebook code (initial spk/syn/mem passed as zeros of the layer
    shape: 1.0.0's ``init_rsynaptic()`` returns empty tensors and the first step then fails
    with a shape error when ``reset_delay=False``). 1.0.0's ``RSynaptic.forward`` computes the
    no-delay reset into a local variable that is never used, so the hidden layer actually runs
    with the reset applied one step late (see meta ``notes``).
``alt/nir-import-1.0.0``
    not recorded: snnTorch 1.0.0's ``import_from_nir`` fails on these graphs inside
    ``nirtorch.nir_to_torch`` (the error is stored in meta).

Inputs are synthetic (the paper's ``ds_test.pt`` is not available): 12 taxels, 256 steps of 5 ms,
one sample per letter (Space, A, E, I, O, U, Y) from a sliding-fingertip model encoded with the
paper's sigma-delta scheme (theta = 1, ON and OFF events merged by OR), plus three dense
"stress" samples (label -1) that drive the hidden layer harder (resets with leftover membrane
above threshold).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from common import PAPER_DIR, save_npz

GRAPHS = ("braille_noDelay_bias_zero", "braille_noDelay_noBias_subtract")
STATE_DICTS = {"braille_noDelay_bias_zero": ("model_noDelay_bias_ref_zero.pt",
                                             "parameters_noDelay_bias_ref_zero.json"),
               "braille_noDelay_noBias_subtract": ("model_noDelay_noBias_ref_subtract.pt",
                                                   "parameters_noDelay_noBias_ref_subtract.json")}
LETTERS = ["Space", "A", "E", "I", "O", "U", "Y"]
DOTS = {"Space": (), "A": (1,), "E": (1, 5), "I": (2, 4), "O": (1, 3, 5), "U": (1, 3, 6),
        "Y": (1, 3, 4, 5, 6)}
T_STEPS, DT_BIN = 256, 5e-3
SEED = 2024


# --------------------------------------------------------------------------- synthetic input


def _dot_xy(dot: int):
    col, row = (0, dot - 1) if dot <= 3 else (1, dot - 4)
    return 2.5 * col, 2.5 * row           # mm; Braille dot pitch 2.5 mm


def braille_sample(letter, rng, noise=0.15, amplitude=6.0, theta=1.0):
    """One fingertip slide over ``letter``: ``[T, 12]`` binary spikes.

    12 taxels on a 4x3 grid (2.5 mm pitch) slide across the letter at 14-20 mm/s; each dot presses
    the taxels near it (Gaussian, sigma 1 mm); contact ramps up and down over 50 ms at the ends.
    The pressure is sigma-delta encoded with threshold ``theta`` (each crossing of a multiple of
    theta is an ON or OFF event) and ON/OFF are merged by OR, as the paper's data preparation did.
    """
    tx, ty = np.meshgrid([-2.5, 0.0, 2.5], [-1.25, 1.25, 3.75, 6.25])
    tx, ty = tx.ravel(), ty.ravel()
    gain = rng.uniform(0.8, 1.2, 12)
    speed, x0, y0 = rng.uniform(14, 20), rng.uniform(-13, -10), rng.uniform(-0.5, 0.5)
    t = np.arange(T_STEPS) * DT_BIN
    finger = x0 + speed * t
    contact = np.clip(t / 0.05, 0, 1) * np.clip((t[-1] - t) / 0.05, 0, 1)
    pressure = np.full((T_STEPS, 12), 1.5)
    for dot in DOTS[letter]:
        dx, dy = _dot_xy(dot)
        dist2 = (finger[:, None] + tx[None] - dx) ** 2 + (ty[None] + y0 - dy) ** 2
        pressure += amplitude * np.exp(-dist2 / 2.0)
    pressure = pressure * contact[:, None] * gain[None] + rng.normal(0, noise, (T_STEPS, 12))
    ref, out = np.zeros(12), np.zeros((T_STEPS, 12), np.float32)
    for k in range(T_STEPS):
        diff = pressure[k] - ref
        crossings = np.floor(np.abs(diff) / theta)
        out[k, crossings > 0] = 1.0
        ref = ref + np.sign(diff) * crossings * theta
    return out


def braille_inputs():
    """Time-major ``[T, 10, 12]`` input and labels (7 letters, then 3 stress samples = -1)."""
    rng = np.random.default_rng(SEED)
    xs = [braille_sample(letter, rng) for letter in LETTERS]
    xs += [braille_sample(letter, rng, noise=0.7, amplitude=9.0) for letter in ("O", "Y", "U")]
    labels = np.array(list(range(len(LETTERS))) + [-1, -1, -1])
    return np.stack(xs, axis=1), labels


# --------------------------------------------------------------------------- workers


def _model(snn, torch, params, reset, bias):
    """The paper notebooks' ``model_build`` (modules only; the time loop is in ``_run_modules``)."""
    from snntorch import surrogate

    hidden = int(params["nb_hidden"])
    grad = surrogate.fast_sigmoid(slope=int(params["slope"]))
    fc1 = torch.nn.Linear(12, hidden, bias=bias)
    lif1 = snn.RSynaptic(alpha=params["alpha_r"], beta=params["beta_r"], linear_features=hidden,
                         spike_grad=grad, reset_mechanism=reset, reset_delay=False)
    if not bias:
        lif1.recurrent.bias = None
    fc2 = torch.nn.Linear(hidden, 7, bias=bias)
    lif2 = snn.Synaptic(alpha=params["alpha_out"], beta=params["beta_out"], spike_grad=grad,
                        reset_mechanism=reset, reset_delay=False)
    return torch.nn.ModuleDict(dict(fc1=fc1, lif1=lif1, fc2=fc2, lif2=lif2))


def _run_modules(torch, net, x, zero_init):
    fc1, lif1, fc2, lif2 = net["fc1"], net["lif1"], net["fc2"], net["lif2"]
    rec = {k: [] for k in ("spk1", "syn1", "mem1", "spk2", "syn2", "mem2")}
    with torch.no_grad():
        spk1, syn1, mem1 = lif1.init_rsynaptic()
        syn2, mem2 = lif2.init_synaptic()
        if zero_init:
            spk1, syn1, mem1 = (torch.zeros(x.shape[1], lif1.linear_features) for _ in range(3))
        for t in range(x.shape[0]):
            spk1, syn1, mem1 = lif1(fc1(x[t]), spk1, syn1, mem1)
            spk2, syn2, mem2 = lif2(fc2(spk1), syn2, mem2)
            for key, value in zip(rec, (spk1, syn1, mem1, spk2, syn2, mem2)):
                rec[key].append(value.detach().clone())
    return {k: torch.stack(v).numpy() for k, v in rec.items()}


def _run_nir_import(torch, snn, graph_path, reset, x):
    import nir
    from nirtorch.graph_executor import GraphExecutorState
    from snntorch.import_nir import import_from_nir

    net = import_from_nir(nir.read(str(graph_path)))
    lif1, lif2 = net._modules["lif1"], net._modules["lif2"]
    kinds = {"lif1": type(lif1).__name__, "lif2": type(lif2).__name__,
             "imported_reset": [lif1.reset_mechanism, lif2.reset_mechanism]}
    lif1.reset_mechanism = reset
    lif2.reset_mechanism = reset
    state = GraphExecutorState(state={"lif1": lif1.init_rsynaptic(),
                                      "lif2": lif2.init_synaptic()})
    rec = {"spk1": [], "spk2": []}
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = net(x[t], state)
            rec["spk2"].append(out.clone())
            rec["spk1"].append(state.cache["lif1"].clone())
    return {k: torch.stack(v).numpy() for k, v in rec.items()}, kinds


def worker(variant, name, nir_repo, io_dir):
    import snntorch as snn
    import torch

    data = np.load(io_dir / "input.npz")
    x = torch.from_numpy(data["input"])
    sd_file, param_file = STATE_DICTS[name]
    base = pathlib.Path(nir_repo) / "paper" / "03_rnn" / "data"
    params = json.loads((base / param_file).read_text())
    reset = "zero" if name.endswith("_zero") else "subtract"
    info = {"snntorch_version": snn.__version__, "torch_version": torch.__version__}
    try:
        if variant == "nir-import":
            rec, kinds = _run_nir_import(torch, snn, PAPER_DIR / f"{name}.nir", reset, x)
            info.update(kinds)
        else:
            net = _model(snn, torch, params, reset, bias=reset == "zero")
            net.load_state_dict(torch.load(base / sd_file, map_location="cpu"), strict=True)
            info["alpha_beta"] = {f"{m}.{k}": float(getattr(net[m], k))
                                  for m in ("lif1", "lif2") for k in ("alpha", "beta")}
            rec = _run_modules(torch, net, x, zero_init=snn.__version__ >= "1")
    except Exception as err:  # recorded, not hidden: the framework cannot run this variant
        info["error"] = f"{type(err).__name__}: {err}"
        rec = {}
    np.savez(io_dir / f"{variant}-{snn.__version__}.npz", **rec)
    (io_dir / f"{variant}-{snn.__version__}.json").write_text(json.dumps(info))


# --------------------------------------------------------------------------- driver


def _spawn(variant, name, nir_repo, io_dir, snntorch_src=None):
    env = dict(os.environ)
    if snntorch_src:
        env["PYTHONPATH"] = str(snntorch_src) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, __file__, "--worker", variant, name, "--nir-repo",
                    str(nir_repo), "--io", str(io_dir)], check=True, env=env,
                   cwd=pathlib.Path(__file__).parent)


def _load(io_dir, tag):
    arrays = dict(np.load(io_dir / f"{tag}.npz"))
    return arrays, json.loads((io_dir / f"{tag}.json").read_text())


def _stats(rec, x):
    spk1, spk2 = rec["spk1"], rec["spk2"]
    stats = {"input_rate": float(x.mean()), "hidden_rate": float(spk1.mean()),
             "output_rate": float(spk2.mean()),
             "output_counts": spk2.sum(0).astype(int).tolist()}
    if "mem1" in rec:   # leftover above threshold after a subtract reset: the r=1 path
        stats["hidden_mem_above_thr_after_step"] = int((rec["mem1"] > 1.0).sum())
        stats["output_mem_above_thr_after_step"] = int((rec["mem2"] > 1.0).sum())
    return stats


def main(args):
    x, labels = braille_inputs()
    for name in GRAPHS:
        with tempfile.TemporaryDirectory() as tmp:
            io_dir = pathlib.Path(tmp)
            np.savez(io_dir / "input.npz", input=x)
            _spawn("state-dict", name, args.nir_repo, io_dir, args.snntorch_paper)
            _spawn("nir-import", name, args.nir_repo, io_dir, args.snntorch_paper)
            _spawn("state-dict", name, args.nir_repo, io_dir)
            _spawn("nir-import", name, args.nir_repo, io_dir)
            ref, ref_info = _load(io_dir, "state-dict-0.7.0")
            imp, imp_info = _load(io_dir, "nir-import-0.7.0")
            new, new_info = _load(io_dir, "state-dict-1.0.0")
            _, new_imp_info = _load(io_dir, "nir-import-1.0.0")
        if "error" in ref_info:
            raise SystemExit(f"{name}: the reference run failed: {ref_info['error']}")
        hidden = {"lif1.lif": ref["spk1"]}
        state = {"lif1.lif/syn": ref["syn1"], "lif1.lif/mem": ref["mem1"],
                 "lif2/syn": ref["syn2"], "lif2/mem": ref["mem2"]}
        alt = {}
        for tag, rec in (("nir-import-0.7.0", imp), ("state-dict-1.0.0", new)):
            if rec:
                alt[f"{tag}/output"] = rec["spk2"]
                alt[f"{tag}/hidden/lif1.lif"] = rec["spk1"]
        differ = {tag: {"lif1.lif": float(np.mean(rec["spk1"] != ref["spk1"])),
                        "lif2": float(np.mean(rec["spk2"] != ref["spk2"]))}
                  for tag, rec in (("nir-import-0.7.0", imp), ("state-dict-1.0.0", new)) if rec}
        reset = "zero" if name.endswith("_zero") else "subtract"
        meta = dict(
            framework="snntorch", version=ref_info["snntorch_version"],
            source="snnTorch commit 40ad1360c644 (the paper notebooks' version)",
            torch=ref_info["torch_version"], dt_nir=1e-4, time_bin_s=DT_BIN,
            settings=dict(reset_mechanism=reset, reset_delay=False, init_hidden=False,
                          spike="mem > threshold (threshold 1)",
                          biases=reset == "zero", **ref_info.get("alpha_beta", {})),
            equations=("syn[t] = alpha*syn[t-1] + (W1 x[t] + b1) + (Wrec s1[t-1] + brec); "
                       "m = beta*mem[t-1] + syn[t] - r*thr (subtract) or (1-r)*m (zero), "
                       "r = H(mem[t-1] - thr); s[t] = H(m - thr); "
                       "mem[t] = m - (s[t] - r)*thr (subtract) or m - (s[t] - r)*m (zero); "
                       "output layer: same without recurrence, fed s1[t] of the same step"),
            labels_meaning=LETTERS + ["-1: stress sample"],
            ir_reproduction=dict(
                load_nir=f"convention with dt=1e-4, reset={reset!r}, reset_timing='same_step', "
                         "spike_test='>' (zero: identical to convention 'euler' at dt=1e-4)",
                nir_mapping="alpha = 1 - dt/tau_syn, beta = 1 - dt/tau_mem, "
                            "w_in*dt/tau_syn = r*dt/tau_mem = 1; Affine biases into the current",
                exact="spikes, syn and mem bit-identical (float32)"),
            stats=_stats(ref, x),
            alternatives={"nir-import-0.7.0": imp_info, "state-dict-1.0.0": new_info,
                          "nir-import-1.0.0": new_imp_info},
            alt_differs_from_reference=differ,
            notes=("Reference = the trained network as the paper ran it. snnTorch 1.0.0 "
                   "RSynaptic ignores reset_delay=False (the reset is computed into a local "
                   "variable and dropped), so 1.0.0 differs in the hidden layer and, through "
                   "it, the output."))
        save_npz(PAPER_DIR / f"{name}.npz", x, ref["spk2"], hidden, labels=labels, state=state,
                 alt=alt, **meta)
        print(name, json.dumps(meta["stats"]), json.dumps(differ))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nir-repo", default="/tmp/nirenv/src/NIR")
    parser.add_argument("--snntorch-paper", default="/tmp/nirenv/src/snntorch_40ad136")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "GRAPH"))
    parser.add_argument("--io")
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.nir_repo, pathlib.Path(args.io))
    else:
        main(args)
