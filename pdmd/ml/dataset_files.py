"""Labelled structures from a user's file (any format ASE reads, LAMMPS data and dumps included).

Labels are named the way the field does (MACE, NequIP): `energy_key` names a total energy in eV
(an `info` entry or what the file's calculator holds), or a per-atom energy array (eV, summed);
`forces_key` an (N, 3) array in eV/Å. Without keys: `info['energy_eV_per_atom']`, else the total
energy (`info['energy']` or the calculator's) / N. Bad labels and bad coordinates are refused
per structure, naming the structure and the problem, before anything is computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.ml.fit import LabelledImages
from pdmd.structure import Frame, ReadOptions, read_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelKeys:
    """Where energies and forces live in a structure file (None: the defaults in the module docstring)."""

    energy_key: str | None = None
    forces_key: str | None = None


@dataclass
class LabelledFile:
    """Structures of one file with energies (eV/atom), optional forces (eV/Å), run id and id of each."""

    frames: list[Frame]
    energies_eV: np.ndarray
    groups: list[str]
    ids: list[str]
    forces_eV_A: list[np.ndarray] | None = None
    notes: set[str] = field(default_factory=set)


def _calculator_energy(atoms) -> float | None:
    if atoms.calc is None:
        return None
    try:
        return float(atoms.get_potential_energy())
    except Exception:  # a calculator without a stored energy
        return None


def energy_per_atom(atoms, label: str, energy_key: str | None = None) -> tuple[float, str]:
    """Energy per atom (eV/atom) and how it was read; InputError naming the structure when there is none."""
    n = len(atoms)
    if energy_key is not None:
        if energy_key in atoms.arrays:
            return float(np.sum(atoms.arrays[energy_key])) / n, f"sum of per-atom array {energy_key!r} / n_atoms"
        if energy_key in atoms.info:
            return float(atoms.info[energy_key]) / n, f"total energy info {energy_key!r} / n_atoms"
        if energy_key == "energy" and (total := _calculator_energy(atoms)) is not None:
            return total / n, "total energy (calculator) / n_atoms"
        raise InputError(
            f"{label}: no energy {energy_key!r} (neither an info entry nor a per-atom array); "
            f"info keys: {sorted(atoms.info)}, arrays: {sorted(atoms.arrays)}"
        )
    if "energy_eV_per_atom" in atoms.info:
        return float(atoms.info["energy_eV_per_atom"]), "per atom (info energy_eV_per_atom)"
    total = atoms.info.get("energy")
    total = _calculator_energy(atoms) if total is None else total
    if total is None:
        raise InputError(
            f"{label}: no energy (need info 'energy_eV_per_atom', a total energy in eV, or name it with --energy-key)"
        )
    return float(total) / n, "total energy / n_atoms (info energy or calculator)"


def forces_of(atoms, label: str, forces_key: str) -> np.ndarray:
    """Forces (N, 3) eV/Å under `forces_key` (an array, or the calculator's when the key is 'forces')."""
    if forces_key in atoms.arrays:
        forces = np.asarray(atoms.arrays[forces_key], float)
    elif forces_key == "forces" and atoms.calc is not None and "forces" in getattr(atoms.calc, "results", {}):
        forces = np.asarray(atoms.calc.results["forces"], float)
    else:
        raise InputError(f"{label}: no forces {forces_key!r}; arrays: {sorted(atoms.arrays)}")
    if forces.shape != (len(atoms), 3):
        raise InputError(f"{label}: forces {forces_key!r} have shape {forces.shape}, expected ({len(atoms)}, 3)")
    if not np.isfinite(forces).all():
        bad = int(np.flatnonzero(~np.isfinite(forces).all(axis=1))[0])
        raise InputError(f"{label}: forces {forces_key!r} of atom {bad} are not finite ({forces[bad].tolist()})")
    return forces


def read_labelled(path: Path, options: ReadOptions | None = None, keys: LabelKeys | None = None) -> LabelledFile:
    """Every structure of `path` with its labels; refuses missing or non-finite energies, forces, coordinates."""
    keys = keys or LabelKeys()
    path = Path(path)
    out = LabelledFile([], np.zeros(0), [], [], [] if keys.forces_key else None)
    energies = []
    for i, atoms in enumerate(read_frames(path, options=options)):
        label = f"{path.name}@{i}"
        frame = Frame.from_ase(atoms)
        bad = np.flatnonzero(~np.isfinite(frame.positions).all(axis=1))
        if bad.size:
            more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
            raise InputError(f"{label}: atom {bad[0]}{more} has non-finite coordinates")
        if not np.isfinite(frame.cell).all():
            raise InputError(f"{label}: the cell has non-finite entries")
        energy, note = energy_per_atom(atoms, label, keys.energy_key)
        if not np.isfinite(energy):
            raise InputError(f"{label}: the energy is {energy} (not a finite number); fix or drop this structure")
        energies.append(energy)
        out.frames.append(frame)
        out.groups.append(str(atoms.info.get("run_id", label)))
        out.ids.append(str(atoms.info.get("id", label)))
        out.notes.add(note)
        if out.forces_eV_A is not None:
            out.forces_eV_A.append(forces_of(atoms, label, keys.forces_key))
    out.energies_eV = np.asarray(energies, float)
    return out


MIN_TRAIN, MIN_TEST = 8, 1
"""Fewest training and test structures a model is trained and evaluated on."""


def check_split_size(groups: list[str], test_fraction: float, split: str, seed: int, label: str) -> None:
    """Refuse data that the train/test split (`pdmd.ml.split`) would leave too small, saying which part."""
    from pdmd.ml.split import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"{label}: the test fraction must lie between 0 and 1, got {test_fraction:g}")
    if split == "run" and len(set(groups)) < 2:
        raise InputError(
            f"{label}: all {len(groups)} structures belong to one run (info run_id), so a split by run has no test "
            "set; use --split snapshot or give the structures run ids"
        )
    train, test = train_test_split(groups, test_fraction, seed, split)
    if len(train) < MIN_TRAIN or len(test) < MIN_TEST:
        raise InputError(
            f"{label}: {len(groups)} structures are too few: the {split} split (test fraction {test_fraction:g}) "
            f"gives {len(train)} training / {len(test)} test structures, and a model needs at least {MIN_TRAIN} / "
            f"{MIN_TEST}; add structures"
        )


def labelled_images_from_file(
    path: Path,
    spec: DescriptorSpec,
    *,
    options: ReadOptions | None = None,
    keys: LabelKeys | None = None,
    extra_degrees: tuple[int, ...] = (),
) -> tuple[LabelledImages, str]:
    """Compute PD images of every structure in `path`; returns the data and how energies were read."""
    data = read_labelled(path, options, keys)
    return labelled_images(data, spec, extra_degrees)


def labelled_images(
    data: LabelledFile, spec: DescriptorSpec, extra_degrees: tuple[int, ...] = ()
) -> tuple[LabelledImages, str]:
    """PD images of labelled structures (`read_labelled`) with `spec` (`extra_degrees`: further channels); the data
    (its descriptor: `spec` with the elements found) and how energies were read.
    """
    from pdmd.ml.kinds import data_from_frames

    d = data_from_frames(data.frames, data.energies_eV, data.groups, data.ids, spec, {"images"}, extra_degrees)
    out = LabelledImages(d.images, d.energies_eV, d.groups, d.ids, d.descriptor, d.n_atoms, d.image_pairs)
    return out, f"energies read as: {', '.join(sorted(data.notes))}"
