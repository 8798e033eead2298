# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a pd-local MD step spends its time, how it scales with atoms, and with threads.

Per cell (2D sheets and 3D cells: random packings at carbon density, `tests/test_local.py`), an
untrained pd-local model with the default descriptor and network (the cost does not depend on the
weights) runs `--steps` evaluations (energy + forces + extrapolation grade, as `pdmd md` does each
step) along an MD-like path (300 K Maxwell-Boltzmann velocities, 1 fs per step). Printed:
- ms per step and µs per atom-step (one thread, no profiler), with the ratio of µs per atom-step
  to the smallest cell of the same dimension (linear cost: 1.0);
- with `--reference`: ms per step of the same path without the compiled kernels (numpy, gudhi and
  torch: `pdmd.models.local.compiled.use_compiled(False)`, what pd-local ran before them, and what
  runs without numba), in turn in this run, and the speed-up;
- the share of each stage, from a profiled second pass: neighbour lists, the certificate of the
  cached triangulations, retriangulation (compiled lower hulls; qhull for degenerate sets), complexes and pairs,
  feature vectors (forward), network (forward), backward (forces: compiled feature gradient and autograd),
  grade;
- with `--threads 1,2`: ms per step at each thread count (torch and numba), side by side in this run.

`--against DIR` (a checkout of another commit, e.g. `git worktree add /tmp/before REV`) instead times each
cell in fresh processes with this checkout's pdmd and with DIR's, in turn `--pairs` times, and prints the
median ms per step of each and the median of the pairwise ratios (the speed-up of this checkout).

    python benchmarks/local_md_profile.py                      # 2D 680/2,720/10,880, 3D 216/512/4,096
    python benchmarks/local_md_profile.py --threads 1,2 --cells 2:680,3:512
    python benchmarks/local_md_profile.py --reference --cells 2:680,3:512 --steps 10
    python benchmarks/local_md_profile.py --quick               # 2D 120 and 3D 64 atoms, 3 steps
    python benchmarks/local_md_profile.py --against /tmp/before --cells 2:680,3:512 --steps 20 --pairs 5
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CELLS = "2:680,2:2720,2:10880,3:216,3:512,3:4096"
QUICK_CELLS = "2:120,3:64"
STAGES = {  # stage: (file suffix, function) whose cumulative time it is
    "neighbour lists": ("local/complex.py", "neighbourhoods"),
    "certificate": ("local/incremental.py", "_invalid_atoms"),
    "retriangulation": ("local/triangulation.py", "regular_tops"),  # compiled lower hulls, qhull if degenerate
    "complexes and pairs": ("local/complex.py", "topology_of"),
    "features": ("local/features.py", "atom_features"),
    "network": ("local/model.py", "_atom_energies"),
    "backward": ("~", "<method 'run_backward' of 'torch._C._EngineBase' objects>"),
    "grade": ("pdmd/domain.py", "grade"),
}


def model_and_path(dim: int, n: int, steps: int):
    """An untrained default pd-local model with a grade, and `steps` frames of an MD-like path."""
    from ase import units
    from test_local import moved, random_packing

    from pdmd.domain import fit_domain
    from pdmd.models.local.features import LocalDescriptorConfig
    from pdmd.models.local.model import AtomicNet, LocalPDModel

    torch.manual_seed(0)
    cfg = LocalDescriptorConfig.default(dim)
    frame = random_packing(n, dim, seed=n)
    model = LocalPDModel({"model_kind": "pd-local"}, AtomicNet(cfg.n_features, (128, 128)), cfg)
    model.domain = fit_domain(model.features(frame))
    rng = np.random.default_rng(0)
    velocity = np.zeros_like(frame.positions)
    velocity[:, :dim] = rng.normal(0.0, np.sqrt(units.kB * 300.0 / 12.011) * units.fs, (n, dim))
    return model, [moved(frame, frame.positions + k * velocity) for k in range(steps + 1)]


def step_ms(model, path) -> float:
    """Mean ms per evaluation along `path` (its first frame is a warm-up: neighbour lists, triangulations)."""
    model.evaluate(path[0])
    t0 = time.perf_counter()
    for frame in path[1:]:
        model.evaluate(frame)
    return 1e3 * (time.perf_counter() - t0) / (len(path) - 1)


