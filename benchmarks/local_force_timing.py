# SPDX-License-Identifier: GPL-3.0-or-later
"""ms per energy+force call of pd-local vs a LAMMPS Tersoff single point on the same cells (1 thread).

Cells: stored aGr structures of 680 / 2,720 atoms when a data folder is given (else random packings at
graphene density), and 3D random packings at 3 g/cm³-like density of 216 / 512 atoms. The model is
untrained (random weights): the cost does not depend on the weights.

    python benchmarks/local_force_timing.py [--data paper_runs/agr_demo] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def stored_frame(root: Path, n_atoms: int):
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    for doc in store.iter_structures({"n_atoms": n_atoms, "kind": "final"}):
        return store.load_frame(doc)
    return None


def main() -> None:
    from test_local import random_model, random_packing

    from pdmd.local.reference import LammpsSinglePoint

    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for dim, n in ((2, 680), (2, 2720), (3, 216), (3, 512)):
        frame = stored_frame(args.data, n) if (args.data and dim == 2) else None
        source = "stored aGr final state" if frame is not None else "random packing"
        frame = frame or random_packing(n, dim, seed=n)
        model = random_model(dim)
        model.energy_and_forces(frame)  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            model.energy_and_forces(frame)
            times.append(time.perf_counter() - t0)
        # the descriptor's share: topology (neighbours, complexes, persistence) vs torch values + network + backward
        t0 = time.perf_counter()
        model.topology(frame)
        topo_ms = 1000 * (time.perf_counter() - t0)
        with LammpsSinglePoint(dim) as lmp:
            lmp(frame)
            lt = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                lmp(frame)
                lt.append(time.perf_counter() - t0)
        ms, lms = 1000 * statistics.median(times), 1000 * statistics.median(lt)
        rows.append((dim, n, source, ms, topo_ms, lms))
        print(f"{dim}D {n:5d} atoms ({source}): pd-local {ms:8.1f} ms/call (topology {topo_ms:.0f} ms), "
              f"LAMMPS Tersoff {lms:6.2f} ms, ratio {ms / lms:7.0f}x", flush=True)  # fmt: skip
    print("| cell | atoms | pd-local ms/call | of which topology | LAMMPS Tersoff ms | ratio |")
    print("|---|---|---|---|---|---|")
    for dim, n, source, ms, topo_ms, lms in rows:
        print(f"| {dim}D ({source}) | {n} | {ms:.1f} | {topo_ms:.0f} | {lms:.2f} | {ms / lms:.0f}× |")


if __name__ == "__main__":
    main()
