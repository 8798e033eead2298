# SPDX-License-Identifier: GPL-3.0-or-later
"""Model commands: train, predict, results, show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pdmd.cli.common import command, open_store, print_active_campaigns, register_card
from pdmd.cli.inputs import add_descriptor_args, add_read_args
from pdmd.models.cnn.config import PRECISIONS
from pdmd.models.registry import KINDS, MODEL_KINDS
from pdmd.store.documents import DEFAULT_KIND, find_model


def cmd_results(args: argparse.Namespace) -> int:
    from pdmd.models.quality import quality_flag
    from pdmd.store.datastore import MODELS

    lp, store = open_store()
    models = list(lp.db[MODELS].find({"_id": args.model} if getattr(args, "model", None) else {}))
    print_active_campaigns(store.root)
    if not models:
        print("no trained models yet")
        return 0
    for m in models:
        met = m.get("metrics", {})
        line = (
            f"{m['name']} [{m.get('model_kind', 'pd-cnn')}]: "
            f"train RMSE {met.get('train_rmse_meV_per_atom', float('nan')):.2f}, "
            f"test RMSE {met.get('test_rmse_meV_per_atom', float('nan')):.2f} meV/atom "
            f"(test energy std {met.get('test_energy_std_meV_per_atom', float('nan')):.1f}; "
            f"{m.get('split', {}).get('kind')} split, n_train {met.get('n_train')}, n_test {met.get('n_test')})"
        )
        if met.get("mean_predictor_test_rmse_meV_per_atom") is not None:
            line += f"; mean predictor {met['mean_predictor_test_rmse_meV_per_atom']:.2f}"
        for label, v in (m.get("validation") or {}).items():
            line += f"; {label} RMSE {v['rmse_meV_per_atom']:.2f} meV/atom (n {v['n_structures']})"
        print(line)
        if quality_flag(m):
            print(f"  WARNING: {quality_flag(m)}")
        print(f"  folder: {m.get('path')}")
        for name, path in {
            **m.get("plots", {}),
            **{k: v["parity_plot"] for k, v in (m.get("validation") or {}).items()},
        }.items():
            print(f"  plot {name}: {path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pdmd.store.documents import read_card

    card = read_card(find_model(args.model))
    brief = {k: v for k, v in card.items() if k not in ("history", "split")}
    brief["split"] = {k: (len(v) if k.endswith("_ids") else v) for k, v in card["split"].items()}
    if card.get("history"):  # kernel kinds have no epochs
        brief["history"] = f"{len(card['history'])} epochs (see learning_curve plot)"
    print(json.dumps(brief, indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict every readable structure; one line per failure (file: reason); exit 2 if any failed.

    A model with a training domain adds each structure's extrapolation grade (1 = edge of the training data).
    """
    import sys

    from pdmd.api import load_potential, predict_files
    from pdmd.cli.inputs import read_options

    potential = load_potential(find_model(args.model))
    rows = predict_files(potential, args.structures, read_options(args))
    done = [r for r in rows if r.error is None]

    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    # optional columns, shown where any structure has them: (CSV name, table header, value, CSV / table format)
    columns = [
        ("spread_meV_per_atom", "spread/meV/atom", lambda r: r.spread_eV_per_atom and 1000 * r.spread_eV_per_atom,
         ".3f", "16.2f"),  # an ensemble: mean and spread per structure
        ("extrapolation_grade", "grade", lambda r: r.extrapolation, ".3f", "7.2f"),  # a model with a domain
        ("geometry_grade", "geometry", lambda r: r.geometry_grade, ".3f", "8.2f"),  # density / bond lengths
        ("max_force_deviation_eV_per_A", "max_devi_f/eV/Å", lambda r: r.max_force_deviation_eV_per_A, ".4f",
         "15.3f"),  # a pd-local committee
    ]  # fmt: skip
    columns = [c for c in columns if any(c[2](r) is not None for r in done)]
    if args.csv:
        print("structure,n_atoms,predicted_eV_per_atom,reference_eV_per_atom,seconds"
              + "".join(f",{c[0]}" for c in columns))  # fmt: skip
        for r in done:
            print(f"{r.label},{r.n_atoms},{r.predicted_eV_per_atom:.6f},{num(r.reference_eV_per_atom, '.6f')},"
                  f"{r.seconds:.4f}" + "".join(f",{num(c[2](r), c[3])}" for c in columns))  # fmt: skip
    else:
        print(f"{'structure':40} {'atoms':>6} {'E_pred/eV/atom':>15} {'E_ref':>10} {'ms':>6}"
              + "".join(f" {c[1]:>{c[4].split('.')[0]}}" for c in columns))  # fmt: skip
        for r in done:
            print(f"{r.label:40.40} {r.n_atoms:6d} {r.predicted_eV_per_atom:15.4f} "
                  f"{num(r.reference_eV_per_atom, '.4f'):>10} {1000 * r.seconds:6.0f}"
                  + "".join(f" {num(c[2](r), c[4]):>{c[4].split('.')[0]}}" for c in columns))  # fmt: skip
    for r in done:
        for w in r.warnings:
            print(f"pdmd: warning: {r.label}: {w}: outside the training data, the prediction is an extrapolation",
                  file=sys.stderr)  # fmt: skip
    failed = [r for r in rows if r.error is not None]
    for r in failed:
        print(f"pdmd: error: {r.error}", file=sys.stderr)
    if failed:
        print(f"pdmd: {len(failed)} of {len(rows)} structures failed; {len(done)} predicted", file=sys.stderr)
    return 2 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    """`pdmd train`: any model kind on a labelled structure file (`pdmd.models.registry.train_from_file`)."""
    from pdmd.cli.inputs import descriptor_spec, json_option, label_keys, read_options
    from pdmd.errors import InputError
    from pdmd.models.cnn.options import config_from_options
    from pdmd.models.training import train_from_file
    from pdmd.settings import data_dir

    out = Path(args.out) if args.out else data_dir() / "models" / args.name
    options = json_option(args.model_options, "--model-options")
    if args.model == "pd-cnn":  # the paper's CNN: TrainConfig fields from the command line
        chosen = {
            "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
            "weight_decay": args.weight_decay, "warmup_epochs": args.warmup_epochs,
            "early_stopping_patience": args.patience, "precision": args.precision,
            "representation": args.representation, "threads": args.threads, "device": args.device,
            "max_minutes": args.max_minutes, "standardization": args.standardization, "schedule": args.schedule,
            "image_scope": args.image_scope,
        }  # fmt: skip
        train = {k: v for k, v in chosen.items() if v is not None}
        options = {**options, "train": {**options.get("train", {}), **train}, "ensemble": args.ensemble,
                   "resume": bool(args.resume)}  # fmt: skip
        for key in ("train", "cnn"):  # a typo fails here, before any diagram is computed
            config_from_options(key, options.get(key, {}), f"--model-options {key}")
    elif args.model == "pd-local":  # a committee: K networks, member 0 integrated, the others' deviation
        options = {**options, "ensemble": args.ensemble}
    elif args.ensemble != 1:
        raise InputError(f"--ensemble: only pd-cnn and pd-local train committees, not {args.model}")
    card = train_from_file(Path(args.data), descriptor_spec(args, args.system), args.model, out, args.name,
                           split=args.split, test_fraction=args.test_fraction, seed=args.seed, options=options,
                           read_options=read_options(args), label_keys=label_keys(args))  # fmt: skip
    register_card(out)  # `pdmd results` lists it beside the workflows' models
    print(f"energies read as: {card['provenance'].get('energies_read_as') or 'energy_eV_per_atom'}")
    m = card["metrics"]
    chosen_kernel = (card.get("kernel_model") or {}).get("candidate")
    stop = (card.get("runtime") or {}).get("stop_reason")
    print(
        f"{args.name} ({args.model}{f', {chosen_kernel}' if chosen_kernel else ''}): train RMSE "
        f"{m['train_rmse_meV_per_atom']:.2f}, test RMSE {m['test_rmse_meV_per_atom']:.2f} meV/atom (mean predictor "
        f"{m['mean_predictor_test_rmse_meV_per_atom']:.2f}, test energy std {m['test_energy_std_meV_per_atom']:.1f})"
        f"{f'; {stop}' if isinstance(stop, str) and stop else ''}; model in {out}"
    )
    if "committee" in card:
        c = card["committee"]
        rmses = ", ".join(f"{v:.2f}" for v in c["member_test_rmse_meV_per_atom"])
        window = f"{c['trust_low_eV_per_A']:.3f}-{c['trust_high_eV_per_A']:.3f} eV/Å"
        print(f"committee of {c['size']}: member test RMSEs {rmses} meV/atom; trust window {window}")
    if "max_extrapolation_default" in (card.get("domain") or {}):
        use = "MD stops" if card.get("model_kind") == "pd-local" else "pdmd predict warns"
        print(f"extrapolation grade (1 = edge of the training data): {use} above "
              f"{card['domain']['max_extrapolation_default']:.2f}")  # fmt: skip
    if "ensemble" in card:
        e = card["ensemble"]
        print(
            f"ensemble of {e['size']}: mean test spread {e['test_spread_mean_meV_per_atom']:.2f} meV/atom, "
            f"Spearman(spread, |error|) on the test set {e['spread_error_spearman_test']:.2f}"
        )
    return 0


