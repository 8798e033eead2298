# SPDX-License-Identifier: GPL-3.0-or-later
r"""Train pd-local on a stored aGr data folder (run split), validate on its 2,720-atom cells, run NVE.

    python benchmarks/experiments/local_demo.py paper_runs/agr_demo --out /tmp/pd-local-demo --minutes 8 \
        [--epochs 300] [--nve-steps 300] [--options JSON]
    python benchmarks/experiments/local_demo.py --quick     # seconds: tiny generated data, 2 epochs, 5 NVE steps

The folder needs stored forces (`pdmd forces DATA_DIR` adds them). Prints (and writes to OUT/demo_report.json)
energy and force RMSE against the mean predictor, the 2,720-atom RMSE and bias, and the NVE energy drift
(meV/atom/ps) and cost (ms per step) of a 680-atom cell. Results (descriptor and training choices of
pd-local on the demo data): docs/history.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from pdmd.dynamics.ase_engine import DEFAULT_TIMESTEP_FS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import QUICK_ATOMS, QUICK_LARGE_ATOMS, add_quick_arguments, output_folder, resolve_data  # noqa: E402


def main() -> None:
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.data import data_from_frames
    from pdmd.models.split import train_test_split
    from pdmd.models.training import train_model
    from pdmd.store.datastore import DataStore

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder with stored forces")
    p.add_argument("--out", type=Path, help="model folder (required unless --quick)")
    p.add_argument("--atoms", type=int, default=680, help="cell size of the training structures")
    p.add_argument("--large-atoms", type=int, default=2720, help="cell size of the validation structures")
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--nve-steps", type=int, default=300)
    p.add_argument("--force-weight", type=float, default=1.0)
    p.add_argument("--nve-timestep-fs", type=float, default=DEFAULT_TIMESTEP_FS)
    p.add_argument("--options", default="{}", help='JSON merged into the model options, e.g. {"train": {"lr": 0.001}}')
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, plan_attr=None)
    if args.quick:  # the same training, validation and NVE: 2 epochs of a small network, 5 MD steps
        args.atoms, args.large_atoms, args.epochs, args.nve_steps = QUICK_ATOMS, QUICK_LARGE_ATOMS, 2, 5
        args.options = args.options if args.options != "{}" else json.dumps({"train": {"hidden": [16, 16]}})
        args.out = output_folder(args.out, "local-demo")
    elif args.out is None:
        p.error("--out is required unless --quick")
    extra = json.loads(args.options)
    logging.basicConfig(level=logging.WARNING if args.quick else logging.INFO, format="%(asctime)s %(message)s")
    store = DataStore(args.data)
    docs = sorted(store.iter_structures(), key=lambda d: (d["run_id"], d["step"]))
    small = [d for d in docs if d["n_atoms"] == args.atoms]
    large = [d for d in docs if d["n_atoms"] == args.large_atoms]
    frames = [store.load_frame(d) for d in small]
    energies = np.array([d["energy_eV_per_atom"] for d in small])
    groups, ids = [d["run_id"] for d in small], [d["_id"] for d in small]
    data = data_from_frames(frames, energies, groups, ids, DescriptorSpec.for_system("agr"), {"frames"})
    train, test = train_test_split(groups, 0.2, 0, "run")
    card = train_model(
        "pd-local",
        data,
        args.out,
        "pd-local-demo",
        split_indices=(train, test),
        options={
            "store_root": str(args.data),
            "train": {
                "epochs": args.epochs,
                "max_minutes": args.minutes,
                "batch_structures": 4,
                "force_weight": args.force_weight,
                **extra.get("train", {}),
            },
            "descriptor": extra.get("descriptor", {}),
        },  # fmt: skip
    )
    m = card["metrics"]
    report = {k: m[k] for k in sorted(m) if isinstance(m[k], (int, float))}
    from pdmd.models.local.model import load_local_model

    model = load_local_model(args.out)
    if large:
        pred, _ = model.predict_frames([store.load_frame(d) for d in large])
        ref = np.array([d["energy_eV_per_atom"] for d in large])
        big = f"n{args.large_atoms}"
        report[f"{big}_rmse_meV_per_atom"] = float(np.sqrt(np.mean((pred - ref) ** 2)) * 1000)
        report[f"{big}_bias_meV_per_atom"] = float(np.mean(pred - ref) * 1000)
        report[f"{big}_count"] = len(large)
    if args.nve_steps:
        from pdmd.calculator import PDPotential
        from pdmd.dynamics.ase_engine import run_md

        final = next(d for d in small if d["run_id"] == groups[test[0]] and d["kind"] == "final")
        from pdmd.api import load_potential

        result = run_md(
            PDPotential(load_potential(args.out)),
            store.load_frame(final).to_ase(),
            dim=2,
            temperature_K=300.0,
            steps=args.nve_steps,
            timestep_fs=args.nve_timestep_fs,
            ensemble="nve",
            every=min(10, args.nve_steps),
            trajectory=args.out / f"nve{args.atoms}.extxyz",
        )
        nve = f"nve{args.atoms}"
        report[f"{nve}_steps"] = args.nve_steps
        report[f"{nve}_timestep_fs"] = args.nve_timestep_fs
        report[f"{nve}_drift_meV_per_atom_per_ps"] = result.drift_meV_per_atom_per_ps()
        report[f"{nve}_max_dev_meV_per_atom"] = result.max_deviation_meV_per_atom()
        report[f"{nve}_ms_per_step"] = result.ms_per_step
        report[f"{nve}_mean_T_K"] = float(result.temperature_K.mean())
    print(json.dumps(report, indent=1))
    (args.out / "demo_report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
