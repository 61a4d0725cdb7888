"""Wall time of the light commands (`snn-compile targets`, `backends`, `--help`, `--version`).

Each command runs as a user runs it: the installed console script, in a fresh process, from a
temporary folder. One untimed warm-up run (file cache), then the median and range of N timed
runs. Also says whether the command imports torch (which alone takes seconds).

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5] [--check]

``--check`` exits with status 1 when `snn-compile targets` takes 1 s or more (median).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["targets"], ["backends"], ["--help"], ["--version"])
LIMIT_S = 1.0
PROBE = """\
import sys
from snn_compile.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("torch imported" if "torch" in sys.modules else "no torch", file=sys.stderr)
"""


def console_script() -> Path:
    path = Path(sys.executable).parent / "snn-compile"
    if not path.is_file():
        raise SystemExit(f"{path} not found: install snn-compile into this Python first")
    return path


def wall_times(cmd: list[str], repeats: int, cwd: str) -> list[float]:
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def imports_torch(argv: list[str], cwd: str) -> bool:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], cwd=cwd,
                          capture_output=True, text=True, check=True)
    return "torch imported" in proc.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true",
                        help=f"fail when 'targets' takes >= {LIMIT_S} s")
    args = parser.parse_args()
    script = console_script()
    results = {}
    with tempfile.TemporaryDirectory() as cwd:
        print(f"| command | median [s] | min-max [s] | imports torch |\n|---|---:|---:|---|")
        for argv in COMMANDS:
            times = wall_times([str(script), *argv], args.repeats, cwd)
            results[" ".join(argv)] = median = statistics.median(times)
            print(f"| snn-compile {' '.join(argv)} | {median:.3f} | {min(times):.3f}-"
                  f"{max(times):.3f} | {'yes' if imports_torch(argv, cwd) else 'no'} |")
    print(f"(median of {args.repeats} runs after one warm-up; {sys.executable})")
    if args.check and results["targets"] >= LIMIT_S:
        print(f"FAIL: snn-compile targets takes {results['targets']:.3f} s >= {LIMIT_S} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
