"""The command line: bare main command and subcommands, exit codes, one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch

import snn_compile
from snn_compile.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 30), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(30, 5), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"))
    path = root / "m.pt"
    snn_compile.export(net, path, input_shape=(20,))
    rng = np.random.default_rng(0)
    data = root / "d.npz"
    np.savez(data, spikes=(rng.random((25, 24, 20)) < 0.3).astype(np.float32),
             labels=rng.integers(0, 5, 24))
    return path, data


def test_inspect(model, capsys):
    assert main(["inspect", str(model[0])]) == 0
    out = capsys.readouterr().out
    assert "LIF" in out and "neurons: 35" in out and "beta=0.9" in out


@pytest.mark.parametrize("backend,target", [("float", None), ("emulator", "loihi2"),
                                            ("emulator", "cpu")])
def test_run_writes_spikes_and_every_layer(model, tmp_path, backend, target):
    out = tmp_path / "out.npz"
    args = ["run", str(model[0]), "--backend", backend, "--input", str(model[1]),
            "--output", str(out)] + (["--target", target] if target else [])
    assert main(args) == 0
    with np.load(out) as data:
        assert data["spikes"].shape == (25, 24, 5)
        assert {"layer/1/spikes", "layer/1/v", "layer/3/spikes"} <= set(data.keys())


def test_check_thresholds_set_the_exit_code(model, tmp_path):
    args = ["check", str(model[0]), "--target", "cpu", "--data", str(model[1]),
            "--report", str(tmp_path / "r"), "--junit", str(tmp_path / "j.xml"), "--no-plots"]
    assert main(args + ["--min-agreement", "0.5"]) == 0
    assert main(args + ["--min-agreement", "1.0"]) == 1
    report = json.loads((tmp_path / "r" / "check.json").read_text())
    assert report["verdict"] == "fail" and "failures" in report
    assert "<failure" in (tmp_path / "j.xml").read_text()


def test_main_command_is_atomic_and_reproducible(model, tmp_path):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    base = [str(model[0]), "--target", "cpu", "--data", str(model[1])]
    assert main(base + ["-o", str(out1)]) == 0
    assert main(base + ["-o", str(out2)]) == 0
    files = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    assert Path("timing.json") in files and Path("report.json") in files
    for rel in files:
        if rel != Path("timing.json"):  # the one file of what varies (seconds, samples/s)
            assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    assert not list(tmp_path.glob(".*partial*"))


def test_failed_compile_leaves_no_output(model, tmp_path, capsys):
    out = tmp_path / "never"
    code = main([str(model[0]), "--target", "loihi2", "--set", "features.custom_reset_modes=[]",
                 "--set", "features.reset_timings=[]", "-o", str(out)])
    assert code == 2 and not out.exists() and not list(tmp_path.glob(".*partial*"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "node '1'" in err


@pytest.mark.parametrize("argv,message", [
    (["missing.pt", "--target", "loihi"], "missing.pt: model file not found"),
    (["{model}", "--target", "loihi9"], "unknown target"),
    (["run", "{model}", "--backend", "emulator", "--input", "{data}", "--output", "x.npz"],
     "pass --target"),
    (["run", "{model}", "--backend", "warp", "--input", "{data}", "--output", "x.npz"],
     "unknown backend"),
])
def test_errors_are_one_line_with_status_2(model, capsys, argv, message):
    argv = [a.format(model=model[0], data=model[1]) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_testing_api_for_users(model):
    from snn_compile.testing import assert_spikes_match

    result = assert_spikes_match(model[0], model[1], target="cpu", min_agreement=0.5)
    assert result.passed
    with pytest.raises(AssertionError, match="spike agreement"):
        assert_spikes_match(model[0], model[1], target="cpu", min_agreement=1.0)


def test_main_command_with_onnx_backend_exports_fixed_and_float_models(model, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([str(model[0]), "--target", "cpu", "--backend", "onnx", "-o", str(out),
                 "--no-plots"]) == 0
    names = {p.name for p in (out / "onnx").iterdir()}
    assert {"model_step.onnx", "model_window.onnx", "model_float_step.onnx"} <= names
    assert "onnx vs emulator" in capsys.readouterr().out
    report = (out / "report.json").read_text()
    assert str(tmp_path) not in report


def test_inspect_shows_a_qat_grid(capsys):
    from pathlib import Path

    qat_model = Path(__file__).parent.parent / "examples" / "qat" / "digits_qat_loihi2.pt"
    assert main(["inspect", str(qat_model)]) == 0
    assert "on the loihi2 grid (QAT)" in capsys.readouterr().out


@pytest.fixture
def bad_data(model, tmp_path):
    with np.load(model[1]) as data:
        spikes, labels = data["spikes"], data["labels"]
    files = {
        "nan": dict(spikes=np.where(spikes > 0, np.nan, 0).astype(np.float32), labels=labels),
        "batch_major": dict(spikes=spikes.transpose(1, 0, 2), labels=labels),
        "short_labels": dict(spikes=spikes, labels=labels[:3]),
        "float_labels": dict(spikes=spikes, labels=labels + 0.5),
        "labels_out_of_range": dict(spikes=spikes, labels=labels + 20),
        "no_labels": dict(spikes=spikes),
    }
    paths = {}
    for name, arrays in files.items():
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], **arrays)
    (tmp_path / "empty.npz").write_bytes(b"")
    paths["empty"] = tmp_path / "empty.npz"
    return paths


@pytest.mark.parametrize("case,extra,message", [
    ("nan", [], "NaN"),
    ("batch_major", [], "spikes=[T, B, *input_shape]"),
    ("short_labels", [], "one integer class per sample"),
    ("float_labels", [], "one integer class per sample"),
    ("labels_out_of_range", [], "not output neuron indices"),
    ("empty", [], "not a readable .npz"),
    ("no_labels", ["--max-accuracy-drop", "1"], "needs labels"),
    ("no_labels", ["--min-agreement", "99"], "fraction in [0, 1]"),
])
def test_bad_data_and_thresholds_are_one_line_errors(model, bad_data, tmp_path, capsys, case,
                                                     extra, message):
    code = main(["check", str(model[0]), "--target", "cpu", "--data", str(bad_data[case]),
                 "--report", str(tmp_path / "r"), "--no-plots", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_output_folder_not_written_by_us_is_never_replaced(model, tmp_path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert main([str(model[0]), "--target", "cpu", "-o", str(mine), "--no-plots"]) == 2
    assert (mine / "thesis.tex").read_text() == "precious"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main([str(model[0]), "--target", "cpu", "-o", str(a_file)]) == 2
    assert "not written by snn-compile" in capsys.readouterr().err
    # an earlier snn-compile output is replaced
    out = tmp_path / "ours"
    assert main([str(model[0]), "--target", "cpu", "-o", str(out), "--no-plots"]) == 0
    assert main([str(model[0]), "--target", "cpu", "-o", str(out), "--no-plots"]) == 0


def test_unknown_backend_on_the_main_command(model, tmp_path, capsys):
    assert main([str(model[0]), "--target", "cpu", "--backend", "warp", "-o",
                 str(tmp_path / "o")]) == 2
    assert "unknown backend" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_check_prints_why_it_failed(model, tmp_path, capsys):
    assert main(["check", str(model[0]), "--target", "cpu", "--data", str(model[1]),
                 "--report", str(tmp_path / "r"), "--no-plots", "--min-agreement", "1"]) == 1
    assert "FAILED: layer" in capsys.readouterr().out


# --------------------------------------------------------------------------- command surface

@pytest.mark.parametrize("argv", [
    ["--debug", "inspect", "{model}"],
    ["inspect", "--debug", "{model}"],
    ["inspect", "{model}", "--debug"],
])
def test_debug_is_accepted_anywhere(model, capsys, argv):
    from snn_compile.cli import build_parser

    argv = [a.format(model=model[0]) for a in argv]
    parser = build_parser()
    assert parser.parse_args(argv).debug is True
    assert main(argv) == 0


def test_debug_after_the_model_on_the_bare_main_command(model):
    from snn_compile.cli import build_parser

    parser = build_parser()
    args = parser.parse_args([str(model[0]), "--target", "cpu", "--debug"])
    assert (args.command, args.debug) == ("compile", True)
    args = parser.parse_args([str(model[0]), "--target", "cpu"])
    assert (args.command, args.debug) == ("compile", False)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(snn_compile.errors.SnnCompileError):
        main(["inspect", str(tmp_path / "nothing.pt"), "--debug"])


def _status(argv) -> int:
    """main's exit status, whether a usage error returns it or raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("word,suggestion", [("chek", "check"), ("inspct", "inspect"),
                                             ("target", "targets"), ("export_nir", "export-nir")])
