# SPDX-License-Identifier: GPL-3.0-or-later
r"""Can pd-local fit the forces of one structure? A capacity check of the local-diagram descriptor.

Trains on the forces of a single stored 680-atom structure only (energy weight 0) and prints the
force-component RMSE on that same structure over its std. A descriptor that kept the information
the forces depend on would let a 64-64 network drive this far below the 15 % target.

    python benchmarks/experiments/local_overfit.py paper_runs/agr_demo --index 5 --epochs 1000 --minutes 5 \
        [--descriptor '{"inner_A": 1.0}']
    python benchmarks/experiments/local_overfit.py --quick     # seconds: one structure of tiny data, 5 epochs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import QUICK_ATOMS, add_quick_arguments, resolve_data  # noqa: E402


def main() -> None:
    from local_ablation import load

    from pdmd.models.local.features import LocalDescriptorConfig
    from pdmd.models.local.train import LocalTrainConfig, fit_local, force_metrics, predict_prepared, prepare

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder with stored forces")
    p.add_argument("--atoms", type=int, default=680, help="cell size of the structures (sorted by run and step)")
    p.add_argument("--index", type=int, default=5, help="structure (sorted by run and step) to fit")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--descriptor", default="{}", help="JSON overrides of the 2D descriptor defaults")
    p.add_argument(
        "--energy-scale",
        type=float,
        default=1.0,
        help="atomic network output scale, eV (one structure has no energy spread to take it from)",
    )
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, plan_attr=None)
    if args.quick:
        args.atoms, args.epochs = QUICK_ATOMS, 5
    torch.set_num_threads(1)
    frames, energies, _, forces = load(args.data, args.atoms)
    i = args.index
    cfg = LocalDescriptorConfig.default(2, json.loads(args.descriptor))
    data = prepare([frames[i]], energies[[i]], [forces[i]], cfg)
    t0 = time.perf_counter()
    tcfg = LocalTrainConfig(
        epochs=args.epochs,
        batch_structures=1,
        energy_weight=0.0,
        max_minutes=args.minutes,
        atom_energy_scale_eV=args.energy_scale,
    )
    net, history = fit_local(data, np.array([0]), cfg, tcfg)
    _, pred = predict_prepared(net, cfg, data, np.array([0]))
    losses = [round(h["train_loss"], 3) for h in history[:: max(1, len(history) // 8)]]
    print(json.dumps({"index": i, "descriptor": json.loads(args.descriptor), "epochs": len(history),
                      "seconds": round(time.perf_counter() - t0), "loss_curve": losses,
                      **force_metrics(pred, data.forces, np.array([0]), 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
