"""Structures as plain arrays, their validation, and conversion from/to ASE.

A `Frame` holds Cartesian positions (Å), a 3×3 cell (rows are lattice vectors, Å), atomic
numbers and periodicity. Validation turns the usual ways input goes wrong (NaN coordinates,
wrong length units, atoms that are not carbon, a sheet given as a 3D cell or the reverse) into
`InputError`s that name the atom and the problem. One reader (`read_frames`) serves every command;
`sheet_frame` maps a 2D sheet (vacuum along any lattice direction, any cell, flat or buckled) to its
own frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.errors import InputError

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ReadOptions:
    """How to read structure files: ASE format name (None: guessed) and LAMMPS data/dump settings.

    atom_style: LAMMPS atom style of a data file (atomic, charge, full, ...; None: from the
    `Atoms # style` comment or the column count); units: LAMMPS units of a data file or dump
    (metal, real, ...; lengths are converted to Å).
    """

    format: str | None = None
    atom_style: str | None = None
    units: str | None = None

    def ase_kwargs(self, fmt: str | None) -> dict:
        """Keyword arguments for `ase.io.read` with format `fmt`."""
        kwargs: dict = {"format": fmt} if fmt else {}
        if fmt == "lammps-data":
            kwargs["atom_style"] = self.atom_style
            kwargs["units"] = self.units or "metal"
        elif fmt == "lammps-dump-text" and self.units:
            kwargs["units"] = self.units
        return kwargs


LAMMPS_DATA_SUFFIXES = (".data", ".lmp")
LAMMPS_DUMP_SUFFIXES = (".dump", ".lammpstrj")


def guess_format(path: Path) -> str | None:
    """ASE format of LAMMPS data files and text dumps (by suffix, name or first lines); None: ASE guesses."""
    name = path.name.lower()
    if path.suffix.lower() in LAMMPS_DATA_SUFFIXES or name.startswith("data."):
        return "lammps-data"
    try:
        with open(path, errors="replace") as fh:
            head = [fh.readline() for _ in range(40)]
    except OSError:
        return None
    if head and head[0].startswith("ITEM: TIMESTEP"):
        return "lammps-dump-text"
    if path.suffix.lower() in LAMMPS_DUMP_SUFFIXES or name.startswith("dump."):
        return "lammps-dump-text"
    if any(line.split()[-2:] == ["xlo", "xhi"] for line in head if line.strip()) and any(
        line.strip().lower().endswith("atoms") for line in head
    ):
        return "lammps-data"
    return None


def read_frames(path: str | Path, index: str = ":", options: ReadOptions | None = None) -> list:
    """Read every structure in `path` (any format ASE reads, LAMMPS data/dumps recognised) as ASE Atoms.

    Unreadable files raise one-line InputErrors naming the file, the reader's reason and what to do.
    """
    from ase.io import read

    options = options or ReadOptions()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file {path} does not exist")
    fmt = options.format or guess_format(path)
    try:
        images = read(str(path), index=index, **options.ase_kwargs(fmt))
    except Exception as err:  # ASE raises many types for malformed files
        reason = f"{type(err).__name__}: {err}".strip().rstrip(":") or type(err).__name__
        hint = (
            "give --atom-style (atomic, charge, full, ...) if the Atoms section has no '# style' comment"
            if fmt == "lammps-data"
            else "name the format with --format (an ASE format, e.g. extxyz, vasp, lammps-data, lammps-dump-text)"
        )
        what = fmt or "a guessed format"
        raise InputError(f"cannot read structure file {path} as {what} ({reason}); {hint}") from err
    images = images if isinstance(images, list) else [images]
    if not images:
        raise InputError(f"structure file {path} holds no structures")
    return images


def is_axis_aligned(cell: np.ndarray, tol: float = 1e-6) -> bool:
    """True when the cell matrix is diagonal (orthorhombic and aligned with x, y, z)."""
    off = cell - np.diag(np.diag(cell))
    return bool(np.all(np.abs(off) <= tol * max(1.0, float(np.abs(cell).max()))))


SUPPORTED_ELEMENTS = (6,)
"""Atomic numbers pdmd's descriptors and models are for: carbon (aGr sheets, aC cells)."""
VACUUM_MIN_A = 5.0
"""An empty gap at least this wide (Å) across a lattice direction is vacuum: the structure is a sheet."""
FLAT_TOL_A = 0.5
"""Atoms within this height (Å) of each other along a direction form a flat layer."""
THIN_CELL_A = 2.0
"""A flat layer in a cell thinner than this (Å) along its normal is a 2D simulation box, not a stacked crystal."""
MAX_SHEET_THICKNESS_A = 10.0
"""A sheet thicker than this (Å) along its normal is not one sheet (stray atoms, or a slab of bulk)."""


