# SPDX-License-Identifier: GPL-3.0-or-later
r"""Ablation of pd-kernel settings: vectorization × kernel → CV / train / test / larger-cell RMSE (meV/atom).

    .venv/bin/python benchmarks/experiments/pd_kernel_ablation.py DATA --plan agr-demo [--seed 0] \
        [--kernels rbf linear laplacian] [--vectorizations JSON]
    .venv/bin/python benchmarks/experiments/pd_kernel_ablation.py --quick     # seconds: tiny data, 2 × 1 rows

For each PD vectorization and each kernel: g and α by the grouped CV of `pdmd.models.kernel.pd_kernel` on the
training runs only (run split, 20 % of runs, `--seed`), then the fit on all training structures and
its RMSE on the training, test and larger-cell (the plan's validation runs) structures with the
larger cells' bias. The test and larger-cell columns describe; `pdmd train --model pd-kernel`
chooses by CV alone. Prints a markdown table, one row per vectorization and kernel; the demo-data
result that chose pd-kernel's candidates is in docs/history.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from pdmd.campaign import plan_descriptor
from pdmd.models.data import data_from_structures
from pdmd.models.kernel import pd_kernel as K
from pdmd.models.labelled import load_structures
from pdmd.models.plots import rmse_meV
from pdmd.models.split import train_test_split
from pdmd.store.datastore import DataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import add_quick_arguments, resolve_data  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", help="the plan of DATA (required unless --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kernels", nargs="+", default=list(K.KERNELS))
    p.add_argument("--vectorizations", help="JSON list of vectorization dicts (default: DEFAULT_VECTORIZATIONS)")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    if args.quick:  # two histogram vectorizations, the RBF kernel
        args.kernels, args.vectorizations = ["rbf"], json.dumps(K.DEFAULT_VECTORIZATIONS[:2])
    elif args.plan is None:
        p.error("--plan is required")
    logging.basicConfig(level=logging.WARNING)
    spec = plan_descriptor(args.plan)
    store = DataStore(args.data)
    d = data_from_structures(load_structures(args.data, args.plan), spec, {"diagrams"}, store)
    v = data_from_structures(load_structures(args.data, args.plan, validation=True), spec, {"diagrams"}, store)
    tr, te = train_test_split(d.groups, 0.2, args.seed, "run")
    y = d.energies_eV
    mean, std = float(y[tr].mean()), float(y[tr].std())
    z = (y[tr] - mean) / std
    mp_test, mp_big = rmse_meV(np.full(len(te), mean), y[te]), rmse_meV(np.full(len(v), mean), v.energies_eV)
    print(f"{len(tr)} train / {len(te)} test / {len(v)} larger-cell structures; mean predictor: test {mp_test:.1f}, "
          f"larger cells {mp_big:.1f}")  # fmt: skip
    print("| vectorization | kernel | g | α | CV | train | test | larger cells (bias) |")
    print("|---|---|---|---|---|---|---|---|")
    vecs = json.loads(args.vectorizations) if args.vectorizations else K.DEFAULT_VECTORIZATIONS
    groups = [d.groups[i] for i in tr]
    for raw in vecs:
        vec = K.fit_vectorization(raw, [d.births_A2[i] for i in tr], [d.deaths_A2[i] for i in tr], spec)
        x, xv = K.pd_features(vec, d), K.pd_features(vec, v)
        for kernel in args.kernels:
            cv = K.cross_validate([x[tr]], [False], z, groups, K.KernelGrid(kernels=(kernel,)), args.seed)
            fit = K.KernelRidgeFit.fit([x[tr]], [False], z, cv.best)
            pred, pv = fit.predict([x]) * std + mean, fit.predict([xv]) * std + mean
            errors = [1000 * std * cv.best_rmse, rmse_meV(pred[tr], y[tr]), rmse_meV(pred[te], y[te])]
            big = f"{rmse_meV(pv, v.energies_eV):.1f} ({1000 * (pv - v.energies_eV).mean():+.1f})"
            print(f"| {K.describe(vec)} | {kernel} | {cv.best['gamma_rel']:g} | {cv.best['alpha']:g} | "
                  + " | ".join(f"{e:.1f}" for e in errors) + f" | {big} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
