"""Training loop: AdamW, linear warm-up then a plateau learning-rate schedule, early stopping on a
validation part carved from the training data, best weights restored, resumable checkpoints.

Deterministic for a seed: the validation part is drawn from the seed, each epoch's batch order
from (seed, epoch), so an interrupted run resumed from its checkpoint continues exactly as an
uninterrupted one would (same device, precision and thread count).
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

from pdmd.errors import InputError
from pdmd.ml.model import PDCNN, CNNConfig
from pdmd.progress import ProgressLog
from pdmd.runtime import default_threads
from pdmd.store.files import content_hash

log = logging.getLogger(__name__)


MIN_VALIDATION = 8
"""Smallest validation part that steers the schedule and early stopping (else the training loss does)."""


PRECISIONS = ("bf16", "fp32")
"""Training arithmetic: bf16 autocast (weights and optimizer stay fp32) or plain fp32."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule settings (learning rate per step of AdamW, warm-up and patience in epochs).

    Training runs until the validation loss has not improved for `early_stopping_patience`
    epochs (the plateau schedule halves the learning rate after `lr_patience` flat epochs
    first); `epochs` and `max_minutes` are safety caps only. `threads` None: every core this
    process may use. `precision` "bf16" trains under bfloat16 autocast with the images held in
    memory as bfloat16; predictions are always computed in fp32. Small training sets use batches
    smaller than `batch_size` (not below 8) so that an epoch has ≥ `min_steps_per_epoch` steps.

    Defaults chosen in issue 12 (docs/results.md, "PD-CNN training"): ≥ 8 steps per epoch and a
    2-epoch warm-up (min-max images leave occupied pixels at ≈ 0.04 next to conv biases of
    ≈ 0.3, so the network starts as a constant; with 1–2 steps per epoch small sets stopped
    early on that plateau), bf16 autocast (faster on this CPU at the same accuracy); the
    paper's min-max images stay (z-score: `standardization="zscore"`).
    """

    epochs: int = 300
    batch_size: int = 32
    min_steps_per_epoch: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 2
    lr_factor: float = 0.5
    lr_patience: int = 8
    early_stopping_patience: int = 25
    val_fraction: float = 0.1
    seed: int = 0
    standardization: str = "minmax"
    representation: str = "histogram"
    channels_last: bool = True
    precision: str = "bf16"
    threads: int | None = None
    max_minutes: float | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {PRECISIONS}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainState:
    """Where a training stands (saved in the checkpoint): epochs done, best validation loss and epoch."""

    epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # wall time of all sessions together
    stop_reason: str = ""


def pick_device(name: str = "auto") -> torch.device:
    """The one place that decides the device: "auto" is CUDA when present, else the CPU; or a torch name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device the model's weights live on (where its inputs must go)."""
    return next(model.parameters()).device


