# SPDX-License-Identifier: GPL-3.0-or-later
r"""Short pd-local ablation on a stored aGr data folder with forces (run split of the 680-atom structures).

Each setting is a JSON object {"name": ..., "descriptor": {...}, "train": {...}} overriding the
defaults; topologies are computed once per descriptor setting. Prints, per setting, the energy test
RMSE (meV/atom), the force-component test RMSE and std (eV/Å) and the training seconds, and writes
them as JSON lines to --out (the ablation tables of docs/local.md were made this way).

    nice -n 5 .venv/bin/python benchmarks/local_ablation.py paper_runs/agr_demo --out /tmp/abl.jsonl \
        --setting '{"name": "default", "train": {"max_minutes": 5}}' \
        --setting '{"name": "inner 1", "descriptor": {"inner_A": 1.0}, "train": {"max_minutes": 5}}'
    .venv/bin/python benchmarks/local_ablation.py --quick     # seconds: tiny generated data, 2 settings, 2 epochs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from _quick import QUICK_ATOMS, add_quick_arguments, output_folder, resolve_data


def load(root: Path, n_atoms: int = 680):
    """Frames of `n_atoms` atoms, energies (eV/atom), run ids and forces of a stored data folder."""
    from pdmd.store.datastore import DataStore

    store = DataStore(root)
    docs = sorted((d for d in store.iter_structures() if d["n_atoms"] == n_atoms),
                  key=lambda d: (d["run_id"], d["step"]))  # fmt: skip
    frames = [store.load_frame(d) for d in docs]
    energies = np.array([d["energy_eV_per_atom"] for d in docs])
    return frames, energies, [d["run_id"] for d in docs], [store.load_forces(d) for d in docs]


def main() -> None:
    from pdmd.models.local.features import LocalDescriptorConfig
    from pdmd.models.local.train import LocalTrainConfig, fit_local, force_metrics, predict_prepared, prepare
    from pdmd.models.split import train_test_split

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, nargs="?", help="a data folder with stored forces")
    p.add_argument("--out", type=Path, help="JSON lines file the rows are appended to (required unless --quick)")
    p.add_argument("--setting", action="append", default=[], help="JSON object (see the module docstring)")
    p.add_argument("--atoms", type=int, default=680, help="cell size of the structures used")
    p.add_argument("--save", type=Path, help="save each model to SAVE/<name> (a pd-local model folder)")
    p.add_argument("--cache", type=Path, help="keep the topologies of each setting here (pickle) for later runs")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, plan_attr=None)
    if args.quick:  # two settings that differ in the topologies (two preparations), 2 epochs of a small network
        train = {"epochs": 2, "hidden": [16, 16]}
        args.setting = [json.dumps({"name": "default", "train": train}),
                        json.dumps({"name": "inner 1", "descriptor": {"inner_A": 1.0}, "train": train})]  # fmt: skip
        args.atoms = QUICK_ATOMS
        args.out = args.out or output_folder(None, "local-ablation") / "abl.jsonl"
        args.save = args.save or args.out.parent / "models"
    if args.out is None or not args.setting:
        p.error("--out and at least one --setting are required (or --quick)")
    logging.basicConfig(level=logging.WARNING if args.quick else logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    frames, energies, groups, forces = load(args.data, args.atoms)
    train, test = train_test_split(groups, 0.2, 0, "run")
    prepared: dict[str, object] = {}
    for text in args.setting:
        s = json.loads(text)
        cfg = LocalDescriptorConfig.default(2, s.get("descriptor"))
        key = json.dumps([cfg.dim, cfg.cutoff_A, cfg.inner_A, cfg.alpha_max_A2])  # what the topologies depend on
        t0 = time.perf_counter()
        if key not in prepared:  # one topology setting in memory at a time; on disk under --cache
            tag = hashlib.sha1(key.encode()).hexdigest()[:12]
            pickled = args.cache / f"topologies-{tag}.pkl" if args.cache else None
            if pickled is not None and pickled.is_file():
                prepared = {key: pickle.loads(pickled.read_bytes())}
            else:
                prepared = {key: prepare(frames, energies, forces, cfg)}
                if pickled is not None:
                    pickled.parent.mkdir(parents=True, exist_ok=True)
                    pickled.write_bytes(pickle.dumps(prepared[key]))
        prep_s = time.perf_counter() - t0
        opts = {"batch_structures": 4, **s.get("train", {})}
        if "hidden" in opts:
            opts["hidden"] = tuple(opts["hidden"])
        tcfg = LocalTrainConfig(**opts)
        data = prepared[key]
        t0 = time.perf_counter()
        net, history = fit_local(data, train, cfg, tcfg)
        train_s = time.perf_counter() - t0
        pred_e, pred_f = predict_prepared(net, cfg, data, np.arange(len(frames)))
        row = {"name": s.get("name", text), "setting": s, "topology_s": prep_s, "train_s": train_s,
               "epochs": len(history), "n_train": len(train), "n_test": len(test)}  # fmt: skip
        for part, idx in (("train", train), ("test", test)):
            row[f"{part}_energy_rmse_meV_per_atom"] = float(np.sqrt(np.mean((pred_e[idx] - energies[idx]) ** 2)) * 1e3)
            row.update({f"{part}_{k}": v for k, v in force_metrics(pred_f, forces, idx, 2).items()})
        row["test_energy_std_meV_per_atom"] = float(energies[test].std() * 1e3)
        print(json.dumps(row), flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if args.save:
            from pdmd.descriptor.spec import DescriptorSpec
            from pdmd.models.local.model import KIND, save_model

            name = row["name"].replace(" ", "_")
            mean_rmse = float(np.sqrt(np.mean((energies[test] - energies[train].mean()) ** 2)) * 1e3)
            metrics = {**row, "train_rmse_meV_per_atom": row["train_energy_rmse_meV_per_atom"],
                       "test_rmse_meV_per_atom": row["test_energy_rmse_meV_per_atom"],
                       "mean_predictor_test_rmse_meV_per_atom": mean_rmse}  # fmt: skip
            card = {"_id": name, "name": name, "path": str(args.save / name), "model_kind": KIND,
                    "descriptor": DescriptorSpec.for_system("agr").to_dict(), "split": {"kind": "run", "seed": 0},
                    "metrics": metrics, "local_descriptor": cfg.as_dict(),
                    "network": {"hidden": list(tcfg.hidden), "activation": "SiLU"}}  # fmt: skip
            save_model(args.save / name, card, net)


if __name__ == "__main__":
    main()
