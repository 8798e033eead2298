"""Structures as plain arrays, their validation, and conversion from/to ASE.

A `Frame` holds Cartesian positions (Å), a 3×3 cell (rows are lattice vectors, Å), atomic
numbers and periodicity. Validation turns the usual ways input goes wrong (NaN coordinates,
atoms far outside the cell, wrong length units, non-planar "2D" input) into `InputError`s that
name the atom and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import InputError

CARBON_BOND_RANGE_A = (1.0, 2.0)
"""Nearest-neighbour distances (Å) that a carbon structure in Å must have; else units are wrong."""
MIN_SEPARATION_A = 0.5
"""Atoms closer than this (Å) overlap: an input error for any element."""


@dataclass(frozen=True)
class Frame:
    """One atomic configuration: positions (N,3) Å, cell (3,3) Å, atomic numbers (N,), pbc (3,)."""

    positions: np.ndarray
    cell: np.ndarray
    numbers: np.ndarray
    pbc: tuple[bool, bool, bool]

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    def to_ase(self):
        """Return an `ase.Atoms` copy."""
        from ase import Atoms

        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)

    @classmethod
    def from_ase(cls, atoms) -> Frame:
        return cls(
            positions=np.asarray(atoms.get_positions(), dtype=float),
            cell=np.asarray(atoms.get_cell()[:], dtype=float),
            numbers=np.asarray(atoms.get_atomic_numbers(), dtype=int),
            pbc=tuple(bool(p) for p in atoms.pbc),
        )


def read_frames(path: str | Path, index: str = ":") -> list:
    """Read every structure ASE can parse from `path`; unreadable files raise InputError."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file {path} does not exist")
    try:
        images = read(str(path), index=index)
    except Exception as err:  # ASE raises many types for malformed files
        raise InputError(f"cannot read structure file {path}: {type(err).__name__}: {err}") from err
    images = images if isinstance(images, list) else [images]
    if not images:
        raise InputError(f"structure file {path} holds no structures")
    return images


def is_axis_aligned(cell: np.ndarray, tol: float = 1e-6) -> bool:
    """True when the cell matrix is diagonal (orthorhombic and aligned with x, y, z)."""
    off = cell - np.diag(np.diag(cell))
    return bool(np.all(np.abs(off) <= tol * max(1.0, float(np.abs(cell).max()))))


def validate_frame(frame: Frame, dim: int, *, check_bond_units: bool = True, label: str = "structure") -> Frame:
    """Check a frame for descriptor input and return it with atoms wrapped into the cell.

    dim = 2: a periodic sheet in the xy plane (z is ignored but must be flat within 0.5 Å);
    dim = 3: a 3D periodic cell (any lattice; backends that need an orthorhombic one check that).
    Atoms slightly outside a periodic cell are wrapped; atoms more than one cell length outside
    mean a wrong cell or wrong units and are an error.
    """
    pos = np.asarray(frame.positions, dtype=float)
    cell = np.asarray(frame.cell, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"{label}: positions must have shape (N, 3), got {pos.shape}")
    if len(pos) == 0:
        raise InputError(f"{label}: has zero atoms")
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if bad.size:
        raise InputError(f"{label}: atom {bad[0]} (and {bad.size - 1} more) has non-finite coordinates {pos[bad[0]]}")
    if not np.isfinite(cell).all():
        raise InputError(f"{label}: cell has non-finite entries")
    axes = range(dim)
    lattice = cell[:dim, :dim]
    volume = float(np.linalg.det(lattice)) if dim > 0 else 0.0
    in_plane = dim == 3 or np.allclose(cell[:2, 2], 0.0, atol=1e-6)
    if not in_plane or volume <= 1e-6 * max(1.0, float(np.abs(lattice).max())) ** dim:
        raise InputError(
            f"{label}: the first {dim} lattice vectors must span a right-handed cell of positive "
            f"{'area in the xy plane' if dim == 2 else 'volume'}; got cell {cell.tolist()}"
        )
    if not all(frame.pbc[i] for i in axes):
        raise InputError(f"{label}: must be periodic along the first {dim} axes, pbc={frame.pbc}")
    frac = pos[:, :dim] @ np.linalg.inv(lattice)
    far = np.flatnonzero(((frac < -1.0) | (frac > 2.0)).any(axis=1))
    if far.size:
        raise InputError(
            f"{label}: atom {far[0]} at {pos[far[0]].round(3).tolist()} Å lies more than a cell length outside the "
            f"cell {np.linalg.norm(lattice, axis=1).round(3).tolist()} Å ({far.size} such atoms): wrong cell or "
            "wrong units?"
        )
    frac = frac % 1.0
    frac[frac >= 1.0] = 0.0
    wrapped = pos.copy()
    wrapped[:, :dim] = frac @ lattice
    if dim == 2 and len(pos) > 1 and np.ptp(pos[:, 2]) > 0.5:
        raise InputError(f"{label}: a 2D structure must be flat in z; z spans {np.ptp(pos[:, 2]):.3f} Å")
    out = Frame(positions=wrapped, cell=cell, numbers=np.asarray(frame.numbers, int), pbc=frame.pbc)
    if len(pos) > 1:
        nn = nearest_neighbour_distances(out, dim)
        if check_bond_units:
            check_length_units(out, nn, label=label)
        close = int(np.argmin(nn))
        if nn[close] < MIN_SEPARATION_A:
            raise InputError(
                f"{label}: atom {close} is {nn[close]:.3f} Å from its nearest neighbour (< {MIN_SEPARATION_A} Å): "
                f"overlapping atoms ({int(np.sum(nn < MIN_SEPARATION_A))} atoms this close)"
            )
    return out


def nearest_neighbour_distances(frame: Frame, dim: int) -> np.ndarray:
    """Nearest-neighbour distance of each atom (Å), with periodic images, for any lattice."""
    from scipy.spatial import cKDTree

    lattice = frame.cell[:dim, :dim]
    pos = frame.positions[:, :dim]
    if is_axis_aligned(lattice):
        tree = cKDTree(pos % np.diag(lattice), boxsize=np.diag(lattice))
        d, _ = tree.query(pos % np.diag(lattice), k=2)
        return d[:, 1]
    shifts = np.array(np.meshgrid(*[[-1, 0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    images = (pos[None, :, :] + (shifts @ lattice)[:, None, :]).reshape(-1, dim)
    d, _ = cKDTree(images).query(pos, k=2)
    return d[:, 1]


def check_length_units(frame: Frame, nn_distances_A: np.ndarray, label: str = "structure") -> None:
    """Raise if carbon nearest-neighbour distances (Å, per atom) say the coordinates are not in Å."""
    if not np.all(frame.numbers == 6):
        return
    median = float(np.median(nn_distances_A))
    low, high = CARBON_BOND_RANGE_A
    if not low <= median <= high:
        raise InputError(
            f"{label}: median C-C nearest-neighbour distance is {median:.3f}, expected {low}-{high} Å; "
            "coordinates must be in Å (nm or bohr input?)"
        )
