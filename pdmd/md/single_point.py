# SPDX-License-Identifier: GPL-3.0-or-later
"""Reference energies and forces: single-point LAMMPS evaluations, and forces for stored data.

`single_point` evaluates a LAMMPS potential (Tersoff 1989 by default, any of
`pdmd.md.protocol.POTENTIALS`) on one structure: 2D sheets as in the melt-quench template
(`dimension 2`, a thin periodic z box), 3D cells orthorhombic or triclinic. `add_forces` gives
every stored structure without forces its single-point forces, checking that the recomputed
energy matches the stored one (so the forces belong to the labelled energy); `pdmd forces DATA_DIR`
is the command.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pdmd._lammps import load_lammps, potential_path
from pdmd.errors import InputError
from pdmd.structure import Frame

log = logging.getLogger(__name__)

ENERGY_MATCH_eV_PER_ATOM = 1e-5
"""Largest |stored - recomputed| energy per atom accepted when forces are added to stored structures."""


@dataclass(frozen=True)
class SinglePoint:
    """Potential energy (eV, total), forces (N, 3) eV/Å and the wall time (s) of one evaluation."""

    energy_eV: float
    forces_eV_per_A: np.ndarray
    wall_s: float


class LammpsSinglePoint:
    """A LAMMPS instance for repeated single-point evaluations of structures of one dimension."""

    def __init__(self, dim: int, potential: str = "tersoff1989", omp_threads: int = 1) -> None:
        from pdmd.md.protocol import POTENTIALS

        if potential not in POTENTIALS or POTENTIALS[potential].engine != "lammps":
            lammps_pots = sorted(k for k, v in POTENTIALS.items() if v.engine == "lammps")
            raise InputError(f"unknown LAMMPS potential {potential!r}; choose one of {lammps_pots}")
        if dim not in (2, 3):
            raise InputError(f"dim must be 2 or 3, got {dim}")
        self.dim, self.spec = dim, POTENTIALS[potential]
        self.omp_threads = omp_threads
        self._lmp = None
        self._key: tuple | None = None

    def _setup(self, frame: Frame) -> None:
        lammps = load_lammps()
        if self._lmp is not None:
            self._lmp.close()
        args = ["-screen", "none", "-log", "none", "-nocite"]
        if self.omp_threads > 1:
            args += ["-pk", "omp", str(self.omp_threads), "-sf", "omp"]
        lmp = lammps.lammps(cmdargs=args)
        cell = np.asarray(frame.cell, float)
        if self.dim == 2:
            a, b = cell[0, :2], cell[1, :2]
            if abs(a[1]) > 1e-9 or a[0] * b[1] - a[1] * b[0] <= 0:
                raise InputError("a 2D single point needs the first lattice vector along x and a right-handed cell")
            lx, xy, ly, lz, xz, yz = a[0], b[0], b[1], 1.0, 0.0, 0.0
        else:
            lx, ly, lz = cell[0, 0], cell[1, 1], cell[2, 2]
            xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
            if np.abs(cell[np.triu_indices(3, 1)]).max() > 1e-9 or min(lx, ly, lz) <= 0:
                raise InputError("a 3D single point needs a lower-triangular cell (LAMMPS convention)")
        lx, ly, lz, xy, xz, yz = (float(v) for v in (lx, ly, lz, xy, xz, yz))
        zlo = -0.5 if self.dim == 2 else 0.0
        pot = self.spec
        files = " ".join([*(str(potential_path(f)) for f in pot.files), pot.element])
        lmp.commands_string(
            f"""
            units metal
            dimension {self.dim}
            boundary p p p
            atom_style atomic
            atom_modify map array
            region box prism 0 {lx!r} 0 {ly!r} {zlo} {zlo + lz!r} {xy!r} {xz!r} {yz!r}
            create_box 1 box
            mass 1 12.011
            pair_style {pot.pair_style}
            pair_coeff * * {files}
            neighbor 1.0 bin
            thermo_style custom step pe
            """
        )
        n = frame.n_atoms
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, self._coordinates(frame).ravel().tolist())
        self._lmp, self._key = lmp, (n, cell.tobytes())

    def _coordinates(self, frame: Frame) -> np.ndarray:
        """(N, 3) positions (Å) for LAMMPS, wrapped into the cell (the same energy and forces for any image).

        LAMMPS loses atoms more than a box length outside its box, and MD drivers such as ASE never wrap.
        """
        lattice = np.asarray(frame.cell, float)[: self.dim, : self.dim]
        frac = np.asarray(frame.positions, float)[:, : self.dim] @ np.linalg.inv(lattice)
        x = np.zeros((frame.n_atoms, 3))
        x[:, : self.dim] = (frac % 1.0) @ lattice
        return x

    def __call__(self, frame: Frame) -> SinglePoint:
        """Energy and forces of `frame` (positions in Å, atoms in the frame's order)."""
        start = time.perf_counter()
        n = frame.n_atoms
        if self._lmp is None or self._key != (n, np.asarray(frame.cell, float).tobytes()):
            self._setup(frame)
        else:
            self._lmp.scatter_atoms("x", 1, 3, _c_doubles(self._coordinates(frame)))
        self._lmp.command("run 0 post no")
        energy = float(self._lmp.get_thermo("pe"))
        forces = np.array(self._lmp.gather_atoms("f", 1, 3), float).reshape(n, 3)
        if self.dim == 2:
            forces[:, 2] = 0.0
        return SinglePoint(energy, forces, time.perf_counter() - start)

    def close(self) -> None:
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None

    def __enter__(self) -> LammpsSinglePoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _c_doubles(x: np.ndarray):
    import ctypes

    flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
    return (ctypes.c_double * len(flat))(*flat)


def single_point(frame: Frame, dim: int, potential: str = "tersoff1989") -> SinglePoint:
    """One LAMMPS evaluation of `frame`: total energy (eV) and forces (eV/Å)."""
    with LammpsSinglePoint(dim, potential) as calc:
        return calc(frame)
