# SPDX-License-Identifier: GPL-3.0-or-later
"""ASE calculator on a trained pdmd model: `atoms.calc = PDPotential("agr-demo-cnn")`.

Energy: the model's mean energy per atom (eV/atom) × number of atoms = total energy (eV).
Forces: only from models that compute them (`energy_and_forces`, e.g. pd-local); a global-energy
model (one energy per structure from its persistence diagram) raises a clear error.
`ReferencePotential("tersoff1989", dim)`: the LAMMPS reference itself, for the same MD as a model.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes


class PDPotential(Calculator):
    """ASE calculator: energy (eV) from a pdmd model; forces (eV/Å) when the model provides them.

    pd-local models also put their uncertainty into `results` on every call: `extrapolation` (per-atom
    grade, 1 = edge of the training data) and `max_extrapolation`; for a committee (with `deviation`,
    the default) `force_deviation` (per atom, eV/Å), `max_force_deviation`, `energy_std` (eV) and
    `atom_energy_std` (per atom, eV).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model, deviation: bool = True, **kwargs) -> None:
        """`model`: a model folder, a model name under DATA_DIR/models, or a loaded `pdmd.api.PDModel`.

        deviation: evaluate a committee's other members on every call (their force deviation; K× the cost).
        """
        super().__init__(**kwargs)
        from pdmd.api import PDModel, load_potential

        self.model = model if isinstance(model, PDModel) else load_potential(model)
        self.deviation = deviation

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        from pdmd.structure import Frame

        evaluate = getattr(self.model.model, "evaluate", None)
        if evaluate is not None:  # pd-local: energy, forces, stress (3D periodic) and uncertainty in one call
            r = evaluate(Frame.from_ase(self.atoms), stress="stress" in properties, deviation=self.deviation)
            self.results.update(energy=r.energy, free_energy=r.energy, forces=r.forces)
            if r.stress is not None:
                self.results["stress"] = r.stress
            if r.extrapolation is not None:
                self.results.update(extrapolation=r.extrapolation, max_extrapolation=float(r.extrapolation.max()))
            if r.force_deviation is not None:
                self.results.update(
                    force_deviation=r.force_deviation,
                    max_force_deviation=float(r.force_deviation.max()),
                    energy_std=r.energy_std,
                    atom_energy_std=r.atom_energy_std,
                )
            return
        if "stress" in properties:
            raise PropertyNotImplementedError("stress: only pd-local models (3D, periodic cells) provide it")
        if "forces" in properties:
            try:
                energy, forces = self.model.energy_and_forces(self.atoms)
            except NotImplementedError as err:  # a global-energy model: ASE's own "not implemented" type
                raise PropertyNotImplementedError(str(err)) from err
            self.results.update(energy=energy, free_energy=energy, forces=forces)
            return
        energy = self.model.predict(self.atoms) * len(self.atoms)
        self.results.update(energy=energy, free_energy=energy)


class ReferencePotential(Calculator):
    """ASE calculator on a LAMMPS reference potential (`pdmd.md.protocol.POTENTIALS`): energy (eV), forces (eV/Å).

    Single points through `pdmd.local.reference.LammpsSinglePoint` (2D sheets as in the melt-quench
    template), so `pdmd md tersoff1989 STRUCTURE ...` runs the same MD as a model does: same start, same
    integrator, e.g. to see which timestep the reference itself needs.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, potential: str = "tersoff1989", dim: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        from pdmd.local.reference import LammpsSinglePoint

        self.lammps = LammpsSinglePoint(dim, potential)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        from pdmd.structure import Frame

        point = self.lammps(Frame.from_ase(self.atoms))
        self.results.update(energy=point.energy_eV, free_energy=point.energy_eV, forces=point.forces_eV_per_A)

    def close(self) -> None:
        """Free the LAMMPS instance (a later calculation starts a new one)."""
        self.lammps.close()