def add_parsers(sub) -> None:
    """Register the model commands."""
    s = command(sub, cmd_results, "results", help="trained models with their RMSEs (meV/atom) and plot paths")
    s = command(sub, cmd_show, "show", help="print a model's card")
    s.add_argument("model", help="model name or folder")
    s = command(
        sub, cmd_predict, "predict", help="mean energy per atom (eV/atom) of structure files, with extrapolation grades"
    )
    s.add_argument("model", help="model name or folder")
    s.add_argument("structures", nargs="+")
    s.add_argument("--csv", action="store_true")
    add_read_args(s)
    _add_train_parser(sub)


def _add_train_parser(sub) -> None:
    """Register `pdmd train`: the model kind, its data and split, then the training settings."""
    s = command(
        sub, cmd_train, "train", help="train a PD model (default the paper's CNN) on labelled structures (extxyz etc.)"
    )
    s.add_argument(
        "--model",
        default=DEFAULT_KIND,
        choices=KINDS,
        help="model kind: " + "; ".join(f"{k}: {MODEL_KINDS[k].summary}" for k in KINDS),
    )
    s.add_argument(
        "--model-options",
        help='JSON options of the model kind, e.g. \'{"folds": 5}\' (pd-kernel), \'{"cnn": {"pool": "avg"}}\' (pd-cnn)',
    )
    s.add_argument(
        "--data", required=True, help="file ASE reads with energies (info energy_eV_per_atom, or total energy)"
    )
    s.add_argument("--name", default="user-cnn")
    s.add_argument("--out", help="model folder (default: <data dir>/models/NAME)")
    s.add_argument("--system", default="2d", choices=["agr", "ac", "2d", "3d"])
    add_descriptor_args(s)
    s.add_argument("--split", default="run", choices=["run", "snapshot"])
    s.add_argument("--test-fraction", type=float, default=0.2)
    _add_training_args(s)
    add_read_args(s, labels=True)


