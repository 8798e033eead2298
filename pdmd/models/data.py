# SPDX-License-Identifier: GPL-3.0-or-later
"""The data every model kind trains on: `ModelData` (energies, ids, and the inputs a kind needs).

Built from the store (`load_store_data`), or from labelled structures (`data_from_structures`,
diagrams computed here or read from a store). `TrainSplit` is the train/test split a kind gets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pdmd.campaign import plan_descriptor
from pdmd.descriptor.histogram import pd_histogram
from pdmd.descriptor.spec import DescriptorSpec, channel_specs
from pdmd.errors import InputError
from pdmd.models.labelled import LabelKeys, LabelledStructures, is_data_dir, plan_run_ids, read_labelled
from pdmd.progress import ProgressLog
from pdmd.store.datastore import DataStore
from pdmd.structure import Frame, ReadOptions, geometry_features
from pdmd.systems import SYSTEM_DIM

log = logging.getLogger(__name__)


@dataclass
class ModelData:
    """What a kind trains on or predicts: per structure energy (eV/atom), run id, id, atom count, and inputs.

    Inputs a kind does not need may be None: `images` (N, bins, bins) PD histogram probabilities,
    `births_A2` / `deaths_A2` the finite pairs of each diagram (Å²), `frames` the structures,
    `features` global descriptors already computed (e.g. by `pdmd baseline`), so they are not computed twice,
    `image_pairs` the number of finite pairs each image is the histogram of (its normaliser; for the training
    domain's pairs per atom, `pdmd.models.global_domain`), `geometry` (N, 4) each structure's density and bond
    lengths (`pdmd.structure.geometry_features`: the global kinds' geometry domain).
    """

    energies_eV: np.ndarray
    groups: list[str]
    ids: list[str]
    descriptor: DescriptorSpec
    n_atoms: np.ndarray
    images: np.ndarray | None = None
    births_A2: list[np.ndarray] | None = None
    deaths_A2: list[np.ndarray] | None = None
    frames: list[Frame] | None = None
    features: dict[str, np.ndarray] | None = None  # precomputed global features by name ("acsf", "soap"), (N, F)
    image_pairs: np.ndarray | None = None
    geometry: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.energies_eV)

    def subset(self, idx: np.ndarray) -> ModelData:
        """The structures at `idx`, in that order."""
        idx = np.asarray(idx, int)

        def pick(seq):
            return None if seq is None else [seq[i] for i in idx]

        return ModelData(
            self.energies_eV[idx],
            pick(self.groups),
            pick(self.ids),
            self.descriptor,
            self.n_atoms[idx],
            None if self.images is None else self.images[idx],
            pick(self.births_A2),
            pick(self.deaths_A2),
            pick(self.frames),
            None if self.features is None else {k: v[idx] for k, v in self.features.items()},
            None if self.image_pairs is None else self.image_pairs[idx],
            None if self.geometry is None else self.geometry[idx],
        )


@dataclass(frozen=True)
class TrainSplit:
    """Indices of the training and test structures, and how they were drawn."""

    train_idx: np.ndarray
    test_idx: np.ndarray
    kind: str = "run"
    test_fraction: float = 0.2
    seed: int = 0

    def card(self, data: ModelData) -> dict:
        """The card's `split` section: the exact structure ids of both parts."""
        return {
            "kind": self.kind,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "train_ids": [data.ids[i] for i in self.train_idx],
            "test_ids": [data.ids[i] for i in self.test_idx],
            "test_runs": sorted({data.groups[i] for i in self.test_idx}),
        }


class LoadedModel(Protocol):
    """What `load_model` returns, whatever the kind."""

    card: dict

    @property
    def dim(self) -> int: ...

    def predict_frames(self, frames: list[Frame], labels: list[str]) -> tuple[np.ndarray, float]: ...


def load_store_data(
    store, run_ids: list[str], spec: DescriptorSpec, needs, extra_degrees: tuple[int, ...] = ()
) -> ModelData:
    """Every stored structure of `run_ids` that has a descriptor of setting `spec`, with the inputs in `needs`
    (`pdmd.models.registry.NEEDS`; "geometry" to train a global kind: `pdmd.models.registry.training_needs`).

    extra_degrees: homology degrees whose images follow `spec`'s as further channels (`images` (N, C, bins, bins),
    see `CNNConfig`); read from the store where it has them (`pdmd campaign --extra-degrees`), else computed.
    """
    needs = set(needs)
    desc_id = spec.id
    extra_specs = channel_specs(spec, extra_degrees)
    rows: dict[str, list] = {k: [] for k in ("energy", "group", "id", "n", "image", "pairs", "births", "deaths",
                                             "frame", "geometry")}  # fmt: skip
    dim = SYSTEM_DIM[spec.system]
    geometry = "geometry" in needs  # training a global kind: its geometry domain
    missing = 0
    progress = ProgressLog(len(run_ids), "loading model data", log)
    for run_id in run_ids:
        for doc in store.run_structures(run_id):
            ddoc = store.find_descriptor(doc["_id"], desc_id)
            if ddoc is None:
                missing += 1
                continue
            arrays = store.load_descriptor_arrays(ddoc) if needs & {"images", "diagrams"} else {}
            rows["energy"].append(doc["energy_eV_per_atom"])
            rows["group"].append(run_id)
            rows["id"].append(doc["_id"])
            rows["n"].append(doc["n_atoms"])
            if "images" in needs:
                rows["image"].append(with_channels(arrays["image"], extra_specs, store, doc["_id"],
                                                   lambda doc=doc: store.load_frame(doc)))  # fmt: skip
                rows["pairs"].append(len(arrays["births_A2"]))  # the stored image's diagram
            if "diagrams" in needs:
                b, d = spec.learning_pairs(arrays["births_A2"], arrays["deaths_A2"], arrays["essential_births_A2"])
                rows["births"].append(b)
                rows["deaths"].append(d)
            frame = store.load_frame(doc) if "frames" in needs or geometry else None
            if "frames" in needs:
                rows["frame"].append(frame)
            if geometry:
                rows["geometry"].append(geometry_features(frame, dim))
        progress.step()
    if missing:
        log.warning("%d structures have no %s descriptor and are left out", missing, desc_id)
    if not rows["id"]:
        raise InputError(f"no structures with descriptor {desc_id} found for {len(run_ids)} runs in {store.root}")
    return ModelData(
        np.asarray(rows["energy"], float),
        rows["group"],
        rows["id"],
        spec,
        np.asarray(rows["n"], int),
        np.stack(rows["image"]).astype(np.float32) if "images" in needs else None,
        rows["births"] if "diagrams" in needs else None,
        rows["deaths"] if "diagrams" in needs else None,
        rows["frame"] if "frames" in needs else None,
        image_pairs=np.asarray(rows["pairs"], int) if "images" in needs else None,
        geometry=np.asarray(rows["geometry"], float) if geometry else None,
    )


def with_channels(image: np.ndarray, extra_specs: list[DescriptorSpec], store, structure_id: str,
                  frame_of: Callable[[], Frame]) -> np.ndarray:  # fmt: skip
    """`image` (bins, bins), or stacked with the images of `extra_specs` (1 + E, bins, bins): each read from
    `store` when it holds that descriptor of the structure, else computed from `frame_of()` (called once at most).
    """
    if not extra_specs:
        return image
    out, frame = [image], None
    for s in extra_specs:
        ddoc = None if store is None else store.find_descriptor(structure_id, s.id)
        if ddoc is not None:
            out.append(store.load_descriptor_arrays(ddoc)["image"])
            continue
        frame = frame_of() if frame is None else frame
        out.append(s.frame_image(frame, structure_id))
    return np.stack(out)


def diagrams_of(frames: list[Frame], spec: DescriptorSpec, labels: list[str]) -> list:
    """The persistence diagram (`PersistenceDiagram`, Å²) of each frame with the setting `spec`."""
    out = []
    progress = ProgressLog(len(frames), "persistence diagrams", log)
    for frame, label in zip(frames, labels):
        out.append(spec.nonempty_diagram(frame, label))
        progress.step()
    return out


def data_from_frames(
    frames: list[Frame],
    energies_eV: np.ndarray,
    groups: list[str],
    ids: list[str],
    spec: DescriptorSpec,
    needs,
    extra_degrees: tuple[int, ...] = (),
) -> ModelData:
    """ModelData of structures given as frames (a user's file): the diagrams and images computed here."""
    structures = LabelledStructures(list(frames), np.asarray(energies_eV, float), list(groups), list(ids))
    return data_from_structures(structures, spec, needs, extra_degrees=extra_degrees)


def data_from_structures(
    structures, spec: DescriptorSpec, needs, store=None, extra_degrees: tuple[int, ...] = ()
) -> ModelData:
    """ModelData of `LabelledStructures`: diagrams read from `store` (descriptor `spec.id`) if there, else computed;
    `extra_degrees` as in `load_store_data`.
    """
    needs = set(needs)
    spec = spec.with_elements(int(z) for f in structures.frames for z in np.unique(f.numbers))
    extra_specs = channel_specs(spec, extra_degrees) if "images" in needs else []  # refused before any diagram
    data = ModelData(np.asarray(structures.energies_eV, float), list(structures.groups), list(structures.ids),
                     spec, np.asarray([f.n_atoms for f in structures.frames], int),
                     frames=list(structures.frames) if "frames" in needs else None)  # fmt: skip
    if "geometry" in needs:  # training a global kind: its geometry domain
        data.geometry = np.array([geometry_features(f, SYSTEM_DIM[spec.system]) for f in structures.frames])
    if not needs & {"images", "diagrams"}:
        return data
    raw: list = [None] * len(data)  # (births, deaths, essential births) in Å², as stored
    if store is not None:
        for i, sid in enumerate(data.ids):
            ddoc = store.find_descriptor(sid, spec.id)
            if ddoc is not None:
                a = store.load_descriptor_arrays(ddoc)
                raw[i] = (a["births_A2"], a["deaths_A2"], a["essential_births_A2"])
    todo = [i for i, r in enumerate(raw) if r is None]
    if todo:
        for i, d in zip(todo, diagrams_of([structures.frames[i] for i in todo], spec, [data.ids[i] for i in todo])):
            raw[i] = (d.births_A2, d.deaths_A2, d.essential_births_A2)
    pairs = [spec.learning_pairs(*r) for r in raw]
    data.births_A2, data.deaths_A2 = [b for b, _ in pairs], [d for _, d in pairs]
    if "images" in needs:  # the paper's histogram of the diagram as computed
        data.images = np.stack([
            with_channels(pd_histogram(np.asarray(b, float), np.asarray(d, float), spec.histogram).image, extra_specs,
                          store, data.ids[i], lambda i=i: structures.frames[i])
            for i, (b, d, _) in enumerate(raw)
        ])  # fmt: skip
        data.image_pairs = np.array([len(b) for b, _, _ in raw], int)
    return data


def load_store_dataset(store: DataStore, run_ids: list[str], spec: DescriptorSpec, extra_degrees: tuple[int, ...] = ()
                       ) -> ModelData:  # fmt: skip
    """Images, energies and geometry of every stored structure of `run_ids` that has a descriptor of setting `spec`:
    what the paper's CNN trains on (`extra_degrees`: further channels, see `load_store_data`).
    """
    return load_store_data(store, run_ids, spec, {"images", "geometry"}, extra_degrees)


def load_images(
    data: Path,
    plan: str | None = None,
    system: str | None = None,
    spec: DescriptorSpec | None = None,
    read_options=None,
    label_keys=None,
    extra_degrees: tuple[int, ...] = (),
):
    """Labelled PD images (`ModelData` with images) of the training structures of a data folder + plan, or of a file.

    spec: the descriptor setting (None: the plan's, or the system's defaults); read_options / label_keys
    (`pdmd.structure.ReadOptions`, `pdmd.models.labelled.LabelKeys`): how to read a file; extra_degrees:
    homology degrees stacked after `spec`'s image as further channels (`pdmd.models.cnn.network.CNNConfig`).
    """
    data = Path(data)
    if is_data_dir(data):
        train, _, _ = plan_run_ids(plan, data)
        return load_store_dataset(DataStore(data), train, spec or plan_descriptor(plan), extra_degrees)
    if system not in SYSTEM_DIM:
        raise InputError(f"{data}: say what the structures are with --system ({sorted(SYSTEM_DIM)})")
    spec = spec or DescriptorSpec.for_system(system)
    return labelled_images_from_file(data, spec, options=read_options, keys=label_keys, extra_degrees=extra_degrees)[0]


def labelled_images_from_file(
    path: Path,
    spec: DescriptorSpec,
    *,
    options: ReadOptions | None = None,
    keys: LabelKeys | None = None,
    extra_degrees: tuple[int, ...] = (),
) -> tuple[ModelData, str]:
    """Compute PD images of every structure in `path`; returns the data and how energies were read."""
    data = read_labelled(path, options, keys)
    return labelled_images(data, spec, extra_degrees)


def labelled_images(
    data: LabelledStructures, spec: DescriptorSpec, extra_degrees: tuple[int, ...] = ()
) -> tuple[ModelData, str]:
    """PD images of labelled structures (`read_labelled`) with `spec` (`extra_degrees`: further channels); the data
    (its descriptor: `spec` with the elements found) and how energies were read.
    """
    d = data_from_frames(data.frames, data.energies_eV, data.groups, data.ids, spec, {"images"}, extra_degrees)
    return d, f"energies read as: {data.energy_note}"
