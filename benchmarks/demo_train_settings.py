# SPDX-License-Identifier: GPL-3.0-or-later
r"""PD-CNN training settings on a plan's data, exactly as its train firework trains, plus the 4× cells.

    .venv/bin/python benchmarks/demo_train_settings.py paper_runs/agr_demo --plan agr-demo --seeds 0 1 \
        [--set schedule='"cosine"' --set epochs=120 ...] [--threads 2] [--out DIR]

Data and split are the train firework's (`TrainPotentialTask`): the plan's training runs, its
descriptor, its `TRAIN_SETTINGS` (split kind, test fraction; the split drawn from the settings'
seed, 0 for every shipped plan). `--seeds` varies the training seed only (initialisation,
validation part, batch order) on that one split, so rows compare settings on the same test set.
`--set KEY=VALUE` overrides one TrainConfig field (JSON value) on top of `TRAIN_SETTINGS[plan]`.
Prints per seed: train / test / large-cell RMSE and bias (meV/atom), epochs run (best), training
seconds and s/epoch, and the stop reason; `--out` keeps the model folders (default: a temporary one),
`--resume` continues an interrupted run's checkpoints there. The training-schedule rows of
docs/models.md (demo data):

    .venv/bin/python benchmarks/demo_train_settings.py paper_runs/agr_demo --plan agr-demo --threads 1 \
        --set max_minutes=null --seeds 0 1 [OVERRIDES]
    .venv/bin/python benchmarks/demo_train_settings.py --quick     # seconds: tiny generated data, agr-tiny's settings
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from _quick import add_quick_arguments, resolve_data

from pdmd.campaign import plan_descriptor, plan_runs
from pdmd.models.cnn.config import CNNConfig, TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.data import load_store_data, load_store_dataset
from pdmd.models.split import train_test_split
from pdmd.models.training import validate_model
from pdmd.store.datastore import DataStore
from pdmd.workflow.builders import TRAIN_SETTINGS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", default="agr-demo")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (the split stays the plan's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig field (JSON value)")
    p.add_argument("--threads", type=int, help="torch threads (default: the settings', i.e. every core)")
    p.add_argument("--out", help="keep the model folders here")
    p.add_argument("--label", default="", help="name of this row in the printed table")
    p.add_argument("--resume", action="store_true", help="continue the checkpoints under --out (same settings)")
    p.add_argument("--smooth-sigma-pixels", type=float,
                   help="width of the 'smooth' representation in pixels (an experiment: sets the module constant "
                   "pdmd.models.cnn.standardize.SMOOTH_SIGMA_PIXELS for this process; default 1)")  # fmt: skip
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, "data_dir")
    if args.quick:  # the tiny plan trains with agr-tiny's settings (small CNN), 2 epochs, one seed, one thread
        TRAIN_SETTINGS.setdefault(args.plan, {**TRAIN_SETTINGS["agr-tiny"], "train": {"epochs": 2, "batch_size": 8}})
        args.seeds, args.threads = [0], 1
    if args.smooth_sigma_pixels is not None:
        import pdmd.models.cnn.standardize

        pdmd.models.cnn.standardize.SMOOTH_SIGMA_PIXELS = args.smooth_sigma_pixels
    logging.basicConfig(level=logging.WARNING)
    settings = TRAIN_SETTINGS[args.plan]
    config = TrainConfig(**settings.get("train", {}))
    for item in args.set:
        key, value = item.split("=", 1)
        config = replace(config, **{key: json.loads(value)})
    if args.threads:
        config = replace(config, threads=args.threads)
    cnn = CNNConfig(**{**CNNConfig().as_dict(), **settings.get("cnn", {})})
    spec = plan_descriptor(args.plan)
    train_runs, valid_runs = plan_runs(args.plan)
    store = DataStore(args.data_dir)
    data = load_store_dataset(store, [r.run_id for r in train_runs], spec)
    valid = load_store_data(store, [r.run_id for r in valid_runs], spec, {"images"})
    split = settings.get("split", "run")
    fraction = float(settings.get("test_fraction", 0.2))
    indices = train_test_split(data.groups, fraction, config.seed, split)
    label = args.label or " ".join(args.set) or "plan settings"
    print(f"{label}: {config}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        for seed in args.seeds:
            out = root / f"seed{seed}"
            card = fit_potential(data, out, f"{args.plan}-seed{seed}", replace(config, seed=seed), cnn, split,
                                 fraction, split_indices=indices, resume=args.resume or False)  # fmt: skip
            n_big = valid_runs[0].n_atoms
            v = validate_model(out, valid, f"{n_big}-atom validation")["validation"][f"{n_big}-atom validation"]
            m = card["metrics"]
            row = {
                "label": label,
                "seed": seed,
                "train": m["train_rmse_meV_per_atom"],
                "test": m["test_rmse_meV_per_atom"],
                "mean_predictor": m["mean_predictor_test_rmse_meV_per_atom"],
                "large": v["rmse_meV_per_atom"],
                "large_bias": v["bias_meV_per_atom"],
                "epochs": m["epochs_run"],
                "best_epoch": m["best_epoch"],
                "seconds": m["train_seconds"],
                "s_per_epoch": m["seconds_per_epoch"],
                "stop": card["runtime"]["stop_reason"],
                "n_train": m["n_train"],
                "n_test": m["n_test"],
            }
            print(
                f"{label} | seed {seed} | train {row['train']:.1f} | test {row['test']:.1f} (mean predictor "
                f"{row['mean_predictor']:.1f}) | {n_big}-atom {row['large']:.1f} (bias {row['large_bias']:+.1f}) | "
                f"epochs {row['epochs']} (best {row['best_epoch']}) | {row['seconds']:.0f} s "
                f"({row['s_per_epoch']:.2f} s/epoch) | {row['stop']}",
                flush=True,
            )
            print("JSON " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
