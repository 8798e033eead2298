# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a model's training data lie in its descriptor space: the extrapolation grade.

A model's inputs (per-atom vectors for pd-local, a pooled PD image per structure for the global
kinds) are standardized with the training mean and std. The grade of a vector x is

    grade(x) = max(γ_D(x), γ_box(x))

- γ_D, the D-optimality grade of ACE/pacemaker (Lysogorskiy et al., npj Comput. Mater. 2023): the
  standardized training vectors are projected on their leading principal components (Z, n × k);
  maxvol picks the k rows A whose determinant is (locally) largest, so that every training row z
  is a combination z = c·A with all |c_j| ≤ 1 (+ a tolerance). γ_D(x) = max_j |(z(x) A⁻¹)_j|: ≤ 1
  inside the training data's "hull", growing linearly with the distance outside it.
- γ_box: per standardized component, the distance from the centre of the training range in units
  of its half width (at least `BOX_FLOOR` std), so a direction the training data never varied
  (e.g. a bond length never seen) is caught even though no principal component carries it.

Both are dimensionless and 1 at the edge of the training data; `DomainModel.save/load` keep the
model beside a model card (npz).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

BOX_FLOOR = 0.5
"""Smallest half width (standardized units) of a component's training range in the box grade."""
MAXVOL_TOL = 1.01
"""maxvol stops when no training row needs a coefficient larger than this."""
MAX_ROWS = 60_000
"""At most this many training vectors (a random subset) are used to fit a domain."""
GRADE_MARGIN = 2.0
"""A default threshold is this multiple of the largest grade of held-out training structures."""


@dataclass
class DomainModel:
    """Standardization, training range and maxvol active set of a training set's descriptor vectors (F,)."""

    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    components: np.ndarray
    """(k, F) leading principal directions in standardized space."""
    inverse: np.ndarray
    """(k, k) inverse of the active rows' projections."""

    def standardize(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, float) - self.mean) / self.scale

    def grade(self, x: np.ndarray) -> np.ndarray:
        """Extrapolation grade (dimensionless, ≤ ~1 inside the training data) of each row of `x` (n, F)."""
        z = self.standardize(np.atleast_2d(x))
        centre, half = 0.5 * (self.high + self.low), np.maximum(0.5 * (self.high - self.low), BOX_FLOOR)
        box = np.abs(z - centre) / half
        out = box.max(axis=1) if box.shape[1] else np.zeros(len(z))
        if len(self.inverse):
            out = np.maximum(out, np.abs((z @ self.components.T) @ self.inverse).max(axis=1))
        return out

    def save(self, path: str | Path) -> Path:
        """Write the model as npz (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{f.name: getattr(self, f.name) for f in fields(self)})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DomainModel:
        with np.load(path) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)})


def maxvol(z: np.ndarray, tol: float = MAXVOL_TOL, max_iter: int = 2000) -> np.ndarray:
    """Row indices (k,) of a square submatrix of `z` (n, k), n ≥ k, of locally maximal |det| (Goreinov et al.).

    Starts from QR with column pivoting of zᵀ and swaps rows until every coefficient of every row in the
    basis of the chosen rows is at most `tol` in magnitude.
    """
    from scipy.linalg import qr

    n, k = z.shape
    _, _, piv = qr(z.T, mode="economic", pivoting=True)
    rows = np.array(piv[:k])
    b = z @ np.linalg.inv(z[rows])
    for _ in range(max_iter):
        i, j = np.unravel_index(np.argmax(np.abs(b)), b.shape)
        if abs(b[i, j]) <= tol:
            break
        bj = b[:, j].copy()
        bi = b[i].copy()
        bi[j] -= 1.0
        b -= np.outer(bj, bi / b[i, j])
        rows[j] = i
    return rows


def fit_domain(x: np.ndarray, *, variance: float = 0.99999, max_components: int = 64, seed: int = 0) -> DomainModel:
    """The domain of training vectors `x` (n, F): standardization, range and maxvol active set.

    Components: the fewest principal directions that carry `variance` of the standardized data (at most
    `max_components`, and fewer than the number of vectors).
    """
    x = np.asarray(x, float)
    if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
        raise ValueError("a domain needs at least 2 finite training vectors (n, F)")
    if len(x) > MAX_ROWS:
        x = x[np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False)]
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.maximum(std, 1e-3 * max(float(np.median(std[std > 0])) if (std > 0).any() else 1.0, 1e-12))
    z = (x - mean) / scale
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    energy = np.cumsum(s**2) / max(float((s**2).sum()), 1e-300)
    k = int(min(np.searchsorted(energy, variance) + 1, max_components, len(x) - 1, int((s > 1e-8 * s[0]).sum())))
    components = vt[:k]
    proj = z @ components.T
    inverse = np.linalg.inv(proj[maxvol(proj)]) if k else np.zeros((0, 0))
    return DomainModel(mean, scale, z.min(axis=0), z.max(axis=0), components, inverse)


def held_out(groups: list[str] | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (of n) of about 10 % of the structures: whole groups where there are 3 or more, else structures."""
    if n < 4:
        return np.zeros(0, int)
    names = sorted(set(groups)) if groups is not None else []
    if len(names) < 3:
        return rng.permutation(n)[: max(1, n // 10)]
    out: list[int] = []
    for name in rng.permutation(names):
        out += [i for i, g in enumerate(groups) if g == name]
        if len(out) >= n // 10:
            break
    return np.array(out, int)


def calibrated_domain(
    n: int,
    groups: list[str] | None,
    rng: np.random.Generator,
    fit: Callable[[np.ndarray], DomainModel],
    worst_grade: Callable[[DomainModel, np.ndarray], float],
    minimum: float,
    margin: float = GRADE_MARGIN,
) -> tuple[DomainModel, float, float, np.ndarray]:
    """A domain of n training structures and its default threshold, derived from the training set.

    `fit(idx)` fits a domain on structures idx; `worst_grade(model, idx)` is the largest grade of structures idx.
    The domain is fitted without the `held_out` structures and graded on them; threshold = max(`minimum`,
    `margin` × their largest grade). Returns (domain on all n, held-out largest grade (NaN without a
    held-out part), threshold, held-out positions).
    """
    held = held_out(groups, n, rng)
    kept = np.setdiff1d(np.arange(n), held)
    held_max = float(worst_grade(fit(kept), held)) if len(held) and len(kept) >= 2 else float("nan")
    threshold = max(minimum, margin * held_max) if np.isfinite(held_max) else minimum
    return fit(np.arange(n)), held_max, float(threshold), held
