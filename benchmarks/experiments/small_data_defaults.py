# SPDX-License-Identifier: GPL-3.0-or-later
r"""Does the PD-CNN learn on small data sets?  Test RMSE against the mean predictor, several seeds.

    # the tests' data (8 runs × 6 structures of 120 atoms; built into STORE if missing), 7 of 8 runs per seed
    .venv/bin/python benchmarks/experiments/small_data_defaults.py STORE --tests-data --epochs 40 --settings before
    # N structures drawn at random from a plan's data (e.g. 150 of the 680-atom demo)
    .venv/bin/python benchmarks/experiments/small_data_defaults.py paper_runs/agr_demo --plan agr-demo --n 150 \
        --settings now
    .venv/bin/python benchmarks/experiments/small_data_defaults.py --quick     # seconds: tiny data, 2 epochs

`--settings before` is the earlier training loop (min-max images, fp32, batch 32 for any set size, no
warm-up, 100 epochs as `pdmd train` had); `now` the defaults; `--set KEY=VALUE` overrides one TrainConfig
field (JSON value). Prints per seed: test RMSE, mean-predictor RMSE, their ratio,
std(predictions)/std(test energies), best and last epoch (meV/atom). The measurements that set the training
defaults for small data: docs/history.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from pdmd.models.cnn.config import TrainConfig
from pdmd.models.cnn.fit import fit_potential
from pdmd.models.data import ModelData, load_store_dataset
from pdmd.store.datastore import DataStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the `_quick` helpers
from _quick import add_quick_arguments, resolve_data, tests_on_path  # noqa: E402

BEFORE = TrainConfig(
    epochs=100, standardization="minmax", precision="fp32", min_steps_per_epoch=0, warmup_epochs=0
)  # fmt: skip


def pick(data: ModelData, idx) -> ModelData:
    return data.subset(np.asarray(idx, int))


def tests_data(store_dir: Path, workers: int = 2) -> ModelData:
    """The tests' small store (tests/conftest.py SMALL_RUNS), generated with the campaign runner if missing."""
    tests_on_path()
    from conftest import DESC, SMALL_RUNS

    from pdmd.campaign_runner import run_protocols

    run_protocols(SMALL_RUNS, store_dir, DESC, workers=workers)  # 2 as the fixture: threading changes the MD
    return load_store_dataset(DataStore(store_dir), [p.run_id for p in SMALL_RUNS], DESC)


def init_signal(images: np.ndarray) -> None:
    """Std of the untrained paper CNN's output over the images, and of its hidden features relative to their
    mean magnitude, for min-max and z-score images (3 initialisations each; output in target-std units).
    """
    import torch

    from pdmd.models.cnn.network import PDCNN
    from pdmd.models.cnn.standardize import ImageScaler

    torch.set_num_threads(1)
    occupied = images[images > 0]
    scaled = ImageScaler.fit(images, "minmax").transform(images)
    print(f"{len(images)} images: occupied pixels {100 * (images > 0).mean():.2f} %, median occupied probability "
          f"{np.median(occupied):.4f}, largest {images.max():.4f}; after min-max the median occupied pixel is "
          f"{np.median(scaled[images > 0]):.3f}")  # fmt: skip
    for kind in ("minmax", "zscore"):
        x = torch.from_numpy(ImageScaler.fit(images, kind).transform(images)[:, None])
        out, hidden = [], []
        for seed in range(3):
            torch.manual_seed(seed)
            model = PDCNN().eval()
            with torch.no_grad():
                h = model.head[:3](model.features(x))
                out.append(float(model.head[3:](h).std()))
                hidden.append(float(h.std(0).mean() / h.abs().mean()))
        print(f"{kind}: output std {np.mean(out):.2e}, hidden features vary by {100 * np.mean(hidden):.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, help="a plan's data folder, or the tests' store (--tests-data)")
    p.add_argument("--tests-data", action="store_true", help="the tests' 48 structures; seed s leaves out run 2s+1")
    p.add_argument("--all", action="store_true", help="with --tests-data: all 48 structures (split by the seed)")
    p.add_argument("--init-signal", action="store_true", help="only: how much the untrained CNN's output varies")
    p.add_argument("--plan", default="agr-demo")
    p.add_argument("--n", type=int, default=150, help="structures drawn at random (plan data)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, help="epoch cap (default: the settings')")
    p.add_argument("--settings", choices=["before", "now"], default="now")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ensemble", type=int, default=1, help="K seeds per model: also print spread vs |error|")
    p.add_argument("--workers", type=int, default=2, help="campaign workers building the tests' data")
    add_quick_arguments(p)
    args = p.parse_args()
    resolve_data(p, args, "data_dir")
    if args.quick:  # plan data, 12 structures drawn at random, one seed, 2 epochs
        args.tests_data, args.n, args.seeds, args.epochs = False, 12, "0", 2
    logging.basicConfig(level=logging.ERROR)
    config = BEFORE if args.settings == "before" else TrainConfig()
    config = replace(config, threads=args.threads, **({"epochs": args.epochs} if args.epochs else {}))
    for item in args.set:
        key, value = item.split("=", 1)
        config = replace(config, **{key: json.loads(value)})
    if args.tests_data:
        data = tests_data(Path(args.data_dir), args.workers)
        runs = sorted(set(data.groups))
    else:
        from pdmd.campaign import plan_descriptor, plan_runs

        spec = plan_descriptor(args.plan)
        train_runs, _ = plan_runs(args.plan)
        data = load_store_dataset(DataStore(args.data_dir), [r.run_id for r in train_runs], spec)
    if args.init_signal:
        init_signal(data.images[:64])
        return
    print(f"settings {args.settings}: {config}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        if args.tests_data:
            subset = data if args.all else pick(data, [i for i, g in enumerate(data.groups) if g != runs[2 * seed + 1]])
            fraction = 0.25
        else:
            subset = pick(data, np.sort(np.random.default_rng(100 + seed).choice(len(data.ids), args.n, False)))
            fraction = 0.2
        with tempfile.TemporaryDirectory() as tmp:
            card = fit_potential(subset, Path(tmp), f"small-{seed}", replace(config, seed=seed), split="run",
                                 test_fraction=fraction, ensemble=args.ensemble)  # fmt: skip
        m, q = card["metrics"], card["quality"]
        print(
            f"seed {seed}: {m['n_train']} train / {m['n_test']} test, test RMSE {m['test_rmse_meV_per_atom']:.1f}, "
            f"mean predictor {m['mean_predictor_test_rmse_meV_per_atom']:.1f}, ratio "
            f"{q['rmse_ratio_to_mean_predictor']:.2f}, prediction std ratio {q['prediction_std_ratio']:.3f}, "
            f"best epoch {m['best_epoch']} of {m['epochs_run']}, learned {q['learned']}",
            flush=True,
        )
        if "ensemble" in card:
            e = card["ensemble"]
            members = [round(r, 1) for r in e["member_test_rmse_meV_per_atom"]]
            print(
                f"  ensemble of {e['size']}: members {members}, mean test spread "
                f"{e['test_spread_mean_meV_per_atom']:.1f}, Spearman(spread, |error|) "
                f"{e['spread_error_spearman_test']:.2f} (p {e['spread_error_spearman_p']:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
