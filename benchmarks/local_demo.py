# SPDX-License-Identifier: GPL-3.0-or-later
"""Train pd-local on a stored aGr data folder (run split), validate on its 2,720-atom cells, run NVE.

    python benchmarks/local_demo.py paper_runs/agr_demo --out /tmp/pd-local-demo --minutes 8 --nve-steps 300

The folder needs stored forces (`pdmd forces DATA_DIR` adds them). Prints energy and force RMSE
against the mean predictor, the 2,720-atom RMSE and bias, and the NVE energy drift of a 680-atom cell.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from pdmd.dynamics.ase_engine import DEFAULT_TIMESTEP_FS


def main() -> None:
    from pdmd.descriptor.spec import DescriptorSpec
    from pdmd.models.data import data_from_frames
    from pdmd.models.split import train_test_split
    from pdmd.models.training import train_model
    from pdmd.store.datastore import DataStore

    p = argparse.ArgumentParser()
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--nve-steps", type=int, default=300)
    p.add_argument("--force-weight", type=float, default=1.0)
    p.add_argument("--nve-timestep-fs", type=float, default=DEFAULT_TIMESTEP_FS)
    p.add_argument("--options", default="{}", help='JSON merged into the model options, e.g. {"train": {"lr": 0.001}}')
    args = p.parse_args()
    extra = json.loads(args.options)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    store = DataStore(args.data)
    docs = sorted(store.iter_structures(), key=lambda d: (d["run_id"], d["step"]))
    small = [d for d in docs if d["n_atoms"] == 680]
    large = [d for d in docs if d["n_atoms"] == 2720]
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
        report["n2720_rmse_meV_per_atom"] = float(np.sqrt(np.mean((pred - ref) ** 2)) * 1000)
        report["n2720_bias_meV_per_atom"] = float(np.mean(pred - ref) * 1000)
        report["n2720_count"] = len(large)
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
            every=10,
            trajectory=args.out / "nve680.extxyz",
        )
        report["nve680_steps"] = args.nve_steps
        report["nve680_timestep_fs"] = args.nve_timestep_fs
        report["nve680_drift_meV_per_atom_per_ps"] = result.drift_meV_per_atom_per_ps()
        report["nve680_max_dev_meV_per_atom"] = result.max_deviation_meV_per_atom()
        report["nve680_ms_per_step"] = result.ms_per_step
        report["nve680_mean_T_K"] = float(result.temperature_K.mean())
    print(json.dumps(report, indent=1))
    (args.out / "demo_report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
