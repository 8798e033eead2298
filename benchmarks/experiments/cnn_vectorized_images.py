# SPDX-License-Identifier: GPL-3.0-or-later
r"""The paper's CNN on another image of the same diagrams: pd-kernel's vectorizations at 128×128.

    .venv/bin/python benchmarks/experiments/cnn_vectorized_images.py DATA --plan agr-paper --sigma 0.2 \
        [--norm atoms] [--method pi|hist] [--epochs 100] [--set KEY=JSON ...] [--name NAME] [--out DIR]
    .venv/bin/python benchmarks/experiments/cnn_vectorized_images.py --quick     # seconds: tiny data, 2 epochs

The question it answers: does the CNN gain from what makes pd-kernel's kernel ridge better than on the
paper's histogram (pairs per atom instead of probability, persistence weighting, the bulk pair,
Gaussian width σ Å²)? Each training structure's diagram (`DescriptorSpec.learning_pairs`, so with the bulk
pair) becomes `pdmd.models.kernel.pd_kernel.vectorize` of a 128-bin vectorization (`pi`: persistence image on the
training diagrams' (birth, persistence) grid; `hist`: the window's histogram), which replaces the PD
image; then the same `fit_potential` as `paper_accuracy.py` (run split of seed 0, cosine schedule, min-max,
one thread; `--set` overrides `TrainConfig` fields) and the same images of the plan's 4× cells.
Prints train / test / large-cell RMSE and bias in meV/atom. The model folder: DATA/models/NAME (or --out).
Result (paper-scale aGr, σ 0.1 and 0.2 Å²): docs/history.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from pdmd.campaign import plan_descriptor, plan_runs
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.cnn.options import config_from_options
from pdmd.models.cnn.potential import load_cnn
from pdmd.models.data import ModelData, load_store_data
from pdmd.models.kernel.pd_kernel import fit_vectorization, vectorize
from pdmd.models.plots import rmse_meV
from pdmd.models.split import train_test_split
from pdmd.store.datastore import DataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import add_quick_arguments, output_folder, resolve_data  # noqa: E402

BINS = 128


def images(vec: dict, data: ModelData) -> np.ndarray:
    """(N, BINS, BINS) float32 vectorized diagrams."""
    return np.stack([vectorize(vec, b, d, int(n)).reshape(BINS, BINS)
                     for b, d, n in zip(data.births_A2, data.deaths_A2, data.n_atoms)]).astype(np.float32)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a data folder filled by `pdmd campaign PLAN`")
    p.add_argument("--plan", default="agr-paper")
    p.add_argument("--method", default="pi", choices=["pi", "hist"])
    p.add_argument("--sigma", type=float, default=0.2, help="persistence image width σ (Å²)")
    p.add_argument("--norm", default="atoms", choices=["atoms", "pairs"])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a TrainConfig field")
    p.add_argument("--name")
    p.add_argument("--out", type=Path, help="model folder (default: DATA/models/NAME)")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, "data_dir")
    if args.quick:  # the same vectorization, training and prediction: 2 epochs on one thread
        args.epochs = 2
        args.set.append("batch_size=8")
        args.out = output_folder(args.out, "cnn-vectorized")
    logging.basicConfig(level=logging.WARNING if args.quick else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")  # fmt: skip
    spec = plan_descriptor(args.plan)
    store = DataStore(args.data_dir)
    train_runs, valid_runs = plan_runs(args.plan)
    data = load_store_data(store, [r.run_id for r in train_runs], spec, {"diagrams"})
    big = load_store_data(store, [r.run_id for r in valid_runs], spec, {"diagrams"})
    train_idx, test_idx = train_test_split(data.groups, 0.2, 0, "run")
    wanted = {"method": args.method, "bins": BINS, "sigma_A2": args.sigma, "norm": args.norm}
    fit_b, fit_d = [data.births_A2[i] for i in train_idx], [data.deaths_A2[i] for i in train_idx]
    vec = fit_vectorization(wanted, fit_b, fit_d, spec)
    settings = {"epochs": args.epochs, "schedule": "cosine", "representation": "histogram", "threads": 1,
                "standardization": "minmax"}  # fmt: skip
    settings.update({k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})
    train = config_from_options("train", settings, "--set")
    width = f"{args.sigma:g}" if args.method == "pi" else ""
    name = args.name or f"{args.plan}-cnn-{args.method}{width}-{args.norm}"
    out = args.out or args.data_dir / "models" / name
    labelled = ModelData(data.energies_eV, data.groups, data.ids, spec, data.n_atoms, images=images(vec, data))
    card = fit_potential(labelled, out, name, train, split="run",
                         split_indices=(train_idx, test_idx))  # fmt: skip
    pred = load_cnn(out).predict_images(images(vec, big))
    m = card["metrics"]
    print(f"{name}: {args.method} σ {args.sigma:g} Å² {args.norm}, {settings}")
    print(f"train {m['train_rmse_meV_per_atom']:.2f} / test {m['test_rmse_meV_per_atom']:.2f} meV/atom (mean predictor "
          f"{m['mean_predictor_test_rmse_meV_per_atom']:.1f}); {valid_runs[0].n_atoms}-atom "
          f"{rmse_meV(pred, big.energies_eV):.2f} (bias {1000 * np.mean(pred - big.energies_eV):+.2f}); "
          f"{m['epochs_run']} epochs (best {m['best_epoch']})")  # fmt: skip


if __name__ == "__main__":
    main()
