"""A stand-in for the VASP executable, for tests: reads INCAR/POSCAR/KPOINTS, runs a real (classical)
calculation with ASE, and writes vasprun.xml, OUTCAR, OSZICAR and CONTCAR in VASP's formats.

Energies come from soft repulsive spheres (not DFT; repulsion keeps a fixed-volume cell
homogeneous, as carbon is, where a pair attraction would clump it); what matters is that every file pdmd reads
has the layout VASP writes (vasprun.xml is also read back with pymatgen's `Vasprun` in the tests).
IBRION=0: NVT MD for NSW steps of POTIM fs with the set-point ramped linearly TEBEG -> TEEND;
IBRION=1/2/3: FIRE relaxation until forces < |EDIFFG| or NSW steps; IBRION=-1 or NSW=0: one single point.

Failure injection (env): FAKE_VASP_FAIL="<stage>:<step>" makes the run in a folder whose name
ends with `_<stage>` print VASP's EDDDAV error after <step> ionic steps and exit 1, leaving a
truncated vasprun.xml, as a crashed VASP does. FAKE_VASP_NEEDS_POTCAR=1 refuses to run without POTCAR.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE
from pymatgen.io.vasp import Incar, Poscar


class SoftSpheres(Calculator):
    """E = -7 eV per atom + sum over pairs of eps (1 - r/rc)^2 for r < rc (eV, Å)."""

    implemented_properties = ("energy", "free_energy", "forces")

    def __init__(self, eps: float = 5.0, rc: float = 1.6) -> None:
        super().__init__()
        self.eps, self.rc = eps, rc

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        i, j, d, vec = neighbor_list("ijdD", self.atoms, self.rc)
        x = 1.0 - d / self.rc
        energy = -7.0 * len(self.atoms) + 0.5 * self.eps * float(np.sum(x**2))  # each pair listed twice
        pair_force = (2.0 * self.eps * x / self.rc / d)[:, None] * vec  # on j, away from i
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, j, pair_force)
        np.add.at(forces, i, -pair_force)
        self.results = {"energy": energy, "free_energy": energy, "forces": 0.5 * forces}


def _v(row) -> str:
    return "    <v>" + "".join(f" {x:16.8f}" for x in row) + " </v>\n"


def _structure_xml(atoms: Atoms, name: str | None = None) -> str:
    cell = np.asarray(atoms.cell[:])
    head = f' <structure name="{name}" >\n' if name else "  <structure>\n"
    out = head + '   <crystal>\n    <varray name="basis" >\n' + "".join(_v(r) for r in cell) + "    </varray>\n"
    out += f'    <i name="volume">{atoms.get_volume():16.8f} </i>\n'
    out += '    <varray name="rec_basis" >\n' + "".join(_v(r) for r in np.linalg.inv(cell).T) + "    </varray>\n"
    out += '   </crystal>\n   <varray name="positions" >\n'
    out += "".join(_v(r) for r in atoms.get_scaled_positions(wrap=True)) + "   </varray>\n"
    return out + ("  </structure>\n" if not name else " </structure>\n")


def _incar_item(key: str, value) -> str:
    """One INCAR tag as vasprun.xml writes it (typed strings, logicals and integers)."""
    if isinstance(value, bool):
        return f'  <i type="logical" name="{key}"> {"T" if value else "F"}  </i>\n'
    if isinstance(value, int):
        return f'  <i type="int" name="{key}">{value:6d}</i>\n'
    if isinstance(value, float):
        return f'  <i name="{key}">{value:16.8f}</i>\n'
    return f'  <i type="string" name="{key}">{value}</i>\n'


def _header(incar: Incar, atoms: Atoms) -> str:
    n = len(atoms)
    symbols = atoms.get_chemical_symbols()
    incar_xml = "".join(_incar_item(k, v) for k, v in incar.items())
    rows = "".join(f"    <rc><c>{s:2s}</c><c>   1</c></rc>\n" for s in symbols)
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n <generator>\n'
        '  <i name="program" type="string">vasp </i>\n  <i name="version" type="string">6.4.2  </i>\n'
        '  <i name="subversion" type="string">(fake for pdmd tests) </i>\n'
        '  <i name="platform" type="string">LinuxIFC </i>\n </generator>\n'
        f" <incar>\n{incar_xml} </incar>\n"
        ' <kpoints>\n  <generation param="Gamma">\n   <v type="int" name="divisions">       1        1        1 </v>\n'
        '  </generation>\n  <varray name="kpointlist" >\n'
        "    <v>       0.00000000       0.00000000       0.00000000 </v>\n"
        '  </varray>\n  <varray name="weights" >\n    <v>       1.00000000 </v>\n  </varray>\n </kpoints>\n'
        ' <parameters>\n  <separator name="electronic" >\n   <i name="NELECT">'
        f"{4.0 * n:16.8f}</i>\n"
        + _incar_item("NELM", 60)
        + _incar_item("ISPIN", 1)
        + "".join(_incar_item(k, v) for k, v in incar.items() if k != "SYSTEM")
        + "  </separator>\n </parameters>\n"
        f" <atominfo>\n  <atoms>{n:8d} </atoms>\n  <types>       1 </types>\n"
        '  <array name="atoms" >\n   <dimension dim="1">ion</dimension>\n   <field type="string">element</field>\n'
        f'   <field type="int">atomtype</field>\n   <set>\n{rows}   </set>\n  </array>\n'
        '  <array name="atomtypes" >\n   <dimension dim="1">type</dimension>\n'
        '   <field type="int">atomspertype</field>\n'
        '   <field type="string">element</field>\n   <field>mass</field>\n   <field>valence</field>\n'
        '   <field type="string">pseudopotential</field>\n   <set>\n'
        f"    <rc><c>{n:4d}</c><c>C </c><c>     12.01100000</c><c>      4.00000000</c>"
        "<c>  PAW_PBE C 08Apr2002                    </c></rc>\n   </set>\n  </array>\n </atominfo>\n"
        + _structure_xml(atoms, "initialpos")
    )


def _calculation_xml(atoms: Atoms, kinetic: float | None) -> str:
    e = atoms.get_potential_energy()
    forces = atoms.get_forces()
    energy = (
        f'   <i name="e_fr_energy">{e:16.8f} </i>\n   <i name="e_wo_entrp">{e:16.8f} </i>\n'
        f'   <i name="e_0_energy">{e:16.8f} </i>\n'
    )
    if kinetic is not None:
        energy += (
            f'   <i name="kinetic">{kinetic:16.8f} </i>\n   <i name="lattice kinetic">       0.00000000 </i>\n'
            '   <i name="nosepot">       0.00000000 </i>\n   <i name="nosekinetic">       0.00000000 </i>\n'
            f'   <i name="total">{e + kinetic:16.8f} </i>\n'
        )
    scstep = (
        '  <scstep>\n   <time name="dav">    0.01    0.01</time>\n   <energy>\n'
        f'    <i name="alphaZ">       0.00000000 </i>\n    <i name="e_fr_energy">{e:16.8f} </i>\n'
        f'    <i name="e_wo_entrp">{e:16.8f} </i>\n    <i name="e_0_energy">{e:16.8f} </i>\n   </energy>\n  </scstep>\n'
    )
    return (
        " <calculation>\n"
        + scstep
        + _structure_xml(atoms)
        + '  <varray name="forces" >\n'
        + "".join(_v(r) for r in forces)
        + '  </varray>\n  <varray name="stress" >\n'
        + "".join(_v(r) for r in np.zeros((3, 3)))
        + "  </varray>\n  <energy>\n"
        + energy
        + '  </energy>\n  <time name="totalsc">    0.05    0.05</time>\n </calculation>\n'
    )


def _contcar(atoms: Atoms, md: bool) -> str:
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = AseAtomsAdaptor.get_structure(atoms)
    velocities = (atoms.get_velocities() / (units.Ang / units.fs)).tolist() if md else None
    return Poscar(structure, velocities=velocities, sort_structure=False).get_str()


def main() -> int:
    here = Path.cwd()
    for name in ("INCAR", "POSCAR", "KPOINTS"):
        if not (here / name).is_file():
            print(f" ERROR: file {name} not found", flush=True)
            return 1
    if os.environ.get("FAKE_VASP_NEEDS_POTCAR") and not (here / "POTCAR").is_file():
        print(" ERROR: POTCAR not found", flush=True)
        return 1
    incar = Incar.from_file(here / "INCAR")
    poscar = Poscar.from_file(here / "POSCAR")
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(poscar.structure)
    atoms.pbc = True
    atoms.calc = SoftSpheres()
    nsw, ibrion = int(incar.get("NSW", 0)), int(incar.get("IBRION", -1))
    fail = os.environ.get("FAKE_VASP_FAIL", "")
    fail_at = int(fail.split(":")[1]) if fail and here.name.endswith("_" + fail.split(":")[0]) else None
    print(" running on    1 total cores\n vasp.6.4.2 (fake for pdmd tests)", flush=True)
    print(f" POSCAR found :  1 types and {len(atoms)} ions", flush=True)
    xml = (here / "vasprun.xml").open("w")
    xml.write(_header(incar, atoms))
    xml.flush()
    oszicar = (here / "OSZICAR").open("w")
    steps = 0

    def record(kinetic: float | None) -> None:
        nonlocal steps
        steps += 1
        xml.write(_calculation_xml(atoms, kinetic))
        xml.flush()
        e = atoms.get_potential_energy()
        oszicar.write(f"{steps:6d} F= {e:.8E} E0= {e:.8E}  d E =0.0\n")
        oszicar.flush()
        if fail_at is not None and steps >= fail_at:
            print(" Error EDDDAV: Call to ZHEGV failed. Returncode =   7 1  16", flush=True)
            sys.exit(1)

    if ibrion == 0:
        dt = float(incar["POTIM"])
        t0, t1 = float(incar["TEBEG"]), float(incar.get("TEEND", incar["TEBEG"]))
        if poscar.velocities is not None:
            atoms.set_velocities(np.asarray(poscar.velocities) * units.Ang / units.fs)
        else:
            MaxwellBoltzmannDistribution(atoms, temperature_K=t0, rng=np.random.default_rng(1))
        dyn = Langevin(atoms, dt * units.fs, temperature_K=t0, friction=0.02 / units.fs, rng=np.random.default_rng(2))
        for i in range(nsw):
            dyn.set_temperature(temperature_K=t0 + (t1 - t0) * (i + 1) / nsw)
            dyn.run(1)
            record(atoms.get_kinetic_energy())
    elif ibrion == -1 or nsw == 0:  # a single point
        record(None)
    else:
        fmax = abs(float(incar.get("EDIFFG", -0.02)))
        opt = FIRE(atoms, logfile=None)
        for _ in range(max(nsw, 1)):
            opt.run(fmax=fmax, steps=1)
            record(None)
            if np.linalg.norm(atoms.get_forces(), axis=1).max() < fmax:
                break
    xml.write(_structure_xml(atoms, "finalpos") + "</modeling>\n")
    xml.close()
    (here / "CONTCAR").write_text(_contcar(atoms, ibrion == 0))
    e = atoms.get_potential_energy()
    (here / "OUTCAR").write_text(
        f" vasp.6.4.2 (fake)\n  free  energy   TOTEN  =     {e:16.8f} eV\n\n"
        " General timing and accounting informations for this job:\n"
    )
    print(f" {steps} F= {e:.8E}\n writing wavefunctions", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
