# SPDX-License-Identifier: GPL-3.0-or-later
"""Training, prediction and validation of any model kind (`pdmd.models.registry`): what `pdmd train`, the train and
validate fireworks and the analyses share.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.models.card import register_model
from pdmd.models.data import ModelData, TrainSplit, data_from_structures, load_store_data
from pdmd.models.labelled import check_split_size, load_structures
from pdmd.models.plots import parity_plot, rmse_meV
from pdmd.models.registry import extra_image_degrees, get_kind, load_model, training_needs
from pdmd.models.split import train_test_split
from pdmd.store.datastore import DataStore
from pdmd.store.documents import DEFAULT_KIND, model_kind_of, read_card, write_card

log = logging.getLogger(__name__)


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
    *,
    read_options=None,
    label_keys=None,
    **train_kw: Any,
) -> dict:
    """Train a model of `kind` on a labelled structure file (anything ASE reads with energies); its card.

    spec: the descriptor setting (its elements are those found in the file);
    read_options / label_keys: `pdmd.structure.ReadOptions` / `pdmd.models.labelled.LabelKeys` of the file;
    train_kw: `train_model`'s keywords (split, test_fraction, seed, options).
    """
    unknown = sorted(set(train_kw) - set(_TRAIN_DEFAULTS) | set(train_kw) & {"provenance"})
    if unknown:
        raise TypeError(f"train_from_file: unexpected keyword(s) {unknown}; train_model's: {sorted(_TRAIN_DEFAULTS)}")
    rule = {**_TRAIN_DEFAULTS, **train_kw}
    structures = load_structures(Path(path), None, spec.system, read_options=read_options, label_keys=label_keys)
    # the split is checked before any diagram is computed
    check_split_size(structures.groups, rule["test_fraction"], rule["split"], rule["seed"], str(path))
    extra = extra_image_degrees(kind, (rule["options"] or {}).get("cnn"))
    data = data_from_structures(structures, spec, training_needs(kind), extra_degrees=extra)
    provenance = {"data": str(Path(path).resolve()), "energies_read_as": structures.energy_note}
    return train_model(kind, data, out_dir, name, provenance=provenance, **train_kw)


_TRAIN_DEFAULTS = {k: p.default for k, p in inspect.signature(train_model).parameters.items() if p.default != p.empty}
"""`train_model`'s defaults (split "run", test fraction 0.2, seed 0, no options), read from its signature."""


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


def train_on_store(
    store: DataStore,
    run_ids: list[str],
    spec: DescriptorSpec,
    name: str,
    kind: str | None = None,
    options: dict | None = None,
    *,
    train: dict | None = None,
    cnn: dict | None = None,
    split: str = "run",
    test_fraction: float = 0.2,
    provenance: dict | None = None,
) -> dict:
    """Train a model of `kind` (None: the paper's CNN) on the stored structures of `run_ids` with descriptor `spec`,
    save it under the store's models/ and register its card in the store's database; the card.

    options: the kind's options; for the pd-cnn also `train` (TrainConfig fields, whose seed also seeds the split)
    and `cnn` (CNNConfig fields), as a train firework gives them.
    """
    kind = kind or DEFAULT_KIND
    options = dict(options or {})
    if kind == DEFAULT_KIND:
        options = {"train": dict(train or {}), "cnn": dict(cnn or {}), **options}
    data = load_store_data(store, run_ids, spec, training_needs(kind), extra_image_degrees(kind, options.get("cnn")))
    card = train_model(kind, data, store.root / "models" / name, name, split=split, test_fraction=test_fraction,
                       seed=int((train or {}).get("seed", 0)), options=options, provenance=provenance)  # fmt: skip
    register_model(store, card)
    return card


def validate_on_store(store: DataStore, run_ids: list[str], name: str, label: str = "large-cell validation") -> dict:
    """Validate the stored model `name` on the stored structures of `run_ids` (e.g. 4× larger cells) with the
    model's own descriptor setting; the card's validation entry (RMSE, bias, mean predictor; meV/atom).
    """
    folder = store.root / "models" / name
    card = read_card(folder)
    spec = DescriptorSpec.from_dict(card["descriptor"], f"model {name}")
    kind = model_kind_of(card)
    data = load_store_data(
        store, run_ids, spec, get_kind(kind).needs, extra_image_degrees(kind, card.get("architecture"))
    )
    card = validate_model(folder, data, label)
    register_model(store, card)
    result = card["validation"][label]
    log.info("%s: %s RMSE %.2f meV/atom on %d structures (energy std %.1f)", name, label, result["rmse_meV_per_atom"],
             result["n_structures"], result["energy_std_meV_per_atom"])  # fmt: skip
    return result
