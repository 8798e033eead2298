# SPDX-License-Identifier: GPL-3.0-or-later
"""Model kinds: which potential a model folder holds, how to train it and how to load it.

A kind is a name on the model card (`model_kind`; cards written before kinds existed are
"pd-cnn") with a train function and a loader. Every loaded model has `card`, `dim` and
`predict_frames(frames, labels) -> (energies eV/atom, mean seconds per structure)`.

- pd-cnn: the paper's CNN on the 128×128 PD histogram (`pdmd.ml.fit`).
- pd-kernel: kernel ridge regression on vectorized persistence diagrams (`pdmd.ml.pd_kernel`).
- pd-hybrid: kernel ridge on PD features together with averaged ACSF/SOAP (`pdmd.ml.pd_hybrid`).
- pd-local: per-atom networks on local neighbourhood PDs, energies summed, forces (`pdmd.local`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pdmd import __version__
from pdmd.descriptor.spec import DescriptorSpec, channel_specs
from pdmd.errors import InputError
from pdmd.ml.split import train_test_split
from pdmd.progress import ProgressLog
from pdmd.store.documents import read_card, write_card
from pdmd.structure import Frame

log = logging.getLogger(__name__)

DEFAULT_KIND = "pd-cnn"
NEEDS = ("images", "diagrams", "frames")


@dataclass
class ModelData:
    """What a kind trains on or predicts: per structure energy (eV/atom), run id, id, atom count, and inputs.

    Inputs a kind does not need may be None: `images` (N, bins, bins) PD histogram probabilities,
    `births_A2` / `deaths_A2` the finite pairs of each diagram (Å²), `frames` the structures,
    `features` global descriptors already computed (e.g. by `pdmd baseline`), so they are not computed twice,
    `image_pairs` the number of finite pairs each image is the histogram of (its normaliser; for the training
    domain's pairs per atom, `pdmd.ml.domain`).
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


@dataclass(frozen=True)
class ModelKind:
    """A model kind: `train(data, out_dir, name, split, options, provenance) -> card`, `load(folder) -> model`."""

    name: str
    summary: str
    needs: frozenset[str]
    train: Callable[[ModelData, Path, str, TrainSplit, dict, dict], dict]
    load: Callable[[Path], Any]


def _lazy(module: str, attr: str) -> Callable:
    """A function imported on first call (torch and scikit-learn only when a kind needs them)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    return call


MODEL_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> None:
    """Add (or replace) a model kind in the registry."""
    unknown = set(kind.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"kind {kind.name}: unknown inputs {sorted(unknown)}; use {NEEDS}")
    MODEL_KINDS[kind.name] = kind


for _kind in (
    ModelKind("pd-cnn", "the paper's CNN on the PD histogram image", frozenset({"images"}),
              _lazy("pdmd.ml.kinds", "train_cnn"), _lazy("pdmd.ml.potential", "load_potential")),
    ModelKind("pd-kernel", "kernel ridge on vectorized persistence diagrams (CV-chosen)", frozenset({"diagrams"}),
              _lazy("pdmd.ml.pd_kernel", "train_pd_kernel"), _lazy("pdmd.ml.pd_kernel", "load_kernel_model")),
    ModelKind("pd-hybrid", "kernel ridge on PD features + averaged ACSF/SOAP", frozenset({"diagrams", "frames"}),
              _lazy("pdmd.ml.pd_hybrid", "train_pd_hybrid"), _lazy("pdmd.ml.pd_kernel", "load_kernel_model")),
    ModelKind("pd-local", "per-atom local PD energies summed; forces by autograd (MD-ready)", frozenset({"frames"}),
              _lazy("pdmd.local.train", "train_pd_local"), _lazy("pdmd.local.train", "load_pd_local")),
):  # fmt: skip
    register_kind(_kind)


def extra_image_degrees(kind: str, cnn: Any) -> tuple[int, ...]:
    """Homology degrees a pd-cnn stacks after its descriptor's image (`CNNConfig.extra_degrees`), from its `cnn`
    options or a card's `architecture` (checked: a bad value is one InputError line); () for other kinds and for
    the paper's single H1 image.
    """
    if kind != "pd-cnn":
        return ()
    from pdmd.ml.options import config_from_options

    return config_from_options("cnn", {} if cnn is None else cnn, "pd-cnn options: cnn").extra_degrees


def get_kind(name: str) -> ModelKind:
    if name not in MODEL_KINDS:
        raise InputError(f"unknown model kind {name!r}; choose one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[name]


def model_kind_of(card: dict) -> str:
    """The card's model kind; cards written before kinds existed hold the paper's CNN."""
    return card.get("model_kind", DEFAULT_KIND)


def load_model(folder: str | Path):
    """The model in `folder`, loaded by its card's kind."""
    return get_kind(model_kind_of(read_card(folder))).load(Path(folder))


# -- data --------------------------------------------------------------------------------------
def load_store_data(
    store, run_ids: list[str], spec: DescriptorSpec, needs, extra_degrees: tuple[int, ...] = ()
) -> ModelData:
    """Every stored structure of `run_ids` that has a descriptor of setting `spec`, with the inputs in `needs`.

    extra_degrees: homology degrees whose images follow `spec`'s as further channels (`images` (N, C, bins, bins),
    see `CNNConfig`); read from the store where it has them (`pdmd campaign --extra-degrees`), else computed.
    """
    needs = set(needs)
    desc_id = spec.id
    extra_specs = channel_specs(spec, extra_degrees)
    rows: dict[str, list] = {k: [] for k in ("energy", "group", "id", "n", "image", "pairs", "births", "deaths",
                                             "frame")}  # fmt: skip
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
            if "frames" in needs:
                rows["frame"].append(store.load_frame(doc))
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
    from pdmd.ml.datasets import LabelledStructures

    structures = LabelledStructures(list(frames), np.asarray(energies_eV, float), list(groups), list(ids), "")
    return data_from_structures(structures, spec, needs, extra_degrees=extra_degrees)


def data_from_structures(
    structures, spec: DescriptorSpec, needs, store=None, extra_degrees: tuple[int, ...] = ()
) -> ModelData:
    """ModelData of `LabelledStructures`: diagrams read from `store` (descriptor `spec.id`) if there, else computed;
    `extra_degrees` as in `load_store_data`.
    """
    from pdmd.descriptor.histogram import pd_histogram

    needs = set(needs)
    spec = spec.with_elements(int(z) for f in structures.frames for z in np.unique(f.numbers))
    extra_specs = channel_specs(spec, extra_degrees) if "images" in needs else []  # refused before any diagram
    data = ModelData(np.asarray(structures.energies_eV, float), list(structures.groups), list(structures.ids),
                     spec, np.asarray([f.n_atoms for f in structures.frames], int),
                     frames=list(structures.frames) if "frames" in needs else None)  # fmt: skip
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


# -- training and validation -----------------------------------------------------------------
def train_model(
    kind: str,
    data: ModelData,
    out_dir: Path,
    name: str,
    *,
    split: str = "run",
    test_fraction: float = 0.2,
    seed: int = 0,
    options: dict | None = None,
    provenance: dict | None = None,
    split_indices: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Split (or take `split_indices`), train a model of `kind`, save it to `out_dir`; returns its card."""
    spec = get_kind(kind)
    lacking = [k for k in spec.needs if getattr(data, "births_A2" if k == "diagrams" else k) is None]
    if lacking:
        raise InputError(f"model kind {kind} needs {sorted(spec.needs)}; the data lacks {lacking}")
    if split_indices is not None:
        train_idx, test_idx = (np.asarray(i, int) for i in split_indices)
    else:
        train_idx, test_idx = train_test_split(data.groups, test_fraction, seed, split)
    if len(train_idx) < 4 or len(test_idx) < 1:
        raise InputError(f"{name}: need >= 4 training and >= 1 test structures, got {len(train_idx)}/{len(test_idx)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tsplit = TrainSplit(train_idx, test_idx, split, test_fraction, seed)
    card = spec.train(data, out_dir, name, tsplit, dict(options or {}), dict(provenance or {}))
    if card.get("model_kind") != kind:
        raise RuntimeError(f"model kind {kind} wrote a card of kind {card.get('model_kind')!r}")  # a kind's bug
    return card


def train_from_file(
    path: Path,
    spec: DescriptorSpec,
    kind: str,
    out_dir: Path,
    name: str,
    split: str = "run",
    test_fraction: float = 0.2,
    seed: int = 0,
    options: dict | None = None,
    read_options=None,
    label_keys=None,
) -> dict:
    """Train a model of `kind` on a labelled structure file (anything ASE reads with energies); its card.

    spec: the descriptor setting (its elements are those found in the file);
    read_options / label_keys: `pdmd.structure.ReadOptions` / `pdmd.ml.dataset_files.LabelKeys` of the file.
    """
    from pdmd.ml.dataset_files import check_split_size
    from pdmd.ml.datasets import load_structures

    needs = get_kind(kind).needs
    structures = load_structures(Path(path), None, spec.system, read_options=read_options, label_keys=label_keys)
    check_split_size(structures.groups, test_fraction, split, seed, str(path))  # before any diagram is computed
    data = data_from_structures(
        structures, spec, needs, extra_degrees=extra_image_degrees(kind, (options or {}).get("cnn"))
    )
    provenance = {"data": str(Path(path).resolve()), "energies_read_as": structures.energy_note}
    return train_model(kind, data, out_dir, name, split=split, test_fraction=test_fraction, seed=seed,
                       options=options, provenance=provenance)  # fmt: skip


def train_cnn(data: ModelData, out_dir: Path, name: str, split: TrainSplit, options: dict, provenance: dict) -> dict:
    """The paper's CNN (`pdmd.ml.fit.fit_potential`); options: {"train": TrainConfig, "cnn": CNNConfig fields}."""
    from pdmd.ml.fit import LabelledImages, fit_potential
    from pdmd.ml.options import config_from_options

    defaults = {"seed": split.seed, "standardization": data.descriptor.default_standardization}
    train = config_from_options("train", options.get("train", {}), "pd-cnn options: train", defaults)
    cnn = config_from_options("cnn", options.get("cnn", {}), "pd-cnn options: cnn")
    images = LabelledImages(data.images, data.energies_eV, data.groups, data.ids, data.descriptor, data.n_atoms,
                            data.image_pairs)  # fmt: skip
    return fit_potential(images, out_dir, name, train, cnn, split.kind, split.test_fraction, provenance,
                         split_indices=(split.train_idx, split.test_idx), ensemble=int(options.get("ensemble", 1)),
                         resume=options.get("resume"))  # fmt: skip


def finish_card(
    data: ModelData,
    out_dir: Path,
    name: str,
    kind: str,
    split: TrainSplit,
    pred_eV: np.ndarray,
    sections: dict,
    metrics: dict,
    provenance: dict,
    plots: dict | None = None,
) -> dict:
    """Card + predictions.json + parity PNG of a model whose predictions on all of `data` are `pred_eV`.

    metrics / plots: the kind's own entries beside the energy metrics (`energy_metrics`) and the parity plot.
    A global kind (pd-kernel, pd-hybrid) gets the domain of its training diagrams (`pdmd.ml.domain`: domain.npz
    and the card's `domain` section); a kind that brings its own `domain` in `sections` keeps it.
    """
    from pdmd.ml.domain import GLOBAL_KINDS, fit_training_domain, pair_images
    from pdmd.ml.fit import CARD_UNITS, log_trained, write_predictions
    from pdmd.ml.plots import parity_plot
    from pdmd.ml.quality import energy_metrics, warn_if_not_learned

    tr, te = split.train_idx, split.test_idx
    ref = data.energies_eV
    base, quality = energy_metrics(pred_eV, ref, tr, te)
    metrics = {**base, **metrics}
    if kind in GLOBAL_KINDS and "domain" not in sections and data.births_A2 is not None:
        hist = data.descriptor.histogram
        images = pair_images([data.births_A2[i] for i in tr], [data.deaths_A2[i] for i in tr], hist)
        domain = fit_training_domain(images, out_dir, [data.groups[i] for i in tr], split.seed, data.n_atoms[tr],
                                     np.array([len(data.births_A2[i]) for i in tr]))  # fmt: skip
        sections = {**sections, **({"domain": domain} if domain else {})}
    png = parity_plot(out_dir / "parity.png", {"train": (ref[tr], pred_eV[tr]), "test": (ref[te], pred_eV[te])},
                      f"{name}: {kind} ({split.kind} split)")  # fmt: skip
    write_predictions(out_dir, data.ids, ref, pred_eV, te)  # before the card: a card means a finished model
    card = write_card(out_dir, {
        "_id": name, "name": name, "path": str(Path(out_dir).resolve()), "model_kind": kind,
        "descriptor": data.descriptor.to_dict(), "split": split.card(data), "metrics": metrics, "quality": quality,
        "plots": {"parity": str(png), **(plots or {})}, "units": CARD_UNITS, "provenance": provenance,
        "pdmd_version": __version__, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **sections,
    })  # fmt: skip
    log_trained(name, kind, metrics)
    warn_if_not_learned(name, quality, log)
    return card


def predict_data(model, data: ModelData) -> np.ndarray:
    """Energies (eV/atom) of already-featurized `data` (images or diagrams) with a loaded model of any kind."""
    if hasattr(model, "predict_data"):
        return model.predict_data(data)
    if data.images is not None and hasattr(model, "predict_images"):
        return model.predict_images(data.images)
    if data.frames is not None:
        return model.predict_frames(data.frames, list(data.ids))[0]
    raise InputError(f"model {model.card.get('name')}: the data has neither its inputs nor structures")


def validate_model(folder: str | Path, data: ModelData, label: str = "large-cell validation") -> dict:
    """Predict held-out structures (e.g. 4× larger cells); RMSE, bias, the mean predictor's RMSE (training mean)
    and parity PNG go into the card.
    """
    from pdmd.ml.plots import parity_plot, rmse_meV

    folder = Path(folder)
    model = load_model(folder)
    pred = predict_data(model, data)
    ref = data.energies_eV
    card = read_card(folder)
    mean = card["metrics"].get("train_energy_mean_eV_per_atom")
    card.setdefault("validation", {})[label] = {
        "rmse_meV_per_atom": rmse_meV(pred, ref),
        "energy_std_meV_per_atom": float(ref.std() * 1000),
        "bias_meV_per_atom": float((pred - ref).mean() * 1000),
        "mean_predictor_rmse_meV_per_atom": None if mean is None else rmse_meV(np.full(len(ref), mean), ref),
        "n_structures": int(len(ref)),
        "parity_plot": str(parity_plot(folder / f"validation_parity_{label.split()[0]}.png", {label: (ref, pred)},
                                       f"{card['name']}: {label}")),
    }  # fmt: skip
    return write_card(folder, card)
