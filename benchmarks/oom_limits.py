"""`snn-compile check` under address-space limits: out of memory must be one line, exit 2.

    .venv/bin/python benchmarks/oom_limits.py                     # limits 2500 1200 900 700 500 300 MB
    .venv/bin/python benchmarks/oom_limits.py --limits 900 300

The case is bench_check.py's MLP (784-1000-1000-10, T = 100, loihi2) on 1,024 samples, saved as
a compiled network; each run is the console command under ``prlimit --as=<limit>`` from a
temporary folder. Prints, per limit, the exit status, the number of lines written to the
terminal and the first of them; exits 1 when a run ends other than 0 (passed), 1 (check failed)
or 2 with a single line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[2500, 1200, 900, 700, 500, 300],
                        metavar="MB")
    parser.add_argument("--samples", type=int, default=1024)
    args = parser.parse_args(argv)
    if not shutil.which("prlimit"):
        print("prlimit (util-linux) is needed", file=sys.stderr)
        return 2
    import bench_check

    script = Path(sys.executable).parent / "snn-compile"
    bad = 0
    with tempfile.TemporaryDirectory(prefix="oom-") as tmp:
        tmp = Path(tmp)
        model, network, data = bench_check._mlp(tmp, args.samples, 100)
        print("| --as limit [MB] | exit status | lines | first line |")
        print("|---:|---:|---:|---|")
        for limit in args.limits:
            run = subprocess.run(["prlimit", f"--as={limit << 20}", str(script), "check",
                                  str(model), "--network", str(network), "--data", str(data),
                                  "--report", str(tmp / f"report_{limit}")],
                                 cwd=tmp, capture_output=True, text=True)
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            ok = run.returncode in (0, 1) or (run.returncode == 2 and len(lines) == 1)
            bad += not ok
            first = (lines[0] if lines else "").replace("|", "\\|")[:160]
            print(f"| {limit} | {run.returncode} | {len(lines)} | {first} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
