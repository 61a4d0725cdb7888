"""Run tests/test_qat.py once for each of N different global seeds; report how many passed.

A test that builds layers from torch's (or numpy's, or Python's) global random state passes or
fails depending on whatever ran before it. This script sets all three global generators to a
different seed before every test (seed s for run s) and runs the file in a fresh process per
seed, so any such dependence shows up as a failing seed.

    .venv/bin/python benchmarks/qat_seeds.py                 # seeds 0..49, 2 processes
    .venv/bin/python benchmarks/qat_seeds.py --seeds 20 --jobs 1 -- -k saturation

The same file is the pytest plugin that does the seeding (``-p qat_seeds``, reading
``SNN_COMPILE_GLOBAL_SEED``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = "SNN_COMPILE_GLOBAL_SEED"


def pytest_runtest_setup(item):  # the plugin side: runs in the pytest process
    seed = int(os.environ[ENV])
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_seed(seed: int, extra: list[str]) -> tuple[int, bool, str]:
    env = dict(os.environ, **{ENV: str(seed)},
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                           os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "qat_seeds", "-p", "no:cacheprovider",
           "tests/test_qat.py", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return seed, proc.returncode == 0, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=50, help="run seeds 0..N-1 (default 50)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel pytest processes")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda s: run_seed(s, args.pytest_args), range(args.seeds)))
    failed = [(seed, last) for seed, ok, last in results if not ok]
    for seed, ok, last in results:
        print(f"seed {seed:3d}: {'pass' if ok else 'FAIL'}  {last}")
    print(f"{args.seeds - len(failed)} of {args.seeds} global seeds passed "
          f"({time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
