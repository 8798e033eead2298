"""From labelled PD images to a stored, evaluated potential; and large-cell validation.

`fit_potential` takes arrays, so the workflow (images from the store) and `pdmd train`
(images computed from a user's extxyz) share it.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pdmd import __version__
from pdmd.errors import InputError
from pdmd.ml.ensemble import checkpoint_dir, ensemble_summary, member_config
from pdmd.ml.model import CNNConfig
from pdmd.ml.plots import learning_curve, parity_plot, rmse_meV
from pdmd.ml.potential import Potential, load_potential, save_potential
from pdmd.ml.quality import assess_quality, warn_if_not_learned
from pdmd.ml.split import train_test_split
from pdmd.ml.standardize import ImageScaler, TargetScaler
from pdmd.ml.support import training_range
from pdmd.ml.train import TrainConfig, effective_batch_size, model_device, train_network, validation_split
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
    from pdmd.ml.kinds import load_store_data

    d = load_store_data(store, run_ids, desc_id, descriptor, {"images"})
    return LabelledImages(d.images, d.energies_eV, d.groups, d.ids, descriptor)


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
    ensemble: int = 1,
    resume: bool | None = None,
) -> dict:
    """Split, standardize on the training part, train, evaluate, save weights + card + PNGs.

    `split_indices` (train, test) overrides the split (e.g. the interpolation test); `split` then names it.
    `ensemble` K > 1 trains K networks (seeds seed … seed+K−1) on the same split; predictions are their
    mean, the card gets their spread. `resume`: see `train_network` (None continues a matching checkpoint).
    """
    if ensemble < 1:
        raise InputError(f"ensemble size must be at least 1, got {ensemble}")
    if data.images.shape[1] != cnn.image_size:
        cnn = CNNConfig(image_size=data.images.shape[1], channels=cnn.channels, fc_hidden=cnn.fc_hidden)
    if split_indices is not None:
        train_idx, test_idx = (np.asarray(i, int) for i in split_indices)
    else:
        train_idx, test_idx = train_test_split(data.groups, test_fraction, train.seed, split)
    image_scaler = ImageScaler.fit(data.images[train_idx], train.standardization, train.representation)
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
    networks, states = [], []
    for k in range(ensemble):
        label = name if ensemble == 1 else f"{name} member {k + 1}/{ensemble}"
        net, st = train_network(
            x[train_idx], y[train_idx], cnn, member_config(train, k), checkpoint_dir(out_dir, k), resume, label
        )
        networks.append(net)
        states.append(st)
    state = states[0]
    session_s = time.perf_counter() - t0
    potential = Potential(networks[0], {}, image_scaler, target_scaler, networks[1:])
    t1 = time.perf_counter()
    member_pred = potential.predict_images_members(data.images)
    pred = member_pred.mean(axis=0)
    predict_ms = 1000 * (time.perf_counter() - t1) / len(pred)
    ref = data.energies_eV
    quality = assess_quality(pred[test_idx], ref[test_idx], target_scaler.mean_eV)
    val_idx = validation_split(len(train_idx), train)[0]
    runtime = {
        "device": str(model_device(networks[0])),
        "precision": train.precision,
        "threads": torch.get_num_threads(),
        "batch_size_used": effective_batch_size(len(train_idx) - len(val_idx), train),
        "train_wall_seconds": float(sum(s.seconds for s in states)),  # every session and member together
        "this_session_seconds": session_s,
        "stop_reason": [s.stop_reason for s in states] if ensemble > 1 else state.stop_reason,
        "cpu": platform.processor() or platform.machine(),
    }
    metrics = {
        "train_rmse_meV_per_atom": rmse_meV(pred[train_idx], ref[train_idx]),
        "test_rmse_meV_per_atom": rmse_meV(pred[test_idx], ref[test_idx]),
        "mean_predictor_test_rmse_meV_per_atom": quality["mean_predictor_test_rmse_meV_per_atom"],
        "test_energy_std_meV_per_atom": float(ref[test_idx].std() * 1000),
        "train_energy_std_meV_per_atom": float(ref[train_idx].std() * 1000),
        "test_prediction_std_meV_per_atom": quality["test_prediction_std_meV_per_atom"],
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "train_seconds": runtime["train_wall_seconds"],
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
                "validation_ids": [data.ids[train_idx[i]] for i in val_idx],  # carved from train (member 0)
                "test_runs": sorted({data.groups[i] for i in test_idx}),
            },
            "history": state.history,
            "metrics": metrics,
            "runtime": runtime,
            **(
                {
                    "ensemble": {
                        **ensemble_summary(member_pred, ref, test_idx),
                        "seeds": [member_config(train, k).seed for k in range(ensemble)],
                        "epochs_run": [s.epoch for s in states],
                        "best_epoch": [s.best_epoch + 1 for s in states],
                    }
                }
                if ensemble > 1
                else {}
            ),
            "training_range": training_range(data.images[train_idx], ref[train_idx], data.descriptor),
            "quality": quality,
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
        {
            "ids": data.ids,
            "reference_eV": ref,
            "predicted_eV": pred,
            "spread_eV": member_pred.std(axis=0),
            "is_test": np.isin(np.arange(len(ref)), test_idx),
        },
    )
    save_potential(out_dir, networks[0], card, networks[1:])
    log.info(
        "%s: train RMSE %.2f, test RMSE %.2f meV/atom (mean predictor %.2f, test std %.1f)",
        name,
        metrics["train_rmse_meV_per_atom"],
        metrics["test_rmse_meV_per_atom"],
        metrics["mean_predictor_test_rmse_meV_per_atom"],
        metrics["test_energy_std_meV_per_atom"],
    )
    warn_if_not_learned(name, quality, log)
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
        "mean_predictor_rmse_meV_per_atom": rmse_meV(np.full(len(ref), potential.target_scaler.mean_eV), ref),
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