def check_elements(frame: Frame, label: str = "structure") -> None:
    """Refuse atoms other than carbon, naming them and what to do."""
    from ase.data import chemical_symbols

    numbers = np.asarray(frame.numbers, int)
    present, counts = np.unique(numbers, return_counts=True)
    other = [(int(z), int(c)) for z, c in zip(present, counts) if z not in SUPPORTED_ELEMENTS]
    if not other:
        return
    names = ", ".join(f"{c} {chemical_symbols[z] if 0 < z < len(chemical_symbols) else f'Z={z}'}" for z, c in other)
    if len(other) < len(present):
        raise InputError(
            f"{label}: mixes carbon with other atoms ({names}); pdmd describes pure carbon (aGr, aC): remove the "
            "other atoms first (ASE: atoms[atoms.numbers == 6])"
        )
    raise InputError(
        f"{label}: holds {names} atoms, not carbon; pdmd's descriptors and models are for carbon (aGr, aC) only "
        "(LAMMPS files read type 1 as H unless a data file has Masses (1 12.011) or a dump an element column)"
    )


def _full_cell(frame: Frame, label: str) -> np.ndarray:
    """The cell with one missing (zero) lattice vector replaced by the unit normal of the other two."""
    cell = np.array(frame.cell, dtype=float)
    if not np.isfinite(cell).all():
        raise InputError(f"{label}: cell has non-finite entries")
    zero = np.flatnonzero(np.linalg.norm(cell, axis=1) < 1e-8)
    if len(zero) > 1:
        raise InputError(
            f"{label}: the cell has {len(zero)} zero lattice vectors; pdmd needs a periodic sheet or a periodic 3D "
            "cell: give the structure its cell (e.g. extxyz Lattice=, POSCAR, LAMMPS box)"
        )
    if len(zero) == 1:
        k = int(zero[0])
        i, j = (a for a in range(3) if a != k)
        normal = np.cross(cell[i], cell[j])
        if np.linalg.norm(normal) > 0:
            cell[k] = normal / np.linalg.norm(normal) * (1.0 if k != 1 else -1.0)
    scale = max(1.0, float(np.abs(cell).max()))
    if abs(np.linalg.det(cell)) <= 1e-6 * scale**3:
        raise InputError(
            f"{label}: the lattice vectors must span a cell of positive volume (a sheet: two independent in-plane "
            f"vectors); got cell {cell.round(4).tolist()}"
        )
    return cell


def _largest_gap(frac: np.ndarray) -> tuple[float, float]:
    """Largest empty gap (fraction of the period) of periodic fractional coordinates and where atoms resume."""
    f = np.sort(np.mod(frac, 1.0))
    gaps = np.diff(np.concatenate([f, [f[0] + 1.0]]))
    g = int(np.argmax(gaps))
    return float(gaps[g]), float(f[(g + 1) % len(f)])


def sheet_axis(frame: Frame, label: str = "structure") -> int | None:
    """Lattice direction (0, 1, 2) across which a sheet has vacuum; None for a 3D periodic structure.

    A direction is vacuum when it is not periodic, when the atoms leave an empty gap of at least
    `VACUUM_MIN_A` across it, or when they form a flat layer in a cell thinner than `THIN_CELL_A`
    (a 2D simulation box). Works for any cell (orthogonal, hexagonal, triclinic) and buckled sheets.
    """
    cell = _full_cell(frame, label)
    pos = np.asarray(frame.positions, float)
    inv = np.linalg.inv(cell)
    frac = pos @ inv
    spacing = 1.0 / np.linalg.norm(inv, axis=0)  # distance between lattice planes (Å)
    vacuum = []
    for k in range(3):
        open_axis = not frame.pbc[k] or np.linalg.norm(frame.cell[k]) < 1e-8
        gap_frac, _ = _largest_gap(frac[:, k])
        gap_A = np.inf if open_axis else gap_frac * spacing[k]
        thickness = (1.0 - gap_frac) * spacing[k]
        if open_axis or gap_A >= VACUUM_MIN_A or (thickness <= FLAT_TOL_A and spacing[k] < THIN_CELL_A):
            vacuum.append(k)
    if len(vacuum) > 1:
        raise InputError(
            f"{label}: has vacuum (or no periodicity) along {len(vacuum)} lattice directions {vacuum}: a chain, "
            "cluster or molecule; pdmd describes periodic sheets (vacuum along one direction) and periodic 3D cells"
        )
    if not vacuum:
        return None
    k = vacuum[0]
    in_plane = [a for a in range(3) if a != k]
    if not all(frame.pbc[a] for a in in_plane):
        raise InputError(
            f"{label}: a sheet (vacuum along lattice vector {k}) must be periodic along its two in-plane lattice "
            f'vectors; pbc={tuple(bool(p) for p in frame.pbc)}: set pbc (extxyz pbc="T T F") or give the cell'
        )
    return k


