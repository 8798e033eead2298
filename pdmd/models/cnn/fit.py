"""From labelled PD images to a stored, evaluated potential; and large-cell validation.

`fit_potential` takes arrays, so the workflow (images from the store) and `pdmd train`
(images computed from a user's extxyz) share it.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pdmd.descriptor.histogram import as_channels
from pdmd.descriptor.spec import channel_specs
from pdmd.errors import InputError
from pdmd.files import to_jsonable
from pdmd.models.card import CARD_UNITS, log_trained, write_predictions
from pdmd.models.cnn.config import CNNConfig, TrainConfig
from pdmd.models.cnn.options import config_from_options
from pdmd.models.cnn.potential import Potential, save_potential
from pdmd.models.cnn.standardize import ImageScaler, TargetScaler, auto_representation
from pdmd.models.cnn.train import (
    effective_batch_size,
    model_device,
    predict_normalized,
    train_network,
    training_precision,
    validation_split,
)
from pdmd.models.data import ModelData, TrainSplit
from pdmd.models.ensemble import ensemble_summary
from pdmd.models.global_domain import fit_training_domain
from pdmd.models.plots import learning_curve, parity_plot
from pdmd.models.quality import energy_metrics, warn_if_not_learned
from pdmd.models.split import train_test_split
from pdmd.models.support import training_range
from pdmd.version import __version__

log = logging.getLogger(__name__)


def member_config(train: TrainConfig, member: int) -> TrainConfig:
    """Settings of ensemble member `member` (0-based): the same, with seed + member."""
    return replace(train, seed=train.seed + member)


def checkpoint_dir(out_dir: Path, member: int) -> Path:
    """Where member `member` keeps its checkpoint (member 0: `checkpoint`, as a single network)."""
    return out_dir / ("checkpoint" if member == 0 else f"checkpoint-{member}")


def fit_potential(
    data: ModelData,
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
    split_seed: int | None = None,
) -> dict:
    """Split, standardize on the training part, train, evaluate, save weights + card + PNGs + the training
    structures' domain (`pdmd.models.global_domain`). `split_indices` (train, test) overrides the split (e.g. the
    interpolation test; `split` names it). `ensemble` K > 1 trains K networks (seeds seed … seed+K−1) on one
    split; predictions are their mean, the card gets their spread. `resume`: see `train_network`.
    `split_seed`: the seed of the train/test split (None: the training seed, `train.seed`).
    """
    if ensemble < 1:
        raise InputError(f"ensemble size must be at least 1, got {ensemble}")
    split_seed = train.seed if split_seed is None else split_seed
    cnn = _config_for(data, cnn)
    s = _split(data, split_indices, split, test_fraction, split_seed)
    train, chosen = resolved_representation(train, data, s.train_idx)
    train_idx, test_idx = s.train_idx, s.test_idx
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("training %s on %d structures (%d runs), testing on %d (%s split)", name, len(train_idx),
             len({data.groups[i] for i in train_idx}), len(test_idx), split)  # fmt: skip
    potential, states, session_s, restarts = _train_members(data, train_idx, train, cnn, out_dir, name, ensemble,
                                                            resume)  # fmt: skip
    member_pred, predict_ms = _predict_timed(potential, data)
    pred = member_pred.mean(axis=0)
    metrics, quality = energy_metrics(pred, data.energies_eV, train_idx, test_idx)
    runtime = {**_runtime(potential, states, train, len(train_idx), session_s), "restarts": restarts}
    domain = _training_domain(data, s, out_dir)
    metrics.update(_training_metrics(states[0], runtime, predict_ms))
    card = to_jsonable({
        "_id": name, "name": name, "path": str(out_dir.resolve()), "model_kind": "pd-cnn",
        "architecture": cnn.as_dict(), "descriptor": data.descriptor.to_dict(),
        "training": train.as_dict(),
        "standardization": _standardization(potential, train, chosen), "split": _split_section(data, s, train),
        "history": states[0].history, "metrics": metrics, "runtime": runtime,
        **({"ensemble": _ensemble_section(member_pred, data.energies_eV, test_idx, train, states)}
           if ensemble > 1 else {}),
        "training_range": training_range(data.images[train_idx], data.energies_eV[train_idx], data.descriptor),
        **({"domain": domain} if domain else {}),
        "quality": quality,
        "plots": _cnn_plots(out_dir, name, split, data.energies_eV, pred, train_idx, test_idx, states[0],
                            potential.target_scaler.std_eV),
        "units": CARD_UNITS, "provenance": provenance or {}, "torch_version": torch.__version__,
        "pdmd_version": __version__, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })  # fmt: skip
    write_predictions(out_dir, data.ids, data.energies_eV, pred, test_idx, spread_eV=member_pred.std(axis=0))
    potential.image_scaler.save_arrays(out_dir)
    save_potential(out_dir, potential.networks[0], card, potential.networks[1:])
    log_trained(name, "pd-cnn", metrics)
    warn_if_not_learned(name, quality, log)
    return card


def resolved_representation(train: TrainConfig, data: ModelData, train_idx: np.ndarray) -> tuple[TrainConfig, str]:
    """`train` with representation "auto" replaced by what the training images call for (`auto_representation`),
    and why ("" when the representation was given).
    """
    if train.representation != "auto":
        return train, ""
    pairs = None if data.image_pairs is None else np.asarray(data.image_pairs)[train_idx]
    representation, sigma, why = auto_representation(data.images[train_idx], pairs)
    log.info("image representation %s (σ %g pixels): %s", representation, sigma, why)
    return replace(train, representation=representation, smooth_sigma_px=sigma), why


def _config_for(data: ModelData, cnn: CNNConfig) -> CNNConfig:
    """The network settings for `data`: its image channels checked, the image size (pixels) taken from its images."""
    check_channels(data, cnn)
    if data.images.shape[-1] != cnn.image_size:
        cnn = replace(cnn, image_size=data.images.shape[-1])
    return cnn


def _split(
    data: ModelData,
    split_indices: tuple[np.ndarray, np.ndarray] | None,
    kind: str,
    test_fraction: float,
    seed: int,
) -> TrainSplit:
    """The given (train, test) indices, else a seeded split of `kind` ("run" or "snapshot") of the structures."""
    if split_indices is not None:
        train_idx, test_idx = (np.asarray(i, int) for i in split_indices)
    else:
        train_idx, test_idx = train_test_split(data.groups, test_fraction, seed, kind)
    return TrainSplit(train_idx, test_idx, kind, test_fraction, seed)


def _predict_timed(potential: Potential, data: ModelData) -> tuple[np.ndarray, float]:
    """Every member's energies (eV/atom, (K, N)) of all structures and the ms per structure it took."""
    t1 = time.perf_counter()
    member_pred = potential.predict_images_members(data.images)
    return member_pred, 1000 * (time.perf_counter() - t1) / len(data.ids)


