"""Output folders: only folders snn-compile wrote (by its manifest) are replaced, no file it did
not write is deleted, and a kill at any point leaves one complete output and no stale siblings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from snn_compile.errors import SnnCompileError
from snn_compile.output import (
    MANIFEST, _sibling_prefix, atomic_dir, check_output, exchange, read_manifest,
)

FAULT = Path(__file__).with_name("output_fault.py")


def write(out, version="v1", files=("a.txt", "sub/b.txt")):
    with atomic_dir(out) as tmp:
        for rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(version)


def siblings(out: Path):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith("."))


def test_manifest_lists_exactly_what_was_written(tmp_path):
    out = tmp_path / "o"
    write(out)
    assert read_manifest(out)["files"] == ["a.txt", "sub/b.txt"]
    write(out, "v2", files=("c.txt",))  # an earlier output is replaced, old files removed
    assert sorted(p.name for p in out.rglob("*")) == sorted([MANIFEST, "c.txt"])
    assert siblings(out) == []


def test_a_report_json_does_not_make_a_folder_ours(tmp_path):
    user = tmp_path / "p"
    (user / "src").mkdir(parents=True)
    (user / "report.json").write_text("{}")
    (user / "src" / "train.py").write_text("precious")
    with pytest.raises(SnnCompileError, match="not written by snn-compile"):
        write(user)
    assert (user / "src" / "train.py").read_text() == "precious"


def test_a_file_added_to_an_earlier_output_is_never_deleted(tmp_path):
    out = tmp_path / "o"
    write(out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SnnCompileError, match="notes.txt"):
        write(out, "v2")
    assert (out / "notes.txt").read_text() == "mine" and (out / "a.txt").read_text() == "v1"
    forged = tmp_path / "f"  # a manifest cannot claim files that it does not list
    forged.mkdir()
    (forged / MANIFEST).write_text('{"format": "snn-compile-output", "version": 1, "files": []}')
    (forged / "x").write_text("mine")
    with pytest.raises(SnnCompileError):
        write(forged)


@pytest.mark.parametrize("dangling", [False, True])
def test_symlinked_output_is_refused(tmp_path, dangling):
    real = tmp_path / "real"
    if not dangling:
        write(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SnnCompileError, match="symbolic link"):
        write(link, "v2")
    assert link.is_symlink() and (dangling or (real / "a.txt").read_text() == "v1")


@pytest.mark.parametrize("name", [".", "..", "", "/", "{cwd}", "{parent}"])
def test_folders_that_hold_the_current_folder_are_refused(tmp_path, monkeypatch, name):
    work = tmp_path / "w" / "here"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    name = name.format(cwd=work, parent=work.parent)
    with pytest.raises(SnnCompileError):
        check_output(Path(name))


def test_long_folder_names_and_no_parents_left_after_a_failure(tmp_path):
    out = tmp_path / ("n" * 250)
    write(out)
    assert (out / "a.txt").exists() and siblings(out) == []
    deep = tmp_path / "new" / "deeper" / "o"
    with pytest.raises(RuntimeError):
        with atomic_dir(deep) as tmp:
            (tmp / "x").write_text("half")
            raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()


def _fault(out, version, point):
    return subprocess.run([sys.executable, str(FAULT), str(out), version, point],
                          capture_output=True, text=True, timeout=60)


def _complete(out: Path):
    """The version of the complete output at ``out`` (every listed file of one version)."""
    manifest = read_manifest(out)
    assert manifest is not None and manifest.get("complete") is True
    versions = {(out / rel).read_text() for rel in manifest["files"]}
    assert len(versions) == 1 and len(manifest["files"]) == 5
    return versions.pop()


POINTS = ["block", "before_swap", "after_exchange", "during_discard", "fallback_after_first",
          "fallback_after_second", "fallback_eio"]


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_point_leaves_one_complete_output(tmp_path, point):
    if point in ("after_exchange", "during_discard") and not _exchange_works(tmp_path):
        pytest.skip("no RENAME_EXCHANGE on this file system")
    out = tmp_path / "out"
    assert _fault(out, "v1", "none").returncode == 0
    killed = _fault(out, "v2", point)
    assert killed.returncode == (2 if point == "fallback_eio" else 9), killed.stderr
    if point == "fallback_after_first":
        assert not out.exists()  # the one window of the fallback: the next run recovers
    else:
        assert _complete(out) in ("v1", "v2")
    if point == "fallback_eio":
        assert "earlier output is unchanged" in killed.stdout and _complete(out) == "v1"
    assert _fault(out, "v3", "none").returncode == 0  # recovery and cleanup
    assert _complete(out) == "v3" and siblings(out) == []


def _exchange_works(tmp_path) -> bool:
    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    try:
        return exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


def test_stale_siblings_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "o"
    write(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = _sibling_prefix(out)
    stale = tmp_path / f"{prefix}.partial-{dead.pid}"
    stale.mkdir()
    (stale / MANIFEST).write_text('{"format": "snn-compile-output", "version": 1, '
                                  '"complete": false, "files": []}')
    (stale / "half.bin").write_text("x")
    live = tmp_path / f"{prefix}.partial-{os.getppid()}"
    live.mkdir()
    (live / MANIFEST).write_text((stale / MANIFEST).read_text())
    write(out, "v2")
    assert not stale.exists() and live.exists()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import numpy as np
    import snntorch as snn
    import torch

    import snn_compile

    root = tmp_path_factory.mktemp("m")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), snn.Leaky(beta=0.9, init_hidden=True))
    snn_compile.export(net, root / "m.pt", input_shape=(6,))
    np.savez(root / "d.npz", spikes=(np.random.default_rng(0).random((8, 3, 6)) < 0.3)
             .astype(np.float32))
    return root / "m.pt", root / "d.npz"


def test_cli_never_replaces_a_user_folder(model, tmp_path, capsys):
    from snn_compile.cli import main

    user = tmp_path / "p"
    (user / "src").mkdir(parents=True)
    (user / "report.json").write_text("{}")
    (user / "src" / "train.py").write_text("precious")
    assert main([str(model[0]), "--target", "cpu", "-o", str(user), "--no-plots"]) == 2
    assert main(["check", str(model[0]), "--target", "cpu", "--data", str(model[1]),
                 "--report", str(user), "--no-plots"]) == 2
    assert (user / "src" / "train.py").read_text() == "precious"
    assert "not written by snn-compile" in capsys.readouterr().err
    report = tmp_path / "r"
    args = ["check", str(model[0]), "--target", "cpu", "--data", str(model[1]), "--report",
            str(report), "--junit", str(report / "j.xml")]
    assert main(args) in (0, 1) and main(args) in (0, 1)  # our own report is replaced
    assert {"check.json", "j.xml"} <= {p.name for p in report.iterdir()}
    assert siblings(report) == []
