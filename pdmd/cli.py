"""`pdmd` command line. Units: lengths Å, energies eV/atom (errors meV/atom), temperatures K,
persistence birth/death squared alpha radii Å².
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pdmd.errors import PdmdError

log = logging.getLogger("pdmd")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _store(read_only: bool = True):
    from pdmd.settings import data_dir, open_launchpad
    from pdmd.store.datastore import DataStore

    lp = open_launchpad(read_only_if_busy=read_only)
    if getattr(lp, "read_only", False):
        print(
            "(the embedded store is in use by a running FireWorks process: showing its current state read-only)",
            file=sys.stderr,
        )
    return lp, DataStore(data_dir(), db=lp.db)


# -- set-up and the demo ---------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from pdmd.setup_env import install_embedded_hook

    path = install_embedded_hook()
    (REPO_ROOT / ".pdmd").mkdir(exist_ok=True)
    print(f"embedded-store guard installed: {path}")
    return 0


def _fireworks_cli(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else (shutil.which(name) or name)


def cmd_demo(args: argparse.Namespace) -> int:
    """Lpad reset -> lpad add workflows/<file> -> rlaunch rapidfire -> print results."""
    from pdmd.workflow.builders import workflow_file

    cmd_init(args)
    wf_file = workflow_file(args.plan)
    lpad, rlaunch = _fireworks_cli("lpad"), _fireworks_cli("rlaunch")
    t0 = time.perf_counter()
    steps = [
        [lpad, "reset", "--password", time.strftime("%Y-%m-%d")],
        [lpad, "add", str(wf_file)],
        [rlaunch, "rapidfire"],
    ]
    for step in steps:
        print("+", " ".join(Path(step[0]).name if i == 0 else s for i, s in enumerate(step)), flush=True)
        rc = subprocess.call(step, cwd=REPO_ROOT)
        if rc:
            print(f"pdmd demo: `{' '.join(step[:2])}` failed with exit code {rc}", file=sys.stderr)
            return rc
    wall = time.perf_counter() - t0
    print(f"\nworkflow finished in {wall / 60:.1f} min")
    cmd_status(args)
    args.model = f"{args.plan}-cnn"
    cmd_results(args)
    return 0


# -- queries -------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from pdmd.store.datastore import DESCRIPTORS, MODELS, STRUCTURES

    lp, store = _store()
    wfs = list(lp.workflows.find({}, {"state": 1, "name": 1}))
    states: dict[str, int] = {}
    for fw in lp.fireworks.find({}, {"state": 1}):
        states[fw["state"]] = states.get(fw["state"], 0) + 1
    print(f"workflows: {len(wfs)}  " + ", ".join(f"{w['name']}: {w['state']}" for w in wfs[:5]))
    print("fireworks: " + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none"))
    n_final = lp.db[STRUCTURES].count_documents({"kind": "final"})
    n_all = lp.db[STRUCTURES].count_documents({})
    print(f"structures: {n_all} ({n_final} final states, {n_all - n_final} intermediate snapshots)")
    print(f"descriptors: {lp.db[DESCRIPTORS].count_documents({})}   models: {lp.db[MODELS].count_documents({})}")
    print(f"results folder: {store.root}")
    from pdmd.settings import is_embedded
    from pdmd.setup_env import hook_installed

    if is_embedded():
        guard = "installed" if hook_installed() else "NOT installed: run `pdmd init` before using lpad/rlaunch"
        print(f"database: embedded store (guard {guard})")
    return 0


def _structure_query(args: argparse.Namespace) -> dict:
    query = json.loads(args.query) if args.query else {}
    if args.run:
        query["run_id"] = args.run
    if args.kind:
        query["kind"] = args.kind
    return query


def cmd_structures(args: argparse.Namespace) -> int:
    from ase.io import write

    _, store = _store()
    docs = list(store.iter_structures(_structure_query(args)))
    docs.sort(key=lambda d: (d.get("run_id", ""), d.get("kind") == "final", d.get("step", 0)))
    if args.limit:
        docs = docs[: args.limit]
    print(
        f"{'id':12} {'run':28} {'kind':12} {'atoms':>5} {'T_set/K':>7} {'E/eV/atom':>10} {'3-fold%':>7} "
        f"{'rings 5/6/7 %':>14} {'bond/Å':>6}"
    )
    for d in docs:
        net = d.get("network", {})
        rings = net.get("ring_fractions", {})
        ring_txt = "/".join(f"{100 * rings.get(k, 0):.0f}" for k in ("5", "6", "7"))
        print(
            f"{d['_id'][:12]} {d.get('run_id', ''):28.28} {d.get('kind', ''):12} {d['n_atoms']:5d} "
            f"{d.get('setpoint_K', float('nan')):7.0f} {d['energy_eV_per_atom']:10.4f} "
            f"{100 * net.get('coordination_fractions', {}).get('3', 0):7.1f} {ring_txt:>14} "
            f"{net.get('mean_bond_A', float('nan')):6.3f}"
        )
    print(f"{len(docs)} structures")
    if args.export:
        images = []
        for d in docs:
            atoms = store.load_frame(d).to_ase()
            atoms.info.update(
                {
                    "energy_eV_per_atom": d["energy_eV_per_atom"],
                    "run_id": d.get("run_id"),
                    "kind": d.get("kind"),
                    "id": d["_id"],
                    "setpoint_K": d.get("setpoint_K"),
                }
            )
            atoms.info["energy"] = d["energy_eV_per_atom"] * len(atoms)
            images.append(atoms)
        write(args.export, images, format="extxyz")
        print(f"wrote {len(images)} structures to {args.export} (info: energy = total eV, energy_eV_per_atom)")
    return 0


def _guess_dim(frame) -> int:
    import numpy as np

    return 2 if (not frame.pbc[2] or np.ptp(frame.positions[:, 2]) < 0.5) else 3


def cmd_pd(args: argparse.Namespace) -> int:
    import numpy as np

    from pdmd.descriptor.histogram import HistogramSpec, pd_histogram
    from pdmd.descriptor.persistence import alpha_diagram
    from pdmd.ml.plots import pd_image_plot
    from pdmd.structure import Frame, read_frames

    atoms = read_frames(args.structure, index=str(args.index))[0]
    frame = Frame.from_ase(atoms)
    dim = args.dim or _guess_dim(frame)
    if dim == 2:
        frame = Frame(frame.positions, frame.cell, frame.numbers, (frame.pbc[0], frame.pbc[1], False))
    spec = HistogramSpec(args.range[0], args.range[1], args.bins)
    t0 = time.perf_counter()
    diagram = alpha_diagram(frame, dim, args.degree, backend=args.backend, label=str(args.structure))
    ms = 1000 * (time.perf_counter() - t0)
    image = pd_histogram(diagram.births_A2, diagram.deaths_A2, spec)
    print(
        f"{args.structure}: {frame.n_atoms} atoms, {dim}D periodic, H{args.degree}: {diagram.n_pairs} finite pairs, "
        f"{len(diagram.essential_births_A2)} essential; {image.n_outside} pairs outside [{spec.lo_A2:g}, "
        f"{spec.hi_A2:g}]² Å² ({100 * image.fraction_outside:.1f}%); {ms:.0f} ms"
    )
    if diagram.n_pairs == 0:
        print("warning: empty diagram (no finite pairs): the histogram is all zeros", file=sys.stderr)
    if args.png:
        pd_image_plot(
            Path(args.png), image.image, spec.lo_A2, spec.hi_A2, f"{Path(args.structure).name}: H{args.degree}"
        )
        print(f"wrote {args.png}")
    if args.npz:
        np.savez_compressed(
            args.npz,
            births_A2=diagram.births_A2,
            deaths_A2=diagram.deaths_A2,
            essential_births_A2=diagram.essential_births_A2,
            image=image.image,
        )
        print(f"wrote {args.npz}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from pdmd.settings import data_dir, open_launchpad
    from pdmd.store.datastore import DataStore

    lp = open_launchpad(read_only_if_busy=False)
    counts = DataStore(data_dir(), db=lp.db).reindex()
    print("re-indexed from files: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    from pdmd.campaign_runner import run_plan
    from pdmd.settings import data_dir

    root = Path(args.data_dir) if args.data_dir else data_dir()
    results = run_plan(args.plan, root, workers=args.workers, include_validation=not args.no_validation)
    failed = [r for r in results if "error" in r]
    print(f"{len(results) - len(failed)} runs stored in {root}; {len(failed)} failed")
    for r in failed[:10]:
        print(f"  {r['run_id']}: {r['error']}")
    return 1 if failed else 0


# -- models ----------------------------------------------------------------------------------
def cmd_results(args: argparse.Namespace) -> int:
    from pdmd.store.datastore import MODELS

    lp, _ = _store()
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


def _model_dir(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if (path / "model.json").exists():
        return path
    from pdmd.settings import data_dir

    candidate = data_dir() / "models" / name_or_path
    if (candidate / "model.json").exists():
        return candidate
    raise PdmdError(f"no model {name_or_path!r}: not a model folder and not under {data_dir() / 'models'}")


def cmd_show(args: argparse.Namespace) -> int:
    from pdmd.store.files import read_json

    card = read_json(_model_dir(args.model) / "model.json")
    brief = {k: v for k, v in card.items() if k not in ("history", "split")}
    brief["split"] = {k: (len(v) if k.endswith("_ids") else v) for k, v in card["split"].items()}
    brief["history"] = f"{len(card.get('history', []))} epochs (see learning_curve plot)"
    print(json.dumps(brief, indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pdmd.ml.potential import load_potential
    from pdmd.structure import Frame, read_frames

    potential = load_potential(_model_dir(args.model))
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


# -- analyses ---------------------------------------------------------------------------------
def _register_card(model_dir: Path) -> None:
    """Put the model's card (with its analyses) into the database, when there is one and it is free.

    Called after the analysis, so the embedded store is not held while it computes.
    """
    from pdmd.ml.fit import upsert_model_card
    from pdmd.store.files import read_json

    db = _analysis_db()
    if db is not None:
        upsert_model_card(db, read_json(model_dir / "model.json"))


def _analysis_db():
    """The database to record analyses in; None (files only, said why) without a LaunchPad or when it is busy."""
    from fireworks import fw_config

    from pdmd.settings import is_embedded, open_launchpad

    if not (fw_config.LAUNCHPAD_LOC or is_embedded()):
        print("(no LaunchPad configured here: the results are recorded in model.json only)", file=sys.stderr)
        return None
    lp = open_launchpad(read_only_if_busy=True)
    if getattr(lp, "read_only", False):
        print("(the embedded store is busy: the results are recorded in model.json only)", file=sys.stderr)
        return None
    return lp.db


def cmd_explain(args: argparse.Namespace) -> int:
    from pdmd.analysis.explain import explain
    from pdmd.analysis.record import record_analysis
    from pdmd.structure import Frame, read_frames

    model_dir = _model_dir(args.model)
    frames, labels = [], []
    for path in args.structures:
        for i, atoms in enumerate(read_frames(path)):
            frames.append(Frame.from_ase(atoms))
            labels.append(f"{Path(path).stem}@{i}")
    out = Path(args.out) if args.out else model_dir / "explain"
    result = explain(model_dir, frames, labels, out, args.threshold, args.max_pairs, args.sign)
    record_analysis(model_dir, "explain", result)
    _register_card(model_dir)
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
    from pdmd.analysis.data import load_images
    from pdmd.analysis.interpolation import interpolation_test
    from pdmd.ml.standardize import DEFAULT_STANDARDIZATION
    from pdmd.ml.train import TrainConfig
    from pdmd.settings import data_dir

    data = load_images(Path(args.data), args.plan, args.system, args.backend)
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_minutes=args.max_minutes,
        standardization=DEFAULT_STANDARDIZATION[data.descriptor["dim"]],
    )
    out = Path(args.out) if args.out else data_dir() / "analyses" / f"interpolation-{args.plan or Path(args.data).stem}"
    r = interpolation_test(data, out, (args.band[0], args.band[1]), train)
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
    from pdmd.analysis.cyclooctane import compare_descriptors
    from pdmd.settings import data_dir

    out = Path(args.out) if args.out else data_dir() / "analyses" / "cyclooctane"
    r = compare_descriptors(out, args.highlight, args.seed, args.subset)
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
    from pdmd.analysis.baseline_run import format_table, run_baselines
    from pdmd.settings import data_dir

    model_dir = _model_dir(args.model) if args.model else None
    name = args.plan or Path(args.data).stem
    out = Path(args.out) if args.out else data_dir() / "analyses" / f"baselines-{name}"
    table = run_baselines(Path(args.data), args.descriptor, args.regressor, out, args.plan, args.system, model_dir)
    if model_dir is not None:
        _register_card(model_dir)
    print(format_table(table))
    print(f"plots and numbers: {out}")
    return 0


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdmd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="install the embedded-store guard into this Python environment")
    s.set_defaults(func=cmd_init)
    s = sub.add_parser("demo", help="lpad reset + lpad add workflows/agr_demo.yaml + rlaunch rapidfire, then results")
    s.add_argument(
        "--plan",
        default="agr-demo",
        help="agr-demo (default, ~10 min), ac-demo (aC stand-in, ~10 min), agr-tiny (seconds), "
        "agr-paper, ac-paper (hours)",
    )
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("status", help="workflow, firework, structure, descriptor and model counts")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("structures", help="list stored structures (energies eV/atom, T K, bonds Å); export extxyz")
    s.add_argument("--query", help='MongoDB query as JSON, e.g. \'{"energy_eV_per_atom": {"$lt": -6.5}}\'')
    s.add_argument("--run", help="only this run id")
    s.add_argument("--kind", choices=["final", "intermediate"])
    s.add_argument("--limit", type=int, default=0)
    s.add_argument("--export", help="write the selection to this extxyz file (ASE)")
    s.set_defaults(func=cmd_structures)
    s = sub.add_parser("pd", help="persistence diagram + histogram image of any structure file ASE reads")
    s.add_argument("structure")
    s.add_argument("--index", default=0, help="which frame of a multi-frame file (ASE index)")
    s.add_argument(
        "--dim", type=int, choices=[2, 3], help="2 = periodic sheet in xy, 3 = periodic cell (default: guess)"
    )
    s.add_argument("--degree", type=int, default=1, help="homology degree (default 1: rings)")
    s.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=[0.0, 4.0],
        metavar=("LO", "HI"),
        help="histogram window in Å² (squared alpha radii), default 0 4",
    )
    s.add_argument("--bins", type=int, default=128)
    s.add_argument("--backend", choices=["homcloud", "delaunay"], help="PD backend (default: homcloud 2D, delaunay 3D)")
    s.add_argument("--png", help="draw the histogram to this PNG")
    s.add_argument("--npz", help="save pairs (Å²) and image to this .npz")
    s.set_defaults(func=cmd_pd)
    s = sub.add_parser("reindex", help="rebuild the database index of structures/descriptors from the result files")
    s.set_defaults(func=cmd_reindex)
    s = sub.add_parser("campaign", help="fill the store for a plan without FireWorks (parallel, resumable)")
    s.add_argument("plan", help="agr-paper | agr-demo | agr-tiny | ac-paper | ac-demo")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--data-dir")
    s.add_argument("--no-validation", action="store_true")
    s.set_defaults(func=cmd_campaign)
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
    _add_analysis_parsers(sub)
    return p


def _add_data_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("data", help="a pdmd data folder (with --plan) or a labelled structure file (with --system)")
    s.add_argument("--plan", help="plan whose runs to use from a data folder (agr-demo, agr-paper, ac-demo, ...)")
    s.add_argument("--system", choices=["agr", "ac", "2d", "3d"], help="what a structure file holds")
    s.add_argument("--out", help="output folder (default: DATA_DIR/analyses/...)")


def _add_analysis_parsers(sub) -> None:
    s = sub.add_parser("explain", help="Grad-CAM maps over the PD image, hot pairs, and their rings as extxyz")
    s.add_argument("model", help="model name (under DATA_DIR/models) or folder")
    s.add_argument("structures", nargs="+", help="structure files ASE reads")
    s.add_argument("--threshold", type=float, default=0.5, help="activation (fraction of peak) of the hot region")
    s.add_argument("--max-pairs", type=int, default=10, help="hot pairs mapped back to atoms")
    s.add_argument(
        "--sign", type=int, choices=[0, 1, -1], default=0, help="0: magnitude, +1: raises the energy, -1: lowers it"
    )
    s.add_argument("--out", help="output folder (default: MODEL/explain)")
    s.set_defaults(func=cmd_explain)
    s = sub.add_parser("interpolation-test", help="train without the middle-energy band; RMSE on it and on the rest")
    _add_data_args(s)
    s.add_argument("--band", type=float, nargs=2, default=[0.4, 0.6], metavar=("QLO", "QHI"), help="energy quantiles")
    s.add_argument("--backend", choices=["homcloud", "delaunay"])
    s.add_argument("--epochs", type=int, default=80)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--max-minutes", type=float, default=4.0)
    s.set_defaults(func=cmd_interpolation_test)
    s = sub.add_parser("compare-descriptors", help="cyclo-octane: PCA of raw, SOAP, ACSF and PD persistence images")
    s.add_argument("--out", help="output folder (default: DATA_DIR/analyses/cyclooctane)")
    s.add_argument("--highlight", type=int, default=20, help="configurations highlighted in every panel")
    s.add_argument("--subset", type=int, help="use this many conformations (default: all 6,040)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_compare_descriptors)
    s = sub.add_parser("baseline", help="SOAP/ACSF + KRR/MLP on the PD-CNN's split, side by side with it")
    _add_data_args(s)
    s.add_argument("--descriptor", nargs="+", choices=["soap", "acsf"], default=["soap", "acsf"])
    s.add_argument("--model", dest="regressor", nargs="+", choices=["krr", "mlp"], default=["krr", "mlp"])
    s.add_argument("--cnn", dest="model", help="PD-CNN model whose split to use and to compare with")
    s.set_defaults(func=cmd_baseline)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "range", 0) is None:
        from pdmd.descriptor.histogram import DEFAULT_RANGE_A2
        from pdmd.ml.dataset_files import SYSTEM_DIMS

        args.range = list(DEFAULT_RANGE_A2[SYSTEM_DIMS[args.system]])
    try:
        return args.func(args)
    except PdmdError as err:
        print(f"pdmd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
