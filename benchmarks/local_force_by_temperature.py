# SPDX-License-Identifier: GPL-3.0-or-later
"""Force and energy errors of a saved pd-local model on the run split's test structures, by snapshot temperature.

Usage:

    nice -n 5 .venv/bin/python benchmarks/local_force_by_temperature.py paper_runs/agr_demo MODEL_DIR --every 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from local_ablation import load

    from pdmd.models.local.model import load_local_model
    from pdmd.models.split import train_test_split
    from pdmd.store.datastore import DataStore

    p = argparse.ArgumentParser()
    p.add_argument("data", type=Path)
    p.add_argument("model", type=Path)
    p.add_argument("--every", type=int, default=1, help="take every k-th test structure")
    args = p.parse_args()
    torch.set_num_threads(1)
    frames, energies, groups, forces = load(args.data)
    store = DataStore(args.data)
    docs = sorted((d for d in store.iter_structures() if d["n_atoms"] == 680), key=lambda d: (d["run_id"], d["step"]))
    temps = np.array([d.get("temperature_K", 300.0) for d in docs])
    _, test = train_test_split(groups, 0.2, 0, "run")
    model = load_local_model(args.model)
    rows = []
    for i in test[:: args.every]:
        e, f = model.energy_and_forces(frames[i])
        err = (f[:, :2] - forces[i][:, :2]).ravel()
        rows.append((temps[i], np.mean(err**2), np.mean(forces[i][:, :2] ** 2), e / len(f) - energies[i]))
    rows = np.array(rows)
    print("| snapshot T (K) | structures | force RMSE (eV/Å) | reference RMS force (eV/Å) | energy RMSE (meV/atom) |")
    print("|---|---|---|---|---|")
    for lo, hi in ((0, 500), (500, 1500), (1500, 2500), (2500, 9999)):
        s = (rows[:, 0] >= lo) & (rows[:, 0] < hi)
        if s.any():
            rmse, ref = np.sqrt(rows[s, 1].mean()), np.sqrt(rows[s, 2].mean())
            e_rmse = 1000 * np.sqrt(np.mean(rows[s, 3] ** 2))
            print(f"| {lo:.0f}–{hi:.0f} | {s.sum()} | {rmse:.2f} | {ref:.2f} | {e_rmse:.1f} |")


if __name__ == "__main__":
    main()