def structure_dim(frame: Frame, label: str = "structure") -> int:
    """2 for a periodic sheet (vacuum along one lattice direction), 3 for a periodic 3D cell."""
    if not np.isfinite(np.asarray(frame.positions, float)).all():
        bad = int(np.flatnonzero(~np.isfinite(frame.positions).all(axis=1))[0])
        raise InputError(f"{label}: atom {bad} has non-finite coordinates {frame.positions[bad]}")
    return 2 if sheet_axis(frame, label) is not None else 3


def sheet_frame(frame: Frame, label: str = "structure") -> Frame:
    """A sheet in its own frame: in-plane lattice vectors a1 along x and a2 in the xy plane, heights (Å) along z
    centred on 0, pbc (True, True, False). Distances are kept; a sheet across the cell boundary is made whole.
    """
    return sheet_frame_and_rotation(frame, label)[0]


def sheet_frame_and_rotation(frame: Frame, label: str = "structure") -> tuple[Frame, np.ndarray]:
    """`sheet_frame` and its rotation R (3, 3): a vector v of the input (e.g. a force) is v @ R.T in the sheet
    frame, and a sheet-frame vector w is w @ R in the input's.
    """
    k = sheet_axis(frame, label)
    if k is None:
        raise InputError(
            f"{label}: is a 3D periodic structure (no vacuum gap of {VACUUM_MIN_A:g} Å or more along any lattice "
            "direction, periodic in all three), not a 2D sheet; use a 3D model / --dim 3, or give the sheet its vacuum"
        )
    cell = _full_cell(frame, label)
    frac = np.asarray(frame.positions, float) @ np.linalg.inv(cell)
    if frame.pbc[k] and np.linalg.norm(frame.cell[k]) >= 1e-8:
        _, start = _largest_gap(frac[:, k])
        frac[:, k] = np.mod(frac[:, k] - start, 1.0) + start  # one contiguous layer
    cart = frac @ cell
    i, j = (a for a in range(3) if a != k)
    normal = np.cross(cell[i], cell[j])
    normal /= np.linalg.norm(normal)
    e1 = cell[i] / np.linalg.norm(cell[i])
    rotation = np.stack([e1, np.cross(normal, e1), normal])  # rows: the sheet frame's axes
    local = cart @ rotation.T
    heights = local[:, 2]
    thickness = float(np.ptp(heights))
    if thickness > MAX_SHEET_THICKNESS_A:
        top = int(np.argmax(np.abs(heights - np.median(heights))))
        raise InputError(
            f"{label}: the sheet is {thickness:.1f} Å thick across its vacuum (atom {top} lies "
            f"{heights[top] - np.median(heights):+.1f} Å from its median plane), more than "
            f"{MAX_SHEET_THICKNESS_A:g} Å: "
            "not one sheet (stray atoms or a slab of bulk); check the structure"
        )
    local[:, 2] -= 0.5 * (heights.max() + heights.min())
    lattice = np.zeros((3, 3))
    lattice[:2] = cell[[i, j]] @ rotation.T
    lattice[:2, 2] = 0.0
    lattice[2, 2] = thickness + 2 * VACUUM_MIN_A
    return Frame(local, lattice, np.asarray(frame.numbers, int), (True, True, False)), rotation


