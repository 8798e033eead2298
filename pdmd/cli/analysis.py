# SPDX-License-Identifier: GPL-3.0-or-later
"""Analysis commands: explain, interpolation-test, compare-descriptors, baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from pdmd.analysis.registry import AnalysisJob, run_analysis
from pdmd.cli.common import command, register_card
from pdmd.cli.inputs import add_read_args, json_option
from pdmd.errors import InputError
from pdmd.models.registry import KINDS
from pdmd.store.documents import DEFAULT_KIND, find_model


def cmd_explain(args: argparse.Namespace) -> int:
    from pdmd.cli.inputs import read_options
    from pdmd.structure import Frame, read_frames

    folder = find_model(args.model)
    frames, labels = [], []
    for path in args.structures:
        for i, atoms in enumerate(read_frames(path, options=read_options(args))):
            frames.append(Frame.from_ase(atoms))
            labels.append(f"{Path(path).stem}@{i}")
    out = Path(args.out) if args.out else folder / "explain"
    options = {"threshold": args.threshold, "max_pairs": args.max_pairs, "sign": args.sign}
    result, _ = run_analysis("explain", AnalysisJob(None, out, folder, frames=frames, labels=labels, options=options))
    register_card(folder)
    for e in result["structures"]:
        rings = [h.get("ring_size") for h in e["hot_pairs"]]
        print(
            f"{e['structure']}: E_pred {e['predicted_eV_per_atom']:.4f} eV/atom; {e['n_hot_pairs']} of {e['n_pairs']} "
            f"pairs in the hot region (peak at birth {e['peak_pixel_A2'][0]:.2f}, death {e['peak_pixel_A2'][1]:.2f} "
            f"Å²); ring sizes of the top pairs {rings}\n  {e['gradcam_png']}\n  {e['attention_extxyz']}"
        )
    print(f"numbers: {out / 'explain.json'}")
    return 0


def cmd_interpolation_test(args: argparse.Namespace) -> int:
    from pdmd.settings import data_dir

    out = Path(args.out) if args.out else data_dir() / "analyses" / f"interpolation-{args.plan or Path(args.data).stem}"
    options = {
        "band": args.band,
        "backend": args.backend,
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "max_minutes": args.max_minutes},
    }
    r, _ = run_analysis("interpolation-test", _data_job(args, out, None, options))
    print(
        f"held-out band {r['band_eV_per_atom'][0]:.4f}..{r['band_eV_per_atom'][1]:.4f} eV/atom "
        f"(quantiles {args.band[0]:g}-{args.band[1]:g}, n {r['n_held-out_band']}): RMSE "
        f"{r['rmse_held-out_band_meV_per_atom']:.2f} meV/atom (std {r['std_held-out_band_meV_per_atom']:.1f}); "
        f"ordinary test (n {r['n_ordinary_test']}): RMSE {r['rmse_ordinary_test_meV_per_atom']:.2f} meV/atom "
        f"(std {r['std_ordinary_test_meV_per_atom']:.1f}); train RMSE {r['rmse_train_meV_per_atom']:.2f}"
    )
    print(f"plot: {r['parity_png']}\nnumbers: {out / 'interpolation.json'}")
    return 0


def cmd_compare_descriptors(args: argparse.Namespace) -> int:
    from pdmd.settings import data_dir

    out = Path(args.out) if args.out else data_dir() / "analyses" / "cyclooctane"
    options = {"highlight": args.highlight, "seed": args.seed, "subset": args.subset}
    r, _ = run_analysis("compare-descriptors", AnalysisJob(None, out, options=options))
    print(f"{r['n_conformations']} cyclo-octane conformations, first 3 principal components of each descriptor")
    print(f"{'descriptor':10} {'features':>8} {'var(3PC)':>9} {'trustw.':>8} {'TwoNN dim':>9} {'distinct':>9}")
    for name, n in r["descriptors"].items():
        print(
            f"{name:10} {n['n_features']:8d} {n['variance_explained_3pc']:9.3f} {n['trustworthiness_k10']:8.3f} "
            f"{n['twonn_dimension']:9.2f} {n['distinct_conformations']:9d}"
        )
    print(f"plot: {r['png']}\nnumbers: {out / 'cyclooctane_pca.json'}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from pdmd.analysis.baseline_run import format_table
    from pdmd.settings import data_dir

    folder = find_model(args.model) if args.model else None
    name = args.plan or Path(args.data).stem
    out = Path(args.out) if args.out else data_dir() / "analyses" / f"baselines-{name}"
    kind_options = json_option(args.kind_options, "--kind-options")
    for kind, value in kind_options.items():
        if kind not in args.kinds:
            raise InputError(f"--kind-options names {kind!r}, which is not trained: add it to --kinds {kind}")
        if not isinstance(value, dict):
            raise InputError(f"--kind-options: the options of {kind!r} must be a JSON object, got {value!r}")
    options = {"descriptors": args.descriptor, "models": args.regressor, "kinds": args.kinds,
               "kind_options": kind_options, "every": args.every}  # fmt: skip
    table, _ = run_analysis("baseline", _data_job(args, out, folder, options))
    if folder is not None:
        register_card(folder)
    print(format_table(table))
    print(f"plots and numbers: {out}")
    return 0


def _data_job(args: argparse.Namespace, out: Path, folder: Path | None, options: dict) -> AnalysisJob:
    """The job of an analysis on a data folder (with --plan) or a labelled structure file (with --system)."""
    from pdmd.cli.inputs import label_keys, read_options

    return AnalysisJob(
        Path(args.data), out, folder, args.plan, args.system, options=options, read_options=read_options(args),
        label_keys=label_keys(args),
    )  # fmt: skip


def _add_data_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("data", help="a pdmd data folder (with --plan) or a labelled structure file (with --system)")
    s.add_argument("--plan", help="plan whose runs to use from a data folder (agr-demo, agr-paper, ac-demo, ...)")
    s.add_argument("--system", choices=["agr", "ac", "2d", "3d"], help="what a structure file holds")
    s.add_argument("--out", help="output folder (default: DATA_DIR/analyses/...)")
    add_read_args(s, labels=True)


def add_parsers(sub) -> None:
    """Register the analysis commands."""
    s = command(
        sub, cmd_explain, "explain", help="Grad-CAM maps over the PD image, hot pairs, and their rings as extxyz"
    )
    s.add_argument("model", help="model name (under DATA_DIR/models) or folder")
    s.add_argument("structures", nargs="+", help="structure files ASE reads")
    s.add_argument("--threshold", type=float, default=0.5, help="activation (fraction of peak) of the hot region")
    s.add_argument("--max-pairs", type=int, default=10, help="hot pairs mapped back to atoms")
    s.add_argument(
        "--sign", type=int, choices=[0, 1, -1], default=0, help="0: magnitude, +1: raises the energy, -1: lowers it"
    )
    s.add_argument("--out", help="output folder (default: MODEL/explain)")
    add_read_args(s)
    s = command(
        sub,
        cmd_interpolation_test,
        "interpolation-test",
        help="train without the middle-energy band; RMSE on it and on the rest",
    )
    _add_data_args(s)
    s.add_argument("--band", type=float, nargs=2, default=[0.4, 0.6], metavar=("QLO", "QHI"), help="energy quantiles")
    s.add_argument("--backend", choices=["homcloud", "delaunay"])
    s.add_argument("--epochs", type=int, default=80)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--max-minutes", type=float, default=4.0)
    s = command(
        sub,
        cmd_compare_descriptors,
        "compare-descriptors",
        help="cyclo-octane: PCA of raw, SOAP, ACSF and PD persistence images",
    )
    s.add_argument("--out", help="output folder (default: DATA_DIR/analyses/cyclooctane)")
    s.add_argument("--highlight", type=int, default=20, help="configurations highlighted in every panel")
    s.add_argument("--subset", type=int, help="use this many conformations (default: all 6,040)")
    s.add_argument("--seed", type=int, default=0)
    s = command(sub, cmd_baseline, "baseline", help="SOAP/ACSF + KRR/MLP on the PD-CNN's split, side by side with it")
    _add_data_args(s)
    s.add_argument("--descriptor", nargs="+", choices=["soap", "acsf"], default=["soap", "acsf"])
    s.add_argument("--model", dest="regressor", nargs="+", choices=["krr", "mlp"], default=["krr", "mlp"])
    s.add_argument("--cnn", dest="model", help="model (any kind) whose split to use and to compare with")
    s.add_argument(
        "--kinds",
        nargs="*",
        choices=[k for k in KINDS if k != DEFAULT_KIND],
        default=["pd-kernel", "pd-hybrid"],
        help="PD model kinds trained on the same split as extra rows (none: --kinds with no value; pd-local "
        "trains on the stored forces too)",
    )
    s.add_argument(
        "--kind-options",
        help='JSON training options per kind, e.g. \'{"pd-local": {"train": {"max_minutes": 30}}}\'',
    )
    s.add_argument(
        "--every",
        type=int,
        default=1,
        help="without --cnn: keep every K-th structure of each run and its last (as paper_accuracy.py --every)",
    )
