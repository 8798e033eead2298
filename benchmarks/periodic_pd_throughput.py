# SPDX-License-Identifier: GPL-3.0-or-later
"""Periodic 3D persistence-diagram throughput: HomCloud (reference) vs the default `delaunay` backend.

    .venv/bin/python benchmarks/periodic_pd_throughput.py DATA [--plan ac-paper] [--n 40]
    .venv/bin/python benchmarks/periodic_pd_throughput.py /work/pdmd_paper/ac --n 40   # docs/ac.md, README
    .venv/bin/python benchmarks/periodic_pd_throughput.py --quick   # seconds: the tests' 216-atom aC cell, 2 packings

Takes `--n` stored structures of each cell size of the plan (216-atom training and 512-atom
validation cells, spread over the densities), computes each diagram with both backends in this
process, side by side, and prints structures/s for each, the ratio, the largest difference
between the two diagrams, and per density the largest H1 death and the pairs outside the
histogram window (for aC, [0, 8]² Å²). `--quick` times the same calls on the 216-atom aC cell of
tests/data and two random 64-atom packings at carbon density (no data folder needed).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _quick import add_quick_arguments

from pdmd.campaign import PLANS, plan_runs
from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import alpha_diagram
from pdmd.store.datastore import DataStore


def sample_docs(store: DataStore, run_ids: list[str], n: int) -> list[dict]:
    """`n` structure documents spread evenly over the runs and their snapshots."""
    docs = [d for r in run_ids for d in store.run_structures(r)]
    idx = np.linspace(0, len(docs) - 1, min(n, len(docs))).round().astype(int)
    return [docs[i] for i in idx]


def quick_cells() -> list[tuple[int, list, list]]:
    """(atoms, frames, densities) of the quick mode: the tests' 216-atom aC cell and two 64-atom packings."""
    from _quick import TESTS, tests_on_path

    from pdmd.structure import Frame

    tests_on_path()
    from test_local import random_packing

    arrays = np.load(TESTS / "data" / "ac216_qhull_non_delaunay.npz")
    ac = Frame(arrays["positions"], arrays["cell"], np.full(len(arrays["positions"]), 6), (True, True, True))
    return [(216, [ac], [None]), (64, [random_packing(64, 3, seed=s) for s in (1, 2)], [None, None])]


def stored_cells(data_dir: Path, plan: str, n: int) -> list[tuple[int, list, list]]:
    """(atoms, frames, densities g/cm³) of `n` stored structures of each cell size of a plan."""
    store = DataStore(data_dir)
    out = []
    for runs in plan_runs(plan):
        docs = sample_docs(store, [r.run_id for r in runs], n)
        out.append((runs[0].n_atoms, [store.load_frame(d) for d in docs], [d.get("density_g_cm3") for d in docs]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN` (3D)")
    p.add_argument("--plan", default="ac-paper")
    p.add_argument("--n", type=int, default=40, help="structures per cell size")
    add_quick_arguments(p, data=False)
    args = p.parse_args()
    if not args.quick and args.data_dir is None:
        p.error("DATA is required unless --quick")
    spec = HistogramSpec(*PLANS[args.plan].range_A2)
    outside = defaultdict(lambda: [0, 0, 0.0])  # density -> [pairs outside, pairs, max death]
    for n_atoms, frames, densities in quick_cells() if args.quick else stored_cells(args.data_dir, args.plan, args.n):
        seconds = {}
        diagrams = {}
        for backend in ("homcloud", "delaunay"):
            alpha_diagram(frames[0], 3, 1, backend=backend, isolate=False)  # warm-up (imports)
            t0 = time.perf_counter()
            diagrams[backend] = [alpha_diagram(f, 3, 1, backend=backend, isolate=False) for f in frames]
            seconds[backend] = time.perf_counter() - t0
        diff = max(
            float(np.abs(np.sort(a.pairs(), axis=0) - np.sort(b.pairs(), axis=0)).max())
            if len(a.births_A2) == len(b.births_A2)
            else float("inf")
            for a, b in zip(diagrams["homcloud"], diagrams["delaunay"])
        )
        rate = {k: len(frames) / v for k, v in seconds.items()}
        print(
            f"{n_atoms} atoms, {len(frames)} structures: HomCloud {rate['homcloud']:.1f} /s "
            f"({1000 / rate['homcloud']:.0f} ms each), delaunay {rate['delaunay']:.1f} /s "
            f"({1000 / rate['delaunay']:.0f} ms each), ratio {rate['delaunay'] / rate['homcloud']:.1f}x; "
            f"largest birth/death difference {diff:.1e} Å²"
        )
        for density, d in zip(densities, diagrams["delaunay"]):
            image = pd_histogram(d.births_A2, d.deaths_A2, spec)
            rec = outside[density]
            rec[0] += round(image.fraction_outside * image.n_pairs)
            rec[1] += image.n_pairs
            rec[2] = max(rec[2], float(d.deaths_A2.max()))
    print(f"pairs outside [{spec.lo_A2:g}, {spec.hi_A2:g}]² Å² by density (sampled structures):")
    for density, (out, total, max_death) in sorted(outside.items(), key=lambda kv: kv[0] or 0.0):
        print(f"  {density} g/cm³: {out} of {total} pairs outside, largest death {max_death:.2f} Å²")


if __name__ == "__main__":
    main()
