# SPDX-License-Identifier: GPL-3.0-or-later
"""ASE calculator on a trained pdmd model: `atoms.calc = PDPotential("agr-demo-cnn")`.

Energy: the model's mean energy per atom (eV/atom) × number of atoms = total energy (eV).
Forces: only from models that compute them (`energy_and_forces`, e.g. pd-local); a global-energy
model (one energy per structure from its persistence diagram) raises a clear error.
`ReferencePotential("tersoff1989", dim)`: the LAMMPS reference itself, for the same MD as a model.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

from pdmd.api import PDPotential
from pdmd.md.single_point import LammpsSinglePoint
from pdmd.structure import Frame

__all__ = ["PDPotential", "ReferencePotential"]


class ReferencePotential(Calculator):
    """ASE calculator on a LAMMPS reference potential (`pdmd.md.protocol.POTENTIALS`): energy (eV), forces (eV/Å).

    Single points through `pdmd.md.single_point.LammpsSinglePoint` (2D sheets as in the melt-quench
    template), so `pdmd md tersoff1989 STRUCTURE ...` runs the same MD as a model does: same start, same
    integrator, e.g. to see which timestep the reference itself needs.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, potential: str = "tersoff1989", dim: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lammps = LammpsSinglePoint(dim, potential)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        point = self.lammps(Frame.from_ase(self.atoms))
        self.results.update(energy=point.energy_eV, free_energy=point.energy_eV, forces=point.forces_eV_per_A)

    def close(self) -> None:
        """Free the LAMMPS instance (a later calculation starts a new one)."""
        self.lammps.close()
