"""README truth (issue 11): every command and snippet of the READMEs runs, here.

The READMEs: README.md, examples/*/README.md, backends/*/README.md, targets/README.md and
benchmarks/README.md. In each, every fenced block

* ```sh / ```bash / ```console: each non-comment line is a command (``\\`` continuations
  joined; in a console block with ``$ `` prompts only the prompted lines), run with bash;
* ```python: run as a script (``python -`` with the code on stdin, so imports resolve from the
  working folder as in an interactive session)

runs in order, all blocks of one README sharing one fresh temporary working folder. That folder
holds a copy of ``examples`` (scripts there write next to themselves) and links to ``targets``,
``benchmarks``, ``scripts``, ``tests`` and the top-level files, and ``.venv`` (the venv running
this test), whose ``bin`` comes first on PATH: ``snn-compile ...``, ``python ...`` and
``.venv/bin/...`` all work, as does ``make example`` (the folder's own ``.venv/.ready`` is
fresh, so make never reinstalls). ``pip install`` lands in ``site/`` of the folder (PIP_TARGET,
no index), which is on PYTHONPATH; no byte code, caches or temporary files are written outside
the folder.

A command must exit 0, or with N when its line ends in ``# exit N``. A block preceded (on the
line before the fence, blank lines aside) by ``<!-- not run: REASON -->`` is skipped; so are
the commands of ``SKIP_COMMANDS`` (``make test``: CI itself). Other fences (```toml, plain
``` for pictures, synopses and printed output) are not run, and a 4-space indented block that
starts like a command fails the test: fence it as ```sh.

READMEs in ``SLOW`` take more than about 20 s; ``.ci/run`` runs them all
(``-m "slow or not slow"``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"
READMES = sorted({"README.md", "targets/README.md", "benchmarks/README.md",
                  *(str(p.relative_to(ROOT)) for pattern in ("examples/*/README.md",
                                                             "backends/*/README.md")
                    for p in ROOT.glob(pattern))})
SLOW = {"README.md", "examples/digits/README.md", "examples/qat/README.md",
        "examples/third_party_backend/README.md", "benchmarks/README.md"}
SKIP_COMMANDS = {r"make\s+test\b": "make test is CI itself (.ci/run runs it)"}
LINKED = ("targets", "benchmarks", "scripts", "tests", "Makefile", "pyproject.toml",
          "constraints.txt", "setup.py", "LICENSE", "README.md")
SHELL = {"sh", "bash", "console", "shell"}
TIMEOUT_S = 900

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:(?P<reason>.*?)-->\s*$")
EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")
COMMAND_LIKE = re.compile(r"^(\$ |snn-compile(?=\s|$)|python3?\s|\.venv/|pip3?\s|make\s|bash\s)")


@dataclass
class Block:
    readme: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None  # the not-run reason


def blocks(readme: str) -> list[Block]:
    """The fenced blocks of a README, in order, with their not-run reasons."""
    lines = (ROOT / readme).read_text().splitlines()
    found, previous, i = [], "", 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        start, body = i, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence)
                                      and not lines[i].strip().strip(fence[0])):
            body.append(lines[i][indent:] if not lines[i][:indent].strip() else lines[i].lstrip())
            i += 1
        skip = NOT_RUN.match(previous)
        if skip and not skip["reason"].strip():
            raise AssertionError(f"{readme}:{start}: '<!-- not run: -->' without a reason")
        found.append(Block(readme, start + 1, match["info"].lower(), "\n".join(body) + "\n",
                           skip["reason"].strip() if skip else None))
        previous, i = lines[start], i + 1
    return found


def commands(block: Block) -> list[tuple[int, str]]:
    """(README line, command) of a shell block: comment lines dropped, ``\\`` continuations
    joined; in a console block with ``$ `` prompts, only the prompted lines."""
    lines = list(enumerate(block.text.splitlines(), block.line + 1))
    if block.lang == "console" and any(line.startswith("$ ") for _, line in lines):
        lines = [(n, line[2:]) for n, line in lines if line.startswith("$ ")]
    out, pending, first = [], "", 0
    for number, line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        first = first if pending else number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].strip() + " "
            continue
        out.append((first, (pending + line.strip()).strip()))
        pending = ""
    assert not pending, f"{block.readme}:{block.line}: a continuation line ends the block"
    return out


def indented_commands(readme: str) -> list[str]:
    """Lines of 4-space indented code blocks (outside fences) that look like commands."""
    found, in_fence, in_code, blank = [], None, False, True
    for number, line in enumerate((ROOT / readme).read_text().splitlines(), 1):
        match = FENCE.match(line)
        if match and (in_fence is None or line.strip().startswith(in_fence)):
            in_fence = match["fence"] if in_fence is None else None
            continue
        if in_fence:
            continue
        if line.startswith("    ") and (blank or in_code):
            in_code = True
            if COMMAND_LIKE.match(line.strip()):
                found.append(f"{readme}:{number}: {line.strip()}")
        elif line.strip():
            in_code = False
        blank = not line.strip()
    return found


def workspace(tmp: Path) -> dict[str, str]:
    """Fill the working folder; return the environment the commands run in."""
    shutil.copytree(ROOT / "examples", tmp / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    for name in LINKED:
        if (ROOT / name).exists():
            (tmp / name).symlink_to(ROOT / name)
    venv = tmp / ".venv"  # the running venv, with a .ready of its own for make
    venv.mkdir()
    for entry in VENV.iterdir():
        if entry.name != ".ready":
            (venv / entry.name).symlink_to(entry)
    (venv / ".ready").touch()
    for name in ("site", "tmp", "cache", "mpl"):
        (tmp / name).mkdir()
    env = dict(os.environ)
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               VIRTUAL_ENV=str(venv),
               PYTHONPATH=os.pathsep.join(filter(None, [str(tmp / "site"),
                                                        env.get("PYTHONPATH")])),
               PYTHONDONTWRITEBYTECODE="1", PIP_TARGET=str(tmp / "site"), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", TMPDIR=str(tmp / "tmp"),
               XDG_CACHE_HOME=str(tmp / "cache"), MPLCONFIGDIR=str(tmp / "mpl"),
               MPLBACKEND="Agg")
    return env


def run(what: str, argv: list[str], tmp: Path, env: dict, stdin: str | None = None,
        expect: int = 0) -> tuple[str | None, float]:
    """Run one command or snippet; return (failure text or None, seconds)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=tmp, env=env, input=stdin, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"{what}\n  timed out after {TIMEOUT_S} s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if proc.returncode == expect:
        return None, seconds
    tail = "\n".join("    " + line for line in proc.stdout.splitlines()[-25:])
    return f"{what}\n  exit status {proc.returncode}, expected {expect}:\n{tail}", seconds


