"""Paper-scale aGr accuracy: train the PD-CNN on the `agr-paper` plan and validate on 2,720 atoms.

Fill the data first (resumable; the FireWorks workflow `workflows/agr.yaml` reuses it):

    .venv/bin/pdmd campaign agr-paper --data-dir DATA
    .venv/bin/python benchmarks/agr_paper_accuracy.py DATA [--split run|snapshot] [--epochs N] [--max-minutes M]

Prints train/test RMSE (meV/atom) next to the paper's 7.9 / 8.3, the 2,720-atom RMSE next to 3.1,
the energy spreads, seconds per epoch and predict time per structure.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pdmd.campaign import plan_runs
from pdmd.descriptor.histogram import HistogramSpec
from pdmd.ml.fit import fit_potential, load_store_dataset, validate_potential
from pdmd.ml.train import TrainConfig
from pdmd.store.datastore import DataStore, descriptor_id, descriptor_settings

SPEC = HistogramSpec()  # 128×128 over [0, 4]² Å², as in the workflow
DESC = descriptor_settings("agr", 2, [6], SPEC)
DESC_ID = descriptor_id("homcloud", 1, SPEC)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--plan", default="agr-paper", help="data plan (agr-paper, or agr-demo for the demo data)")
    p.add_argument("--split", default="run", choices=["run", "snapshot"])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    store = DataStore(args.data_dir)
    train_runs, valid_runs = plan_runs(args.plan)
    data = load_store_dataset(store, [r.run_id for r in train_runs], DESC_ID, DESC)
    name = f"{args.plan}-cnn-{args.split}-split"
    out = Path(args.data_dir) / "models" / name
    card = fit_potential(
        data,
        out,
        name,
        TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_minutes=args.max_minutes),
        split=args.split,
    )
    valid = load_store_dataset(store, [r.run_id for r in valid_runs], DESC_ID, DESC)
    card = validate_potential(out, valid, "2720-atom validation")
    m, v = card["metrics"], card["validation"]["2720-atom validation"]
    print(
        f"{args.plan}: {len(data.energies_eV)} structures of 680 atoms ({len(set(data.groups))} runs); "
        f"{args.split} split"
    )
    print(
        f"train RMSE {m['train_rmse_meV_per_atom']:.2f} meV/atom (paper 7.9), "
        f"test RMSE {m['test_rmse_meV_per_atom']:.2f} meV/atom (paper 8.3); "
        f"test energy std {m['test_energy_std_meV_per_atom']:.1f}"
    )
    print(
        f"2,720-atom validation RMSE {v['rmse_meV_per_atom']:.2f} meV/atom (paper 3.1) on {v['n_structures']} "
        f"structures, energy std {v['energy_std_meV_per_atom']:.1f}, bias {v['bias_meV_per_atom']:.2f}"
    )
    print(
        f"{m['epochs_run']} epochs (best {m['best_epoch']}), {m['seconds_per_epoch']:.1f} s/epoch, "
        f"CNN {m['cnn_ms_per_structure']:.2f} ms per structure; plots in {out}"
    )


if __name__ == "__main__":
    main()
