"""Periodic 3D persistence-diagram throughput: HomCloud (reference) vs the default `delaunay` backend.

    .venv/bin/python benchmarks/periodic_pd_throughput.py DATA [--plan ac-paper] [--n 40]

Takes `--n` stored structures of each cell size of the plan (216-atom training and 512-atom
validation cells, spread over the densities), computes each diagram with both backends in this
process, side by side, and prints structures/s for each, the ratio, the largest difference
between the two diagrams, and per density the largest H1 death and the pairs outside the
histogram window (for aC, [0, 8]² Å²).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from pdmd.campaign import PLANS, plan_runs
from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import alpha_diagram
from pdmd.store.datastore import DataStore


def sample_docs(store: DataStore, run_ids: list[str], n: int) -> list[dict]:
    """`n` structure documents spread evenly over the runs and their snapshots."""
    docs = [d for r in run_ids for d in store.run_structures(r)]
    idx = np.linspace(0, len(docs) - 1, min(n, len(docs))).round().astype(int)
    return [docs[i] for i in idx]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--plan", default="ac-paper")
    p.add_argument("--n", type=int, default=40, help="structures per cell size")
    args = p.parse_args()
    store = DataStore(args.data_dir)
    spec = HistogramSpec(*PLANS[args.plan].range_A2)
    train, valid = plan_runs(args.plan)
    outside = defaultdict(lambda: [0, 0, 0.0])  # density -> [pairs outside, pairs, max death]
    for runs in (train, valid):
        docs = sample_docs(store, [r.run_id for r in runs], args.n)
        frames = [store.load_frame(d) for d in docs]
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
            f"{runs[0].n_atoms} atoms, {len(frames)} structures: HomCloud {rate['homcloud']:.1f} /s "
            f"({1000 / rate['homcloud']:.0f} ms each), delaunay {rate['delaunay']:.1f} /s "
            f"({1000 / rate['delaunay']:.0f} ms each), ratio {rate['delaunay'] / rate['homcloud']:.1f}x; "
            f"largest birth/death difference {diff:.1e} Å²"
        )
        for doc, d in zip(docs, diagrams["delaunay"]):
            image = pd_histogram(d.births_A2, d.deaths_A2, spec)
            rec = outside[doc.get("density_g_cm3")]
            rec[0] += round(image.fraction_outside * image.n_pairs)
            rec[1] += image.n_pairs
            rec[2] = max(rec[2], float(d.deaths_A2.max()))
    print(f"pairs outside [{spec.lo_A2:g}, {spec.hi_A2:g}]² Å² by density (sampled structures):")
    for density, (out, total, max_death) in sorted(outside.items()):
        print(f"  {density} g/cm³: {out} of {total} pairs outside, largest death {max_death:.2f} Å²")


if __name__ == "__main__":
    main()
