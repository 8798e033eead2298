"""Training loop: AdamW, a learning-rate schedule (linear warm-up then plateau, default; cosine; or
one-cycle), early stopping on a validation part carved from the training data, best weights
restored, resumable checkpoints.

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

from pdmd.descriptor.histogram import as_channels
from pdmd.errors import InputError
from pdmd.files import content_hash
from pdmd.models.cnn.config import CNNConfig, TrainConfig
from pdmd.models.cnn.network import PDCNN
from pdmd.progress import ProgressLog
from pdmd.runtime import default_threads

log = logging.getLogger(__name__)


MIN_VALIDATION = 8
"""Smallest validation part that steers the schedule and early stopping (else the training loss does)."""


ONECYCLE_RISE = 0.3
"""Fraction of the epoch budget the one-cycle schedule spends rising to the peak learning rate."""
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4
"""One-cycle start learning rate = peak / ONECYCLE_DIV; end = start / ONECYCLE_FINAL_DIV (torch's defaults)."""


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


def training_precision(precision: str, device: torch.device) -> str:
    """The arithmetic training runs in: "auto" is bf16 where `device` computes it natively (a CUDA GPU with bf16,
    a CPU with AVX512-BF16 or AMX), else fp32 (emulated bf16 ran 6-7x slower than fp32 on an AVX2 CPU).
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16" if device.type == "cpu" and any(probe is not None and probe() for probe in probes) else "fp32"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _cosine(start: float, end: float, t: float) -> float:
    """Half a cosine from `start` (t = 0) to `end` (t ≥ 1)."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def scheduled_lr(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float | None:
    """Learning rate of optimizer step `step` of `epoch` under `config.schedule` (SCHEDULES), set per step.

    None where the plateau schedule (`ReduceLROnPlateau`, per epoch) decides: after its warm-up.
    A function of the step alone, so a resumed training continues the same curve.
    """
    done = epoch * steps_per_epoch + step
    total = config.epochs * steps_per_epoch
    peak = config.learning_rate
    if config.schedule == "onecycle":
        rise = max(1, round(ONECYCLE_RISE * total))
        low = peak / ONECYCLE_DIV
        if done < rise:
            return _cosine(low, peak, done / rise)
        return _cosine(peak, low / ONECYCLE_FINAL_DIV, (done - rise) / max(1, total - rise))
    warm = config.warmup_epochs * steps_per_epoch
    if done < warm:  # linear warm-up (plateau and cosine)
        return peak * (done + 1) / warm
    if config.schedule == "cosine":
        return _cosine(peak, 0.0, (done - warm) / max(1, total - warm))
    return None


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


RESUMABLE_SETTINGS = ("epochs", "max_minutes", "device", "threads", "early_stopping_patience")
"""Settings a resumed training may change: its caps, patience and where it runs (not `epochs`
under a cosine or one-cycle schedule, whose learning rates depend on it)."""


LATER_SETTINGS = {"schedule": "plateau", "image_scope": "global", "smooth_sigma_px": 1.0}
"""Settings added after checkpoints were first written, with the behaviour of before: at that value they are left
out of a checkpoint's identity, so older checkpoints stay resumable."""
LATER_ARCHITECTURE = {"pool": "max", "extra_degrees": []}
"""The same for `CNNConfig` fields."""


def _fingerprint(x: np.ndarray, y: np.ndarray, cnn: CNNConfig, config: TrainConfig) -> str:
    """Identity of a training job: data, architecture and every setting except RESUMABLE_SETTINGS (the precision
    as resolved on this device: "auto" where it means bf16 is the job a bf16 checkpoint was written for).
    """
    free = RESUMABLE_SETTINGS if config.schedule == "plateau" else tuple(set(RESUMABLE_SETTINGS) - {"epochs"})
    settings = {k: v for k, v in config.as_dict().items() if k not in free}
    settings["precision"] = training_precision(config.precision, pick_device(config.device))  # the arithmetic used
    settings = _without_later(settings, LATER_SETTINGS)
    architecture = _without_later(cnn.as_dict(), LATER_ARCHITECTURE)
    return content_hash(x, y) + json.dumps([architecture, settings], sort_keys=True)


def _without_later(settings: dict, later: dict) -> dict:
    """`settings` without the later-added keys that hold their value of before (see LATER_SETTINGS)."""
    return {k: v for k, v in settings.items() if not (k in later and v == later[k])}


def same_job(saved: str | None, fingerprint: str) -> bool:
    """Whether a checkpoint's fingerprint names the job of `fingerprint`, whichever pdmd version wrote it: a
    checkpoint written while a later-added setting was recorded at its value of before (e.g. `image_scope`
    "global" by a version that did not yet leave it out) matches as well as one written before or after.
    """
    if saved == fingerprint:
        return True
    try:
        (data, text), (data_now, text_now) = (f.split("[", 1) for f in (saved or "", fingerprint))
        (arch, settings), (arch_now, settings_now) = json.loads("[" + text), json.loads("[" + text_now)
    except ValueError:
        return False
    return (data == data_now and _without_later(arch, LATER_ARCHITECTURE) == arch_now
            and _without_later(settings, LATER_SETTINGS) == settings_now)  # fmt: skip


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


@dataclass
class _Data:
    """Training data on the training device: images (N,C,S,S), normalized targets (N,), fit / validation indices."""

    x: torch.Tensor
    y: torch.Tensor
    fit_idx: np.ndarray
    val_idx: np.ndarray


@dataclass
class _Run:
    """What the epochs change: the network, AdamW, the plateau scheduler, the best weights so far, the state."""

    model: PDCNN
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.ReduceLROnPlateau
    best_weights: dict
    state: TrainState


def _setup(x: np.ndarray, y: np.ndarray, cnn: CNNConfig, config: TrainConfig) -> tuple[_Data, _Run]:
    """Seed, threads, device; the data on it (images in the training precision); a fresh network and optimizer."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or default_threads())
    device = pick_device(config.device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    val_idx, fit_idx = validation_split(len(x), config)
    precision = training_precision(config.precision, device)
    store = torch.bfloat16 if precision == "bf16" else torch.float32  # images held in memory
    xt = torch.from_numpy(as_channels(x)).to(device=device, dtype=store).contiguous(memory_format=fmt)
    data = _Data(xt, torch.from_numpy(y).to(device), fit_idx, val_idx)
    model = PDCNN(cnn).to(device).to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=config.lr_factor, patience=config.lr_patience)
    best_weights = {k: v.clone() for k, v in model.state_dict().items()}
    return data, _Run(model, opt, sched, best_weights, TrainState())


def _resume(run: _Run, ckpt: Path, fingerprint: str, resume: bool | None) -> None:
    """Load checkpoint `ckpt` into `run` when `resume` allows and its fingerprint matches (see `train_network`)."""
    saved = None
    if ckpt.exists() and resume is not False:
        saved = torch.load(ckpt, map_location=model_device(run.model), weights_only=False)
    if saved is not None and not same_job(saved.get("fingerprint"), fingerprint):
        if resume:
            raise InputError(
                f"checkpoint {ckpt} was made from other data or settings; train without --resume to start afresh"
            )
        log.warning("checkpoint %s was made from other data or settings: starting afresh", ckpt)
        saved = None
    if resume and saved is None:
        raise InputError(f"no checkpoint to resume in {ckpt.parent}; train without --resume to start afresh")
    if saved is None:
        return
    run.model.load_state_dict(saved["model"])
    run.opt.load_state_dict(saved["optimizer"])
    run.sched.load_state_dict(saved["scheduler"])
    run.best_weights = saved["best_weights"]
    run.state = TrainState(**saved["state"])
    log.info("resuming training from %s at epoch %d", ckpt, run.state.epoch)


def _train_epoch(run: _Run, data: _Data, config: TrainConfig, batch_size: int) -> float:
    """One pass over the fit part in the epoch's batch order, learning rate per step by the schedule; mean loss."""
    model, opt, epoch = run.model, run.opt, run.state.epoch
    device = data.x.device
    precision = "bf16" if data.x.dtype == torch.bfloat16 else "fp32"  # the images are held in it (`_setup`)
    steps = math.ceil(len(data.fit_idx) / batch_size)
    loss_fn = nn.MSELoss()
    model.train()
    total = 0.0
    for step, batch in enumerate(_batches(len(data.fit_idx), batch_size, config.seed, epoch)):
        lr = scheduled_lr(config, epoch, step, steps)
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = lr
        idx = torch.from_numpy(data.fit_idx[batch.numpy()]).to(device)
        opt.zero_grad(set_to_none=True)
        with _autocast(device, precision):
            out = model(data.x[idx])
        loss = loss_fn(out.float(), data.y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / len(data.fit_idx)


def _end_epoch(run: _Run, config: TrainConfig, train_loss: float, val_loss: float, t0: float) -> None:
    """Plateau schedule step, early-stopping bookkeeping (best epoch and weights, flat epochs), history entry."""
    state = run.state
    if config.schedule == "plateau" and state.epoch + 1 >= config.warmup_epochs:  # it takes over after the warm-up
        run.sched.step(val_loss)
    if val_loss < state.best_val:
        state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
        run.best_weights = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        state.bad_epochs += 1
    state.history.append(
        {
            "epoch": state.epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": run.opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
    )
    state.epoch += 1


def _save_checkpoint(run: _Run, ckpt: Path, fingerprint: str) -> None:
    """Everything a resumed training needs, written atomically."""
    _atomic_torch_save(
        {
            "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "best_weights": run.best_weights,
            "state": asdict(run.state),
            "fingerprint": fingerprint,
        },
        ckpt,
    )


def _stop_reason(state: TrainState, config: TrainConfig) -> str:
    """Why the epochs ended without a time cap: converged (early stopping) or the epoch cap."""
    if state.bad_epochs >= config.early_stopping_patience:
        return f"converged: validation loss flat for {state.bad_epochs} epochs"
    if state.epoch >= config.epochs:
        return f"epoch cap of {config.epochs} reached (validation may still improve)"
    return ""


def train_network(
    x: np.ndarray,
    y: np.ndarray,
    cnn: CNNConfig,
    config: TrainConfig,
    workdir: Path,
    resume: bool | None = None,
    label: str = "training",
) -> tuple[PDCNN, TrainState]:
    """Train on standardized images x (N,S,S) or (N,C,S,S) and normalized targets y (N,); returns the best model.

    A validation part (`val_fraction`) of the given data steers the schedule and early stopping;
    the weights of the best validation epoch are returned. `workdir/checkpoint.pt` is written
    every epoch. `resume` None: continue it when it was made from the same data, architecture and
    settings (a fingerprint is compared), else start afresh; True: it must be continued
    (InputError if there is none or it does not match); False: always start afresh.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    data, run = _setup(x, y, cnn, config)
    ckpt = workdir / "checkpoint.pt"
    fingerprint = _fingerprint(x, y, cnn, config)
    _resume(run, ckpt, fingerprint, resume)
    state = run.state
    start, seconds_before = time.perf_counter(), state.seconds
    batch_size = effective_batch_size(len(data.fit_idx), config)
    progress = ProgressLog(config.epochs, f"{label} (epochs; early stopping may end it sooner)", log, 0.0, state.epoch)
    while state.epoch < config.epochs and state.bad_epochs < config.early_stopping_patience:
        t0 = time.perf_counter()
        train_loss = _train_epoch(run, data, config, batch_size)
        val_loss = evaluate_loss(run.model, data.x, data.y, data.val_idx) if len(data.val_idx) else train_loss
        _end_epoch(run, config, train_loss, val_loss, t0)
        state.seconds = seconds_before + time.perf_counter() - start
        _save_checkpoint(run, ckpt, fingerprint)
        progress.step(
            note=f"train {train_loss:.4f} val {val_loss:.4f} (normalized MSE), lr {run.opt.param_groups[0]['lr']:.1e}, "
            f"best epoch {state.best_epoch + 1}, {state.bad_epochs}/{config.early_stopping_patience} flat"
        )
        if config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes:
            state.stop_reason = f"time cap of {config.max_minutes:g} min reached (validation may still improve)"
            log.info("%s: %s after epoch %d", label, state.stop_reason, state.epoch)
            break
    else:
        state.stop_reason = _stop_reason(state, config)
    run.model.load_state_dict(run.best_weights)
    run.model.eval()
    return run.model, state


@torch.no_grad()
def evaluate_loss(model: PDCNN, xt: torch.Tensor, yt: torch.Tensor, idx: np.ndarray) -> float:
    """Mean squared error (normalized units) of the samples `idx`, computed in fp32."""
    sel = torch.from_numpy(idx)
    pred = predict_normalized(model, xt[sel.to(xt.device)])
    return float(((pred - yt[sel.to(yt.device)].cpu()) ** 2).mean())


@torch.no_grad()
def predict_normalized(model: PDCNN, xt: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Model outputs (normalized, CPU, fp32) for inputs (N,C,S,S) on any device: moved to the model's, in fp32."""
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
