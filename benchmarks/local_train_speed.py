# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local training: fp32 against fp64 arithmetic, side by side in one run (1 thread).

    .venv/bin/python benchmarks/local_train_speed.py DATA --plan agr-demo [--n 48] [--batch 4] [--repeats 3]
        [--epochs 6]

Speed: one training step (energies, forces by autograd with `create_graph`, the energy + force
loss and its backward pass; geometry in fp64 either way, feature expansions and network in the
precision compared) on the same batches of `--batch` stored structures, fp64 and fp32
interleaved `--repeats` times; prints seconds per step and the ratio fp64 / fp32. Accuracy: trains
the default pd-local model `--epochs` epochs in each precision on a run split of the first `--n`
structures (same seed) and prints test energy RMSE (meV/atom) and force RMSE / std, so the
speed-up can be checked not to cost accuracy. The saved model is fp64 either way. The fp32 row of
docs/local.md:

    nice -n 5 .venv/bin/python benchmarks/local_train_speed.py paper_runs/agr_demo --plan agr-demo --n 24 --epochs 0
    .venv/bin/python benchmarks/local_train_speed.py --quick     # seconds: 8 structures of tiny data, 1 epoch each
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _quick import add_quick_arguments, resolve_data

from pdmd.campaign import plan_descriptor, plan_runs
from pdmd.models.data import load_store_data
from pdmd.models.local.features import LocalDescriptorConfig
from pdmd.models.local.model import AtomicNet, batch_energies
from pdmd.models.local.train import (
    PRECISIONS,
    LocalTrainConfig,
    fit_local,
    force_metrics,
    forces_from_store,
    predict_prepared,
    prepare,
)
from pdmd.models.split import train_test_split
from pdmd.store.datastore import DataStore


def step_seconds(data, cfg, idx: np.ndarray, precision: str) -> float:
    """Wall seconds of one training step (energy + force loss, backward) on structures `idx`."""
    dtype = PRECISIONS[precision]
    net = AtomicNet(cfg.n_features).to(dtype)
    topo, pos, frame, counts = data.batch(idx)
    start = time.perf_counter()
    e = batch_energies(net, cfg, topo, pos, frame, len(idx))
    (grad,) = torch.autograd.grad(e.sum(), pos, create_graph=True)
    ((e / counts) ** 2).mean().add((grad**2).mean()).backward()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN`, with forces")
    p.add_argument("--plan", default="agr-demo")
    p.add_argument("--n", type=int, default=48, help="structures used (the first runs of the plan)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6, help="accuracy check: epochs per precision (0: skip)")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    if args.quick:  # both precisions timed twice on 2 batches of 4, then one epoch each
        args.n, args.batch, args.repeats, args.epochs = 8, 4, 2, 1
    torch.set_num_threads(1)
    spec = plan_descriptor(args.plan)
    runs, _ = plan_runs(args.plan)
    d = load_store_data(DataStore(args.data), [r.run_id for r in runs], spec, {"frames"})
    idx = np.arange(min(args.n, len(d.ids)))
    forces = forces_from_store(args.data, [d.ids[i] for i in idx], [d.groups[i] for i in idx])
    cfg = LocalDescriptorConfig.default(spec.dim)
    data = prepare([d.frames[i] for i in idx], d.energies_eV[idx], forces, cfg)
    batches = [idx[i : i + args.batch] for i in range(0, len(idx), args.batch)][:3]
    times: dict[str, list[float]] = {"fp64": [], "fp32": []}
    for _ in range(args.repeats):
        for precision in times:  # interleaved: both see the same machine load
            times[precision].append(np.mean([step_seconds(data, cfg, b, precision) for b in batches]))
    n_atoms = int(np.mean([len(data.positions[i]) for i in idx])) * args.batch
    for precision, t in times.items():
        print(f"{precision}: {min(t):.3f} s per training step ({args.batch} structures, {n_atoms} atoms)")
    print(f"fp64 / fp32 = {min(times['fp64']) / min(times['fp32']):.2f}x")
    if args.epochs <= 0:
        return
    train, test = train_test_split([d.groups[i] for i in idx], 0.25, 0, "run")
    for precision in ("fp64", "fp32"):
        tcfg = LocalTrainConfig(epochs=args.epochs, max_minutes=60.0, batch_structures=args.batch,
                                precision=precision)  # fmt: skip
        start = time.perf_counter()
        net, _ = fit_local(data, train, cfg, tcfg)
        seconds = time.perf_counter() - start
        e, f = predict_prepared(net, cfg, data, test)
        rmse = 1000 * float(np.sqrt(np.mean((e - data.energies_eV_per_atom[test]) ** 2)))
        pred = [None] * len(data.forces)
        for k, i in enumerate(test):
            pred[i] = f[k]
        fm = force_metrics(pred, data.forces, test, cfg.dim)
        print(f"{precision}: {args.epochs} epochs in {seconds:.0f} s; test energy RMSE {rmse:.2f} meV/atom, "
              f"force RMSE / std {fm.get('force_rmse_over_std', float('nan')):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
