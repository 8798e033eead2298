# SPDX-License-Identifier: GPL-3.0-or-later
"""Does the paper's CNN learn on small sets of relaxed sheets?  Test RMSE per seed beside the mean predictor and
kernel ridge (pd-kernel) on the same diagrams, snapshot split.

Data: a plan's stored structures, e.g. `agr-small200` / `agr-small400` (175 relaxed sheets of 200 / 400
atoms, energies spread by cooling rate; `pdmd campaign PLAN --data-dir DIR` makes them). `--set` overrides
TrainConfig fields (JSON values): `--set representation='"histogram"'` is the setting before `auto`. Prints
one row per seed: test RMSE of the CNN, of the mean predictor and of pd-kernel, the test energies' std, the
CNN's ratio to it, the representation used, epochs and restarts (meV/atom). The table of docs/models.md
("pd-cnn on small data sets"):

    pdmd campaign agr-small200 --data-dir paper_runs/small/s200
    python benchmarks/cnn_small_sets.py paper_runs/small/s200 --plan agr-small200 --seeds 0 1 2 --kernel
    python benchmarks/cnn_small_sets.py paper_runs/small/s200 --plan agr-small200 \
        --set representation='"histogram"'
    python benchmarks/cnn_small_sets.py --quick          # the tiny data set of benchmarks/_quick.py, 2 epochs
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from _quick import add_quick_arguments, one_thread, output_folder, resolve_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", type=Path, help="a data folder holding the plan's runs")
    p.add_argument("--plan", default="agr-small200")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a TrainConfig field")
    p.add_argument("--kernel", action="store_true", help="also pd-kernel on the same split")
    p.add_argument("--out", type=Path, help="model folders (default: a temporary folder)")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args)
    one_thread()
    logging.basicConfig(level=logging.WARNING)
    from pdmd.campaign import plan_descriptor, plan_runs
    from pdmd.models.data import load_store_data
    from pdmd.models.training import train_model
    from pdmd.store.datastore import DataStore

    train = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.quick:
        train["epochs"] = 2
    out = output_folder(args.out, "cnn-small")
    runs, _ = plan_runs(args.plan)
    data = load_store_data(DataStore(args.data), [r.run_id for r in runs], plan_descriptor(args.plan),
                           {"images", "diagrams", "geometry"})  # fmt: skip
    print(f"{args.plan}: {len(data)} structures, energy std {1000 * data.energies_eV.std():.1f} meV/atom, "
          f"{np.mean(data.image_pairs):.0f} H1 pairs per diagram; snapshot split")  # fmt: skip
    print(
        "| seed | test std | mean predictor | pd-cnn | ratio to std | pd-kernel | representation | epochs | restarts |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        t0 = time.perf_counter()
        card = train_model("pd-cnn", data, out / f"cnn-{seed}", f"cnn-{seed}", split="snapshot", seed=seed,
                           options={"train": {**train, "seed": seed}})  # fmt: skip
        m = card["metrics"]
        kernel = "—"
        if args.kernel:
            k = train_model("pd-kernel", data, out / f"kernel-{seed}", f"kernel-{seed}", split="snapshot", seed=seed)
            kernel = f"{k['metrics']['test_rmse_meV_per_atom']:.1f}"
        rep = card["training"]["representation"]
        sigma = f" σ {card['training']['smooth_sigma_px']:g}" if rep == "smooth" else ""
        rmse, std, mean = (m[f"{k}_meV_per_atom"] for k in ("test_rmse", "test_energy_std", "mean_predictor_test_rmse"))
        print(f"| {seed} | {std:.1f} | {mean:.1f} | {rmse:.1f} | {rmse / std:.2f} "
              f"| {kernel} | {rep}{sigma} | {m['epochs_run']} | {len(card['runtime'].get('restarts', []))} |",
              flush=True)  # fmt: skip
        logging.getLogger(__name__).info("seed %d: %.0f s", seed, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
