# SPDX-License-Identifier: GPL-3.0-or-later
r"""Paper-scale accuracy: train the PD-CNN on a plan's data and validate on its 4× larger cells.

Fill the data first (resumable; the FireWorks workflows `workflows/agr.yaml` / `ac_lammps.yaml` reuse it):

    .venv/bin/pdmd campaign agr-paper --data-dir DATA          # or ac-paper
    .venv/bin/python benchmarks/paper_accuracy.py DATA --plan agr-paper [--split run|snapshot] [--epochs N]
        [--max-minutes M] [--every K] [--schedule cosine] [--representation smooth] [--name NAME]
        [--image-scope pixel] [--standardization zscore] [--weight-decay W] [--seed S] [--ensemble K] [--pool avg]
        [--precision fp32] [--extra-degrees 0]
        [--patience P]

The paper's CNN at paper scale in README.md and docs/models.md (aGr, and aC with H1 and H0 as two channels):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/paper_accuracy.py paper_runs/agr_paper --plan agr-paper \
        --split run --epochs 100 --max-minutes 35 --schedule cosine --representation smooth --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/paper_accuracy.py paper_runs/ac_paper --plan ac-paper \
        --split run --every 3 --epochs 40 --max-minutes 40 --schedule cosine --representation smooth --threads 1 \
        --extra-degrees 0
    .venv/bin/python benchmarks/paper_accuracy.py DATA --quick     # seconds: tiny generated data, 2 epochs

Prints train/test RMSE (meV/atom) next to the paper's (aGr 7.9 / 8.3, aC 27.7 / 33.3), the
large-cell RMSE next to the paper's (aGr 2,720 atoms 3.1, aC 512 atoms 33.6), the energy spreads,
seconds per epoch and predict time per structure. `--every K` keeps every K-th intermediate
snapshot of each run (final states always): consecutive quench snapshots are strongly correlated.
A rerun with the same name continues the model folder's checkpoint (an interrupted training resumes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from _quick import add_quick_arguments, output_folder, resolve_data

from pdmd.campaign import PLANS, plan_descriptor, plan_runs
from pdmd.models.cnn.config import POOLS, PRECISIONS, CNNConfig, TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.data import ModelData, load_store_dataset
from pdmd.models.split import thin_indices
from pdmd.models.training import validate_model
from pdmd.store.datastore import DataStore

PAPER = {"agr": (7.9, 8.3, 3.1), "ac": (27.7, 33.3, 33.6)}


def thin(data: ModelData, every: int) -> ModelData:
    """Every `every`-th structure of each run (in stored order: intermediates by step, final last) + finals."""
    if every <= 1:
        return data
    idx = thin_indices(data.groups, every)
    return data.subset(idx)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", default="agr-paper", help="agr-paper, ac-paper (or the demo plans)")
    p.add_argument("--out", type=Path, help="model folder (default: DATA/models/NAME)")
    p.add_argument("--split", default="run", choices=["run", "snapshot"])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--every", type=int, default=1, help="keep every K-th intermediate snapshot of each run")
    p.add_argument("--schedule", default="plateau", choices=["plateau", "cosine", "onecycle"])
    p.add_argument("--representation", default="histogram", help="histogram (the paper's), smooth, sqrt, log")
    p.add_argument("--name", help="model name (default: PLAN-cnn-SPLIT-split)")
    p.add_argument("--threads", type=int, help="torch threads (default: every core this process may use)")
    p.add_argument("--image-scope", default="global", choices=["global", "pixel"], help="image scaling scope")
    p.add_argument("--standardization", choices=["minmax", "zscore"], help="default: the plan's")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--precision", default=TrainConfig.precision, choices=PRECISIONS, help="bf16 autocast or fp32")
    p.add_argument("--pool", default="max", choices=POOLS, help="pooling after each conv layer (paper: max)")
    p.add_argument("--seed", type=int, default=0, help="training seed (the split stays seed 0's)")
    p.add_argument(
        "--extra-degrees",
        type=int,
        nargs="*",
        default=[],
        help="homology degrees stacked after H1 as input channels (0: H1 and H0 as two channels; "
        "stored by `pdmd campaign PLAN --extra-degrees 0`, else computed)",
    )
    p.add_argument("--ensemble", type=int, default=1, help="K networks of seeds SEED … SEED+K−1, predictions averaged")
    p.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.early_stopping_patience,
        help="early stopping: epochs without a better validation loss",
    )
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, "data_dir")
    if args.quick:  # the same training and validation, 2 epochs of small batches on one thread
        args.epochs, args.batch_size, args.threads = 2, 8, 1
        args.out = output_folder(args.out, "paper-accuracy")
    logging.basicConfig(level=logging.WARNING if args.quick else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")  # fmt: skip
    plan = PLANS[args.plan]
    spec = plan_descriptor(args.plan)
    store = DataStore(args.data_dir)
    train_runs, valid_runs = plan_runs(args.plan)
    extra = tuple(args.extra_degrees)
    data = thin(load_store_dataset(store, [r.run_id for r in train_runs], spec, extra), args.every)
    suffix = f"-every{args.every}" if args.every > 1 else ""
    name = args.name or f"{args.plan}-cnn-{args.split}-split{suffix}"
    out = args.out or args.data_dir / "models" / name
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_minutes=args.max_minutes,
        standardization=args.standardization or spec.default_standardization,
        image_scope=args.image_scope,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        representation=args.representation,
        threads=args.threads,
        seed=args.seed,
        precision=args.precision,
        early_stopping_patience=args.patience,
    )
    cnn = CNNConfig(pool=args.pool, extra_degrees=extra)
    card = fit_potential(data, out, name, train, cnn, split=args.split, ensemble=args.ensemble, split_seed=0)
    n_big = valid_runs[0].n_atoms
    label = f"{n_big}-atom validation"
    valid = load_store_dataset(store, [r.run_id for r in valid_runs], spec, extra)
    card = validate_model(out, valid, label)
    m, v = card["metrics"], card["validation"][label]
    paper_train, paper_test, paper_big = PAPER[plan.system]
    print(
        f"{args.plan}: {len(data.energies_eV)} structures of {train_runs[0].n_atoms} atoms "
        f"({len(set(data.groups))} runs); {args.split} split"
    )
    print(
        f"train RMSE {m['train_rmse_meV_per_atom']:.2f} meV/atom (paper {paper_train}), "
        f"test RMSE {m['test_rmse_meV_per_atom']:.2f} meV/atom (paper {paper_test}); "
        f"test energy std {m['test_energy_std_meV_per_atom']:.1f}"
    )
    print(
        f"{n_big}-atom validation RMSE {v['rmse_meV_per_atom']:.2f} meV/atom (paper {paper_big}) on "
        f"{v['n_structures']} structures, energy std {v['energy_std_meV_per_atom']:.1f}, "
        f"bias {v['bias_meV_per_atom']:.2f}"
    )
    print(
        f"{m['epochs_run']} epochs (best {m['best_epoch']}), {m['seconds_per_epoch']:.1f} s/epoch, "
        f"CNN {m['cnn_ms_per_structure']:.2f} ms per structure; plots in {out}"
    )


if __name__ == "__main__":
    main()
