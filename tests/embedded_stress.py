"""Stress the embedded store with real FireWorks processes: many short fireworks, a tiny ping interval.

FireWorks' ping thread (`fireworks.core.rocket.ping_launch`) and the main thread's
`complete_launch` both write the launch document; with `PING_TIME_SECS` of a millisecond they
race on every firework. After `rlaunch rapidfire` a fresh process reads the store back from disk
and counts the fireworks whose own state or whose launch's state is not COMPLETED.

Used by tests/test_embedded_store_safety.py (one short run) and
benchmarks/embedded_store_stress.py (many runs in a row).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CHECK = """
import json
from fireworks import LaunchPad
lp = LaunchPad.auto_load()
launches = {d["launch_id"]: d["state"] for d in lp.launches.find({}, {"launch_id": 1, "state": 1})}
out = []
for f in lp.fireworks.find({}, {"fw_id": 1, "state": 1, "launches": 1}):
    out.append([f["fw_id"], f["state"], [launches.get(i, "MISSING") for i in f.get("launches", [])]])
print(json.dumps(out))
"""


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGOMOCK_SERVERSTORE_FILE", "PDMD_DATA_DIR")}
    return {**env, **(extra or {})}


def prepare(
    cwd: Path, n_fireworks: int, ping_s: float = 0.001, sleep_s: float = 0.01, tracked_lines: int = 1000
) -> None:
    """An embedded-store checkout in `cwd` with `n_fireworks` independent fireworks of `sleep_s` s each."""
    from fireworks import Firework, ScriptTask, Tracker, Workflow

    cwd.mkdir(parents=True, exist_ok=True)
    for name in ("my_launchpad.yaml", "my_fworker.yaml"):
        shutil.copy(REPO / name, cwd / name)
    (cwd / "FW_config.yaml").write_text(
        f"MONGOMOCK_SERVERSTORE_FILE: .pdmd/fireworks_store.json\nPING_TIME_SECS: {ping_s}\nRUN_EXPIRATION_SECS: 3600\n"
    )
    (cwd / ".pdmd").mkdir(exist_ok=True)
    # a tracked file makes every ping read and store ~`tracked_lines` lines: a long write that races completion
    task = ScriptTask(script=f"yes {'x' * 200} | head -n {tracked_lines} > tracked.txt; sleep {sleep_s}")
    spec = {"_trackers": [Tracker("tracked.txt", nlines=tracked_lines)]} if tracked_lines else {}
    fws = [Firework([task], spec=spec, name=f"short {i}") for i in range(n_fireworks)]
    Workflow(fws, name="stress").to_file(str(cwd / "stress.yaml"))


def run(cwd: Path, env: dict | None = None, timeout_s: float = 600) -> dict:
    """`lpad reset`, `lpad add`, `rlaunch rapidfire`, then read the store back in a new process.

    Returns {"n": fireworks, "inconsistent": [[fw_id, fw state, launch states], ...], "wall_s": rapidfire s}.
    """
    env = _env(env)

    def call(*cmd: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
        )
        if proc.returncode != 0:
            raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return proc

    call("lpad", "reset", "--password", time.strftime("%Y-%m-%d"))
    call("lpad", "add", "stress.yaml")
    t0 = time.perf_counter()
    call("rlaunch", "rapidfire")
    wall = time.perf_counter() - t0
    rows = json.loads(call("python", "-c", CHECK).stdout.strip().splitlines()[-1])
    bad = [r for r in rows if r[1] != "COMPLETED" or not r[2] or any(s != "COMPLETED" for s in r[2])]
    return {"n": len(rows), "inconsistent": bad, "wall_s": wall}
