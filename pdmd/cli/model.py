# SPDX-License-Identifier: GPL-3.0-or-later
"""Model commands: train, predict, results, show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pdmd.cli.common import model_dir, open_store


def cmd_results(args: argparse.Namespace) -> int:
    from pdmd.store.datastore import MODELS

    lp, _ = open_store()
    models = list(lp.db[MODELS].find({"_id": args.model} if getattr(args, "model", None) else {}))
    if not models:
        print("no trained models yet")
        return 0
    for m in models:
        met = m.get("metrics", {})
        line = (
            f"{m['name']}: train RMSE {met.get('train_rmse_meV_per_atom', float('nan')):.2f}, "
            f"test RMSE {met.get('test_rmse_meV_per_atom', float('nan')):.2f} meV/atom "
            f"(test energy std {met.get('test_energy_std_meV_per_atom', float('nan')):.1f}; "
            f"{m.get('split', {}).get('kind')} split, n_train {met.get('n_train')}, n_test {met.get('n_test')})"
        )
        for label, v in (m.get("validation") or {}).items():
            line += f"; {label} RMSE {v['rmse_meV_per_atom']:.2f} meV/atom (n {v['n_structures']})"
        print(line)
        print(f"  folder: {m.get('path')}")
        for name, path in {
            **m.get("plots", {}),
            **{k: v["parity_plot"] for k, v in (m.get("validation") or {}).items()},
        }.items():
            print(f"  plot {name}: {path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pdmd.store.files import read_json

    card = read_json(model_dir(args.model) / "model.json")
    brief = {k: v for k, v in card.items() if k not in ("history", "split")}
    brief["split"] = {k: (len(v) if k.endswith("_ids") else v) for k, v in card["split"].items()}
    brief["history"] = f"{len(card.get('history', []))} epochs (see learning_curve plot)"
    print(json.dumps(brief, indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pdmd.ml.potential import load_potential
    from pdmd.structure import Frame, read_frames

    potential = load_potential(model_dir(args.model))
    rows = []
    for path in args.structures:
        for i, atoms in enumerate(read_frames(path)):
            frame = Frame.from_ase(atoms)
            label = f"{Path(path).name}@{i}"
            energy, seconds = potential.predict_frames([frame], [label])
            ref = atoms.info.get("energy_eV_per_atom")
            rows.append((label, frame.n_atoms, float(energy[0]), ref, seconds))
    if args.csv:
        print("structure,n_atoms,predicted_eV_per_atom,reference_eV_per_atom,seconds")
        for r in rows:
            print(f"{r[0]},{r[1]},{r[2]:.6f},{'' if r[3] is None else f'{r[3]:.6f}'},{r[4]:.4f}")
    else:
        print(f"{'structure':40} {'atoms':>6} {'E_pred/eV/atom':>15} {'E_ref':>10} {'ms':>6}")
        for r in rows:
            ref = "" if r[3] is None else f"{r[3]:.4f}"
            print(f"{r[0]:40.40} {r[1]:6d} {r[2]:15.4f} {ref:>10} {1000 * r[4]:6.0f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pdmd.ml.dataset_files import labelled_images_from_file
    from pdmd.ml.fit import fit_potential
    from pdmd.ml.model import CNNConfig
    from pdmd.ml.standardize import DEFAULT_STANDARDIZATION
    from pdmd.ml.train import TrainConfig
    from pdmd.settings import data_dir

    data, energy_note = labelled_images_from_file(
        Path(args.data), args.system, tuple(args.range), args.bins, backend=args.backend
    )
    print(energy_note)
    out = Path(args.out) if args.out else data_dir() / "models" / args.name
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        standardization=args.standardization or DEFAULT_STANDARDIZATION[data.descriptor["dim"]],
        max_minutes=args.max_minutes,
    )
    card = fit_potential(
        data,
        out,
        args.name,
        train,
        CNNConfig(),
        args.split,
        args.test_fraction,
        provenance={"data": str(Path(args.data).resolve())},
    )
    m = card["metrics"]
    print(
        f"{args.name}: train RMSE {m['train_rmse_meV_per_atom']:.2f}, test RMSE {m['test_rmse_meV_per_atom']:.2f} "
        f"meV/atom (test energy std {m['test_energy_std_meV_per_atom']:.1f}); model in {out}"
    )
    return 0


def add_parsers(sub) -> None:
    """Register the model commands."""
    s = sub.add_parser("results", help="trained models with their RMSEs (meV/atom) and plot paths")
    s.set_defaults(func=cmd_results)
    s = sub.add_parser("show", help="print a model's card")
    s.add_argument("model", help="model name or folder")
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("predict", help="mean energy per atom (eV/atom) of structure files")
    s.add_argument("model", help="model name or folder")
    s.add_argument("structures", nargs="+")
    s.add_argument("--csv", action="store_true")
    s.set_defaults(func=cmd_predict)
    s = sub.add_parser("train", help="train the PD-CNN on labelled structures (extxyz etc.)")
    s.add_argument(
        "--data", required=True, help="file ASE reads with energies (info energy_eV_per_atom, or total energy)"
    )
    s.add_argument("--name", default="user-cnn")
    s.add_argument("--out", help="model folder (default: <data dir>/models/NAME)")
    s.add_argument("--system", default="2d", choices=["agr", "ac", "2d", "3d"])
    s.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="histogram window Å² (default 0 4 for 2D, 0 8 for 3D)",
    )
    s.add_argument("--bins", type=int, default=128)
    s.add_argument("--backend", choices=["homcloud", "delaunay"], help="PD backend (default: homcloud 2D, delaunay 3D)")
    s.add_argument("--split", default="run", choices=["run", "snapshot"])
    s.add_argument("--test-fraction", type=float, default=0.2)
    s.add_argument("--epochs", type=int, default=100)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--standardization", choices=["minmax", "zscore"])
    s.add_argument("--max-minutes", type=float)
    s.set_defaults(func=cmd_train)
