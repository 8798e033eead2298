# SPDX-License-Identifier: GPL-3.0-or-later
"""A trained model's card (`model.json`) and the files beside it, shared by every model kind."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np

from pdmd.files import write_json_atomic
from pdmd.models.data import ModelData, TrainSplit
from pdmd.models.global_domain import GLOBAL_KINDS, fit_training_domain, pair_images
from pdmd.models.plots import parity_plot
from pdmd.models.quality import energy_metrics, warn_if_not_learned
from pdmd.store.datastore import MODELS, DataStore
from pdmd.store.documents import write_card
from pdmd.version import __version__

log = logging.getLogger(__name__)

CARD_UNITS = {"energy": "eV/atom", "rmse": "meV/atom", "persistence": "Å²"}


def write_predictions(out_dir: Path, ids: list[str], ref_eV: np.ndarray, pred_eV: np.ndarray, test_idx: np.ndarray,
                      spread_eV: np.ndarray | None = None) -> None:  # fmt: skip
    """predictions.json beside the card: per structure id, reference and predicted eV/atom, test membership."""
    is_test = np.isin(np.arange(len(ref_eV)), test_idx)
    doc = {"ids": ids, "reference_eV": ref_eV, "predicted_eV": pred_eV, "is_test": is_test}
    if spread_eV is not None:
        doc["spread_eV"] = spread_eV
    write_json_atomic(out_dir / "predictions.json", doc)


def log_trained(name: str, kind: str, metrics: dict) -> None:
    log.info("%s (%s): train RMSE %.2f, test RMSE %.2f meV/atom (mean predictor %.2f, test std %.1f)", name, kind,
             metrics["train_rmse_meV_per_atom"], metrics["test_rmse_meV_per_atom"],
             metrics["mean_predictor_test_rmse_meV_per_atom"], metrics["test_energy_std_meV_per_atom"])  # fmt: skip


def register_model(store: DataStore, card: dict) -> None:
    """Put the model card (without per-sample id lists) into the store's database, if it has one."""
    if store.db is not None:
        upsert_model_card(store.db, card)


def upsert_model_card(db, card: dict) -> None:
    """Put the model card (without per-sample id lists) into the database's model collection."""
    doc = {k: v for k, v in card.items() if k != "split"}
    doc["split"] = {k: v for k, v in card["split"].items() if not k.endswith("_ids")}
    db[MODELS].replace_one({"_id": card["_id"]}, doc, upsert=True)


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
    A global kind (pd-kernel, pd-hybrid) gets the domain of its training diagrams (`pdmd.models.global_domain`:
    domain.npz and the card's `domain` section); a kind that brings its own `domain` in `sections` keeps it.
    """
    tr, te = split.train_idx, split.test_idx
    ref = data.energies_eV
    base, quality = energy_metrics(pred_eV, ref, tr, te)
    metrics = {**base, **metrics}
    if kind in GLOBAL_KINDS and "domain" not in sections and data.births_A2 is not None:
        hist = data.descriptor.histogram
        images = pair_images([data.births_A2[i] for i in tr], [data.deaths_A2[i] for i in tr], hist)
        domain = fit_training_domain(images, out_dir, [data.groups[i] for i in tr], split.seed, data.n_atoms[tr],
                                     np.array([len(data.births_A2[i]) for i in tr]),
                                     geometry=None if data.geometry is None else data.geometry[tr])  # fmt: skip
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
