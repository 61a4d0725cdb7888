"""SIGTERM during a Lava run stops Lava's child processes (they used to outlive the parent).
(run_lava.py --inputs with the project's data files: tests/test_hostile_emitters.py.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lava
pytest.importorskip("lava")

RUN = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from strategies import random_qnetwork, random_spikes
from snn_compile.backends.loihi import LavaBackend
from snn_compile.targets import load_target
net = random_qnetwork(np.random.default_rng(0), load_target("loihi2"), depth=2)
print("running", flush=True)
LavaBackend().run(net, random_spikes(np.random.default_rng(0), net, 200000, 1))
"""


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.slow
def test_sigterm_stops_every_lava_process():
    proc = subprocess.Popen([sys.executable, "-c", RUN.format(tests=str(Path(__file__).parent))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    children = []
    for _ in range(600):  # wait until Lava has started its processes
        children = _children(proc.pid)
        if len(children) >= 3:
            break
        time.sleep(0.1)
    assert children, "Lava started no processes"
    time.sleep(1)
    children = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    deadline = time.time() + 60
    while time.time() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
        time.sleep(0.2)
    alive = [c for c in children if Path(f"/proc/{c}").exists()
             and "Z" not in (Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[:1])]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive, f"Lava processes outlived SIGTERM: {alive}"
