# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local's uncertainty, fitted at training: the descriptor domain, the committee's trust window, the core.

- Extrapolation grade (every call, cheap): `pdmd.domain` on the per-atom descriptor vectors of the
  training atoms. Its stop threshold for MD is derived from the training set: the domain is fitted
  without about 10 % of the training structures (whole groups, e.g. melt-quench runs, where there
  are several, so the held-out ones are new structures and not neighbours of training snapshots)
  and graded on them; the threshold is `GRADE_MARGIN` × the largest grade of those held-out
  (in-domain) atoms, at least `MIN_GRADE_THRESHOLD` (ACE/pacemaker users stop MD at grades of 5–10).
- Committee force deviation (K networks): per atom sqrt(mean_m |F_m - F̄|²), eV/Å (DP-GEN's
  max_devi_f is its maximum over atoms). The trust window [low, high] comes from the committee's own
  deviation on its training structures: low = the 95th percentile of their max_devi_f, high = 3 × low.
- r_min for the core repulsion: the shortest pair distance in the training structures.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from pdmd.domain import DomainModel, calibrated_domain, fit_domain
from pdmd.models.local.core import shortest_pair_A
from pdmd.models.local.features import LocalDescriptorConfig, atom_features

log = logging.getLogger(__name__)

MIN_GRADE_THRESHOLD = 5.0
"""The MD stop threshold is at least this grade."""
TRUST_LOW_QUANTILE = 0.95
TRUST_HIGH_OVER_LOW = 3.0
ATOMS_PER_STRUCTURE = 200
"""At most this many atoms (random) per structure go into the domain fit and its calibration."""


def structure_features(
    data, idx: np.ndarray, cfg: LocalDescriptorConfig, rng: np.random.Generator, chunk: int = 16
) -> list[np.ndarray]:
    """Per-atom descriptor vectors of structures `idx` of a `pdmd.models.local.train.Prepared`, at most
    `ATOMS_PER_STRUCTURE` atoms (a random subset) of each, so that paper-scale sets stay in memory.
    """
    out: list[np.ndarray] = []
    for start in range(0, len(idx), chunk):
        part = idx[start : start + chunk]
        topo, pos, _, counts = data.batch(part)
        with torch.no_grad():
            x = atom_features(pos.detach(), topo, cfg).numpy()
        for f in np.split(x, np.cumsum(counts.numpy().astype(int))[:-1]):
            keep = f if len(f) <= ATOMS_PER_STRUCTURE else f[rng.choice(len(f), ATOMS_PER_STRUCTURE, replace=False)]
            out.append(np.array(keep))
    return out


def fit_local_domain(
    data, train_idx: np.ndarray, cfg: LocalDescriptorConfig, seed: int = 0, groups: list[str] | None = None
) -> tuple[DomainModel, dict]:
    """The domain of the training atoms and its card section (threshold derived from held-out training atoms).

    groups: the group (e.g. melt-quench run) of each training structure, for the held-out part.
    """
    rng = np.random.default_rng(seed)
    train_idx = np.asarray(train_idx, int)
    feats = structure_features(data, train_idx, cfg, rng)
    domain, held_max, threshold, _ = calibrated_domain(
        len(train_idx), groups, rng, lambda idx: fit_domain(np.concatenate([feats[i] for i in idx]), seed=seed),
        lambda model, idx: max(model.grade(feats[i]).max() for i in idx), MIN_GRADE_THRESHOLD,
    )  # fmt: skip
    train_max = float(max(domain.grade(f).max() for f in feats))
    section = {
        "file": "domain.npz",
        "features": "pd-local per-atom descriptor vectors",
        "components": int(domain.components.shape[0]),
        "max_grade_training_atoms": train_max,
        "max_grade_held_out_training_atoms": held_max,
        "max_extrapolation_default": float(threshold),
    }
    log.info("pd-local domain: %d components; largest grade of held-out training atoms %.2f; MD stops above %.2f",
             section["components"], held_max, threshold)  # fmt: skip
    return domain, section


def training_r_min(data, train_idx: np.ndarray) -> float:
    """Shortest pair distance (Å) in the training structures of a `Prepared`."""
    r = [shortest_pair_A(t.offset + data.positions[i][t.atom, : t.dim] - data.positions[i][t.centre, : t.dim])
         for i, t in ((i, data.topologies[i]) for i in np.asarray(train_idx, int))]  # fmt: skip
    return float(min(r)) if r else float("inf")


def force_deviation(forces: np.ndarray) -> np.ndarray:
    """Per-atom committee force deviation (N,) eV/Å from member forces (K, N, 3)."""
    f = np.asarray(forces, float)
    return np.sqrt(((f - f.mean(0)) ** 2).sum(2).mean(0))


def trust_window(member_forces: list[list[np.ndarray]], idx: np.ndarray) -> dict:
    """DP-GEN's trust window (eV/Å) from the committee's max_devi_f on structures `idx`.

    member_forces[m][i]: member m's forces (N_i, 3) on structure i.
    """
    devi = np.array([force_deviation([mf[i] for mf in member_forces]).max() for i in np.asarray(idx, int)])
    low = float(max(np.quantile(devi, TRUST_LOW_QUANTILE), 1e-3)) if len(devi) else 0.05
    return {
        "training_max_devi_f_eV_per_A": {
            "median": float(np.median(devi)) if len(devi) else None,
            "q95": float(np.quantile(devi, 0.95)) if len(devi) else None,
        },  # fmt: skip
        "trust_low_eV_per_A": low,
        "trust_high_eV_per_A": TRUST_HIGH_OVER_LOW * low,
        "max_force_deviation_default_eV_per_A": TRUST_HIGH_OVER_LOW * low,
    }