def validate_frame(frame: Frame, dim: int, *, check_bond_units: bool = True, label: str = "structure") -> Frame:
    """Check a carbon structure for descriptor input and return it ready for a backend.

    dim = 2: a periodic sheet with vacuum along any lattice direction, any cell, flat or buckled,
    returned in its own frame (`sheet_frame`: in-plane lattice in the xy rows, heights along z);
    dim = 3: a periodic 3D cell without vacuum (any lattice). Atoms outside a periodic cell are
    wrapped into it (with a warning when they lay further out than rounding explains).
    """
    pos = np.asarray(frame.positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"{label}: positions must have shape (N, 3), got {pos.shape}")
    if len(pos) == 0:
        raise InputError(f"{label}: has zero atoms")
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if bad.size:
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise InputError(f"{label}: atom {bad[0]}{more} has non-finite coordinates {pos[bad[0]]}")
    check_elements(frame, label)
    if dim == 2:
        frame = sheet_frame(frame, label)
    else:
        k = sheet_axis(frame, label)
        if k is not None:
            raise InputError(
                f"{label}: is a 2D sheet (vacuum across lattice vector {k}), not a 3D periodic cell; use a 2D model / "
                "--dim 2 for sheets"
            )
    cell = np.asarray(frame.cell, dtype=float)
    lattice = cell[:dim, :dim] if dim == 2 else _full_cell(frame, label)
    pos = np.asarray(frame.positions, dtype=float)
    frac = pos[:, :dim] @ np.linalg.inv(lattice)
    outside = np.flatnonzero(((frac < -0.05) | (frac > 1.05)).any(axis=1))
    if outside.size:
        log.warning(
            "%s: %d atoms lay outside the periodic cell (up to %.1f cell lengths) and were wrapped into it",
            label,
            outside.size,
            float(np.max(np.maximum(-frac, frac - 1.0))),
        )
    frac = frac % 1.0
    frac[frac >= 1.0] = 0.0
    wrapped = pos.copy()
    wrapped[:, :dim] = frac @ lattice
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
    """Nearest-neighbour distance of each atom (Å, in 3D), periodic along the first `dim` lattice vectors."""
    from scipy.spatial import cKDTree

    pos, images = _with_neighbour_images(frame, dim)
    d, _ = cKDTree(images).query(pos, k=2)
    return d[:, 1]


def _with_neighbour_images(frame: Frame, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions (N, 3) Å and their images in the 3^dim cells around (and including) the cell, periodic along
    the first `dim` lattice vectors: every pair within one cell length is a pair of a position and an image.
    """
    pos = np.asarray(frame.positions, float)
    shifts = np.array(np.meshgrid(*[[-1, 0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    return pos, (pos[None, :, :] + (shifts @ np.asarray(frame.cell, float)[:dim])[:, None, :]).reshape(-1, 3)


BOND_CUTOFF_A = 1.85
"""C–C pairs closer than this (Å) count as bonds in `geometry_features` (the first minimum of amorphous carbon's
g(r) lies near 1.9 Å; 1.85 keeps hot, stretched bonds and leaves out second neighbours at ≥ 2.1 Å)."""
GEOMETRY_FEATURES = ("number density (atoms/Å² for sheets, /Å³ for cells)", "mean bond length (Å)",
                     "10th percentile bond length (Å)", "90th percentile bond length (Å)")  # fmt: skip


def geometry_features(frame: Frame, dim: int) -> np.ndarray:
    """`GEOMETRY_FEATURES` of one structure (4,): its number density and bond lengths (pairs < `BOND_CUTOFF_A`),
    periodic along the first `dim` lattice vectors; bond entries NaN where no pair is that close.
    """
    from scipy.spatial import cKDTree

    cell = np.asarray(frame.cell, float)
    measure = abs(np.linalg.det(cell)) if dim == 3 else float(np.linalg.norm(np.cross(cell[0], cell[1])))
    pos, images = _with_neighbour_images(frame, dim)
    pairs = cKDTree(pos).sparse_distance_matrix(cKDTree(images), BOND_CUTOFF_A, output_type="ndarray")
    bonds = pairs["v"][pairs["v"] > 1e-8]  # each bond from both ends; not the atom itself
    density = frame.n_atoms / measure if measure > 0 else np.nan
    if not len(bonds):
        return np.array([density, np.nan, np.nan, np.nan])
    return np.array([density, bonds.mean(), *np.percentile(bonds, [10.0, 90.0])])


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


def check_structure_fits(frame: Frame, dim: int, elements: list[int], label: str = "structure") -> None:
    """Refuse a structure of other elements or another dimensionality than a model's training data."""
    from ase.data import chemical_symbols

    present = {int(z) for z in np.unique(frame.numbers)}
    if not present <= set(elements):
        names = [chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}" for z in sorted(present)]
        raise InputError(
            f"{label}: contains elements Z={sorted(present - set(elements))} ({', '.join(names)}); the model was "
            f"trained on Z={sorted(elements)}: predict structures of those elements only"
        )
    actual = structure_dim(frame, label)
    if dim == 2 and actual == 3:
        raise InputError(
            f"{label}: is a 3D periodic structure (no vacuum gap of {VACUUM_MIN_A:g} Å or more along any lattice "
            "direction); this model was trained on 2D sheets: use a model trained on 3D cells"
        )
    if dim == 3 and actual == 2:
        raise InputError(
            f"{label}: is a 2D sheet (vacuum across lattice vector {sheet_axis(frame, label)}); this model was "
            "trained on 3D periodic cells: use a model trained on sheets"
        )
