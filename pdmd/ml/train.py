"""Training loop: Adam, plateau learning-rate schedule, early stopping, resumable checkpoints.

Deterministic for a seed: the validation part is drawn from the seed, each epoch's batch order
from (seed, epoch), so an interrupted run resumed from its checkpoint continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pdmd.md.lammps_melt_quench import default_threads
from pdmd.ml.model import PDCNN, CNNConfig
from pdmd.store.files import content_hash

log = logging.getLogger(__name__)


MIN_VALIDATION = 8
"""Smallest validation part that steers the schedule and early stopping (else the training loss does)."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings (learning rate per step of Adam, patience in epochs)."""

    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 8
    early_stopping_patience: int = 25
    val_fraction: float = 0.1
    seed: int = 0
    standardization: str = "minmax"
    channels_last: bool = True
    max_minutes: float | None = None
    device: str = "auto"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainState:
    epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _fingerprint(x: np.ndarray, y: np.ndarray, cnn: CNNConfig, config: TrainConfig) -> str:
    """Identity of a training job; epochs and the time budget may change between resumptions."""
    settings = {k: v for k, v in config.as_dict().items() if k not in ("epochs", "max_minutes", "device")}
    return content_hash(x, y) + json.dumps([cnn.as_dict(), settings], sort_keys=True)


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


def train_network(
    x: np.ndarray,
    y: np.ndarray,
    cnn: CNNConfig,
    config: TrainConfig,
    workdir: Path,
) -> tuple[PDCNN, TrainState]:
    """Train on standardized images x (N,S,S) and normalized targets y (N,); returns the best model.

    A validation part (`val_fraction`) of the given data steers the schedule and early stopping.
    `workdir/checkpoint.pt` is written every epoch; training resumes from it when it was made from
    the same data, architecture and settings (a fingerprint is compared), else starts afresh.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    torch.set_num_threads(default_threads())
    device = pick_device(config.device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    rng = np.random.default_rng(config.seed)
    perm = rng.permutation(len(x))
    n_val = round(config.val_fraction * len(x))
    if n_val < MIN_VALIDATION:  # a handful of samples would pick an arbitrary epoch: steer on the training loss
        n_val = 0
    val_idx, fit_idx = perm[:n_val], perm[n_val:]
    xt = torch.from_numpy(x[:, None]).to(device).contiguous(memory_format=fmt)
    yt = torch.from_numpy(y).to(device)

    model = PDCNN(cnn).to(device).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=config.lr_factor, patience=config.lr_patience)
    state = TrainState()
    best_weights = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = workdir / "checkpoint.pt"
    fingerprint = _fingerprint(x, y, cnn, config)
    saved = torch.load(ckpt, map_location=device, weights_only=False) if ckpt.exists() else None
    if saved is not None and saved.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s was made from other data or settings: starting afresh", ckpt)
        saved = None
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        best_weights = saved["best_weights"]
        state = TrainState(**saved["state"])
        log.info("resuming training from %s at epoch %d", ckpt, state.epoch)
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    epochs_this_run = 0
    while state.epoch < config.epochs and state.bad_epochs < config.early_stopping_patience:
        t0 = time.perf_counter()
        model.train()
        total = 0.0
        for batch in _batches(len(fit_idx), config.batch_size, config.seed, state.epoch):
            idx = torch.from_numpy(fit_idx[batch.numpy()])
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / len(fit_idx)
        val_loss = evaluate_loss(model, xt, yt, val_idx) if n_val else train_loss
        sched.step(val_loss)
        if val_loss < state.best_val:
            state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        state.history.append(
            {
                "epoch": state.epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
        )
        state.epoch += 1
        epochs_this_run += 1
        _atomic_torch_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "best_weights": best_weights,
                "state": asdict(state),
                "fingerprint": fingerprint,
            },
            ckpt,
        )
        per_epoch = (time.perf_counter() - start) / epochs_this_run
        log.info(
            "epoch %d/%d train %.4f val %.4f (normalized MSE) lr %.1e, %.1f s/epoch, ETA %.0f s",
            state.epoch,
            config.epochs,
            train_loss,
            val_loss,
            opt.param_groups[0]["lr"],
            per_epoch,
            per_epoch * (config.epochs - state.epoch),
        )
        if config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes:
            log.info("time budget of %.1f min reached after epoch %d", config.max_minutes, state.epoch)
            break
    model.load_state_dict(best_weights)
    model.eval()
    return model, state


@torch.no_grad()
def evaluate_loss(model: PDCNN, xt: torch.Tensor, yt: torch.Tensor, idx: np.ndarray) -> float:
    model.eval()
    pred = predict_normalized(model, xt[torch.from_numpy(idx)])
    return float(((pred - yt[torch.from_numpy(idx)]) ** 2).mean())


@torch.no_grad()
def predict_normalized(model: PDCNN, xt: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return (
        torch.cat([model(xt[i : i + batch_size]) for i in range(0, len(xt), batch_size)])
        if len(xt)
        else xt.new_zeros(0)
    )