def _add_training_args(s: argparse.ArgumentParser) -> None:
    """The training settings of `pdmd train`: schedule, seed, image scaling, arithmetic, time cap, ensemble."""
    s.add_argument("--epochs", type=int, help="epoch cap (a safety net: early stopping ends training; default 150)")
    s.add_argument("--batch-size", type=int, help="default 32")
    s.add_argument("--lr", type=float, help="peak learning rate of AdamW (default 1e-3)")
    s.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    s.add_argument("--warmup-epochs", type=int, help="linear learning-rate warm-up (epochs)")
    s.add_argument("--patience", type=int, help="early stopping: epochs without a better validation loss")
    s.add_argument(
        "--schedule",
        choices=["plateau", "cosine", "onecycle"],
        help="learning-rate schedule (default plateau; cosine and onecycle spread over --epochs)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--standardization", choices=["minmax", "zscore"])
    s.add_argument(
        "--image-scope",
        choices=["global", "pixel"],
        help="image scaling: one shift/scale for all pixels or one per pixel (docs/models.md)",
    )
    s.add_argument(
        "--representation",
        choices=["auto", "histogram", "sqrt", "log", "smooth"],
        help="CNN input: auto (default: the paper's PD histogram, smoothed when the training diagrams are sparse), "
        "the histogram, its sqrt, log, or Gaussian-smoothed (docs/models.md)",
    )
    s.add_argument("--precision", choices=list(PRECISIONS),
                   help="training arithmetic; auto (default): bf16 where the device has it natively, else fp32 "
                   "(prediction is always fp32)")  # fmt: skip
    s.add_argument("--threads", type=int, help="torch threads (default: every core this process may use)")
    s.add_argument("--device", help="auto (CUDA when present), cpu or cuda[:N]")
    s.add_argument("--max-minutes", type=float, help="wall-time cap of this training run (a safety net)")
    s.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="train K seeds: pd-cnn predicts their mean and spread; pd-local is a committee (member 0 "
                        "gives energies and forces, all K the force deviation)")  # fmt: skip
    s.add_argument("--resume", action="store_true", help="continue the checkpoint in the model folder")
