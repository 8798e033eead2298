"""Labelled PD images from a user's structure file (any format ASE reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
from pdmd.descriptor.persistence import DEFAULT_BACKEND, alpha_diagram
from pdmd.errors import InputError
from pdmd.ml.fit import LabelledImages
from pdmd.progress import ProgressLog
from pdmd.store.datastore import descriptor_settings
from pdmd.structure import Frame, read_frames

SYSTEM_DIMS = {"agr": 2, "2d": 2, "ac": 3, "3d": 3}


def energy_per_atom(atoms, label: str) -> tuple[float, str]:
    """Energy per atom (eV/atom): `info['energy_eV_per_atom']`, else total energy / N."""
    if "energy_eV_per_atom" in atoms.info:
        return float(atoms.info["energy_eV_per_atom"]), "per atom (info energy_eV_per_atom)"
    total = atoms.info.get("energy")
    if total is None and atoms.calc is not None:
        try:
            total = atoms.get_potential_energy()
        except Exception:  # no stored energy in the calculator
            total = None
    if total is None:
        raise InputError(f"{label}: no energy (need info 'energy_eV_per_atom' or a total energy in eV)")
    return float(total) / len(atoms), "total energy / n_atoms (info energy or calculator)"


def labelled_images_from_file(
    path: Path, system: str, range_A2: tuple[float, float], bins: int, backend: str | None = None
) -> tuple[LabelledImages, str]:
    """Compute PD images of every structure in `path`; returns the data and how energies were read."""
    dim = SYSTEM_DIMS[system]
    backend = backend or DEFAULT_BACKEND[dim]
    spec = HistogramSpec(range_A2[0], range_A2[1], bins)
    images, energies, groups, ids, notes, elements = [], [], [], [], set(), set()
    frames = read_frames(path)
    progress = ProgressLog(len(frames), f"PD images of {path.name}", __import__("logging").getLogger(__name__))
    for i, atoms in enumerate(frames):
        label = f"{path.name}@{i}"
        frame = Frame.from_ase(atoms)
        if dim == 2:
            frame = Frame(frame.positions, frame.cell, frame.numbers, (frame.pbc[0], frame.pbc[1], False))
        energy, note = energy_per_atom(atoms, label)
        diagram = alpha_diagram(frame, dim, 1, backend=backend, label=label)
        images.append(pd_histogram(diagram.births_A2, diagram.deaths_A2, spec).image)
        energies.append(energy)
        groups.append(str(atoms.info.get("run_id", label)))
        ids.append(str(atoms.info.get("id", label)))
        notes.add(note)
        elements |= {int(z) for z in np.unique(frame.numbers)}
        progress.step()
    descriptor = descriptor_settings(system, dim, sorted(elements), spec, backend=backend)
    data = LabelledImages(np.stack(images), np.asarray(energies), groups, ids, descriptor)
    return data, f"energies read as: {', '.join(sorted(notes))}"