def test_typo_gets_did_you_mean(capsys, word, suggestion):
    assert _status([word, "m.pt"]) == 2
    err = capsys.readouterr().err
    assert f"unknown command '{word}' (did you mean '{suggestion}'?)" in err
    assert "model file not found" not in err


def test_unknown_word_is_neither_command_nor_file(capsys):
    assert _status(["frobnicate"]) == 2
    assert "neither a command" in capsys.readouterr().err


def test_existing_file_named_like_a_command_is_a_model(model, tmp_path, monkeypatch):
    """A model file whose name is close to a command word is still the model."""
    import shutil

    shutil.copy(model[0], tmp_path / "chek")
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "chek"]) == 0
    from snn_compile.cli import build_parser
    assert build_parser().parse_args(["chek", "--target", "cpu"]).command == "compile"


def test_version(capsys):
    assert _status(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"snn-compile {snn_compile.__version__}"


def _all_help(capsys):
    from snn_compile.cli import SUBCOMMANDS

    texts = []
    for argv in [["--help"]] + [[name, "--help"] for name in SUBCOMMANDS]:
        assert _status(argv) == 0
        texts.append(capsys.readouterr().out)
    return texts


def test_help_has_no_rst_markup_and_lists_every_command(capsys):
    from snn_compile.cli import SUBCOMMANDS

    texts = _all_help(capsys)
    for text in texts:
        assert "``" not in text and "`" not in text and ":mod:" not in text, text
    assert all(name in texts[0] for name in SUBCOMMANDS)
    assert "--debug" in texts[0] and "--version" in texts[0]


# --------------------------------------------------------------------------- export-nir

def _snntorch_model(tmp_path):
    """Subtract reset, CUBA neurons, a recurrent layer: semantics NIR alone cannot carry."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 16), snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True),
        torch.nn.Linear(16, 8), snn.RLeaky(beta=0.9, linear_features=8, init_hidden=True),
        torch.nn.Linear(8, 4), snn.Leaky(beta=0.8, init_hidden=True))
    path = tmp_path / "rich.pt"
    snn_compile.export(net, path, input_shape=(12,))
    return path


def _run_float(model_path, data, out, *extra):
    assert main(["run", str(model_path), "--backend", "float", "--input", str(data),
                 "--output", str(out), *extra]) == 0
    with np.load(out) as arrays:
        return {k: arrays[k] for k in arrays.files}


@pytest.mark.parametrize("which", ["cli_model", "rich", "digits"])
def test_export_nir_round_trip_gives_identical_float_spikes(model, tmp_path, capsys, which):
    root = Path(__file__).resolve().parents[1] / "examples" / "digits"
    source, data = {"cli_model": model,
                    "rich": (_snntorch_model(tmp_path), None),
                    "digits": (root / "digits_snn.pt", root / "digits_test.npz")}[which]
    if data is None:
        data = tmp_path / "rich.npz"
        rng = np.random.default_rng(1)
        np.savez(data, spikes=(rng.random((30, 6, 12)) < 0.4).astype(np.float32))
    nir_file = tmp_path / "model.nir"
    assert main(["export-nir", str(source), "-o", str(nir_file)]) == 0
    assert "wrote" in capsys.readouterr().out
    want = _run_float(source, data, tmp_path / "a.npz")
    got = _run_float(nir_file, data, tmp_path / "b.npz", "--nir-convention", "snn_compile")
    assert set(got) == set(want)
    assert want["spikes"].any(), "a silent output tests nothing"
    for key in want:
        if key.endswith("spikes"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)


def test_export_nir_without_semantics_convention_differs(model, tmp_path):
    """The snn_compile convention matters: read as plain snnTorch NIR (same-step zero reset),
    the next-step reset of the source model is lost."""
    nir_file = tmp_path / "model.nir"
    assert main(["export-nir", str(model[0]), "-o", str(nir_file)]) == 0
    want = _run_float(model[0], model[1], tmp_path / "a.npz")
    got = _run_float(nir_file, model[1], tmp_path / "b.npz", "--nir-convention", "snntorch")
    assert (got["spikes"] != want["spikes"]).any()


def test_export_nir_into_a_missing_folder_is_one_line(model, tmp_path, capsys):
    assert main(["export-nir", str(model[0]), "-o", str(tmp_path / "no" / "m.nir")]) == 2
    err = capsys.readouterr().err
    assert "folder does not exist" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- compiled networks

@pytest.fixture(scope="module")
def compiled(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled") / "out"
    assert main([str(model[0]), "--target", "cpu", "--data", str(model[1]), "-o", str(out),
                 "--no-plots"]) == 0
    return out


def test_run_a_compiled_network_reproduces_its_golden_run(compiled, tmp_path):
    """``run OUT/`` runs the saved network without quantizing again: the golden trace."""
    out = tmp_path / "t.npz"
    assert main(["run", str(compiled), "--input", str(compiled / "inputs.npz"),
                 "--output", str(out)]) == 0
    with np.load(out) as got, np.load(compiled / "golden.npz") as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert all(info.compress_type == 0 for info in __import__("zipfile").ZipFile(out)
                   .infolist())  # uncompressed unless --compress


@pytest.mark.parametrize("record,keys", [("output", {"spikes"}),
                                         ("spikes", {"spikes", "layer/1/spikes",
                                                     "layer/3/spikes"})])
def test_run_records_what_is_asked(compiled, tmp_path, record, keys):
    out = tmp_path / "t.npz"
    assert main(["run", str(compiled), "--input", str(compiled / "inputs.npz"), "--output",
                 str(out), "--record", record, "--compress"]) == 0
    with np.load(out) as got:
        assert set(got.files) == keys


def test_run_a_compiled_network_refuses_a_target(compiled, tmp_path, capsys):
    assert main(["run", str(compiled), "--target", "cpu", "--input",
                 str(compiled / "inputs.npz"), "--output", str(tmp_path / "t.npz")]) == 2
    assert "already quantized" in capsys.readouterr().err


def test_shards_merged_equal_one_check(model, compiled, tmp_path):
    """check --shard i/N --partial, then merge: the report of one check over all samples."""
    common = ["--data", str(model[1]), "--no-plots", "--batch-size", "4"]
    assert main(["check", str(model[0]), "--network", str(compiled), "--report",
                 str(tmp_path / "whole"), *common]) == 0
    parts = []
    for i in range(3):
        parts.append(tmp_path / f"p{i}.json")
        assert main(["check", str(model[0]), "--network", str(compiled), "--shard", f"{i}/3",
                     "--partial", str(parts[i]), *common]) == 0
    assert main(["merge", *map(str, parts), "--model", str(model[0]), "--network",
                 str(compiled), "--report", str(tmp_path / "merged"), "--no-plots"]) == 0
    whole = json.loads((tmp_path / "whole" / "check.json").read_text())
    merged = json.loads((tmp_path / "merged" / "check.json").read_text())
    assert whole["config"]["first_sample"] == 6  # the split the main command recorded
    for key in ("layers", "class_agreement", "confusion", "chunks", "samples", "verdict"):
        assert merged[key] == whole[key], key
    # a missing shard is refused
    assert main(["merge", str(parts[0]), str(parts[2]), "--model", str(model[0]),
                 "--network", str(compiled), "--report", str(tmp_path / "m2")]) == 2


@pytest.mark.parametrize("argv,message", [
    (["--shard", "3/3", "--partial", "p.json"], "0 <= I < N"),
    (["--shard", "0/3"], "add --partial"),
    (["--require", "recall>0.5"], "METRIC>=VALUE"),
    (["--plot-samples", "a"], "sample numbers"),
    (["--plot-samples", "2"], "not scored"),
    (["--workers", "0"], "--workers must be positive"),
])
def test_bad_check_options_are_one_line_errors(model, compiled, tmp_path, capsys, argv,
                                               message):
    code = main(["check", str(model[0]), "--network", str(compiled), "--data", str(model[1]),
                 "--report", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_layer_thresholds_on_the_command_line(model, compiled, tmp_path):
    base = ["check", str(model[0]), "--network", str(compiled), "--data", str(model[1]),
            "--report", str(tmp_path / "r"), "--no-plots"]
    assert main(base + ["--min-recall", "0.9"]) == 0
    report = json.loads((tmp_path / "r" / "check.json").read_text())
    assert report["config"]["thresholds"]["layer"]["recall"] == 0.9
    assert main(base + ["--require", "iou>=1.0"]) == 1
    report = json.loads((tmp_path / "r" / "check.json").read_text())
    assert {rule["rule"] for rule in report["failed_rules"]} == {"iou"}


def test_targets_check_says_which_backends_run_each_target(capsys):
    assert main(["targets", "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = {lines[i - 1].split()[0]: set(line.split("runs on:")[1].replace(",", " ").split())
            for i, line in enumerate(lines) if "runs on:" in line}
    assert {"loihi2", "cpu", "xc7z020"} <= set(runs)
    assert all("emulator" in backends for backends in runs.values())
    assert "lava" in runs["loihi2"] and "lava" not in runs["cpu"]  # Lava needs loihi2's datapath
