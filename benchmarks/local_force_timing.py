# SPDX-License-Identifier: GPL-3.0-or-later
"""ms per energy+force call of pd-local vs a LAMMPS Tersoff single point on the same cells (1 thread).

Cells: stored aGr structures of 680 / 2,720 atoms when a data folder is given (else random packings at
graphene density), and 3D random packings at 3 g/cm³-like density of 216 / 512 atoms. The model is
untrained (random weights): the cost does not depend on the weights.

Two measurements per cell, each the mean over `--steps` consecutive calls on an MD-like path (every
atom moves on a straight line with a Maxwell-Boltzmann velocity at 300 K, 1 fs per call, in-plane
for 2D): "single" calls `energy_and_forces` on a fresh model each time (no reuse between calls),
"md" calls one model along the path (its topology cache reuses neighbour lists and local
triangulations). `--compare-with DIR` also times another pdmd source tree (e.g. the last commit,
`git archive HEAD pdmd | tar -x -C DIR`) in a subprocess, interleaved, so before/after share the load.

    python benchmarks/local_force_timing.py [--data paper_runs/agr_demo] [--steps 20] [--compare-with DIR]
    # the speed table of docs/local.md
    OMP_NUM_THREADS=1 nice -n 2 .venv/bin/python benchmarks/local_force_timing.py --data paper_runs/agr_demo --steps 10
    .venv/bin/python benchmarks/local_force_timing.py --quick     # seconds: a 60-atom sheet and a 64-atom cell

Prints a markdown table: ms per call (single, MD), LAMMPS ms per call and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _quick import QUICK_ATOMS, add_quick_arguments, quick_data

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))

CELLS = ((2, 680), (2, 2720), (3, 216), (3, 512))


def stored_frame(root: Path, n_atoms: int):
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    for doc in store.iter_structures({"n_atoms": n_atoms, "kind": "final"}):
        return store.load_frame(doc)
    return None


def cell_frame(dim: int, n: int, data: Path | None):
    """The cell of (dim, n) and a description of where it came from."""
    from test_local import random_packing

    frame = stored_frame(data, n) if (data and dim == 2) else None
    if frame is not None:
        return frame, "stored aGr final state"
    return random_packing(n, dim, seed=n), "random packing"


def md_path(frame, dim: int, steps: int):
    """Frames along straight lines at 300 K Maxwell-Boltzmann velocities, 1 fs apart."""
    from ase import units
    from test_local import moved

    rng = np.random.default_rng(0)
    sigma = np.sqrt(units.kB * 300.0 / 12.011) * units.fs  # Å per fs per component (carbon)
    velocity = np.zeros_like(frame.positions)
    velocity[:, :dim] = rng.normal(0.0, sigma, (frame.n_atoms, dim))
    return [moved(frame, frame.positions + k * velocity) for k in range(steps)]


def time_model(dim: int, n: int, data: Path | None, steps: int) -> dict:
    """Milliseconds per call: fresh model per call ("single") and one model along the path ("md")."""
    from test_local import random_model

    frame, source = cell_frame(dim, n, data)
    path = md_path(frame, dim, steps)
    random_model(dim).energy_and_forces(frame)  # warm-up (imports, allocations)
    t0 = time.perf_counter()
    for f in path:
        random_model(dim).energy_and_forces(f)
    single = (time.perf_counter() - t0) / steps
    model = random_model(dim)
    t0 = time.perf_counter()
    for f in path:
        model.energy_and_forces(f)
    md = (time.perf_counter() - t0) / steps
    import pdmd

    return {"source": source, "single_ms": 1e3 * single, "md_ms": 1e3 * md, "pdmd": pdmd.__file__,
            "cache": getattr(getattr(model, "cache", None), "stats", None)}  # fmt: skip


def time_lammps(dim: int, n: int, data: Path | None, steps: int) -> float:
    from pdmd.md.single_point import LammpsSinglePoint

    frame, _ = cell_frame(dim, n, data)
    with LammpsSinglePoint(dim) as lmp:
        lmp(frame)
        t0 = time.perf_counter()
        for f in md_path(frame, dim, steps):
            lmp(f)
        return 1e3 * (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a data folder: its stored final states are the 2D cells")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--compare-with", type=Path, help="another pdmd source tree to time in a subprocess")
    p.add_argument("--cells", default="2:680,2:2720,3:216,3:512")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    add_quick_arguments(p)
    args = p.parse_args()
    if args.quick:  # a stored 60-atom sheet of the tiny data and a 64-atom 3D packing, 3 calls each
        args.data, args.cells, args.steps = quick_data(args.quick_data), f"2:{QUICK_ATOMS},3:64", 3
    torch.set_num_threads(1)
    cells = [tuple(int(x) for x in c.split(":")) for c in args.cells.split(",")]
    if args.worker:  # one cell, JSON on stdout (for --compare-with)
        print(json.dumps(time_model(*cells[0], args.data, args.steps)))
        return
    rows = []
    for dim, n in cells:
        other = None
        if args.compare_with:
            env = {**os.environ, "PYTHONPATH": str(args.compare_with), "OMP_NUM_THREADS": "1"}
            cmd = [sys.executable, str(HERE), "--worker", "--cells", f"{dim}:{n}", "--steps", str(args.steps)]
            cmd += ["--data", str(args.data)] if args.data else []
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            other = json.loads(out.strip().splitlines()[-1])
        mine = time_model(dim, n, args.data, args.steps)
        lms = time_lammps(dim, n, args.data, args.steps)
        rows.append((dim, n, mine, other, lms))
        print(f"{dim}D {n:5d} ({mine['source']}): single {mine['single_ms']:.1f} ms, md {mine['md_ms']:.1f} ms"
              + (f", compared tree: single {other['single_ms']:.1f} ms" if other else "")
              + f"; LAMMPS Tersoff {lms:.2f} ms; cache {mine['cache']}", flush=True)  # fmt: skip
    print("| cell | atoms | before: ms/call | after: single call | after: MD (cache) | LAMMPS Tersoff ms "
          "| ratio MD/LAMMPS |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for dim, n, mine, other, lms in rows:
        before = f"{other['single_ms']:.1f}" if other else "—"
        print(f"| {dim}D ({mine['source']}) | {n} | {before} | {mine['single_ms']:.1f} | {mine['md_ms']:.1f} "
              f"| {lms:.2f} | {mine['md_ms'] / lms:.0f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
