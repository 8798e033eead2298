# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost of pdmd's safe embedded store (lock + write-ahead journal + atomic compaction) per firework.

Runs the same workflow of N trivial fireworks with `rlaunch rapidfire`, alternately with
mongomock-persistence as FireWorks ships it (PDMD_EMBEDDED_GUARD=off, unsafe) and with pdmd's
guard, R times each, and prints both wall times side by side, the ratio of the medians (and of
the fastest runs) and the overhead per firework (seconds, ms).

    .venv/bin/python benchmarks/embedded_store_overhead.py [N] [R]
    .venv/bin/python benchmarks/embedded_store_overhead.py 90 5     # docs/embedded_store.md, README
    .venv/bin/python benchmarks/embedded_store_overhead.py --quick  # seconds: 3 fireworks, once each
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(n: int, guard: bool) -> float:
    from fireworks import Firework, Workflow
    from fireworks.user_objects.firetasks.script_task import PyTask

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name in ("FW_config.yaml", "my_launchpad.yaml", "my_fworker.yaml"):
            shutil.copy(REPO / name, cwd / name)
        (cwd / ".pdmd").mkdir()
        fws = [Firework([PyTask(func="math.sqrt", args=[float(i)])], name=f"noop {i}") for i in range(n)]
        Workflow(fws, {fws[i]: [fws[i + 1]] for i in range(n - 1)}).to_file(str(cwd / "wf.yaml"))
        env = {**os.environ, "PDMD_EMBEDDED_GUARD": "on" if guard else "off"}
        env.pop("MONGOMOCK_SERVERSTORE_FILE", None)
        (cwd / ".pdmd" / "fireworks_store.json").write_text("{}")  # plain mongomock-persistence needs the file
        for cmd in (["lpad", "reset", "--password", time.strftime("%Y-%m-%d")], ["lpad", "add", "wf.yaml"]):
            subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, env=env, check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "rlaunch"), "rapidfire"], cwd=cwd, env=env, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    from _quick import add_quick_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int, nargs="?", default=90, help="fireworks in the chain")
    p.add_argument("repeats", type=int, nargs="?", default=5, help="runs of each store, alternately")
    add_quick_arguments(p, data=False)
    args = p.parse_args()
    n, repeats = (3, 1) if args.quick else (args.n, args.repeats)
    plain, guarded = [], []
    for i in range(repeats):  # alternate, so that load from other processes hits both alike
        plain.append(run(n, guard=False))
        guarded.append(run(n, guard=True))
        print(
            f"repeat {i + 1}: plain mongomock-persistence {plain[-1]:.2f} s, pdmd guard {guarded[-1]:.2f} s", flush=True
        )
    p, g = statistics.median(plain), statistics.median(guarded)
    print(
        f"{n} fireworks, rlaunch rapidfire, median of {repeats}: "
        f"plain mongomock-persistence {p:.2f} s, pdmd guard {g:.2f} s"
    )
    print(
        f"ratio {g / p:.3f} (fastest: {min(guarded) / min(plain):.3f}); "
        f"overhead {1000 * (g - p) / n:.1f} ms per firework"
    )


if __name__ == "__main__":
    main()
