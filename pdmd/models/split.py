"""Train/test splits that are reproducible by seed.

"run": whole melt-quench trajectories go to test, so no test structure shares a trajectory
with a training one (the default; the honest measure of transfer). "snapshot": structures are
split at random regardless of trajectory (what the paper's numbers most likely used).
"""

from __future__ import annotations

import numpy as np

SPLITS = ("run", "snapshot")


def train_test_split(
    groups: list[str], test_fraction: float, seed: int, kind: str = "run"
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test); `groups` holds the run id of each structure."""
    if kind not in SPLITS:
        raise ValueError(f"unknown split {kind!r}; use one of {SPLITS}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    n = len(groups)
    if kind == "snapshot":
        perm = rng.permutation(n)
        n_test = max(1, round(test_fraction * n))
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    unique = sorted(set(groups))
    if len(unique) < 2:
        raise ValueError("a split by run needs structures from at least two runs")
    perm = rng.permutation(len(unique))
    n_test = max(1, round(test_fraction * len(unique)))
    test_runs = {unique[i] for i in perm[:n_test]}
    is_test = np.array([g in test_runs for g in groups])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def thin_indices(groups: list[str], every: int) -> np.ndarray:
    """Indices keeping every `every`-th structure of each run (in stored order) and each run's last one.

    Consecutive quench snapshots of a run are strongly correlated; thinning keeps the runs (so a
    split by run picks the same runs) and their final states. `every` 1: all structures.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    last = {g: i for i, g in enumerate(groups)}  # each run's last structure, wherever its others are
    keep, seen = [], {}
    for i, g in enumerate(groups):
        k = seen.get(g, 0)
        seen[g] = k + 1
        if k % every == 0 or last[g] == i:
            keep.append(i)
    return np.asarray(keep, int)