def _training_domain(data: ModelData, s: TrainSplit, out_dir: Path) -> dict | None:
    """The training images' domain (`fit_training_domain`: writes domain.npz; the card's section or None)."""
    counts = [None if c is None else np.asarray(c)[s.train_idx] for c in (data.n_atoms, data.image_pairs)]
    geometry = None if data.geometry is None else data.geometry[s.train_idx]
    return fit_training_domain(data.images[s.train_idx], out_dir, [data.groups[i] for i in s.train_idx], s.seed,
                               *counts, geometry=geometry)  # fmt: skip


def _training_metrics(state, runtime: dict, predict_ms: float) -> dict:
    """The card's training metrics of member 0 (`state`): epochs, best epoch (1-based), seconds, ms per structure."""
    return {
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "train_seconds": runtime["train_wall_seconds"],
        "seconds_per_epoch": float(np.mean([h["seconds"] for h in state.history])) if state.history else None,
        "cnn_ms_per_structure": predict_ms,
    }


def _standardization(potential: Potential, train: TrainConfig, chosen: str = "") -> dict:
    """The card's `standardization`: image and target scalers, fitted on the training split only, and why the
    representation was chosen (`chosen`, when the setting was "auto").
    """
    return {"image": potential.image_scaler.as_dict(), "target": potential.target_scaler.as_dict(),
            "fitted_on": "training split only",
            "image_scope": {"global": "global (all pixels)", "pixel": "per pixel"}[train.image_scope],
            **({"representation_chosen": chosen} if chosen else {})}  # fmt: skip


