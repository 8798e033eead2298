"""From labelled PD images to a stored, evaluated potential; and large-cell validation.

`fit_potential` takes arrays, so the workflow (images from the store) and `pdmd train`
(images computed from a user's extxyz) share it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pdmd import __version__
from pdmd.errors import InputError
from pdmd.ml.model import CNNConfig
from pdmd.ml.plots import learning_curve, parity_plot, rmse_meV
from pdmd.ml.potential import Potential, load_potential, save_potential
from pdmd.ml.split import train_test_split
from pdmd.ml.standardize import ImageScaler, TargetScaler
from pdmd.ml.train import TrainConfig, train_network
from pdmd.progress import ProgressLog
from pdmd.store.datastore import MODELS, DataStore
from pdmd.store.files import to_jsonable, write_json_atomic

log = logging.getLogger(__name__)


@dataclass
class LabelledImages:
    """PD images (N, bins, bins) probabilities, energies (N,) eV/atom, run id and id per sample."""

    images: np.ndarray
    energies_eV: np.ndarray
    groups: list[str]
    ids: list[str]
    descriptor: dict  # dim, degree, lo_A2, hi_A2, bins, backend, elements, system


def load_store_dataset(store: DataStore, run_ids: list[str], desc_id: str, descriptor: dict) -> LabelledImages:
    """Images and energies of every stored structure of `run_ids` that has descriptor `desc_id`."""
    images, energies, groups, ids = [], [], [], []
    missing = 0
    progress = ProgressLog(len(run_ids), "loading dataset", log)
    for run_id in run_ids:
        for doc in store.run_structures(run_id):
            ddoc = store.find_descriptor(doc["_id"], desc_id)
            if ddoc is None:
                missing += 1
                continue
            images.append(store.load_descriptor_arrays(ddoc)["image"])
            energies.append(doc["energy_eV_per_atom"])
            groups.append(run_id)
            ids.append(doc["_id"])
        progress.step()
    if missing:
        log.warning("%d structures have no %s descriptor and are left out", missing, desc_id)
    if not images:
        raise InputError(f"no structures with descriptor {desc_id} found for {len(run_ids)} runs in {store.root}")
    return LabelledImages(np.stack(images).astype(np.float32), np.asarray(energies, float), groups, ids, descriptor)


def fit_potential(
    data: LabelledImages,
    out_dir: Path,
    name: str,
    train: TrainConfig = TrainConfig(),
    cnn: CNNConfig = CNNConfig(),
    split: str = "run",
    test_fraction: float = 0.2,
    provenance: dict | None = None,
    split_indices: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Split, standardize on the training part, train, evaluate, save weights + card + PNGs.

    `split_indices` (train, test) overrides the split (e.g. the interpolation test); `split` then names it.
    """
    if data.images.shape[1] != cnn.image_size:
        cnn = CNNConfig(image_size=data.images.shape[1], channels=cnn.channels, fc_hidden=cnn.fc_hidden)
    if split_indices is not None:
        train_idx, test_idx = (np.asarray(i, int) for i in split_indices)
    else:
        train_idx, test_idx = train_test_split(data.groups, test_fraction, train.seed, split)
    image_scaler = ImageScaler.fit(data.images[train_idx], train.standardization)
    target_scaler = TargetScaler.fit(data.energies_eV[train_idx])
    x = image_scaler.transform(data.images)
    y = target_scaler.transform(data.energies_eV)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "training %s on %d structures (%d runs), testing on %d (%s split)",
        name,
        len(train_idx),
        len({data.groups[i] for i in train_idx}),
        len(test_idx),
        split,
    )
    t0 = time.perf_counter()
    model, state = train_network(x[train_idx], y[train_idx], cnn, train, out_dir / "checkpoint")
    train_s = time.perf_counter() - t0
    potential = Potential(model, {}, image_scaler, target_scaler)
    t1 = time.perf_counter()
    pred = potential.predict_images(data.images)
    predict_ms = 1000 * (time.perf_counter() - t1) / len(pred)
    ref = data.energies_eV
    metrics = {
        "train_rmse_meV_per_atom": rmse_meV(pred[train_idx], ref[train_idx]),
        "test_rmse_meV_per_atom": rmse_meV(pred[test_idx], ref[test_idx]),
        "test_energy_std_meV_per_atom": float(ref[test_idx].std() * 1000),
        "train_energy_std_meV_per_atom": float(ref[train_idx].std() * 1000),
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "train_seconds": train_s,
        "seconds_per_epoch": float(np.mean([h["seconds"] for h in state.history])) if state.history else None,
        "cnn_ms_per_structure": predict_ms,
    }
    plots = {
        "parity": str(
            parity_plot(
                out_dir / "parity.png",
                {"train": (ref[train_idx], pred[train_idx]), "test": (ref[test_idx], pred[test_idx])},
                f"{name} ({split} split)",
            )
        ),
        "learning_curve": str(learning_curve(out_dir / "learning_curve.png", state.history, target_scaler.std_eV)),
    }
    card = to_jsonable(
        {
            "_id": name,
            "name": name,
            "path": str(out_dir.resolve()),
            "architecture": cnn.as_dict(),
            "training": train.as_dict(),
            "descriptor": data.descriptor,
            "standardization": {
                "image": image_scaler.as_dict(),
                "target": target_scaler.as_dict(),
                "fitted_on": "training split only",
                "image_scope": "global (all pixels)",
            },
            "split": {
                "kind": split,
                "test_fraction": test_fraction,
                "seed": train.seed,
                "train_ids": [data.ids[i] for i in train_idx],
                "test_ids": [data.ids[i] for i in test_idx],
                "test_runs": sorted({data.groups[i] for i in test_idx}),
            },
            "history": state.history,
            "metrics": metrics,
            "plots": plots,
            "units": {"energy": "eV/atom", "rmse": "meV/atom", "persistence": "Å²"},
            "provenance": provenance or {},
            "torch_version": torch.__version__,
            "pdmd_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    write_json_atomic(
        out_dir / "predictions.json",
        {"ids": data.ids, "reference_eV": ref, "predicted_eV": pred, "is_test": np.isin(np.arange(len(ref)), test_idx)},
    )
    save_potential(out_dir, model, card)
    log.info(
        "%s: train RMSE %.2f, test RMSE %.2f meV/atom (test std %.1f)",
        name,
        metrics["train_rmse_meV_per_atom"],
        metrics["test_rmse_meV_per_atom"],
        metrics["test_energy_std_meV_per_atom"],
    )
    return card


def validate_potential(model_dir: Path, data: LabelledImages, label: str = "large-cell validation") -> dict:
    """Predict held-out structures (e.g. 4× larger cells) and add RMSE + parity plot to the card."""
    potential = load_potential(model_dir)
    pred = potential.predict_images(data.images)
    ref = data.energies_eV
    result = {
        "rmse_meV_per_atom": rmse_meV(pred, ref),
        "energy_std_meV_per_atom": float(ref.std() * 1000),
        "bias_meV_per_atom": float((pred - ref).mean() * 1000),
        "n_structures": int(len(ref)),
        "parity_plot": str(
            parity_plot(model_dir / "validation_parity.png", {label: (ref, pred)}, f"{potential.card['name']}: {label}")
        ),
    }
    card = potential.card
    card.setdefault("validation", {})[label] = result
    write_json_atomic(model_dir / "model.json", card)
    return card


def register_model(store: DataStore, card: dict) -> None:
    """Put the model card (without per-sample id lists) into the store's database, if it has one."""
    if store.db is not None:
        upsert_model_card(store.db, card)


def upsert_model_card(db, card: dict) -> None:
    """Put the model card (without per-sample id lists) into the database's model collection."""
    doc = {k: v for k, v in card.items() if k != "split"}
    doc["split"] = {k: v for k, v in card["split"].items() if not k.endswith("_ids")}
    db[MODELS].replace_one({"_id": card["_id"]}, doc, upsert=True)
