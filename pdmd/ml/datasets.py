"""Labelled data sets for training and analyses: a pdmd data folder with a plan, or a labelled structure file.

A data folder (`pdmd_data`, or a campaign's `--data-dir`) is read through the plan's run lists:
the training runs, and the plan's 4× larger validation runs for transfer. A structure file is
anything ASE reads with energies (see `pdmd.ml.dataset_files.energy_per_atom`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.structure import Frame
from pdmd.systems import SYSTEM_DIM


@dataclass
class LabelledStructures:
    """Structures with energies (eV/atom), run id (group) and id (content hash) of each."""

    frames: list[Frame]
    energies_eV: np.ndarray
    groups: list[str]
    ids: list[str]
    system: str
    energy_note: str = ""  # how the energies of a file were read (e.g. "total energy / n_atoms")

    def subset(self, idx) -> LabelledStructures:
        """The structures at indices `idx`, in that order."""
        return LabelledStructures([self.frames[i] for i in idx], self.energies_eV[np.asarray(idx, int)],
                                  [self.groups[i] for i in idx], [self.ids[i] for i in idx], self.system,
                                  self.energy_note)  # fmt: skip


def is_data_dir(path: Path) -> bool:
    return path.is_dir() and (path / "structures").is_dir()


def _plan_runs(plan: str | None, data: Path) -> tuple[list[str], list[str], str]:
    from pdmd.campaign import PLANS, plan_runs

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

    read_options / label_keys (`pdmd.structure.ReadOptions`, `pdmd.ml.dataset_files.LabelKeys`): how to read a file.
    """
    data = Path(data)
    if is_data_dir(data):
        from pdmd.store.datastore import DataStore

        train, valid, plan_system = _plan_runs(plan, data)
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
    from pdmd.ml.dataset_files import read_labelled

    labelled = read_labelled(data, read_options, label_keys)  # the one reader: finite energies and coordinates
    return LabelledStructures(labelled.frames, labelled.energies_eV, labelled.groups, labelled.ids, system,
                              ", ".join(sorted(labelled.notes)))  # fmt: skip


def load_images(
    data: Path,
    plan: str | None = None,
    system: str | None = None,
    spec: DescriptorSpec | None = None,
    read_options=None,
    label_keys=None,
    extra_degrees: tuple[int, ...] = (),
):
    """Labelled PD images (`LabelledImages`) of the training structures of a data folder + plan, or of a file.

    spec: the descriptor setting (None: the plan's, or the system's defaults); read_options / label_keys
    (`pdmd.structure.ReadOptions`, `pdmd.ml.dataset_files.LabelKeys`): how to read a file; extra_degrees:
    homology degrees stacked after `spec`'s image as further channels (`pdmd.ml.model.CNNConfig`).
    """
    data = Path(data)
    if is_data_dir(data):
        from pdmd.campaign import plan_descriptor
        from pdmd.ml.fit import load_store_dataset
        from pdmd.store.datastore import DataStore

        train, _, _ = _plan_runs(plan, data)
        return load_store_dataset(DataStore(data), train, spec or plan_descriptor(plan), extra_degrees)
    from pdmd.ml.dataset_files import labelled_images_from_file

    if system not in SYSTEM_DIM:
        raise InputError(f"{data}: say what the structures are with --system ({sorted(SYSTEM_DIM)})")
    spec = spec or DescriptorSpec.for_system(system)
    return labelled_images_from_file(data, spec, options=read_options, keys=label_keys, extra_degrees=extra_degrees)[0]
