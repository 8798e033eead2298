# SPDX-License-Identifier: GPL-3.0-or-later
"""Training, prediction and validation of any model kind (`pdmd.models.registry`): what `pdmd train`, the train and
validate fireworks and the analyses share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.models.data import ModelData, TrainSplit, data_from_structures
from pdmd.models.labelled import check_split_size, load_structures
from pdmd.models.plots import parity_plot, rmse_meV
from pdmd.models.registry import extra_image_degrees, get_kind, load_model
from pdmd.models.split import train_test_split
from pdmd.store.documents import read_card, write_card


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
    read_options / label_keys: `pdmd.structure.ReadOptions` / `pdmd.models.labelled.LabelKeys` of the file.
    """
    needs = get_kind(kind).needs
    structures = load_structures(Path(path), None, spec.system, read_options=read_options, label_keys=label_keys)
    check_split_size(structures.groups, test_fraction, split, seed, str(path))  # before any diagram is computed
    data = data_from_structures(
        structures, spec, needs, extra_degrees=extra_image_degrees(kind, (options or {}).get("cnn"))
    )
    provenance = {"data": str(Path(path).resolve()), "energies_read_as": structures.energy_note}
    return train_model(kind, data, out_dir, name, split=split, test_fraction=test_fraction, seed=seed,
                       options=options, provenance=provenance)  # fmt: skip


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