def stage_shares(model, path) -> dict[str, float]:
    """Share of each stage in a profiled pass along `path` (cumulative time of its function / total)."""
    prof = cProfile.Profile()
    prof.enable()
    for frame in path[1:]:
        model.evaluate(frame)
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    out = {}
    for stage, (suffix, name) in STAGES.items():
        out[stage] = sum(v[3] for (f, _, fn), v in stats.items() if fn == name and f.endswith(suffix)) / total
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", default=None, help=f"dim:atoms,... (default {CELLS})")
    p.add_argument("--steps", type=int, default=5, help="timed MD steps per cell (default 5)")
    p.add_argument("--threads", default="1", help="thread counts to compare, e.g. 1,2 (default 1)")
    p.add_argument("--reference", action="store_true", help="also without the compiled kernels, and the speed-up")
    p.add_argument("--quick", action="store_true", help=f"cells {QUICK_CELLS}, 3 steps: the code path in seconds")
    p.add_argument("--against", type=Path, help="another checkout: this one's speed-up over it, in turn")
    p.add_argument("--pairs", type=int, default=5, help="timings of each checkout with --against (default 5)")
    p.add_argument("--time-only", help=argparse.SUPPRESS)  # dim:atoms: print ms per step of that cell, nothing else
    args = p.parse_args()
    from pdmd.models.local.compiled import set_threads, use_compiled

    cells = [
        tuple(int(x) for x in c.split(":")) for c in (args.cells or (QUICK_CELLS if args.quick else CELLS)).split(",")
    ]
    steps = 3 if args.quick else args.steps
    if args.time_only:
        set_threads(1)
        torch.set_num_threads(1)
        print(step_ms(*model_and_path(*(int(x) for x in args.time_only.split(":")), steps)))
        return
    if args.against:
        against(cells, steps, args.against, args.pairs)
        return
    threads = [int(t) for t in args.threads.split(",")]
    print("| cell | atoms | ms/step (1 thread) | µs/atom-step | vs smallest | "
          + ("ms/step without compiled kernels (speed-up) | " if args.reference else "")
          + " | ".join(f"ms/step {t} threads" for t in threads[1:])
          + (" | " if threads[1:] else "") + " | ".join(STAGES) + " |")  # fmt: skip
    print("|---" * (5 + args.reference + len(threads[1:]) + len(STAGES)) + "|")
    smallest: dict[int, float] = {}
    for dim, n in cells:
        model, path = model_and_path(dim, n, steps)
        set_threads(1)
        ms = step_ms(model, path)
        per_atom = 1e3 * ms / n
        smallest.setdefault(dim, per_atom)
        more = []
        if args.reference:  # a fresh model: its cache is built the way the reference path builds it
            use_compiled(False)
            more.append(step_ms(*model_and_path(dim, n, steps)))
            use_compiled(True)
        for t in threads[1:]:
            set_threads(t)
            more.append(step_ms(model, path))
        set_threads(1)
        shares = stage_shares(model, path)
        cols = [f"{dim}D", str(n), f"{ms:.1f}", f"{per_atom:.1f}", f"{per_atom / smallest[dim]:.2f}"]
        cols += [f"{m:.1f} ({ms / m:.2f}×)" if i or not args.reference else f"{m:.1f} ({m / ms:.2f}×)"
                 for i, m in enumerate(more)]  # fmt: skip
        cols += [f"{100 * s:.0f} %" for s in shares.values()]
        print("| " + " | ".join(cols) + " |", flush=True)


def against(cells: list[tuple[int, int]], steps: int, other: Path, pairs: int) -> None:
    """Per cell: ms per step with this checkout's pdmd and with `other`'s, `pairs` times in turn (fresh processes)."""

    def timed(cell: str, tree: Path) -> float:
        env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
        cmd = [sys.executable, __file__, "--time-only", cell, "--steps", str(steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"timing {cell} with the pdmd of {tree} failed:\n{proc.stderr[-2000:]}")
        return float(proc.stdout.split()[-1])

    here = Path(__file__).resolve().parents[1]

    print(f"| cell | atoms | ms/step, this checkout | ms/step, {other} | speed-up (median of {pairs} pairs) |")
    print("|---|---|---|---|---|")
    for dim, n in cells:
        mine, theirs = [], []
        for _ in range(pairs):
            theirs.append(timed(f"{dim}:{n}", other))
            mine.append(timed(f"{dim}:{n}", here))
        ratio = np.median(np.array(theirs) / np.array(mine))
        print(f"| {dim}D | {n} | {np.median(mine):.1f} | {np.median(theirs):.1f} | {ratio:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