def validation_split(n: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(validation, fit) indices into the n training samples, drawn from the seed; no validation if too small."""
    perm = np.random.default_rng(config.seed).permutation(n)
    n_val = round(config.val_fraction * n)
    if n_val < MIN_VALIDATION:  # a handful of samples would pick an arbitrary epoch: steer on the training loss
        n_val = 0
    return perm[:n_val], perm[n_val:]


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _warmup_lr(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float | None:
    """Linear learning-rate warm-up over the first `warmup_epochs` (per step); None after it."""
    total = config.warmup_epochs * steps_per_epoch
    done = epoch * steps_per_epoch + step
    return config.learning_rate * (done + 1) / total if done < total else None


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


RESUMABLE_SETTINGS = ("epochs", "max_minutes", "device", "threads", "early_stopping_patience")
"""Settings a resumed training may change: its caps, patience and where it runs."""


def _fingerprint(x: np.ndarray, y: np.ndarray, cnn: CNNConfig, config: TrainConfig) -> str:
    """Identity of a training job: data, architecture and every setting except RESUMABLE_SETTINGS."""
    settings = {k: v for k, v in config.as_dict().items() if k not in RESUMABLE_SETTINGS}
    return content_hash(x, y) + json.dumps([cnn.as_dict(), settings], sort_keys=True)


MIN_BATCH = 8
"""Smallest batch `min_steps_per_epoch` shrinks to."""


def effective_batch_size(n_fit: int, config: TrainConfig) -> int:
    """`batch_size`, made smaller (not below MIN_BATCH) so that an epoch has ≥ `min_steps_per_epoch` steps.

    Patience and warm-up count epochs; on a small set a 32-batch epoch is one or two optimizer steps,
    too few for the network to leave the mean-predictor plateau before early stopping ends it.
    """
    if config.min_steps_per_epoch <= 0:
        return config.batch_size
    return max(min(MIN_BATCH, config.batch_size), min(config.batch_size, n_fit // config.min_steps_per_epoch))


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


def train_network(
    x: np.ndarray,
    y: np.ndarray,
    cnn: CNNConfig,
    config: TrainConfig,
    workdir: Path,
    resume: bool | None = None,
    label: str = "training",
) -> tuple[PDCNN, TrainState]:
    """Train on standardized images x (N,S,S) and normalized targets y (N,); returns the best model.

    A validation part (`val_fraction`) of the given data steers the schedule and early stopping;
    the weights of the best validation epoch are returned. `workdir/checkpoint.pt` is written
    every epoch. `resume` None: continue it when it was made from the same data, architecture and
    settings (a fingerprint is compared), else start afresh; True: it must be continued
    (InputError if there is none or it does not match); False: always start afresh.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or default_threads())
    device = pick_device(config.device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    val_idx, fit_idx = validation_split(len(x), config)
    n_val = len(val_idx)
    store = torch.bfloat16 if config.precision == "bf16" else torch.float32  # images held in memory
    xt = torch.from_numpy(x[:, None]).to(device=device, dtype=store).contiguous(memory_format=fmt)
    yt = torch.from_numpy(y).to(device)

    model = PDCNN(cnn).to(device).to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=config.lr_factor, patience=config.lr_patience)
    state = TrainState()
    best_weights = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = workdir / "checkpoint.pt"
    fingerprint = _fingerprint(x, y, cnn, config)
    saved = torch.load(ckpt, map_location=device, weights_only=False) if ckpt.exists() and resume is not False else None
    if saved is not None and saved.get("fingerprint") != fingerprint:
        if resume:
            raise InputError(
                f"checkpoint {ckpt} was made from other data or settings; train without --resume to start afresh"
            )
        log.warning("checkpoint %s was made from other data or settings: starting afresh", ckpt)
        saved = None
    if resume and saved is None:
        raise InputError(f"no checkpoint to resume in {workdir}; train without --resume to start afresh")
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        best_weights = saved["best_weights"]
        state = TrainState(**saved["state"])
        log.info("resuming training from %s at epoch %d", ckpt, state.epoch)
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    seconds_before = state.seconds
    batch_size = effective_batch_size(len(fit_idx), config)
    steps = math.ceil(len(fit_idx) / batch_size)
    progress = ProgressLog(config.epochs, f"{label} (epochs; early stopping may end it sooner)", log, 0.0, state.epoch)
    while state.epoch < config.epochs and state.bad_epochs < config.early_stopping_patience:
        t0 = time.perf_counter()
        model.train()
        total = 0.0
        for step, batch in enumerate(_batches(len(fit_idx), batch_size, config.seed, state.epoch)):
            lr = _warmup_lr(config, state.epoch, step, steps)
            if lr is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
            idx = torch.from_numpy(fit_idx[batch.numpy()]).to(device)
            opt.zero_grad(set_to_none=True)
            with _autocast(device, config.precision):
                out = model(xt[idx])
            loss = loss_fn(out.float(), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / len(fit_idx)
        val_loss = evaluate_loss(model, xt, yt, val_idx) if n_val else train_loss
        if state.epoch + 1 >= config.warmup_epochs:  # the plateau schedule takes over after the warm-up
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
        state.seconds = seconds_before + time.perf_counter() - start
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
        progress.step(
            note=f"train {train_loss:.4f} val {val_loss:.4f} (normalized MSE), lr {opt.param_groups[0]['lr']:.1e}, "
            f"best epoch {state.best_epoch + 1}, {state.bad_epochs}/{config.early_stopping_patience} flat"
        )
        if config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes:
            state.stop_reason = f"time cap of {config.max_minutes:g} min reached (validation may still improve)"
            log.info("%s: %s after epoch %d", label, state.stop_reason, state.epoch)
            break
    else:
        if state.bad_epochs >= config.early_stopping_patience:
            state.stop_reason = f"converged: validation loss flat for {state.bad_epochs} epochs"
        elif state.epoch >= config.epochs:
            state.stop_reason = f"epoch cap of {config.epochs} reached (validation may still improve)"
    model.load_state_dict(best_weights)
    model.eval()
    return model, state


@torch.no_grad()
def evaluate_loss(model: PDCNN, xt: torch.Tensor, yt: torch.Tensor, idx: np.ndarray) -> float:
    """Mean squared error (normalized units) of the samples `idx`, computed in fp32."""
    sel = torch.from_numpy(idx)
    pred = predict_normalized(model, xt[sel.to(xt.device)])
    return float(((pred - yt[sel.to(yt.device)].cpu()) ** 2).mean())


@torch.no_grad()
def predict_normalized(model: PDCNN, xt: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Model outputs (normalized, CPU, fp32) for inputs (N,1,S,S) on any device: moved to the model's, in fp32."""
    model.eval()
    device = model_device(model)
    return (
        torch.cat(
            [
                model(xt[i : i + batch_size].to(device=device, dtype=torch.float32)).float().cpu()
                for i in range(0, len(xt), batch_size)
            ]
        )
        if len(xt)
        else torch.zeros(0)
    )
