"""The shipped example through the main command, as README's `make example` runs it."""

import json
from pathlib import Path

import numpy as np
import pytest

from snn_compile.cli import main

EXAMPLE = Path(__file__).parent.parent / "examples" / "digits"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "digits_64.npz"
    with np.load(EXAMPLE / "digits_test.npz") as data:
        np.savez(path, spikes=data["spikes"][:, :64], labels=data["labels"][:64])
    return path


@pytest.mark.lava
def test_example_compiles_for_loihi_and_lava_matches(tmp_path, small_data, capsys):
    out = tmp_path / "loihi"
    code = main([str(EXAMPLE / "digits_snn.pt"), "--target", "loihi", "--data", str(small_data),
                 "-o", str(out), "--max-accuracy-drop", "5"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "lava vs emulator" in printed and "every spike, u and v identical" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["backend"]["run"] == "identical"
    assert (out / "lava" / "run_lava.py").exists() and (out / "check" / "raster_16.png").exists()  # the first scored sample


@pytest.mark.hls
def test_example_compiles_for_pynq_and_csim_matches(tmp_path, small_data, capsys):
    out = tmp_path / "fpga"
    code = main([str(EXAMPLE / "digits_snn.pt"), "--target", "xc7z020", "--data",
                 str(small_data), "-o", str(out), "--no-plots"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "hls vs emulator" in printed and "every spike, u and v identical" in printed
    assert (out / "hls" / "build_prj.tcl").exists()
