# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-kernel and pd-hybrid against ACSF + KRR on several run splits of one data set (meV/atom).

    .venv/bin/python benchmarks/experiments/pd_model_splits.py paper_runs/agr_demo --plan agr-demo --seeds 1 2 3
    .venv/bin/python benchmarks/experiments/pd_model_splits.py --quick     # seconds: tiny generated data, seed 0

For each seed: the run split (20 % of runs), the `pdmd baseline` ACSF + KRR, pd-kernel (candidates
`pi σ0.3 atoms` and `pi σ0.2 pairs`, to keep it short) and pd-hybrid (defaults) trained through
`pdmd.models.registry.train_model`, each with test and larger-cell RMSE, and the test RMSE of pd-hybrid's
"ACSF alone" candidate (the same CV without the PD block). ACSF features are computed once. Prints a
markdown table, one row per seed; the four-split result (demo data) is in docs/history.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from pdmd.analysis.baselines import fit_baseline
from pdmd.campaign import plan_descriptor
from pdmd.descriptor.atomic import structure_features
from pdmd.models.data import data_from_structures
from pdmd.models.labelled import load_structures
from pdmd.models.plots import rmse_meV
from pdmd.models.registry import load_model
from pdmd.models.split import train_test_split
from pdmd.models.training import predict_data, train_model
from pdmd.store.datastore import DataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import add_quick_arguments, resolve_data  # noqa: E402

KERNEL_OPTIONS = {"vectorizations": [{"method": "pi", "sigma_A2": 0.3}, {"method": "pi", "sigma_A2": 0.2,
                                                                         "norm": "pairs"}]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", help="the plan of DATA (required unless --quick)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    if args.quick:
        args.seeds = [0]
    elif args.plan is None:
        p.error("--plan is required")
    logging.basicConfig(level=logging.WARNING)
    spec = plan_descriptor(args.plan)
    store = DataStore(args.data)
    s, b = load_structures(args.data, args.plan), load_structures(args.data, args.plan, validation=True)
    d = data_from_structures(s, spec, {"diagrams", "frames"}, store)
    v = data_from_structures(b, spec, {"diagrams", "frames"}, store)
    x, xb = structure_features("acsf", s.frames)[0], structure_features("acsf", b.frames)[0]
    d.features, v.features = {"acsf": x}, {"acsf": xb}
    y = d.energies_eV
    print("| seed | train / test | mean predictor | ACSF+KRR test / larger | pd-kernel test / larger | "
          "pd-hybrid test / larger (choice) | ACSF alone, same CV: test |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        tr, te = train_test_split(d.groups, 0.2, seed, "run")
        base = fit_baseline("acsf", "krr", (x[tr], y[tr]), (x[te], y[te]), (xb, v.energies_eV))
        cells = [f"{seed}", f"{len(tr)} / {len(te)}", f"{rmse_meV(np.full(len(te), y[tr].mean()), y[te]):.1f}",
                 f"{base.test_rmse:.1f} / {base.transfer_rmse:.1f}"]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            for kind, options in (("pd-kernel", KERNEL_OPTIONS), ("pd-hybrid", {})):
                card = train_model(kind, d, Path(tmp) / kind, f"{kind}-{seed}", split_indices=(tr, te), seed=seed,
                                   options=options)  # fmt: skip
                big = rmse_meV(predict_data(load_model(Path(tmp) / kind), v), v.energies_eV)
                fit = card["kernel_model"]["fit"]
                choice = f" ({fit['kernel']}, w_PD {fit['weights'][0]:g})" if kind == "pd-hybrid" else ""
                cells.append(f"{card['metrics']['test_rmse_meV_per_atom']:.1f} / {big:.1f}{choice}")
                if kind == "pd-hybrid":
                    alone = next(a for a in card["ablation"] if "alone" in a["candidate"])
                    cells.append(f"{alone['test_rmse_meV_per_atom (not used for the choice)']:.1f}")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
