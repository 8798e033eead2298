# SPDX-License-Identifier: GPL-3.0-or-later
"""PD-CNN training speed, side by side in one run: today's loop against the faster options.

    .venv/bin/python benchmarks/train_speed.py DATA --plan agr-demo [--n 256] [--epochs 3] [--threads 1]
        [--accuracy-seeds 0,1]

Every variant trains the paper's CNN (`pdmd.models.cnn.train.train_network`) for `--epochs` epochs on the
same `--n` structures of the plan (standardized as `pdmd train` does) and reports the mean
seconds per epoch after the first (the first pays one-off costs: allocation, oneDNN kernel
selection, compilation), ms per structure and the ratio against the first row (the loop as it
was: fp32, channels_last, batch 32); the last row is the default, `precision="auto"` (bf16 where the CPU has it
natively: emulated bf16 is several times slower than fp32). `--accuracy-seeds` then trains fp32 and bf16 to
convergence (early stopping) on the plan's run split with each seed and prints both test RMSEs
(meV/atom), so the speed-up can be checked not to cost accuracy. The speed rows of docs/models.md:

    .venv/bin/python benchmarks/train_speed.py paper_runs/agr_demo --plan agr-demo --n 128 --epochs 3 --threads 1
    .venv/bin/python benchmarks/train_speed.py --quick     # seconds: 8 structures of tiny generated data, 2 epochs
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _quick import add_quick_arguments, resolve_data

from pdmd.campaign import plan_descriptor, plan_runs
from pdmd.models.cnn.config import CNNConfig, TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.cnn.network import PDCNN
from pdmd.models.cnn.standardize import ImageScaler, TargetScaler
from pdmd.models.cnn.train import train_network, training_precision
from pdmd.models.data import load_store_dataset
from pdmd.store.datastore import DataStore

TODAY = TrainConfig(precision="fp32", channels_last=True, batch_size=32, warmup_epochs=0)
"""The loop as it was before the speed work (fp32 autocast off, channels_last on, batch 32)."""


def variants(threads: int) -> dict[str, TrainConfig]:
    """Name -> settings; learning rate scaled linearly with the batch size."""
    base = replace(TODAY, threads=threads)
    bf16 = replace(base, precision="bf16")
    return {
        "today: fp32, channels_last, batch 32": base,
        "fp32, contiguous": replace(base, channels_last=False),
        "bf16 autocast + bf16 images, channels_last": bf16,
        "bf16, contiguous": replace(bf16, channels_last=False),
        "bf16, batch 64, lr x2": replace(bf16, batch_size=64, learning_rate=2 * bf16.learning_rate),
        "bf16, batch 128, lr x4": replace(bf16, batch_size=128, learning_rate=4 * bf16.learning_rate),
        f"auto (the default; {training_precision('auto', torch.device('cpu'))} on this CPU)": replace(
            base, precision="auto"
        ),
    }


def seconds_per_epoch(x: np.ndarray, y: np.ndarray, config: TrainConfig, epochs: int) -> float:
    """Mean wall seconds of epochs 2..epochs of `train_network` (no validation part, no early stop)."""
    config = replace(config, epochs=epochs, val_fraction=0.0, early_stopping_patience=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        _, state = train_network(x, y, CNNConfig(image_size=x.shape[1]), config, Path(tmp), resume=False)
    return float(np.mean([h["seconds"] for h in state.history[1:]]))


def compiled_seconds_per_epoch(x: np.ndarray, y: np.ndarray, config: TrainConfig, epochs: int) -> float:
    """The bf16 loop with `torch.compile` on the model (the same steps as train_network, in short)."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or torch.get_num_threads())
    model = PDCNN(CNNConfig(image_size=x.shape[1])).to(memory_format=torch.channels_last)
    step_model = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    xt = torch.from_numpy(x[:, None]).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(x)).split(config.batch_size):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = step_model(xt[idx])
            loss = ((out.float() - yt[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", default="agr-demo")
    p.add_argument("--n", type=int, default=256, help="structures per epoch")
    p.add_argument("--epochs", type=int, default=3, help="epochs per variant (the first is not timed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    p.add_argument("--accuracy-seeds", default="", help="e.g. 0,1: fp32 vs bf16 trained to convergence")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, "data_dir")
    if args.quick:  # every variant, 2 epochs (1 timed) on 8 structures; no accuracy runs
        args.n, args.epochs, args.threads, args.accuracy_seeds = 8, 2, 1, ""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    spec = plan_descriptor(args.plan)
    train_runs, _ = plan_runs(args.plan)
    data = load_store_dataset(DataStore(args.data_dir), [r.run_id for r in train_runs], spec)
    images = data.images[: args.n]
    x = ImageScaler.fit(images, "zscore").transform(images)
    y = TargetScaler.fit(data.energies_eV[: args.n]).transform(data.energies_eV[: args.n])
    print(f"{len(x)} structures of {args.plan}, {args.epochs} epochs per variant, {args.threads} thread(s), "
          f"torch {torch.__version__}")  # fmt: skip
    print(f"{'variant':48} {'s/epoch':>8} {'ms/structure':>13} {'speed-up':>9}")
    rows = {}
    for name, config in variants(args.threads).items():
        rows[name] = seconds_per_epoch(x, y, config, args.epochs)
    if args.compile:
        try:
            rows["bf16 + torch.compile"] = compiled_seconds_per_epoch(x, y, variants(args.threads)[
                "bf16 autocast + bf16 images, channels_last"], args.epochs)  # fmt: skip
        except Exception as err:  # compilation needs a working C++ tool chain
            print(f"torch.compile failed: {type(err).__name__}: {str(err)[:200]}")
    base = next(iter(rows.values()))
    for name, s in rows.items():
        print(f"{name:48} {s:8.2f} {1000 * s / len(x):13.1f} {base / s:8.2f}x")
    for seed in [int(s) for s in args.accuracy_seeds.split(",") if s]:
        for precision in ("fp32", "bf16"):
            config = replace(TODAY, seed=seed, precision=precision, threads=args.threads, standardization="zscore")
            with tempfile.TemporaryDirectory() as tmp:
                card = fit_potential(data, Path(tmp), f"speed-{precision}-{seed}", config)
            m = card["metrics"]
            print(
                f"seed {seed} {precision}: test RMSE {m['test_rmse_meV_per_atom']:.2f} meV/atom (mean predictor "
                f"{m['mean_predictor_test_rmse_meV_per_atom']:.2f}), train {m['train_rmse_meV_per_atom']:.2f}, "
                f"{m['epochs_run']} epochs (best {m['best_epoch']}), {m['seconds_per_epoch']:.1f} s/epoch"
            )


if __name__ == "__main__":
    main()