def _split_section(data: ModelData, s: TrainSplit, train: TrainConfig) -> dict:
    """The card's `split`: kind, seed, the train, test and validation (carved from train, member 0) structure ids,
    the test runs.
    """
    return {
        "kind": s.kind, "test_fraction": s.test_fraction, "seed": s.seed,
        "train_ids": [data.ids[i] for i in s.train_idx], "test_ids": [data.ids[i] for i in s.test_idx],
        "validation_ids": [data.ids[s.train_idx[i]] for i in validation_split(len(s.train_idx), train)[0]],
        "test_runs": sorted({data.groups[i] for i in s.test_idx}),
    }  # fmt: skip


def _ensemble_section(
    member_pred: np.ndarray, energies_eV: np.ndarray, test_idx: np.ndarray, train: TrainConfig, states: list
) -> dict:
    """The card's `ensemble`: the members' spread on the test set, their seeds and epochs."""
    return {**ensemble_summary(member_pred, energies_eV, test_idx),
            "seeds": [member_config(train, k).seed for k in range(len(states))],
            "epochs_run": [s.epoch for s in states],
            "best_epoch": [s.best_epoch + 1 for s in states]}  # fmt: skip


def check_channels(data: ModelData, cnn: CNNConfig) -> None:
    """Refuse images whose channels are not the network's input (the descriptor's degree, then `extra_degrees`)."""
    channel_specs(data.descriptor, cnn.extra_degrees)
    got = as_channels(data.images).shape[1]
    if got != cnn.in_channels:
        raise InputError(f"the pd-cnn takes {cnn.in_channels} image channel(s) (H{data.descriptor.degree} + extra "
                         f"degrees {list(cnn.extra_degrees)}) but the data has {got}: load it with those "
                         "extra_degrees (pdmd.models.registry.extra_image_degrees)")  # fmt: skip


def _train_members(
    data: ModelData,
    train_idx: np.ndarray,
    train: TrainConfig,
    cnn: CNNConfig,
    out_dir: Path,
    name: str,
    ensemble: int,
    resume: bool | None,
) -> tuple[Potential, list, float, list[dict]]:
    """Standardize on the training part and train the `ensemble` networks; (potential, states, seconds, restarts)."""
    image_scaler = ImageScaler.fit(
        data.images[train_idx], train.standardization, train.representation, train.image_scope, train.smooth_sigma_px
    )
    target_scaler = TargetScaler.fit(data.energies_eV[train_idx])
    x = image_scaler.transform(data.images[train_idx])
    y = target_scaler.transform(data.energies_eV[train_idx])
    t0 = time.perf_counter()
    networks, states, restarts = [], [], []
    for k in range(ensemble):
        label = name if ensemble == 1 else f"{name} member {k + 1}/{ensemble}"
        net, st, again = _train_member(x, y, cnn, train, out_dir, k, resume, label)
        networks.append(net)
        states.append(st)
        restarts += again
    potential = Potential(networks[0], {}, image_scaler, target_scaler, networks[1:])
    return potential, states, time.perf_counter() - t0, restarts


COLLAPSED_SPREAD = 0.05
"""A network whose predictions on its own training images spread less than this × the training energies' std
has collapsed onto a constant (the mean predictor): it never left the flat start of the loss."""
MAX_RESTARTS = 2
"""Restarts of a collapsed network with another seed (seed + 1000 × restart) before its result is kept."""


