# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python interface to trained pdmd models, for ASE users.

    from pdmd import load_potential
    pot = load_potential("agr-demo-cnn")          # a model name under DATA_DIR/models, or a folder
    pot.predict(atoms)                            # eV/atom (float); a list of Atoms gives an array
    atoms.calc = pot.calculator()                 # ASE calculator: energy in eV (per-atom × N)

    pot.extrapolation(atoms)                      # how far outside the training data (1 = its edge)

`predict_files` is what `pdmd predict` runs: every readable structure is predicted, every failure
is reported with its file and reason, and predictions outside the training data carry warnings
(energy outside the training range, diagram outside its support, extrapolation grade above the
model's threshold).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from pdmd.errors import InputError, PdmdError
from pdmd.store.documents import find_model
from pdmd.structure import Frame, ReadOptions, read_frames, validate_frame


def _load_model(folder: Path):
    """The model by its card's kind (`pdmd.models.registry`)."""
    from pdmd.models.registry import load_model

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

    @functools.cached_property
    def domain(self):
        """The training domain of a global kind (`pdmd.models.global_domain.StructureDomain`); None for pd-local
        (its model grades atoms itself) and for cards from before grades.
        """
        from pdmd.models.global_domain import load_structure_domain

        return load_structure_domain(self.folder, self.card)

    @property
    def extrapolation_threshold(self) -> float | None:
        """Grade above which a prediction is flagged as an extrapolation (the card's
        `domain.max_extrapolation_default`, derived from held-out training structures); None without a domain.
        """
        value = (self.card.get("domain") or {}).get("max_extrapolation_default")
        return None if value is None else float(value)

    def extrapolation(self, atoms, label: str = "structure"):
        """Extrapolation grade of one ASE Atoms (float) or of a list of them (array): dimensionless, at most about 1
        inside the training data, growing with the distance outside it (`pdmd.domain`); compare it with
        `extrapolation_threshold`. pd-local: the largest grade of the structure's atoms' local descriptors; the
        global kinds: the grade of the structure's pooled PD histogram (`pdmd.models.global_domain.domain_vectors`).
        NaN for a model whose card has no domain (trained before grades existed).
        """
        single = not isinstance(atoms, (list, tuple))
        frames = [Frame.from_ase(a) for a in ([atoms] if single else atoms)]
        labels = [label] if single else [f"{label}[{i}]" for i in range(len(frames))]
        grades = self.frame_grades(frames, labels)
        return float(grades[0]) if single else grades

    def frame_grades(self, frames: list[Frame], labels: list[str],
                     cnn_inputs: tuple[np.ndarray, np.ndarray] | None = None, data=None) -> np.ndarray:  # fmt: skip
        """Extrapolation grades (N,) of structures, NaN without a domain. A caller that has computed them already
        passes pd-cnn `cnn_inputs` ((N, [C,] S, S) images, (N,) finite pairs of their diagrams) or a kernel kind's
        `data` (`ModelData` with the diagrams).
        """
        if callable(getattr(self.model, "structure_grades", None)):  # pd-local: per-atom grades
            grades = self.model.structure_grades(frames) if self.card.get("domain") else np.full(len(frames), np.nan)
            return np.asarray(grades, float)
        if self.domain is None:
            return np.full(len(frames), np.nan)
        if data is None and callable(getattr(self.model, "frame_data", None)):  # kernel kinds: the diagrams
            data = self.model.frame_data(frames, labels, {"diagrams"})
        if data is not None:
            return self.domain.grade_pairs(data.births_A2, data.deaths_A2, self.model.spec.histogram, data.n_atoms)
        if cnn_inputs is None:  # pd-cnn: the descriptor's own image
            for frame, lab in zip(frames, labels):
                self.model.check_fits(frame, lab)
            diagrams = [self.model.spec.nonempty_diagram(f, lab) for f, lab in zip(frames, labels)]
            cnn_inputs = (np.stack([self.model.spec.image(d).image for d in diagrams]), [d.n_pairs for d in diagrams])
        images, n_pairs = cnn_inputs
        return self.domain.grade_images(images, np.array([f.n_atoms for f in frames]), np.asarray(n_pairs))

    @property
    def geometry_threshold(self) -> float | None:
        """Geometry grade above which a prediction is flagged (global kinds; None without a geometry domain)."""
        return None if self.domain is None else self.domain.geometry_threshold

    def geometry_grade(self, atoms):
        """Density / bond-length grade of one ASE Atoms (float) or of a list (array) against the training
        structures' (`pdmd.models.global_domain`: 1 = edge of the training data); NaN without a geometry domain
        (pd-local, whose per-atom grade sees bond lengths itself, and cards from before it existed).
        """
        single = not isinstance(atoms, (list, tuple))
        frames = [Frame.from_ase(a) for a in ([atoms] if single else atoms)]
        grades = np.full(len(frames), np.nan) if self.domain is None else self.domain.grade_geometry(frames, self.dim)
        return float(grades[0]) if single else grades

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
        """An ASE calculator (`PDPotential`) on this model."""
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
    max_force_deviation_eV_per_A: float | None = None  # a pd-local committee's largest per-atom force deviation
    extrapolation: float | None = None  # grade (`PDModel.extrapolation`); None when the model has no domain
    geometry_grade: float | None = None  # density / bond-length grade (`PDModel.geometry_grade`); global kinds


def _reference(atoms, label: str) -> float | None:
    from pdmd.models.labelled import energy_per_atom

    try:
        value, _ = energy_per_atom(atoms, label)
    except InputError:
        return None
    return value if np.isfinite(value) else None


def predict_files(
    model: PDModel, paths: list[str | Path], options: ReadOptions | None = None, index: str = ":"
) -> list[Prediction]:
    """Predict every structure of every file; a file or structure that fails gets a row with its error.

    A model with a training domain grades every structure (`Prediction.extrapolation`) from the diagram its
    prediction used, and warns above its `extrapolation_threshold`.
    """
    graded = bool(model.card.get("domain"))

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
            _predict_into(model, row, atoms, label, graded)
            rows.append(row)
    return rows


@dataclass
class _Evaluation:
    """A structure's energy (eV/atom, a one-element array or list) and what its extrapolation grade reuses."""

    energy: object
    image: np.ndarray | None = None  # pd-cnn: the PD image the energy came from
    pairs: int = 0  # the number of finite pairs of that image's diagram
    data: object = None  # kernel kinds: the `ModelData` with the diagram
    local_grade: float | None = None  # pd-local: the largest per-atom grade (NaN without a domain)


def _evaluate(model: PDModel, frame: Frame, label: str, row: Prediction) -> _Evaluation:
    """The model's energy of one structure by the kind's own route (one diagram serves energy and grade); an
    ensemble's spread and a committee's force deviation go into `row`.
    """
    if hasattr(model.model, "input_of") and hasattr(model.model, "predict_images"):
        image, pairs = model.model.input_of(frame, label)  # one PD: energy, support check and grade
        energy = model.model.predict_images(image[None])
        if len(getattr(model.model, "members", ())):  # an ensemble: its spread too
            row.spread_eV_per_atom = float(model.model.predict_images_spread(image[None])[1][0])
        return _Evaluation(energy, image, pairs)
    if callable(getattr(model.model, "frame_data", None)):  # kernel kinds: one diagram for both
        data = model.model.frame_data([frame], [label])
        return _Evaluation(model.model.predict_data(data), data=data)
    if callable(getattr(model.model, "evaluate", None)):  # pd-local: energy, grade, deviation at once
        r = model.model.evaluate(validate_frame(frame, model.dim, label=label), deviation=True)
        n_atoms = row.n_atoms
        local_grade = float(r.extrapolation.max()) if r.extrapolation is not None else float("nan")
        if r.force_deviation is not None:  # a committee
            row.spread_eV_per_atom = r.energy_std / n_atoms
            row.max_force_deviation_eV_per_A = float(r.force_deviation.max())
        return _Evaluation([r.energy / n_atoms], local_grade=local_grade)
    energy, _ = model.model.predict_frames([frame], [label])
    return _Evaluation(energy)


def _grade(model: PDModel, frame: Frame, label: str, graded: bool, ev: _Evaluation) -> float:
    """The structure's extrapolation grade from the diagram its energy used (NaN when the model is not graded)."""
    if ev.local_grade is not None:
        return ev.local_grade
    if graded:
        cnn_inputs = None if ev.image is None else (ev.image[None], [ev.pairs])
        return float(model.frame_grades([frame], [label], cnn_inputs, ev.data)[0])
    return float("nan")


def _predict_into(model: PDModel, row: Prediction, atoms, label: str, graded: bool) -> None:
    """Predict one structure (ASE Atoms) into `row`: energy (eV/atom), seconds, grade and warnings, or its error."""
    from pdmd.models.global_domain import extrapolation_warning, geometry_warning
    from pdmd.models.support import range_warnings

    frame = Frame.from_ase(atoms)
    t0 = time.perf_counter()
    try:
        ev = _evaluate(model, frame, label, row)
        seconds = time.perf_counter() - t0
        grade = _grade(model, frame, label, graded, ev)
    except PdmdError as err:
        row.error = str(err)
        return
    row.seconds = seconds
    row.predicted_eV_per_atom = float(np.asarray(ev.energy)[0])
    row.extrapolation = grade if np.isfinite(grade) else None
    row.warnings = range_warnings(model.card, row.predicted_eV_per_atom, ev.image)
    warning = extrapolation_warning(row.extrapolation, model.extrapolation_threshold)
    if warning:
        row.warnings.append(warning)
    if model.geometry_threshold is not None:
        geo = float(model.domain.grade_geometry([frame], model.dim)[0])
        row.geometry_grade = geo if np.isfinite(geo) else None
        warning = geometry_warning(row.geometry_grade, model.geometry_threshold, model.card["domain"]["geometry"])
        if warning:
            row.warnings.append(warning)


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
        self.model = model if isinstance(model, PDModel) else load_potential(model)
        self.deviation = deviation

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
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