def test_readme_blocks_parse():
    """The parser sees every README's blocks; no command hides in an unfenced code block."""
    assert "README.md" in READMES and "examples/qat/README.md" in READMES
    session = [b for b in blocks("README.md") if b.lang == "sh" and not b.skip][1]
    assert commands(session)[0][1].startswith("snn-compile examples/digits/digits_snn.pt")
    assert all(b.skip for b in blocks("README.md") if "dask_jobqueue" in b.text)
    hidden = [line for readme in READMES for line in indented_commands(readme)]
    assert not hidden, "indented command blocks (fence them as ```sh):\n" + "\n".join(hidden)


@pytest.mark.parametrize("readme", [pytest.param(r, marks=pytest.mark.slow) if r in SLOW
                                    else r for r in READMES])
def test_readme_runs(readme, tmp_path):
    env = workspace(tmp_path)
    log, failures, done, started = [], [], {}, time.perf_counter()
    for block in blocks(readme):
        where = f"{readme}:{block.line}"
        if block.lang not in SHELL | {"python", "py"}:
            continue
        if block.skip:
            log.append(f"{where}: not run ({block.skip})")
            continue
        if block.lang in ("python", "py"):
            failure, seconds = run(f"{where}: python block", [str(tmp_path / ".venv/bin/python"),
                                                              "-"], tmp_path, env, block.text)
            log.append(f"{where}: python block ({seconds:.1f} s)")
            failures += [failure] if failure else []
            continue
        for number, command in commands(block):
            where = f"{readme}:{number}: {command}"
            reason = next((why for pattern, why in SKIP_COMMANDS.items()
                           if re.match(pattern, command)), None)
            if reason:
                log.append(f"{where}: not run ({reason})")
                continue
            if command in done:  # the same command in the same folder: nothing new to learn
                log.append(f"{where}: as at line {done[command]}")
                continue
            expect = EXIT.search(command)
            failure, seconds = run(where, ["bash", "-c", command], tmp_path, env,
                                   expect=int(expect["code"]) if expect else 0)
            log.append(f"{where} ({seconds:.1f} s)")
            failures += [failure] if failure else []
            done.setdefault(command, number)
    log.append(f"{readme}: {time.perf_counter() - started:.1f} s")
    print("\n".join(log))
    assert not failures, "\n".join(failures)
