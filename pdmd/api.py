# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python interface to trained pdmd models, for ASE users.

    from pdmd import load_potential
    pot = load_potential("agr-demo-cnn")          # a model name under DATA_DIR/models, or a folder
    pot.predict(atoms)                            # eV/atom (float); a list of Atoms gives an array
    atoms.calc = pot.calculator()                 # ASE calculator: energy in eV (per-atom × N)

`predict_files` is what `pdmd predict` runs: every readable structure is predicted, every failure
is reported with its file and reason, and predictions outside the training data carry warnings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdmd.errors import InputError, PdmdError
from pdmd.store.documents import find_model
from pdmd.structure import Frame, ReadOptions, read_frames


def _load_model(folder: Path):
    """The model by its card's kind (`pdmd.ml.kinds`)."""
    from pdmd.ml.kinds import load_model

    return load_model(folder)


class PDModel:
    """A trained model (any kind) with structure-level prediction in eV/atom."""

    def __init__(self, model, folder: Path) -> None:
        self.model = model
        self.folder = folder

    @property
    def card(self) -> dict:
        return self.model.card

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @property
    def provides_forces(self) -> bool:
        """True when the model computes forces (`energy_and_forces`), not only a global energy."""
        return callable(getattr(self.model, "energy_and_forces", None))

    def predict(self, atoms, label: str = "structure"):
        """Mean energy per atom (eV/atom) of one ASE Atoms (float) or of a list of them (array)."""
        single = not isinstance(atoms, (list, tuple))
        images = [atoms] if single else list(atoms)
        frames = [Frame.from_ase(a) for a in images]
        labels = [label] if single else [f"{label}[{i}]" for i in range(len(frames))]
        energies, _ = self.model.predict_frames(frames, labels)
        energies = np.asarray(energies, float)
        return float(energies[0]) if single else energies

    def energy_and_forces(self, atoms, label: str = "structure") -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (N, 3) eV/Å; only models that compute forces have them."""
        if not self.provides_forces:
            kind = self.card.get("model_kind", "pd-cnn")
            raise NotImplementedError(
                f"forces are not implemented by a global-energy model ({kind}: one energy per structure from its "
                "persistence diagram); use a model kind that provides energy_and_forces (pd-local) for forces"
            )
        energy, forces = self.model.energy_and_forces(Frame.from_ase(atoms))
        return float(energy), np.asarray(forces, float)

    def calculator(self):
        """An ASE calculator (`pdmd.calculator.PDPotential`) on this model."""
        from pdmd.calculator import PDPotential

        return PDPotential(self)


def load_potential(path_or_name: str | Path) -> PDModel:
    """A trained model from its folder or its name under DATA_DIR/models."""
    folder = find_model(path_or_name)
    return PDModel(_load_model(folder), folder)


@dataclass
class Prediction:
    """One structure's prediction (eV/atom), or why there is none (`error`)."""

    file: str
    index: int
    label: str
    n_atoms: int = 0
    predicted_eV_per_atom: float | None = None
    reference_eV_per_atom: float | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    spread_eV_per_atom: float | None = None  # std over an ensemble's members; None for a single model


def _reference(atoms, label: str) -> float | None:
    from pdmd.ml.dataset_files import energy_per_atom

    try:
        value, _ = energy_per_atom(atoms, label)
    except InputError:
        return None
    return value if np.isfinite(value) else None


def predict_files(
    model: PDModel, paths: list[str | Path], options: ReadOptions | None = None, index: str = ":"
) -> list[Prediction]:
    """Predict every structure of every file; a file or structure that fails gets a row with its error."""
    from pdmd.ml.support import range_warnings

    rows: list[Prediction] = []
    for path in paths:
        name = Path(path).name
        try:
            images = read_frames(path, index=index, options=options)
        except PdmdError as err:
            rows.append(Prediction(str(path), -1, name, error=str(err)))
            continue
        for i, atoms in enumerate(images):
            label = f"{name}@{i}"
            row = Prediction(str(path), i, label, len(atoms), reference_eV_per_atom=_reference(atoms, label))
            frame, image = Frame.from_ase(atoms), None
            t0 = time.perf_counter()
            try:
                if hasattr(model.model, "image_of") and hasattr(model.model, "predict_images"):
                    image = model.model.image_of(frame, label)  # one PD, for the energy and the support check
                    energy = model.model.predict_images(image[None])
                    if len(getattr(model.model, "members", ())):  # an ensemble: its spread too
                        row.spread_eV_per_atom = float(model.model.predict_images_spread(image[None])[1][0])
                else:
                    energy, _ = model.model.predict_frames([frame], [label])
            except PdmdError as err:
                row.error = str(err)
            else:
                row.seconds = time.perf_counter() - t0
                row.predicted_eV_per_atom = float(np.asarray(energy)[0])
                row.warnings = range_warnings(model.card, row.predicted_eV_per_atom, image)
            rows.append(row)
    return rows
