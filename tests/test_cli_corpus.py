"""The whole command line over a corpus of broken inputs: every case exits 2 with exactly one
line on stderr (``snn-compile: error: ...``), never a traceback and never an internal error;
Ctrl-C and SIGTERM are one line too (130, 143)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal

import h5py
import nir
import numpy as np
import pytest
import snntorch as snn
import torch

import snn_compile
from snn_compile.cli import main
from snn_compile.importers.model_file import graph_to_dict

from test_hostile_files import CASES as MODEL_CASES


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(5, 3), snn.Leaky(beta=0.8, init_hidden=True))
    model = root / "m.pt"
    snn_compile.export(net, model, input_shape=(6,))
    torch.save(net.state_dict(), root / "sd.pt")
    rng = np.random.default_rng(0)
    spikes = (rng.random((10, 4, 6)) < 0.3).astype(np.float32)
    np.savez(root / "d.npz", spikes=spikes, labels=rng.integers(0, 3, 4))
    out = {"model": model, "sd": root / "sd.pt", "data": root / "d.npz", "root": root}

    base = graph_to_dict(snn_compile.load_model(model))
    for case, change in MODEL_CASES.items():
        data = {**base, "nodes": [dict(n) for n in base["nodes"]], "edges": list(base["edges"])}
        change(data)
        out[f"model_{case}"] = root / f"{case}.pt"
        torch.save(data, out[f"model_{case}"])
    (root / "garbage.pt").write_bytes(b"\x80\x04garbage")
    out["model_garbage"] = root / "garbage.pt"
    (root / "payload.pt").write_bytes(pickle.dumps({"w": np.float64}, protocol=4))
    out["model_pickle"] = root / "payload.pt"
    named = {**base, "nodes": [dict(n) for n in base["nodes"]]}
    old = named["nodes"][1]["name"]
    named["nodes"][1]["name"] = "fc\n\x1b[31m"
    named["edges"] = [[("fc\n\x1b[31m" if e == old else e) for e in edge]
                      for edge in base["edges"]]
    out["model_newline_name"] = root / "named.pt"
    torch.save(named, out["model_newline_name"])

    lif = dict(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2),
               v_threshold=np.ones(2))
    good = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2)),
                               "lif": nir.LIF(**lif), "output": nir.Output(np.array([2]))},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    secret = root / "secret.bin"
    secret.write_bytes(np.zeros(4).tobytes())
    nir_cases = {
        "external": lambda f, k: f.create_dataset(k, shape=(2, 2), dtype="<f8",
                                                  external=[(str(secret), 0, 32)]),
        "soft": lambda f, k: f.__setitem__(k, h5py.SoftLink("/node/nodes/lif/tau")),
        "strings": lambda f, k: f.create_dataset(k, data=np.array([[b"a", b"b"]] * 2)),
        "giant": lambda f, k: f.create_dataset(k, shape=(50000, 10000), dtype="<f4"),
    }
    for case, make in nir_cases.items():
        path = root / f"{case}.nir"
        nir.write(path, good)
        with h5py.File(path, "r+") as f:
            del f["node/nodes/fc/weight"]
            make(f, "node/nodes/fc/weight")
        out[f"nir_{case}"] = path
    (root / "trunc.nir").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    out["nir_truncated"] = root / "trunc.nir"

    for case, body in {"inherits5": "inherits = 5", "neuron5": 'inherits = "fpga"\nneuron = 5',
                       "targetx": 'inherits = "fpga"\ntarget = "x"', "bad": "[[[",
                       "sources5": 'inherits = "fpga"\nsources = 5'}.items():
        out[f"toml_{case}"] = root / f"{case}.toml"
        out[f"toml_{case}"].write_text(body + "\n")

    npz = {"complex": dict(spikes=spikes + 1j), "huge": dict(spikes=spikes * 1e30),
           "nan": dict(spikes=spikes * np.nan), "shape": dict(spikes=spikes[..., :5]),
           "objects": dict(spikes=np.array([None] * 3, dtype=object)),
           "labels": dict(spikes=spikes, labels=np.arange(4) + 7)}
    for case, arrays in npz.items():
        out[f"data_{case}"] = root / f"{case}.npz"
        np.savez(out[f"data_{case}"], **arrays)
    (root / "text.npz").write_text("not a zip")
    out["data_text"] = root / "text.npz"

    user = root / "user"
    (user / "src").mkdir(parents=True)
    (user / "report.json").write_text("{}")
    (user / "src" / "train.py").write_text("precious")
    out["user"] = user
    (root / "a_file").write_text("x")
    out["file"] = root / "a_file"
    (root / "dangling").symlink_to(root / "nowhere")
    out["dangling"] = root / "dangling"
    return out


def _cases():
    compile_ = ["{model}", "--target", "cpu", "--no-plots"]
    cases = [[f"{{model_{case}}}", "--target", "cpu"] for case in MODEL_CASES]
    cases += [["inspect", "{model_garbage}"], ["inspect", "{model_pickle}"],
              ["inspect", "{model_newline_name}"]]
    cases += [["inspect", f"{{nir_{case}}}", "--nir-convention", "snntorch"]
              for case in ("external", "soft", "strings", "giant", "truncated")]
    cases += [["{model}", "--target", f"{{toml_{case}}}"]
              for case in ("inherits5", "neuron5", "targetx", "sources5", "bad")]
    cases += [compile_ + ["--set", s] for s in (
        "neuron.decay_bits=-3", "neuron.decay_bits=65", "neuron.threshold=uint0",
        "neuron.bias=int1", "accumulator.dense=int0", "accumulator.dense=int65",
        "timing.synapse_delay=-1", 'neuron.v_decay_range=["a","b"]', "nokey", "x.y=1",
        "timing.synapse_delay=1000000")]
    cases += [compile_ + ["--data", f"{{data_{case}}}"]
              for case in ("complex", "huge", "nan", "shape", "objects", "labels", "text")]
    cases += [compile_ + ["-o", "{user}"], compile_ + ["-o", "{file}"],
              compile_ + ["-o", "{dangling}"], compile_ + ["-o", ".."],
              compile_ + ["-o", "{file}/sub"], compile_ + ["-o", "{root}/" + "n" * 300],
              ["check", "{model}", "--target", "cpu", "--data", "{data}", "--report", "{file}"],
              ["check", "{model}", "--target", "cpu", "--data", "{data}", "--report", "{user}"],
              ["check", "{model}", "--target", "cpu", "--data", "{data}", "--junit",
               "{root}/missing/dir/r.xml", "--report", "{root}/rep"],
              ["check", "{model}", "--target", "cpu", "--data", "{data}",
               "--max-accuracy-drop", "nan", "--report", "{root}/rep2"]]
    cases += [["{sd}", "--target", "cpu", "--arch", "torch.nn:Linear"],
              ["{sd}", "--target", "cpu", "--arch", "no_such_module:f"],
              ["{model}", "--target", "cpu", "--input-shape", "abc"],
              ["{model}", "--bogus"], ["check", "{model}"], ["{model}", "--target"],
              ["run", "{model}", "--input", "{data}", "--output", "{root}/nodir/x.npz"]]
    return cases


@pytest.mark.parametrize("argv", _cases(), ids=lambda argv: " ".join(argv)[:60])
def test_broken_input_is_one_line_exit_2(files, argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code = main([a.format(**files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("snn-compile"), err
    assert "Traceback" not in err and "internal error" not in err, err
    assert all(ch == "\n" or ch.isprintable() for ch in err), err
    assert (files["user"] / "src" / "train.py").read_text() == "precious"


@pytest.mark.parametrize("failure,status,text", [
    (OSError(errno.ENOSPC, "No space left on device", "out/report.json"), 2, "disk space"),
    (OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300), 2, "shorter"),
    (PermissionError(errno.EACCES, "Permission denied", "out"), 2, "permissions"),
    (MemoryError(), 2, "out of memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                  "allocate memory: you tried to allocate 4000000 bytes."), 2, "out of memory"),
    (ImportError("libtorch_cpu.so: failed to map segment from shared object"), 2,
     "out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
    ("sigterm", 143, "terminated"),
])
def test_system_failures_are_one_line(files, capsys, monkeypatch, tmp_path, failure, status,
                                      text):
    import snn_compile.pipeline as pipeline

    def fail(*args, **kwargs):
        if failure == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        raise failure

    monkeypatch.setattr(pipeline, "_write_common", fail)
    out = tmp_path / "o"
    code = main([str(files["model"]), "--target", "cpu", "-o", str(out), "--no-plots"])
    err = capsys.readouterr().err
    assert code == status and err.count("\n") == 1 and text in err, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_debug_shows_the_traceback(files):
    with pytest.raises(snn_compile.errors.SnnCompileError):
        main(["--debug", "inspect", str(files["model_garbage"])])


def test_hostile_names_compile_and_the_bundle_runs_no_code(files, tmp_path, capsys):
    pytest.importorskip("lava")
    import subprocess
    import sys

    sentinel = tmp_path / "PWNED"
    name = f"x\"\"\" + __import__('os').system('touch {sentinel}') + \"\"\""
    data = graph_to_dict(snn_compile.load_model(files["model"]))
    old = data["nodes"][2]["name"]  # the first neuron: its name is the layer's
    data["nodes"][2]["name"] = name
    data["edges"] = [[name if e == old else e for e in edge] for edge in data["edges"]]
    model = tmp_path / f"{name[:20]}.pt"
    torch.save(data, model)
    out = tmp_path / "out"
    assert main([str(model), "--target", "loihi", "-o", str(out), "--no-plots"]) == 0
    manifest = json.loads((out / "lava" / "manifest.json").read_text())
    assert name in {pop["name"] for pop in manifest["populations"]}
    done = subprocess.run([sys.executable, str(out / "lava" / "run_lava.py"), "--help"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not sentinel.exists()


def test_an_address_space_limit_too_low_for_torch_is_one_line(files, tmp_path):
    """Under `ulimit -v` / `prlimit --as` of a few hundred MB torch's start-up aborts the
    process from C++; the command refuses first, in one line with exit 2
    (benchmarks/oom_limits.py sweeps real limits)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (400 << 20, resource.RLIM_INFINITY))

    code = "from snn_compile.cli import main; raise SystemExit(main(%r))" % (
        ["inspect", str(files["model"])],)
    run = subprocess.run([sys.executable, "-c", code], preexec_fn=limit, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "address-space limit" in run.stderr, run.stderr
