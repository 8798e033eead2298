# SPDX-License-Identifier: GPL-3.0-or-later
"""Labelled structures: a user's file (anything ASE reads, LAMMPS data and dumps included) or a pdmd data folder.

Labels are named the way the field does (MACE, NequIP): `energy_key` names a total energy in eV
(an `info` entry or what the file's calculator holds), or a per-atom energy array (eV, summed);
`forces_key` an (N, 3) array in eV/Å. Without keys: `info['energy_eV_per_atom']`, else the total
energy (`info['energy']` or the calculator's) / N. Bad labels and bad coordinates are refused
per structure, naming the structure and the problem, before anything is computed.

A data folder (`pdmd_data`, or a campaign's `--data-dir`) is read through the plan's run lists:
the training runs, and the plan's 4× larger validation runs for transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.campaign import PLANS, plan_runs
from pdmd.errors import InputError
from pdmd.models.split import train_test_split
from pdmd.store.datastore import DataStore
from pdmd.structure import Frame, ReadOptions, read_frames
from pdmd.systems import SYSTEM_DIM


@dataclass(frozen=True)
class LabelKeys:
    """Where energies and forces live in a structure file (None: the defaults in the module docstring)."""

    energy_key: str | None = None
    forces_key: str | None = None


@dataclass
class LabelledStructures:
    """Structures with energies (eV/atom), run id (group) and id of each; optional forces (N_i, 3) eV/Å.

    system: "agr" / "ac" ("" where the reader does not know); energy_note: how the energies were read.
    """

    frames: list[Frame]
    energies_eV: np.ndarray
    groups: list[str]
    ids: list[str]
    system: str = ""
    energy_note: str = ""
    forces_eV_A: list[np.ndarray] | None = None

    def subset(self, idx) -> LabelledStructures:
        """The structures at indices `idx`, in that order."""
        idx = [int(i) for i in idx]
        forces = None if self.forces_eV_A is None else [self.forces_eV_A[i] for i in idx]
        return LabelledStructures([self.frames[i] for i in idx], self.energies_eV[np.asarray(idx, int)],
                                  [self.groups[i] for i in idx], [self.ids[i] for i in idx], self.system,
                                  self.energy_note, forces)  # fmt: skip


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


def read_labelled(path: Path, options: ReadOptions | None = None, keys: LabelKeys | None = None) -> LabelledStructures:
    """Every structure of `path` with its labels; refuses missing or non-finite energies, forces, coordinates."""
    keys = keys or LabelKeys()
    path = Path(path)
    out = LabelledStructures([], np.zeros(0), [], [], forces_eV_A=[] if keys.forces_key else None)
    energies, notes = [], set()
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
        notes.add(note)
        if out.forces_eV_A is not None:
            out.forces_eV_A.append(forces_of(atoms, label, keys.forces_key))
    out.energies_eV = np.asarray(energies, float)
    out.energy_note = ", ".join(sorted(notes))
    return out


MIN_TRAIN, MIN_TEST = 8, 1
"""Fewest training and test structures a model is trained and evaluated on."""


def check_split_size(groups: list[str], test_fraction: float, split: str, seed: int, label: str) -> None:
    """Refuse data that the train/test split (`pdmd.models.split`) would leave too small, saying which part."""
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


def is_data_dir(path: Path) -> bool:
    return path.is_dir() and (path / "structures").is_dir()


def plan_run_ids(plan: str | None, data: Path) -> tuple[list[str], list[str], str]:
    if plan is None:
        raise InputError(f"{data} is a pdmd data folder: say which plan's runs to use with --plan ({sorted(PLANS)})")
    train, valid = plan_runs(plan)
    return [p.run_id for p in train], [p.run_id for p in valid], PLANS[plan].system


def load_structures(
    data: Path,
    plan: str | None = None,
    system: str | None = None,
    validation: bool = False,
    read_options=None,
    label_keys=None,
):
    """Labelled structures from a data folder (plan's training or validation runs) or a file.

    read_options / label_keys (`pdmd.structure.ReadOptions`, `pdmd.models.labelled.LabelKeys`): how to read a file.
    """
    data = Path(data)
    if is_data_dir(data):
        train, valid, plan_system = plan_run_ids(plan, data)
        store = DataStore(data)
        frames, energies, groups, ids = [], [], [], []
        for run_id in valid if validation else train:
            for doc in store.run_structures(run_id):
                frames.append(store.load_frame(doc))
                energies.append(doc["energy_eV_per_atom"])
                groups.append(run_id)
                ids.append(doc["_id"])
        if not frames:
            raise InputError(f"{data}: no stored structures for the {'validation' if validation else 'training'} "
                             f"runs of plan {plan!r}")  # fmt: skip
        return LabelledStructures(frames, np.asarray(energies, float), groups, ids, plan_system)
    if not data.is_file():
        raise InputError(f"{data}: neither a pdmd data folder nor a structure file")
    if system not in SYSTEM_DIM:
        raise InputError(f"{data}: say what the structures are with --system ({sorted(SYSTEM_DIM)})")
    labelled = read_labelled(data, read_options, label_keys)  # the one reader: finite energies and coordinates
    labelled.system = system
    return labelled
