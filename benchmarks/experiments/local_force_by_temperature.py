# SPDX-License-Identifier: GPL-3.0-or-later
"""Force and energy errors of a saved pd-local model on the run split's test structures, by snapshot temperature.

Prints a markdown table: per temperature band, the force-component RMSE against the reference RMS force
(eV/Å) and the energy RMSE (meV/atom); it showed where pd-local's force error on the demo data comes from.

    python benchmarks/experiments/local_force_by_temperature.py paper_runs/agr_demo MODEL_DIR --every 3
    python benchmarks/experiments/local_force_by_temperature.py --quick     # seconds: an untrained model, tiny data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import QUICK_ATOMS, add_quick_arguments, output_folder, resolve_data, untrained_local_model  # noqa: E402


def main() -> None:
    from local_ablation import load

    from pdmd.models.local.model import load_local_model
    from pdmd.models.split import train_test_split
    from pdmd.store.datastore import DataStore

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder with stored forces")
    p.add_argument("model", type=Path, nargs="?", help="a pd-local model folder trained on it")
    p.add_argument("--every", type=int, default=1, help="take every k-th test structure")
    p.add_argument("--atoms", type=int, default=680, help="cell size of the structures used")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, plan_attr=None)
    torch.set_num_threads(1)
    if args.quick:  # an untrained pd-local model: the same evaluation, without a training run
        args.atoms = QUICK_ATOMS
        args.model = untrained_local_model(output_folder(None, "force-by-T") / "pd-local")
    elif args.model is None:
        p.error("MODEL is required unless --quick")
    frames, energies, groups, forces = load(args.data, args.atoms)
    store = DataStore(args.data)
    docs = sorted((d for d in store.iter_structures() if d["n_atoms"] == args.atoms),
                  key=lambda d: (d["run_id"], d["step"]))  # fmt: skip
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
