"""Worker processes (HomCloud worker, descriptor / campaign pools) die with a SIGKILLed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="walks /proc for the process tree")

LAUNCHER = """
import os, sys, time
from pdmd.descriptor.persistence import _RUNNER
from pdmd.workers import process_pool
homcloud_worker = _RUNNER.call(os.getpid)      # the isolated HomCloud worker of descriptor/persistence.py
pool = process_pool(2)                          # the pool of pipeline.py / campaign_runner.py
busy = [pool.submit(time.sleep, 600), pool.submit(time.sleep, 600)]
time.sleep(1.0)
print(homcloud_worker, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its exit status waits for a reaper


def descendants(pid: int) -> set[int]:
    """PIDs of every live process below `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return {p for p in out if _alive(p)}


def test_workers_and_resource_tracker_die_with_a_sigkilled_parent():
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True)
    try:
        homcloud_worker = int(proc.stdout.readline())
        below = descendants(proc.pid)
        # the HomCloud worker, 2 pool workers and multiprocessing's resource tracker
        assert homcloud_worker in below and len(below) >= 4, below
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 5.0
    while time.time() < deadline and any(_alive(p) for p in below):
        time.sleep(0.1)
    left = sorted(p for p in below if _alive(p))
    for p in left:  # do not leave them behind if the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes still running 5 s after their parent was killed: {left}"


def test_watchdog_alone_ends_a_worker_whose_parent_died(tmp_path):
    """Without the Linux death signal (other platforms), the parent-PID watchdog ends the worker."""
    code = (
        "import os, sys, time\n"
        "from pdmd.workers import die_with_parent\n"
        "if os.fork() == 0:\n"
        "    die_with_parent(os.getppid(), use_death_signal=False, interval_s=0.1)\n"
        "    print(os.getpid(), flush=True)  # armed\n"
        "    time.sleep(600)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5.0
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive
