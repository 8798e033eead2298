"""Random starting structures: atoms placed uniformly in a periodic cell with a minimum distance."""

from __future__ import annotations

import numpy as np

from pdmd.errors import InputError

AVOGADRO = 6.02214076e23
CARBON_MASS_AMU = 12.011


def cubic_cell_length_A(n_atoms: int, density_g_cm3: float, mass_amu: float = CARBON_MASS_AMU) -> float:
    """Side (Å) of the cubic cell holding `n_atoms` of mass `mass_amu` at `density_g_cm3`."""
    if not density_g_cm3 > 0:
        raise InputError(f"density must be positive, got {density_g_cm3} g/cm³")
    volume_cm3 = n_atoms * mass_amu / (AVOGADRO * density_g_cm3)
    return (volume_cm3 * 1e24) ** (1.0 / 3.0)


def random_positions(
    n_atoms: int, cell: np.ndarray, min_distance_A: float, seed: int, max_tries_per_atom: int = 10_000
) -> np.ndarray:
    """Cartesian positions (N, d) Å, uniform in the periodic `cell` (d×d rows), pairwise ≥ `min_distance_A`.

    Distances use the minimum image of the fractional difference, exact for orthorhombic cells
    and cells that are not strongly skewed.
    """
    cell = np.asarray(cell, float)
    d = cell.shape[0]
    rng = np.random.default_rng(seed)
    frac = np.empty((n_atoms, d))
    placed = 0
    tries = 0
    while placed < n_atoms:
        candidate = rng.random(d)
        diff = frac[:placed] - candidate
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ cell, axis=1)
        if placed == 0 or dist.min() >= min_distance_A:
            frac[placed] = candidate
            placed += 1
            tries = 0
            continue
        tries += 1
        if tries > max_tries_per_atom:
            raise InputError(
                f"cannot place {n_atoms} atoms {min_distance_A} Å apart in this cell (stuck at {placed}): "
                "density too high for the minimum distance"
            )
    return frac @ cell