def collapsed(net, x: np.ndarray) -> bool:
    """Whether `net` predicts (nearly) one value for all standardized training images `x` (targets z-scored)."""
    with torch.no_grad():
        pred = predict_normalized(net, torch.as_tensor(as_channels(x)))
    return float(pred.std()) < COLLAPSED_SPREAD


def _train_member(x: np.ndarray, y: np.ndarray, cnn: CNNConfig, train: TrainConfig, out_dir: Path, member: int,
                  resume: bool | None, label: str):  # fmt: skip
    """Train ensemble member `member`; a collapsed network is trained again from another seed (at most
    MAX_RESTARTS times; a network that did not collapse, else the best validation loss, is kept).
    (network, state, the restarts for the card's `runtime.restarts`).
    """
    config = member_config(train, member)
    ckpt = checkpoint_dir(out_dir, member)
    net, state = train_network(x, y, cnn, config, ckpt, resume, label)
    restarts: list[dict] = []
    flat = collapsed(net, x)
    for r in range(1, MAX_RESTARTS + 1):
        if not flat:
            break
        seed = config.seed + 1000 * r
        log.warning("%s collapsed onto the mean (prediction spread < %g × the energies' std on its training data); "
                    "training it again with seed %d", label, COLLAPSED_SPREAD, seed)  # fmt: skip
        net2, state2 = train_network(x, y, cnn, replace(config, seed=seed), ckpt.with_name(f"{ckpt.name}-restart{r}"),
                                     resume, f"{label} (restart {r})")  # fmt: skip
        restarts.append({"member": member, "seed": seed, "collapsed": collapsed(net2, x),
                         "best_val_loss": float(state2.best_val)})  # fmt: skip
        if not restarts[-1]["collapsed"] or state2.best_val < state.best_val:
            net, state, flat = net2, state2, restarts[-1]["collapsed"]
    return net, state, restarts


def _runtime(potential: Potential, states: list, train: TrainConfig, n_train: int, session_s: float) -> dict:
    """The card's `runtime`: device, dtype, threads, batch size used, wall times, why training stopped."""
    val_idx = validation_split(n_train, train)[0]
    device = model_device(potential.model)
    return {
        "device": str(device),
        "precision": training_precision(train.precision, device),
        "threads": torch.get_num_threads(),
        "batch_size_used": effective_batch_size(n_train - len(val_idx), train),
        "train_wall_seconds": float(sum(s.seconds for s in states)),  # every session and member together
        "this_session_seconds": session_s,
        "stop_reason": [s.stop_reason for s in states] if len(states) > 1 else states[0].stop_reason,
        "cpu": platform.processor() or platform.machine(),
    }


def _cnn_plots(out_dir: Path, name: str, split: str, ref: np.ndarray, pred: np.ndarray, train_idx: np.ndarray,
               test_idx: np.ndarray, state, target_std_eV: float) -> dict:  # fmt: skip
    """Parity plot (train/test) and learning curve PNGs; their paths."""
    parts = {"train": (ref[train_idx], pred[train_idx]), "test": (ref[test_idx], pred[test_idx])}
    parity = parity_plot(out_dir / "parity.png", parts, f"{name} ({split} split)")
    return {"parity": str(parity), "learning_curve": str(learning_curve(out_dir / "learning_curve.png", state.history,
                                                                         target_std_eV))}  # fmt: skip


def train_cnn(data: ModelData, out_dir: Path, name: str, split: TrainSplit, options: dict, provenance: dict) -> dict:
    """The paper's CNN (`fit_potential`); options: {"train": TrainConfig fields, "cnn": CNNConfig fields}."""
    defaults = {"seed": split.seed, "standardization": data.descriptor.default_standardization}
    train = config_from_options("train", options.get("train", {}), "pd-cnn options: train", defaults)
    cnn = config_from_options("cnn", options.get("cnn", {}), "pd-cnn options: cnn")
    return fit_potential(data, out_dir, name, train, cnn, split.kind, split.test_fraction, provenance,
                         split_indices=(split.train_idx, split.test_idx), ensemble=int(options.get("ensemble", 1)),
                         resume=options.get("resume"))  # fmt: skip
